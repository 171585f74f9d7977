import Testing
@testable import XPUPTX

#if canImport(Glibc)
import Glibc
#endif

/// Device-side printf: the formatter against the C library's snprintf of the whole format with
/// the same arguments, and kernels in the form nvcc 13.5 emits (`call vprintf` with a global
/// format string and a local argument buffer) writing into a context's FIFO.
@Suite struct DevicePrintfTests {
    /// An argument buffer packed as nvcc packs one: each value at the next multiple of its size.
    struct Arguments {
        var bytes: [UInt8] = []
        mutating func add<T: FixedWidthInteger>(_ value: T) {
            while bytes.count % MemoryLayout<T>.size != 0 { bytes.append(0) }
            withUnsafeBytes(of: value.littleEndian) { bytes += $0 }
        }
        mutating func add(_ value: Double) { add(value.bitPattern) }
        func read(_ offset: Int, _ size: Int) -> UInt64? {
            guard offset + size <= bytes.count else { return nil }
            return bytes[offset..<(offset + size)].enumerated().reduce(0) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        }
    }

    /// snprintf of `format` with `arguments` on the host.
    static func host(_ format: String, _ arguments: [any CVarArg]) -> [UInt8] {
        var buffer = [CChar](repeating: 0, count: 4096)
        let count = withVaList(arguments) { vsnprintf(&buffer, buffer.count, format, $0) }
        return buffer[..<Int(count)].map { UInt8(bitPattern: $0) }
    }

    @Test func conversionsMatchTheCLibrary() {
        let strings: [UInt64: [UInt8]] = [0x1000: Array("device".utf8)]
        // Each case: the format, the host's arguments (given the host's copy of the string the
        // device address 0x1000 holds), and the same arguments packed as the device packs them.
        typealias Case = (String, (UnsafePointer<CChar>) -> [any CVarArg], (inout Arguments) -> Void)
        let cases: [Case] = [
            ("%d %i %u %x %X %o|", { _ in [Int32(-42), Int32(7), UInt32(4_000_000_000), UInt32(0xBEEF), UInt32(0xBEEF), UInt32(8)] }, { a in
                a.add(Int32(-42)); a.add(Int32(7)); a.add(UInt32(4_000_000_000)); a.add(UInt32(0xBEEF)); a.add(UInt32(0xBEEF)); a.add(UInt32(8))
            }),
            ("[%5d] [%-5d] [%05d] [%+d] [% d]", { _ in [Int32(42), Int32(42), Int32(42), Int32(42), Int32(42)] }, { a in
                for _ in 0..<5 { a.add(Int32(42)) }
            }),
            ("%ld %lld %llu %lx %zu", { _ in [Int64.min, Int64(-1), UInt64.max, UInt64(0xDEAD_BEEF_CAFE), UInt64(12)] }, { a in
                a.add(Int64.min); a.add(Int64(-1)); a.add(UInt64.max); a.add(UInt64(0xDEAD_BEEF_CAFE)); a.add(UInt64(12))
            }),
            ("%c%c %d %f %e %g %.3f %10.2e %-8g|", { _ in [Int32(65), Int32(66), Int32(3), 3.14159, 1234.5, 0.0001, -2.0 / 3.0, 6.02e23, 1e-10] }, { a in
                a.add(Int32(65)); a.add(Int32(66)); a.add(Int32(3)); a.add(3.14159); a.add(1234.5); a.add(0.0001); a.add(-2.0 / 3.0)
                a.add(6.02e23); a.add(1e-10)
            }),
            ("%*d|%-*.*f|%%|%5s|%.3s", { p in [Int32(6), Int32(-9), Int32(9), Int32(2), 2.71828, p, p] }, { a in
                a.add(Int32(6)); a.add(Int32(-9)); a.add(Int32(9)); a.add(Int32(2)); a.add(2.71828); a.add(UInt64(0x1000)); a.add(UInt64(0x1000))
            }),
            ("%hhd %hd %p", { _ in [Int32(300), Int32(70000), Int(0x7F00_0010)] }, { a in
                a.add(Int32(300)); a.add(Int32(70000)); a.add(UInt64(0x7F00_0010))
            }),
        ]
        for (format, hostArguments, pack) in cases {
            var arguments = Arguments()
            pack(&arguments)
            let got = DevicePrintf.format(Array(format.utf8), argument: arguments.read, string: { strings[$0] })
            let want = "device".withCString { Self.host(format, hostArguments($0)) }
            #expect(String(decoding: got, as: UTF8.self) == String(decoding: want, as: UTF8.self), "\(format)")
        }
    }

    @Test func hugeWidthsAreCutAtTheConversionLimit() {
        var arguments = Arguments()
        arguments.add(Int32(5))
        let got = DevicePrintf.format(Array("%3000000d|".utf8), argument: arguments.read, string: { _ in nil })
        #expect(got.count == DevicePrintf.maximumConversionBytes + 1)
        #expect(got.last == UInt8(ascii: "|") && got[got.count - 2] == UInt8(ascii: " "))
    }

    @Test func nullStringsAndUnknownConversionsPrintAsCUDAPrintsThem() {
        var arguments = Arguments()
        arguments.add(UInt64(0))
        let got = DevicePrintf.format(Array("%s %k %".utf8), argument: arguments.read, string: { _ in nil })
        #expect(String(decoding: got, as: UTF8.self) == "(null) %k %")
    }

