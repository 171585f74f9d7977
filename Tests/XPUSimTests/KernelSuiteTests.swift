import CXPUDriver
import Testing
import XPUSim

/// The project's `.cu` kernels, compiled by nvcc for each of `KernelSuite.architectures`, run on
/// the simulated device through the C API and compared with CPU references: integers exactly,
/// floats exactly where both sides round the same operations the same way (said per test).
@Suite(.serialized) struct KernelSuiteTests {
    @Test(arguments: KernelSuite.architectures) func vectorAdd(arch: String) throws {
        try withContext { _ in
            let kernel = try LoadedKernel(ptx: try KernelSuite.ptx("vector_add", arch: arch), name: "vector_add")
            defer { kernel.unload() }
            var rng = SplitMix(state: 1)
            let n = 1000
            let a = (0..<n).map { _ in rng.float(-100...100) }
            let b = (0..<n).map { _ in rng.float(-100...100) }
            let da = DeviceArray(a), db = DeviceArray(b), dc = DeviceArray<Float>(zeros: n)
            defer { da.free(); db.free(); dc.free() }
            check(kernel.launch(grid: (UInt32((n + 127) / 128), 1), block: (128, 1), [da.argument, db.argument, dc.argument, .int32(Int32(n))]))
            // One correctly rounded single-precision add on both sides: exact.
            #expect(dc.read() == zip(a, b).map { $0 + $1 })
        }
    }

    @Test(arguments: KernelSuite.architectures) func tiledMatrixMultiply(arch: String) throws {
        try withContext { _ in
            let kernel = try LoadedKernel(ptx: try KernelSuite.ptx("matmul_tiled", arch: arch), name: "matmul_tiled")
            defer { kernel.unload() }
            var rng = SplitMix(state: 2)
            let n = 70  // not a multiple of the 16-wide tile: the edges take the bounds checks
            let a = (0..<(n * n)).map { _ in rng.float(-1...1) }
            let b = (0..<(n * n)).map { _ in rng.float(-1...1) }
            let da = DeviceArray(a), db = DeviceArray(b), dc = DeviceArray<Float>(zeros: n * n)
            defer { da.free(); db.free(); dc.free() }
            let tiles = UInt32((n + 15) / 16)
            check(kernel.launch(grid: (tiles, tiles), block: (16, 16), [da.argument, db.argument, dc.argument, .int32(Int32(n))]))
            let c = dc.read()
            // Reference in double; the kernel accumulates n products in single precision, so allow
            // n float roundings of the largest partial sum (|sum| <= n).
            var worst: Double = 0
            for i in 0..<n {
                for j in 0..<n {
                    var sum = 0.0
                    for k in 0..<n { sum += Double(a[i * n + k]) * Double(b[k * n + j]) }
                    worst = max(worst, abs(Double(c[i * n + j]) - sum))
                }
            }
            #expect(worst <= Double(n) * Double(n) * Double(Float.ulpOfOne))
            #expect(worst > 0 || n < 2)  // a few roundings differ from the double reference
        }
    }

    @Test(arguments: KernelSuite.architectures) func warpShuffleReduction(arch: String) throws {
        try withContext { _ in
            let kernel = try LoadedKernel(ptx: try KernelSuite.ptx("reduce_warp", arch: arch), name: "reduce_warp")
            defer { kernel.unload() }
            var rng = SplitMix(state: 3)
            for (n, block, withLarge) in [(100_000, 256, false), (4_999, 96, true), (31, 32, false)] {
                var values = (0..<n).map { _ in Int32(Int64(rng.next() % 1500) - 500) }
                if withLarge { values[n / 2] = 5000 }
                let input = DeviceArray(values)
                let result = DeviceArray<UInt64>(zeros: 1)
                let positives = DeviceArray<UInt32>(zeros: 1)
                let allSmall = DeviceArray<Int32>([1])
                defer { input.free(); result.free(); positives.free(); allSmall.free() }
                check(kernel.launch(grid: (7, 1), block: (UInt32(block), 1), [input.argument, .int32(Int32(n)), result.argument, positives.argument, allSmall.argument]))
                #expect(Int64(bitPattern: result.read()[0]) == values.reduce(Int64(0)) { $0 + Int64($1) }, "n=\(n)")
                #expect(positives.read()[0] == UInt32(values.filter { $0 > 0 }.count), "n=\(n)")
                #expect(allSmall.read()[0] == (withLarge ? 0 : 1), "n=\(n)")
            }
        }
    }

    @Test(arguments: KernelSuite.architectures) func sharedAtomicHistogram(arch: String) throws {
        try withContext { _ in
            let kernel = try LoadedKernel(ptx: try KernelSuite.ptx("histogram", arch: arch), name: "histogram")
            defer { kernel.unload() }
            var rng = SplitMix(state: 4)
            let n = 50_000
            let data = (0..<n).map { _ in UInt8(truncatingIfNeeded: (rng.next() % 200) + (rng.next() % 40)) }
            let input = DeviceArray(data)
            let bins = DeviceArray<UInt32>(zeros: 256)
            let maxByte = DeviceArray<UInt32>(zeros: 1)
            defer { input.free(); bins.free(); maxByte.free() }
            check(kernel.launch(grid: (6, 1), block: (192, 1), [input.argument, .int32(Int32(n)), bins.argument, maxByte.argument]))
            var expected = [UInt32](repeating: 0, count: 256)
            for v in data { expected[Int(v)] += 1 }
            #expect(bins.read() == expected)
            #expect(maxByte.read()[0] == UInt32(data.max()!))
        }
    }

