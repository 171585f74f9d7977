import Testing
import XPUProtocol

/// The pool directory's messages and the server's end-of-session notice round-trip, and decode
/// what peers from before these fields sent.
@Suite("Pool message codecs")
struct PoolMessageTests {
    static let heartbeat = PoolHeartbeat(
        address: "10.0.0.7:7070", labels: ["zone=a"],
        devices: [
            PoolDevice(totalMemory: 4 << 30, freeMemory: 1 << 30, freeComputeMilli: 700, busyMilli: 412),
            PoolDevice(totalMemory: 4 << 30, freeMemory: 4 << 30, freeComputeMilli: 1000),
        ],
        sessions: 3, admitted: ["g7"],
        slices: [PoolSlice(session: 12, device: 0, memory: 3 << 30, computeMilli: 300, priority: 0, grant: "g7")])

    @Test func heartbeatRoundTrips() throws {
        let decoded = try PoolHeartbeat(decoding: Self.heartbeat.encoded)
        #expect(decoded == Self.heartbeat)
        #expect(decoded.devices[1].busyMilli == nil, "not measured stays not measured")
        for length in [1, 20, Self.heartbeat.encoded.count - 1] {
            #expect(throws: ProtocolError.self) { _ = try PoolHeartbeat(decoding: Array(Self.heartbeat.encoded.prefix(length))) }
        }
    }

    @Test func heartbeatFromBeforeBusyTimeAndSlicesDecodes() throws {
        var old = Self.heartbeat
        old.devices = old.devices.map { PoolDevice(totalMemory: $0.totalMemory, freeMemory: $0.freeMemory, freeComputeMilli: $0.freeComputeMilli) }
        old.slices = []
        // Everything up to the admitted grants, as a server from before wrote it.
        let full = old.encoded
        let trailer = 4 + 4 * old.devices.count + 4
        let decoded = try PoolHeartbeat(decoding: Array(full.dropLast(trailer)))
        #expect(decoded == old)
    }

    @Test func heartbeatReplyRoundTrips() throws {
        let reply = PoolHeartbeatReply(preemptions: [PoolPreemption(session: 12, reason: "preempted by the pool")])
        #expect(try PoolHeartbeatReply(decoding: reply.encoded) == reply)
        #expect(PoolHeartbeatReply().encoded.isEmpty, "nothing to order is an empty payload, as before")
        #expect(try PoolHeartbeatReply(decoding: []) == PoolHeartbeatReply())
    }

    @Test func placeRequestRoundTripsAndOldClientsNeitherWaitNorHaveAZone() throws {
        let request = PoolPlaceRequest(
            slice: "mem=1GiB,priority=high", client: "train pid 7", count: 2, waitMilliseconds: 30_000, zone: "b", api: "opencl")
        #expect(try PoolPlaceRequest(decoding: request.encoded) == request)
        var writer = WireWriter(capacity: 64)
        writer.write("mem=1GiB")
        writer.write("old pid 1")
        let old = try PoolPlaceRequest(decoding: writer.bytes)
        #expect(old.count == 1 && old.waitMilliseconds == 0 && old.zone.isEmpty && old.api.isEmpty)
        #expect(APIFamily(requested: old.api) == .cuda)
    }

    @Test func apiFamilyFromLabelsAndRequests() {
        #expect(APIFamily(labels: ["zone=a", "api=opencl"]) == .opencl)
        #expect(APIFamily(labels: ["zone=a"]) == .cuda, "a server without the label serves CUDA")
        #expect(APIFamily(labels: ["api=vulkan"]) == nil)
        #expect(APIFamily.opencl.label == "api=opencl")
        #expect(APIFamily(requested: "OpenCL") == .opencl)
        #expect(APIFamily(requested: "") == .cuda)
        #expect(APIFamily(requested: "metal") == nil)
    }

    @Test func sessionEndRoundTrips() throws {
        let notice = SessionEnd(reason: "preempted by the pool for a high-priority request")
        #expect(try SessionEnd(decoding: notice.encoded) == notice)
        #expect(throws: ProtocolError.self) { _ = try SessionEnd(decoding: Array(notice.encoded.dropLast())) }
    }
}
