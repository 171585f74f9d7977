import CXPUDriver
import Foundation
import Testing
import XPUSim

/// The `.cu` kernels of Tests/kernels, compiled to PTX by the nvcc of the PyPI wheel
/// `nvidia-cuda-nvcc` while the tests run, and small wrappers to drive them through the C API.
enum KernelSuite {
    static let kernelsDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("kernels")
    /// The architectures every kernel is compiled for: the oldest the wheel supports and Hopper.
    static let architectures = ["sm_75", "sm_90"]

    struct CompileError: Error, CustomStringConvertible {
        var description: String
    }

    /// `XPU_NVCC`, else the wheel's nvcc found through python3.
    static let nvcc: String? = {
        if let path = ProcessInfo.processInfo.environment["XPU_NVCC"] { return path }
        let script = "import nvidia.cu13 as m, os; print(os.path.join(list(m.__path__)[0], 'bin', 'nvcc'))"
        guard let out = try? run("/usr/bin/env", ["python3", "-c", script]), out.status == 0 else { return nil }
        let path = out.output.trimmingCharacters(in: .whitespacesAndNewlines)
        return FileManager.default.isExecutableFile(atPath: path) ? path : nil
    }()

    static func run(_ executable: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    private static let cache = Mutex<[String: String]>([:])

    /// The PTX text of `Tests/kernels/<name>.cu` for `arch`.
    static func ptx(_ name: String, arch: String) throws -> String {
        let key = "\(name).\(arch)"
        if let cached = cache.withLock({ $0[key] }) { return cached }
        guard let nvcc else {
            throw CompileError(description: "nvcc not found: pip install nvidia-cuda-nvcc (or set XPU_NVCC)")
        }
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("xpu-kernels-\(getpid())-\(key).ptx")
        defer { try? FileManager.default.removeItem(at: output) }
        let source = kernelsDirectory.appendingPathComponent("\(name).cu").path
        let result = try run(nvcc, ["-ptx", "-arch=\(arch)", "-o", output.path, source])
        guard result.status == 0 else { throw CompileError(description: "nvcc \(name).cu -arch=\(arch) failed:\n\(result.output)") }
        let text = try String(contentsOf: output, encoding: .utf8)
        cache.withLock { $0[key] = text }
        return text
    }

    /// A fatbinary of `name` holding PTX for compute_75, written with `options` (e.g. `-no-compress`).
    static func fatbinary(_ name: String, options: [String]) throws -> [UInt8] {
        guard let nvcc else { throw CompileError(description: "nvcc not found") }
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("xpu-kernels-\(getpid())-\(name)-\(options.joined()).fatbin")
        defer { try? FileManager.default.removeItem(at: output) }
        let source = kernelsDirectory.appendingPathComponent("\(name).cu").path
        let result = try run(nvcc, ["-fatbin", "-gencode", "arch=compute_75,code=compute_75"] + options + ["-o", output.path, source])
        guard result.status == 0 else { throw CompileError(description: "nvcc -fatbin failed:\n\(result.output)") }
        return Array(try Data(contentsOf: output))
    }
}

import Synchronization

/// A kernel loaded on the current context.
struct LoadedKernel {
    var module: CUmodule?
    var function: CUfunction?

    init(ptx: String, name: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        var module: CUmodule?
        let status = ptx.withCString { cuModuleLoadData(&module, $0) }
        try #require(status == CUDA_SUCCESS, "cuModuleLoadData: \(status)", sourceLocation: sourceLocation)
        var function: CUfunction?
        check(cuModuleGetFunction(&function, module, name), sourceLocation: sourceLocation)
        self.module = module
        self.function = function
    }

    /// One kernel argument, as the bytes `kernelParams` points at.
    enum Argument {
        case pointer(CUdeviceptr)
        case int32(Int32)
        case float(Float)
    }

    func launch(grid: (UInt32, UInt32), block: (UInt32, UInt32), _ arguments: [Argument]) -> CUresult {
        let storage = UnsafeMutableRawPointer.allocate(byteCount: 8 * max(arguments.count, 1), alignment: 8)
        defer { storage.deallocate() }
        var pointers: [UnsafeMutableRawPointer?] = []
        for (i, argument) in arguments.enumerated() {
            let slot = storage + 8 * i
            switch argument {
            case .pointer(let p): slot.storeBytes(of: p, as: CUdeviceptr.self)
            case .int32(let v): slot.storeBytes(of: v, as: Int32.self)
            case .float(let v): slot.storeBytes(of: v, as: Float.self)
            }
            pointers.append(slot)
        }
        let launched = cuLaunchKernel(function, grid.0, grid.1, 1, block.0, block.1, 1, 0, nil, &pointers, nil)
        guard launched == CUDA_SUCCESS else { return launched }
        return cuCtxSynchronize()
    }

    func unload() { check(cuModuleUnload(module)) }
}

/// Device memory holding a copy of `values`; freed by `free()`.
struct DeviceArray<Element> {
    var address: CUdeviceptr = 0
    var count: Int

    init(_ values: [Element]) {
        count = values.count
        check(cuMemAlloc_v2(&address, max(1, count * MemoryLayout<Element>.stride)))
        values.withUnsafeBytes { check(cuMemcpyHtoD_v2(address, $0.baseAddress, $0.count)) }
    }

    init(zeros count: Int, of: Element.Type = Element.self) {
        self.count = count
        check(cuMemAlloc_v2(&address, max(1, count * MemoryLayout<Element>.stride)))
        check(cuMemsetD8_v2(address, 0, count * MemoryLayout<Element>.stride))
    }

    func read() -> [Element] {
        [Element](unsafeUninitializedCapacity: count) { buffer, initialized in
            check(cuMemcpyDtoH_v2(buffer.baseAddress, address, count * MemoryLayout<Element>.stride))
            initialized = count
        }
    }

    var argument: LoadedKernel.Argument { .pointer(address) }

    func free() { check(cuMemFree_v2(address)) }
}

/// A deterministic pseudo-random sequence (SplitMix64), so failures reproduce.
struct SplitMix {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func float(_ range: ClosedRange<Float>) -> Float {
        range.lowerBound + Float(next() >> 40) / Float(1 << 24) * (range.upperBound - range.lowerBound)
    }
}
