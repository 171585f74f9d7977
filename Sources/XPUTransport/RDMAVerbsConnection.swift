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

    init(_ connection: OpaquePointer, slotCount: Int, slotBytes: Int) {
        self.connection = connection
        self.slotCount = slotCount
        self.slotBytes = slotBytes
    }

    deinit {
        xpu_rdma_close(connection)
    }

    /// Connects to an `rdma://host:port` server.
    public static func connect(
        to endpoint: Endpoint, slotCount: Int = RDMATransport.defaultSlotCount, slotBytes: Int = RDMATransport.defaultSlotBytes
    ) throws(TransportError) -> VerbsConnection {
        var error = [CChar](repeating: 0, count: 512)
        guard
            let made = xpu_rdma_connect(
                endpoint.host, endpoint.port, UInt32(slotCount), UInt32(slotBytes), 5000, &error, error.count)
        else { throw TransportError(.connectionFailed, "rdma://\(endpoint): \(text(error))") }
        return VerbsConnection(made, slotCount: slotCount, slotBytes: slotBytes)
    }

    public func sendSlot(_ slot: Int) -> UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: xpu_rdma_send_slot(connection, UInt32(slot)), count: slotBytes)
    }

    public func receiveSlot(_ slot: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: xpu_rdma_receive_slot(connection, UInt32(slot)), count: slotBytes)
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
                kind: completion.kind == 1 ? .receive : .send, slot: Int(completion.slot), length: Int(completion.length),
                failure: completion.status == 0 ? nil : "work completion status \(completion.status)")
        }
    }

    public func disconnect() {
        xpu_rdma_disconnect(connection)
    }
}

/// Accepts RDMA connections (`xpu-remote-server` has no `--listen rdma://` yet; for tests on
/// RDMA hardware and the server to come).
public final class VerbsListener: @unchecked Sendable {
    let listener: OpaquePointer
    public let port: UInt16

    public init(binding endpoint: Endpoint) throws(TransportError) {
        var error = [CChar](repeating: 0, count: 512)
        guard let made = xpu_rdma_listen(endpoint.host, endpoint.port, &error, error.count) else {
            throw TransportError(.io, "rdma://\(endpoint): \(text(error))")
        }
        listener = made
        port = xpu_rdma_listener_port(made)
    }

    deinit {
        xpu_rdma_listener_close(listener)
    }

    public func accept(slotCount: Int = RDMATransport.defaultSlotCount, slotBytes: Int = RDMATransport.defaultSlotBytes)
        throws(TransportError) -> VerbsConnection
    {
        var error = [CChar](repeating: 0, count: 512)
        guard let made = xpu_rdma_accept(listener, UInt32(slotCount), UInt32(slotBytes), &error, error.count) else {
            throw TransportError(.io, text(error))
        }
        return VerbsConnection(made, slotCount: slotCount, slotBytes: slotBytes)
    }
}
