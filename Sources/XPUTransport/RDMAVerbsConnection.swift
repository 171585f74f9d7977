import CXPUVerbs

/// A queue pair on real RDMA hardware (or Soft-RoCE), through libibverbs and librdmacm loaded
/// with `dlopen` on first use (`CXPUVerbs`).
///
/// UNTESTED: it builds and links, but no machine the project tests on has an RDMA device; see
/// proto/SECURITY.md ("RDMA") for how to run it on Soft-RoCE.
public final class VerbsConnection: VerbsQueuePair, @unchecked Sendable {
    let connection: OpaquePointer
    public let slotCount: Int
    public let slotBytes: Int
    public let bulkSlotCount: Int
    public let bulkSlotBytes: Int
    public let peerLanding: VerbsRemoteRegion?

    init(_ connection: OpaquePointer, geometry: RDMAGeometry) {
        self.connection = connection
        slotCount = geometry.slotCount
        slotBytes = geometry.slotBytes
        bulkSlotCount = geometry.bulkSlotCount
        bulkSlotBytes = geometry.bulkSlotBytes
        peerLanding =
            geometry.bulkSlotCount > 0
            ? VerbsRemoteRegion(address: xpu_rdma_peer_landing_address(connection), rkey: xpu_rdma_peer_landing_rkey(connection))
            : nil
    }

    /// The peer's numeric address (for logs and the policy's peer rules).
    public var peerHost: String {
        var host = [CChar](repeating: 0, count: 64)
        guard xpu_rdma_peer_host(connection, &host, host.count) == 0 else { return "unknown" }
        return text(host)
    }

    deinit {
        xpu_rdma_close(connection)
    }

    /// Connects to an `rdma://host:port` server.
    public static func connect(to endpoint: Endpoint, geometry: RDMAGeometry = RDMAGeometry()) throws(TransportError) -> VerbsConnection {
        var error = [CChar](repeating: 0, count: 512)
        guard
            let made = xpu_rdma_connect(
                endpoint.host, endpoint.port, UInt32(geometry.slotCount), UInt32(geometry.slotBytes),
                UInt32(geometry.bulkSlotCount), UInt32(geometry.bulkSlotBytes), 5000, &error, error.count)
        else { throw TransportError(.connectionFailed, "rdma://\(endpoint): \(text(error))") }
        return VerbsConnection(made, geometry: geometry)
    }

    public func sendSlot(_ slot: Int) -> UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: xpu_rdma_send_slot(connection, UInt32(slot)), count: slotBytes)
    }

    public func receiveSlot(_ slot: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: xpu_rdma_receive_slot(connection, UInt32(slot)), count: slotBytes)
    }

    public func stagingSlot(_ slot: Int) -> UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: xpu_rdma_staging_slot(connection, UInt32(slot)), count: bulkSlotBytes)
    }

    public func landingSlot(_ slot: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: xpu_rdma_landing_slot(connection, UInt32(slot)), count: bulkSlotBytes)
    }

    public func postWrite(stagingSlot: Int, length: Int, remoteAddress: UInt64, rkey: UInt32) throws(TransportError) {
        var error = [CChar](repeating: 0, count: 256)
        guard
            xpu_rdma_post_write(connection, UInt32(stagingSlot), UInt32(length), remoteAddress, rkey, &error, error.count) == 0
        else { throw TransportError(.io, text(error)) }
    }

    public func postReceive(slot: Int) throws(TransportError) {
        var error = [CChar](repeating: 0, count: 256)
        guard xpu_rdma_post_receive(connection, UInt32(slot), &error, error.count) == 0 else {
            throw TransportError(.io, text(error))
        }
    }

    public func postSend(slot: Int, length: Int) throws(TransportError) {
        var error = [CChar](repeating: 0, count: 256)
        guard xpu_rdma_post_send(connection, UInt32(slot), UInt32(length), &error, error.count) == 0 else {
            throw TransportError(.io, text(error))
        }
    }

    public func waitForCompletions(timeoutMilliseconds: Int32) throws(TransportError) -> [VerbsCompletion] {
        var raw = [xpu_rdma_completion](repeating: xpu_rdma_completion(), count: 32)
        var error = [CChar](repeating: 0, count: 256)
        let count = xpu_rdma_wait(connection, &raw, Int32(raw.count), timeoutMilliseconds, &error, error.count)
        if count == -2 { throw TransportError(.closed, "the RDMA peer disconnected") }
        if count < 0 { throw TransportError(.io, text(error)) }
        return raw.prefix(Int(count)).map { completion in
            VerbsCompletion(
                kind: completion.kind == 1 ? .receive : completion.kind == 2 ? .write : .send, slot: Int(completion.slot),
                length: Int(completion.length),
                failure: completion.status == 0 ? nil : "work completion status \(completion.status)")
        }
    }

    public func disconnect() {
        xpu_rdma_disconnect(connection)
    }
}