    @Test(arguments: KernelSuite.architectures) func deviceFunctionCallsAndLocalArrays(arch: String) throws {
        let ptx = try KernelSuite.ptx("device_calls", arch: arch)
        #expect(ptx.contains(".func") && ptx.contains("call"), "noinline functions stay calls in the PTX")
        try withContext { _ in
            let kernel = try LoadedKernel(ptx: ptx, name: "device_calls")
            defer { kernel.unload() }
            var rng = SplitMix(state: 5)
            let n = 300
            let pick: Int32 = 3
            let input = (0..<n).map { _ in UInt32(rng.next() % 100_000) + 1 }
            let din = DeviceArray(input)
            let steps = DeviceArray<Int32>(zeros: n)
            let summary = DeviceArray<Int64>(zeros: 3 * n)
            let values = DeviceArray<Float>(zeros: n)
            defer { din.free(); steps.free(); summary.free(); values.free() }
            check(kernel.launch(grid: (3, 1), block: (128, 1), [din.argument, .int32(Int32(n)), steps.argument, summary.argument, values.argument, .int32(pick)]))
            func collatz(_ start: UInt32) -> Int32 {
                var x = start, steps: Int32 = 0
                while x != 1 && steps < 1000 { x = x & 1 != 0 ? 3 &* x &+ 1 : x / 2; steps += 1 }
                return steps
            }
            let gotSteps = steps.read(), gotSummary = summary.read(), gotValues = values.read()
            for i in 0..<n {
                let window = (0..<8).map { collatz(input[i] &+ UInt32($0)) }
                #expect(gotSteps[i] == window[Int(pick)])
                #expect(gotSummary[3 * i] == Int64(window.min()!))
                #expect(gotSummary[3 * i + 1] == Int64(window.max()!))
                #expect(gotSummary[3 * i + 2] == window.reduce(Int64(0)) { $0 + Int64($1) })
                // (a*x + b)*x + c in single precision, contracted to two fmas by nvcc: within 2 ulps.
                let x = Float(input[i]) * 0.001
                let expected = (0.5 * x - 2) * x + 1.25
                #expect(abs(gotValues[i] - expected) <= 2 * expected.ulp + 1e-6, "i=\(i)")
            }
        }
    }

    @Test(arguments: KernelSuite.architectures) func halfPrecision(arch: String) throws {
        try withContext { _ in
            let kernel = try LoadedKernel(ptx: try KernelSuite.ptx("half_precision", arch: arch), name: "half_precision")
            defer { kernel.unload() }
            var rng = SplitMix(state: 6)
            let n = 257
            let x = (0..<n).map { _ in Float16(rng.float(-4...4)) }
            let b = (0..<n).map { _ in Float16(rng.float(-4...4)) }
            let scale: Float = 0.7
            let dx = DeviceArray(x.map(\.bitPattern)), db = DeviceArray(b.map(\.bitPattern))
            let dy = DeviceArray<UInt16>(zeros: n), dr = DeviceArray<Float>(zeros: n)
            defer { dx.free(); db.free(); dy.free(); dr.free() }
            check(kernel.launch(grid: (3, 1), block: (100, 1), [dx.argument, db.argument, dy.argument, dr.argument, .float(scale), .int32(Int32(n))]))
            let y = dy.read(), roundTrip = dr.read()
            let s = Float16(scale)
            for i in 0..<n {
                // Each __half operation rounds once to half (exact products and sums in double first).
                let h: Float16 =
                    i & 1 == 1
                    ? Float16(Double(x[i]) * Double(s) + Double(b[i]))
                    : Float16(Double(Float16(Double(x[i]) * Double(s))) + Double(b[i]))
                #expect(y[i] == h.bitPattern, "i=\(i)")
                // bfloat16 keeps the top 16 bits of the float, rounded to nearest even.
                let f = Float(x[i]) * 3
                let u = f.bitPattern
                let bf = Float(bitPattern: ((u &+ 0x7FFF &+ ((u >> 16) & 1)) >> 16) << 16)
                #expect(roundTrip[i] == bf + Float(h), "i=\(i)")
            }
        }
    }

    /// A fatbinary of compute_75 PTX loads as plain, LZ4 (`-compress-mode=speed`) and zstd (the default).
    @Test(arguments: [["-no-compress"], ["-compress-mode=speed"], []]) func fatbinaryImages(options: [String]) throws {
        let image = try KernelSuite.fatbinary("vector_add", options: options)
        try withContext { _ in
            var module: CUmodule?
            try #require(image.withUnsafeBytes { cuModuleLoadData(&module, $0.baseAddress) } == CUDA_SUCCESS)
            var function: CUfunction?
            check(cuModuleGetFunction(&function, module, "vector_add"))
            let kernel = LoadedKernel(module: module, function: function)
            defer { kernel.unload() }
            let a: [Float] = (0..<100).map { Float($0) }
            let da = DeviceArray(a), dc = DeviceArray<Float>(zeros: 100)
            defer { da.free(); dc.free() }
            check(kernel.launch(grid: (1, 1), block: (128, 1), [da.argument, da.argument, dc.argument, .int32(100)]))
            #expect(dc.read() == a.map { $0 * 2 })
        }
    }
}

extension LoadedKernel {
    init(module: CUmodule?, function: CUfunction?) {
        self.module = module
        self.function = function
    }
}
