import ArgumentParser
import Foundation
import XPUPTX

/// `xpu-bench interpreter`: PTX interpreter throughput on the tiled matrix multiply of
/// Tests/kernels/matmul_tiled.cu, in thread-instructions per second, run with XPUPTX directly
/// (no driver, no copies) on one host thread.
struct InterpreterCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "interpreter",
        abstract: "Measure PTX interpreter throughput (thread-instructions per second) on a tiled matrix multiply.",
        discussion: """
            Runs C = A x B for each --sizes n (n x n floats, 16 x 16 tiles through shared memory) \
            --repeats times on one thread, checks C against a CPU reference, and reports the best \
            run: blocks, thread-instructions executed (every issued PTX instruction of every \
            thread), seconds, and thread-instructions per second.
            """)

    @Option(parsing: .upToNextOption, help: "Matrix sizes (n for n x n).")
    var sizes: [Int] = [64, 256]

    @Option(help: "Runs per size; the fastest is reported.")
    var repeats = 3

    @Option(help: "PTX file to run instead of the embedded one (must define matmul_tiled).")
    var ptx: String?

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    struct Result: Codable {
        var size: Int
        var blocks: Int
        var threadInstructions: Int
        var seconds: Double
        var threadInstructionsPerSecond: Double
        var maxError: Double
    }

    mutating func validate() throws {
        guard repeats > 0 else { throw ValidationError("--repeats must be at least 1") }
        guard !sizes.isEmpty, sizes.allSatisfy({ $0 > 0 && $0 <= 2048 }) else { throw ValidationError("sizes must be in 1...2048") }
    }

    func run() throws {
        let source = try ptx.map { try String(contentsOfFile: $0, encoding: .utf8) } ?? InterpreterCommand.matmulPTX
        let module = try PTXModule(source: source)
        guard let kernel = module.kernel(named: "matmul_tiled") else { throw ValidationError("no kernel matmul_tiled") }
        var results: [Result] = []
        for n in sizes {
            results.append(try measure(kernel, n: n))
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(results), as: UTF8.self))
            return
        }
        print("PTX interpreter, matmul_tiled (16x16 tiles, one host thread, best of \(repeats))")
        print(String(repeating: "-", count: 78))
        print("size".padding(toLength: 8, withPad: " ", startingAt: 0), terminator: "")
        print("blocks".leftPad(8), "thread-instr".leftPad(16), "seconds".leftPad(10), "thread-instr/s".leftPad(16), "max |err|".leftPad(12))
        for r in results {
            print("\(r.size)x\(r.size)".padding(toLength: 8, withPad: " ", startingAt: 0), terminator: "")
            print(
                "\(r.blocks)".leftPad(8), "\(r.threadInstructions)".leftPad(16), String(format: "%.3f", r.seconds).leftPad(10),
                String(format: "%.3e", r.threadInstructionsPerSecond).leftPad(16), String(format: "%.1e", r.maxError).leftPad(12))
        }
    }

    private func measure(_ kernel: PTXKernel, n: Int) throws -> Result {
        let count = n * n
        let bytes = count * 4
        var a = [Float](repeating: 0, count: count)
        var b = [Float](repeating: 0, count: count)
        for i in 0..<count {
            a[i] = Float((i * 7) % 13) / 13 - 0.5
            b[i] = Float((i * 5) % 11) / 11 - 0.5
        }
        let memory = UnsafeMutableRawPointer.allocate(byteCount: 3 * bytes, alignment: 256)
        defer { memory.deallocate() }
        memory.copyMemory(from: a, byteCount: bytes)
        (memory + bytes).copyMemory(from: b, byteCount: bytes)
        let base: UInt64 = 0x7000_0000_0000
        let map = PTXMemoryMap(regions: [PTXMemoryRegion(base: base, size: 3 * bytes, pointer: memory)])
        var parameters = [UInt8](repeating: 0, count: kernel.parameterBufferSize)
        let values: [UInt64] = [base, base + UInt64(bytes), base + UInt64(2 * bytes), UInt64(n)]
        for (p, v) in zip(kernel.parameters, values) {
            withUnsafeBytes(of: v) { raw in for k in 0..<p.size { parameters[p.offset + k] = raw[k] } }
        }
        let tiles = (n + 15) / 16
        let launch = PTXLaunch(
            kernel: kernel, grid: PTXDim3(tiles, tiles), block: PTXDim3(16, 16), parameters: parameters, memory: map)
        var best: (seconds: Double, steps: Int) = (.infinity, 0)
        for _ in 0..<repeats {
            var steps = 0
            let start = DispatchTime.now().uptimeNanoseconds
            for block in 0..<launch.blockCount {
                if let fault = launch.runBlock(block, steps: &steps) { throw ValidationError("kernel fault: \(fault)") }
            }
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            if seconds < best.seconds { best = (seconds, steps) }
        }
        // Check the result, so a broken interpreter cannot report a good number.
        let c = UnsafeBufferPointer(start: (memory + 2 * bytes).assumingMemoryBound(to: Float.self), count: count)
        var maxError = 0.0
        for i in stride(from: 0, to: n, by: max(1, n / 16)) {
            for j in 0..<n {
                var sum = 0.0
                for k in 0..<n { sum += Double(a[i * n + k]) * Double(b[k * n + j]) }
                maxError = max(maxError, abs(sum - Double(c[i * n + j])))
            }
        }
        guard maxError <= 1e-3 * Double(n) else { throw ValidationError("wrong result: max error \(maxError)") }
        return Result(
            size: n, blocks: launch.blockCount, threadInstructions: best.steps, seconds: best.seconds,
            threadInstructionsPerSecond: Double(best.steps) / best.seconds, maxError: maxError)
    }

    /// Generated: nvcc -ptx -arch=sm_75 Tests/kernels/matmul_tiled.cu (nvcc 13.5, PyPI
    /// nvidia-cuda-nvcc); the same text as bench/interpreter/matmul_tiled.sm_75.ptx.
    static let matmulPTX = """
        .version 9.5
        .target sm_75
        .address_size 64
        	// .globl	matmul_tiled
        .visible .entry matmul_tiled(
        	.param .u64 matmul_tiled_param_0,
        	.param .u64 matmul_tiled_param_1,
        	.param .u64 matmul_tiled_param_2,
        	.param .u32 matmul_tiled_param_3
        )
        {
        	.reg .pred 	%p<12>;
        	.reg .f32 	%f<63>;
        	.reg .b32 	%r<42>;
        	.reg .b64 	%rd<16>;
        	// demoted variable
        	.shared .align 4 .b8 _ZZ12matmul_tiledE5tileA[1024];
        	// demoted variable
        	.shared .align 4 .b8 _ZZ12matmul_tiledE5tileB[1024];
        	ld.param.u64 	%rd4, [matmul_tiled_param_0];
        	ld.param.u64 	%rd5, [matmul_tiled_param_1];
        	ld.param.u64 	%rd6, [matmul_tiled_param_2];
        	ld.param.u32 	%r20, [matmul_tiled_param_3];
        	mov.u32 	%r21, %ctaid.y;
        	shl.b32 	%r22, %r21, 4;
        	mov.u32 	%r39, %tid.y;
        	add.s32 	%r2, %r22, %r39;
        	mov.u32 	%r23, %ctaid.x;
        	shl.b32 	%r3, %r23, 4;
        	mov.u32 	%r38, %tid.x;
        	add.s32 	%r5, %r3, %r38;
        	setp.lt.s32 	%p1, %r20, 1;
        	mov.f32 	%f62, 0f00000000;
        	@%p1 bra 	$L__BB0_7;
        	shl.b32 	%r25, %r39, 6;
        	mov.u32 	%r26, _ZZ12matmul_tiledE5tileA;
        	add.s32 	%r8, %r26, %r25;
        	shl.b32 	%r27, %r38, 2;
        	add.s32 	%r6, %r8, %r27;
        	mov.u32 	%r28, _ZZ12matmul_tiledE5tileB;
        	add.s32 	%r29, %r28, %r25;
        	add.s32 	%r7, %r29, %r27;
        	add.s32 	%r9, %r28, %r27;
        	mad.lo.s32 	%r30, %r39, %r20, %r38;
        	add.s32 	%r40, %r30, %r3;
        	mad.lo.s32 	%r31, %r20, %r2, %r38;
        	cvta.to.global.u64 	%rd7, %rd4;
        	mul.wide.s32 	%rd8, %r31, 4;
        	add.s64 	%rd15, %rd7, %rd8;
        	add.s32 	%r32, %r20, 15;
        	shr.s32 	%r33, %r32, 31;
        	shr.u32 	%r34, %r33, 28;
        	add.s32 	%r35, %r32, %r34;
        	shr.s32 	%r11, %r35, 4;
        	mov.f32 	%f9, 0f00000000;
        	mov.u32 	%r41, 0;
        	cvta.to.global.u64 	%rd9, %rd5;
        	mov.f32 	%f62, %f9;
        $L__BB0_2:
        	setp.ge.s32 	%p2, %r38, %r20;
        	setp.ge.s32 	%p3, %r2, %r20;
        	or.pred  	%p4, %p3, %p2;
        	mov.f32 	%f60, %f9;
        	@%p4 bra 	$L__BB0_4;
        	ld.global.f32 	%f60, [%rd15];
        $L__BB0_4:
        	st.shared.f32 	[%r6], %f60;
        	setp.ge.s32 	%p5, %r39, %r20;
        	setp.ge.s32 	%p6, %r5, %r20;
        	mov.f32 	%f61, 0f00000000;
        	or.pred  	%p7, %p6, %p5;
        	@%p7 bra 	$L__BB0_6;
        	mul.wide.s32 	%rd10, %r40, 4;
        	add.s64 	%rd11, %rd9, %rd10;
        	ld.global.f32 	%f61, [%rd11];
        $L__BB0_6:
        	st.shared.f32 	[%r7], %f61;
        	bar.sync 	0;
        	ld.shared.f32 	%f12, [%r9];
        	ld.shared.f32 	%f13, [%r8];
        	fma.rn.f32 	%f14, %f13, %f12, %f62;
        	ld.shared.f32 	%f15, [%r9+64];
        	ld.shared.f32 	%f16, [%r8+4];
        	fma.rn.f32 	%f17, %f16, %f15, %f14;
        	ld.shared.f32 	%f18, [%r9+128];
        	ld.shared.f32 	%f19, [%r8+8];
        	fma.rn.f32 	%f20, %f19, %f18, %f17;
        	ld.shared.f32 	%f21, [%r9+192];
        	ld.shared.f32 	%f22, [%r8+12];
        	fma.rn.f32 	%f23, %f22, %f21, %f20;
        	ld.shared.f32 	%f24, [%r9+256];
        	ld.shared.f32 	%f25, [%r8+16];
        	fma.rn.f32 	%f26, %f25, %f24, %f23;
        	ld.shared.f32 	%f27, [%r9+320];
        	ld.shared.f32 	%f28, [%r8+20];
        	fma.rn.f32 	%f29, %f28, %f27, %f26;
        	ld.shared.f32 	%f30, [%r9+384];
        	ld.shared.f32 	%f31, [%r8+24];
        	fma.rn.f32 	%f32, %f31, %f30, %f29;
        	ld.shared.f32 	%f33, [%r9+448];
        	ld.shared.f32 	%f34, [%r8+28];
        	fma.rn.f32 	%f35, %f34, %f33, %f32;
        	ld.shared.f32 	%f36, [%r9+512];
        	ld.shared.f32 	%f37, [%r8+32];
        	fma.rn.f32 	%f38, %f37, %f36, %f35;
        	ld.shared.f32 	%f39, [%r9+576];
        	ld.shared.f32 	%f40, [%r8+36];
        	fma.rn.f32 	%f41, %f40, %f39, %f38;
        	ld.shared.f32 	%f42, [%r9+640];
        	ld.shared.f32 	%f43, [%r8+40];
        	fma.rn.f32 	%f44, %f43, %f42, %f41;
        	ld.shared.f32 	%f45, [%r9+704];
        	ld.shared.f32 	%f46, [%r8+44];
        	fma.rn.f32 	%f47, %f46, %f45, %f44;
        	ld.shared.f32 	%f48, [%r9+768];
        	ld.shared.f32 	%f49, [%r8+48];
        	fma.rn.f32 	%f50, %f49, %f48, %f47;
        	ld.shared.f32 	%f51, [%r9+832];
        	ld.shared.f32 	%f52, [%r8+52];
        	fma.rn.f32 	%f53, %f52, %f51, %f50;
        	ld.shared.f32 	%f54, [%r9+896];
        	ld.shared.f32 	%f55, [%r8+56];
        	fma.rn.f32 	%f56, %f55, %f54, %f53;
        	ld.shared.f32 	%f57, [%r9+960];
        	ld.shared.f32 	%f58, [%r8+60];
        	fma.rn.f32 	%f62, %f58, %f57, %f56;
        	bar.sync 	0;
        	shl.b32 	%r36, %r20, 4;
        	add.s32 	%r40, %r40, %r36;
        	add.s32 	%r39, %r39, 16;
        	add.s64 	%rd15, %rd15, 64;
        	add.s32 	%r38, %r38, 16;
        	add.s32 	%r41, %r41, 1;
        	setp.lt.s32 	%p8, %r41, %r11;
        	@%p8 bra 	$L__BB0_2;
        $L__BB0_7:
        	setp.ge.s32 	%p9, %r5, %r20;
        	setp.ge.s32 	%p10, %r2, %r20;
        	or.pred  	%p11, %p10, %p9;
        	@%p11 bra 	$L__BB0_9;
        	mad.lo.s32 	%r37, %r2, %r20, %r5;
        	cvta.to.global.u64 	%rd12, %rd6;
        	mul.wide.s32 	%rd13, %r37, 4;
        	add.s64 	%rd14, %rd12, %rd13;
        	st.global.f32 	[%rd14], %f62;
        $L__BB0_9:
        	ret;
        }
        """
}

extension String {
    fileprivate func leftPad(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
