import CXPUDriver
import Foundation
import Testing

@testable import XPUServer

/// The two upload buffers that take turns on the staged path (real drivers, `--staged-copies`),
/// on the simulated device, whose asynchronous copies read host memory only when their turn on
/// the stream comes: a buffer written again too early would show in the device's data.
@Suite("Upload staging", .serialized)
struct UploadStagingTests {
    /// libxpusim.so from this build (`swift build` makes it).
    static let simulatorPath: String? = {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let candidate = root.appendingPathComponent(".build/debug/libxpusim.so").path
        return FileManager.default.fileExists(atPath: candidate) ? candidate : nil
    }()

    /// One thread counting to `spins`: holds a stream for a while.
    static let ptx = """
        .version 7.0
        .target sm_70
        .address_size 64
        .visible .entry spin(.param .u32 spins) {
          .reg .pred %p; .reg .b32 %r<3>;
          ld.param.u32 %r1, [spins];
          mov.u32 %r2, 0;
        LOOP:
          add.u32 %r2, %r2, 1; setp.lt.u32 %p, %r2, %r1; @%p bra LOOP;
          ret;
        }
        """

    static let chunk = 1 << 20

    @Test(
        "a buffer is written again only once the copy out of it has run: three chunks queued behind a slow kernel land as sent",
        .enabled(if: simulatorPath != nil, "needs .build/debug/libxpusim.so"))
    func reuseWaitsForTheCopy() throws {
        let driver = try Driver(path: Self.simulatorPath!)
        let table = driver.table
        var device: CUdevice = 0
        var context: CUcontext?
        try #require(table.cuDeviceGet(&device, 0) == CUDA_SUCCESS)
        try #require(table.cuCtxCreate_v2(&context, 0, device) == CUDA_SUCCESS)
        defer { _ = table.cuCtxDestroy_v2(context) }
        var module: CUmodule?
        var spin: CUfunction?
        let count: UInt32 = 1
        try #require(Self.ptx.withCString { table.cuModuleLoadData(&module, $0) } == CUDA_SUCCESS)
        // The module's one function, as the server finds a module's functions.
        try #require(table.cuModuleEnumerateFunctions(&spin, count, module) == CUDA_SUCCESS && spin != nil)
        var stream: CUstream?
        try #require(table.cuStreamCreate(&stream, 0) == CUDA_SUCCESS)
        var destination: CUdeviceptr = 0
        try #require(table.cuMemAlloc_v2(&destination, 3 * Self.chunk) == CUDA_SUCCESS)

        let staging = UploadStaging(table: driver.table, register: driver.hostRegister, unregister: driver.hostUnregister)
        // The copies wait behind a kernel that runs for a while, so they are all still queued when
        // the first buffer is taken again.
        var spins: UInt32 = 1_000_000
        try withUnsafeMutablePointer(to: &spins) { pointer in
            var parameters: [UnsafeMutableRawPointer?] = [UnsafeMutableRawPointer(pointer)]
            try #require(table.cuLaunchKernel(spin, 1, 1, 1, 1, 1, 1, 0, stream, &parameters, nil) == CUDA_SUCCESS)
        }
        for (index, value) in [UInt8(0xA1), 0xB2, 0xC3].enumerated() {
            let (slot, memory) = staging.take(count: Self.chunk)
            #expect(slot == index % UploadStaging.slotCount)
            memory.initializeMemory(as: UInt8.self, repeating: value)
            let address = destination + CUdeviceptr(index * Self.chunk)
            #expect(staging.copy(slot: slot, count: Self.chunk, to: address, stream: stream, wait: false) == CUDA_SUCCESS)
            #expect(staging.hasPending)
        }
        staging.drain()
        #expect(!staging.hasPending)
        var landed = [UInt8](repeating: 0, count: 3 * Self.chunk)
        try #require(landed.withUnsafeMutableBytes { table.cuMemcpyDtoH_v2($0.baseAddress, destination, $0.count) } == CUDA_SUCCESS)
        for (index, value) in [UInt8(0xA1), 0xB2, 0xC3].enumerated() {
            let part = landed[index * Self.chunk..<(index + 1) * Self.chunk]
            #expect(part.allSatisfy { $0 == value }, "chunk \(index): \(part.first!) ... \(part.last!), sent \(value)")
        }

        // A synchronous chunk has landed when `copy` returns.
        let (slot, memory) = staging.take(count: 4096)
        memory.initializeMemory(as: UInt8.self, repeating: 0x5E)
        #expect(staging.copy(slot: slot, count: 4096, to: destination, stream: nil, wait: true) == CUDA_SUCCESS)
        #expect(!staging.hasPending)
        var first = [UInt8](repeating: 0, count: 4096)
        try #require(first.withUnsafeMutableBytes { table.cuMemcpyDtoH_v2($0.baseAddress, destination, $0.count) } == CUDA_SUCCESS)
        #expect(first.allSatisfy { $0 == 0x5E })
        _ = table.cuMemFree_v2(destination)
        _ = table.cuStreamDestroy_v2(stream)
        _ = table.cuModuleUnload(module)
    }
}