/// The slot geometry of an RDMA connection; client and server must agree (the server refuses a
/// client whose private data differs).
public struct RDMAGeometry: Hashable, Sendable {
    public var slotCount = RDMATransport.defaultSlotCount
    public var slotBytes = RDMATransport.defaultSlotBytes
    public var bulkSlotCount = RDMATransport.defaultBulkSlotCount
    public var bulkSlotBytes = RDMATransport.defaultBulkSlotBytes

    public init() {}
}

/// Hands out one connected queue pair per RDMA client: `VerbsListener` on hardware, an in-memory
/// fake in tests.
public protocol VerbsAcceptor: AnyObject, Sendable {
    /// Waits for the next client. Throws `.closed` once `shutdown` was called (stop accepting);
    /// any other error concerns one client only (keep accepting).
    func acceptQueuePair() throws(TransportError) -> (queuePair: any VerbsQueuePair, peerHost: String)
    /// Wakes a thread in `acceptQueuePair`; safe from any thread.
    func shutdown()
    /// The bound address as clients write it in `XPU_SERVER` (`rdma://10.0.0.5:7070`).
    var address: String { get }
}

/// Accepts RDMA connections for `xpu-remote-server --listen rdma://HOST:PORT`.
///
/// UNTESTED on hardware, like `VerbsConnection`.
public final class VerbsListener: VerbsAcceptor, @unchecked Sendable {
    let listener: OpaquePointer
    public let port: UInt16
    public let host: String
    public let geometry: RDMAGeometry

    public init(binding endpoint: Endpoint, geometry: RDMAGeometry = RDMAGeometry()) throws(TransportError) {
        var error = [CChar](repeating: 0, count: 512)
        guard let made = xpu_rdma_listen(endpoint.host, endpoint.port, &error, error.count) else {
            throw TransportError(.io, "rdma://\(endpoint): \(text(error))")
        }
        listener = made
        port = xpu_rdma_listener_port(made)
        host = endpoint.host
        self.geometry = geometry
    }

    deinit {
        xpu_rdma_listener_close(listener)
    }

    public var address: String { "rdma://\(Endpoint(host: host, port: port))" }

    public func accept() throws(TransportError) -> VerbsConnection {
        var error = [CChar](repeating: 0, count: 512)
        var retry: Int32 = 0
        guard
            let made = xpu_rdma_accept(
                listener, UInt32(geometry.slotCount), UInt32(geometry.slotBytes), UInt32(geometry.bulkSlotCount),
                UInt32(geometry.bulkSlotBytes), &retry, &error, error.count)
        else { throw TransportError(retry != 0 ? .io : .closed, text(error)) }
        return VerbsConnection(made, geometry: geometry)
    }

    public func acceptQueuePair() throws(TransportError) -> (queuePair: any VerbsQueuePair, peerHost: String) {
        let connection = try accept()
        return (connection, connection.peerHost)
    }

    public func shutdown() {
        xpu_rdma_listener_shutdown(listener)
    }
}

/// Accepts RDMA clients and hands each out as an `RDMATransport` (the server's RDMA listener).
public final class RDMAListener: @unchecked Sendable {
    public let acceptor: any VerbsAcceptor
    let inboxLimit: Int
    let bulkThreshold: Int

    public init(
        acceptor: any VerbsAcceptor, inboxLimit: Int = 16 << 20, bulkThreshold: Int = RDMATransport.defaultBulkThreshold
    ) {
        self.acceptor = acceptor
        self.inboxLimit = inboxLimit
        self.bulkThreshold = bulkThreshold
    }

    /// Waits for the next client; errors as `VerbsAcceptor.acceptQueuePair` (`.closed`: stop).
    public func accept() throws(TransportError) -> (transport: RDMATransport, peerHost: String) {
        let (queuePair, peerHost) = try acceptor.acceptQueuePair()
        do {
            return (try RDMATransport(queuePair: queuePair, inboxLimit: inboxLimit, bulkThreshold: bulkThreshold), peerHost)
        } catch {
            queuePair.disconnect()
            throw TransportError(.io, "RDMA connection from \(peerHost): \(error.message)")
        }
    }

    public func shutdown() { acceptor.shutdown() }
    public var address: String { acceptor.address }
}