    /// nvcc 13.5's PTX for `printf("t%d a=%d f=%.2f b=%lld s=%s c=%c\n", threadIdx.x, a, f, b, "lit", 'z');
    /// printf("plain\n");` run by four threads.
    static let kernel = """
        .version 9.5
        .target sm_75
        .address_size 64
        .extern .func  (.param .b32 func_retval0) vprintf
        (
        \t.param .b64 vprintf_param_0,
        \t.param .b64 vprintf_param_1
        )
        ;
        .global .align 1 .b8 $str[34] = {116, 37, 100, 32, 97, 61, 37, 100, 32, 102, 61, 37, 46, 50, 102, 32, 98, 61, 37, 108, 108, 100, 32, 115, 61, 37, 115, 32, 99, 61, 37, 99, 10};
        .global .align 1 .b8 $str$1[4] = {108, 105, 116};
        .global .align 1 .b8 $str$2[7] = {112, 108, 97, 105, 110, 10};
        .visible .entry k(
        \t.param .u32 k_param_0,
        \t.param .f32 k_param_1,
        \t.param .u64 k_param_2,
        \t.param .u64 k_param_3
        )
        {
        \t.local .align 8 .b8 \t__local_depot0[40];
        \t.reg .b64 \t%SP;
        \t.reg .b64 \t%SPL;
        \t.reg .f32 \t%f<2>;
        \t.reg .b32 \t%r<6>;
        \t.reg .f64 \t%fd<2>;
        \t.reg .b64 \t%rd<10>;
        \tmov.u64 \t%SPL, __local_depot0;
        \tcvta.local.u64 \t%SP, %SPL;
        \tld.param.f32 \t%f1, [k_param_1];
        \tld.param.u64 \t%rd1, [k_param_2];
        \tadd.u64 \t%rd2, %SP, 0;
        \tadd.u64 \t%rd3, %SPL, 0;
        \tcvt.f64.f32 \t%fd1, %f1;
        \tld.param.u32 \t%r1, [k_param_0];
        \tmov.u32 \t%r2, %tid.x;
        \tst.local.v2.u32 \t[%rd3], {%r2, %r1};
        \tst.local.f64 \t[%rd3+8], %fd1;
        \tst.local.u64 \t[%rd3+16], %rd1;
        \tmov.u64 \t%rd4, $str$1;
        \tcvta.global.u64 \t%rd5, %rd4;
        \tst.local.u64 \t[%rd3+24], %rd5;
        \tmov.u32 \t%r3, 122;
        \tst.local.u32 \t[%rd3+32], %r3;
        \tmov.u64 \t%rd6, $str;
        \tcvta.global.u64 \t%rd7, %rd6;
        \t{ // callseq 0, 0
        \t.reg .b32 temp_param_reg;
        \t.param .b64 param0;
        \tst.param.b64 \t[param0+0], %rd7;
        \t.param .b64 param1;
        \tst.param.b64 \t[param1+0], %rd2;
        \t.param .b32 retval0;
        \tcall.uni (retval0),
        \tvprintf,
        \t(
        \tparam0,
        \tparam1
        \t);
        \tld.param.b32 \t%r4, [retval0+0];
        \t} // callseq 0
        \tmov.u64 \t%rd8, $str$2;
        \tcvta.global.u64 \t%rd9, %rd8;
        \t{ // callseq 1, 0
        \t.reg .b32 temp_param_reg;
        \t.param .b64 param0;
        \tst.param.b64 \t[param0+0], %rd9;
        \t.param .b64 param1;
        \tst.param.b64 \t[param1+0], 0;
        \t.param .b32 retval0;
        \tcall.uni (retval0),
        \tvprintf,
        \t(
        \tparam0,
        \tparam1
        \t);
        \tld.param.b32 \t%r5, [retval0+0];
        \t} // callseq 1
        \tret;
        }
        """

    /// Runs `kernel` with 4 threads, a = 7, f = 1.5, b = -5, into `output`.
    static func run(_ output: DeviceOutput) throws {
        let module = try PTXModule(source: kernel)
        let k = try #require(module.kernel(named: "k"))
        let memory = TestMemory()
        var params = ParameterBuffer()
        params.append(Int32(7), at: 0)
        params.append(Float(1.5), at: 4)
        params.append(Int64(-5), at: 8)
        params.append(UInt64(0), at: 16)
        let variables = module.variables.map { v in
            let address = memory.allocate(max(v.size, 8))
            for (i, byte) in v.initialBytes.enumerated() { memory.pointer(address).storeBytes(of: byte, toByteOffset: i, as: UInt8.self) }
            return address
        }
        let fault = PTXLaunch(
            kernel: k, grid: PTXDim3(1), block: PTXDim3(4), parameters: params.bytes, memory: memory.map,
            variableAddresses: variables, output: output
        ).run()
        #expect(fault == nil)
    }

    @Test func kernelsPrintIntoTheContextsFIFO() throws {
        let output = DeviceOutput()
        try Self.run(output)
        let text = String(decoding: output.drain().bytes, as: UTF8.self)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        // Every thread's two lines, each line whole.
        #expect(lines.filter { $0 == "plain" }.count == 4)
        for t in 0..<4 {
            #expect(lines.filter { $0 == "t\(t) a=7 f=1.50 b=-5 s=lit c=z" }.count == 1, "\(text)")
        }
        #expect(lines.count == 9 && lines.last == "")
        #expect(output.drain().bytes.isEmpty)
    }

    @Test func aFullFIFODropsWholeRecords() throws {
        let output = DeviceOutput()
        output.capacity = 40  // thread 0's two lines (29 and 6 bytes); nothing after them fits
        try Self.run(output)
        let (bytes, dropped) = output.drain()
        #expect(String(decoding: bytes, as: UTF8.self) == "t0 a=7 f=1.50 b=-5 s=lit c=z\nplain\n")
        #expect(dropped == 6)
    }
}
