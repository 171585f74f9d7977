import CXPUDriver
import Logging
import Testing
import XPUPool
import XPUProtocol

/// The pool places a request only on servers of its API family (`api=` label, `XPU_API`), driven
/// by heartbeats in-process.
@Suite("Directory API families")
struct DirectoryFamilyTests {
    static let cudaServer = "10.0.0.1:7070"
    static let openCLServer = "10.0.0.2:7070"

    /// A server with one device of `memory` bytes, none of it granted.
    static func heartbeat(_ address: String, labels: [String], memory: UInt64) -> PoolHeartbeat {
        PoolHeartbeat(
            address: address, labels: labels,
            devices: [PoolDevice(totalMemory: memory, freeMemory: memory, freeComputeMilli: 1000, busyMilli: 0)], sessions: 0)
    }

    static func directory() -> Directory {
        Directory(policy: .bestfit, heartbeatTimeout: .seconds(60), clock: ManualDirectoryClock(), logger: Logger(label: "test"))
    }

    @Test("each request goes to a server of its family, whichever fits better")
    func placesByFamily() {
        let directory = Self.directory()
        // Best fit alone would choose the smaller device for every request.
        directory.record(Self.heartbeat(Self.cudaServer, labels: ["api=cuda"], memory: 4 << 30))
        directory.record(Self.heartbeat(Self.openCLServer, labels: ["zone=a", "api=opencl"], memory: 1 << 30))
        let (openCLStatus, openCL) = directory.place(slice: "mem=64MiB", client: "cl pid 1", api: .opencl)
        #expect(openCLStatus == CUDA_SUCCESS)
        #expect(openCL.placements.map(\.server) == [Self.openCLServer])
        let (cudaStatus, cuda) = directory.place(slice: "mem=64MiB", client: "cuda pid 2", api: .cuda)
        #expect(cudaStatus == CUDA_SUCCESS)
        #expect(cuda.placements.map(\.server) == [Self.cudaServer])
    }

    @Test("a server without an api= label serves CUDA requests only")
    func unlabelledServerIsCUDA() {
        let directory = Self.directory()
        directory.record(Self.heartbeat(Self.cudaServer, labels: [], memory: 1 << 30))
        #expect(directory.place(slice: "mem=64MiB", client: "cuda pid 1").1.placements.map(\.server) == [Self.cudaServer])
        let (status, reply) = directory.place(slice: "mem=64MiB", client: "cl pid 2", api: .opencl)
        #expect(status == CUDA_ERROR_NO_DEVICE)
        #expect(reply.placements.isEmpty)
        #expect(reply.reason.contains("no opencl server is registered"), "\(reply.reason)")
        #expect(reply.reason.contains("cuda 1, opencl 0"), "\(reply.reason)")
    }

    @Test("a request that fits only on another family's server is refused, naming its family's free capacity")
    func noRoomInTheFamily() {
        let directory = Self.directory()
        directory.record(Self.heartbeat(Self.cudaServer, labels: ["api=cuda"], memory: 4 << 30))
        directory.record(Self.heartbeat(Self.openCLServer, labels: ["api=opencl"], memory: 1 << 30))
        let (status, reply) = directory.place(slice: "mem=2GiB", client: "cl pid 1", api: .opencl)
        #expect(status == CUDA_ERROR_OUT_OF_MEMORY)
        #expect(reply.placements.isEmpty)
        #expect(reply.reason.contains("free on opencl servers: \(Self.openCLServer)#0 1024MiB"), "\(reply.reason)")
        #expect(!reply.reason.contains(Self.cudaServer), "\(reply.reason)")
        // The same request from a CUDA client fits.
        #expect(directory.place(slice: "mem=2GiB", client: "cuda pid 2", api: .cuda).0 == CUDA_SUCCESS)
    }
}
