import CXPUShm

#if canImport(Glibc)
    import Glibc
#endif

/// Frames between processes on one node through two shared-memory rings, with a Unix socket for
/// setup, liveness and shutdown (`XPU_SERVER=unix:/path`).
///
/// Setup: the client creates a sealed memfd (it can neither shrink nor grow, so the server cannot
/// be made to fault), maps it, and sends `SetupMessage` with the descriptor attached
/// (`SCM_RIGHTS`); the server checks the seals and size, maps it and answers one byte. Then each
/// direction is a single-producer, single-consumer byte ring:
///
/// ```
/// offset      0  ring 0 control (client -> server): head, tail (own cache lines), wake words
///           256  ring 1 control (server -> client)
///          4096  ring 0 data (capacity bytes)
/// 4096+capacity  ring 1 data
/// ```
///
/// The producer copies in and publishes `tail` (release); the consumer copies out and publishes
/// `head`. Each side keeps its own counter privately and only trusts the peer's after checking
/// that it is within one capacity of its own, so a peer scribbling on the mapping can garble its
/// own data but never make this side read or write outside the rings. A waiting side spins for
/// `spinDuration`, then sleeps on a futex word in the mapping with no timeout: an idle session
/// wakes never. A peer that dies without shutting down is noticed by the process's `HangupWatch`,
/// which sees its socket hang up and shuts the rings, waking the sleeper. Where the process
/// cannot watch (no epoll instance or thread), the sleeper looks at the socket every
/// `unwatchedPeerCheck` instead.
public final class SharedMemoryTransport: Transport, @unchecked Sendable {
    public static let defaultCapacity = 4 << 20
    public static let maximumCapacity = 256 << 20
    static let controlBytes = 4096
    /// How long a receiver or blocked sender spins before sleeping: a reply that comes within
    /// this time costs no system call on either side.
    static let spinDuration = Duration.microseconds(50)
    /// How often a sleeping side looks whether its peer is gone when no `HangupWatch` watches
    /// its socket, in milliseconds.
    static let unwatchedPeerCheck: Int32 = 100

    /// The first message on the socket, client to server, with the memfd attached.
    struct SetupMessage {
        static let magic: [UInt8] = Array("XPUSHM01".utf8)
        static let size = 16
        var capacity: UInt32

        var encoded: [UInt8] {
            Self.magic + withUnsafeBytes(of: capacity.littleEndian, Array.init) + [0, 0, 0, 0]
        }

        init(capacity: UInt32) { self.capacity = capacity }

        init?(decoding bytes: [UInt8]) {
            guard bytes.count == Self.size, Array(bytes[0..<8]) == Self.magic else { return nil }
            capacity = bytes[8..<12].reversed().reduce(0) { $0 << 8 | UInt32($1) }
        }
    }

    public let socket: SocketTransport
    /// The rings' memfd on the server's side, kept so that the session can move to another
    /// process (`--tenant-processes`, `position`); -1 on the client's side, which needs it no more.
    public let memory: Int32
    let mapping: UnsafeMutableRawPointer
    let mappedBytes: Int
    public let capacity: Int
    private let outgoing: Ring
    private let incoming: Ring
    /// This side's own counters: bytes produced into `outgoing`, consumed from `incoming`.
    private var produced: UInt64 = 0
    private var consumed: UInt64 = 0
    /// The watch on the socket that shuts the rings when the peer hangs up; nil when this process
    /// cannot watch. Set once, in `init`.
    private var hangup: HangupWatch.Registration?

    /// One direction: the control block and data area of a ring.
    struct Ring {
        let control: UnsafeMutableRawPointer
        let data: UnsafeMutableRawPointer
        let capacity: Int

        var head: UnsafeMutablePointer<UInt64> { (control + 0).assumingMemoryBound(to: UInt64.self) }
        var tail: UnsafeMutablePointer<UInt64> { (control + 64).assumingMemoryBound(to: UInt64.self) }
        var dataSequence: UnsafeMutablePointer<UInt32> { (control + 128).assumingMemoryBound(to: UInt32.self) }
        var consumerWaiting: UnsafeMutablePointer<UInt32> { (control + 132).assumingMemoryBound(to: UInt32.self) }
        var spaceSequence: UnsafeMutablePointer<UInt32> { (control + 136).assumingMemoryBound(to: UInt32.self) }
        var producerWaiting: UnsafeMutablePointer<UInt32> { (control + 140).assumingMemoryBound(to: UInt32.self) }
        var closed: UnsafeMutablePointer<UInt32> { (control + 144).assumingMemoryBound(to: UInt32.self) }
    }

    /// Maps the rings of `descriptor`; the server's side keeps the descriptor (closed with the
    /// transport), the client's leaves it to the caller.
    private init(socket: SocketTransport, descriptor: Int32, capacity: Int, isClient: Bool) throws(TransportError) {
        let bytes = Self.controlBytes + 2 * capacity
        guard let mapping = xpu_shm_map(descriptor, bytes) else {
            throw TransportError(.io, "cannot map the shared-memory rings: \(errorText())")
        }
        self.socket = socket
        self.memory = isClient ? -1 : descriptor
        self.mapping = mapping
        self.mappedBytes = bytes
        self.capacity = capacity
        let rings = [
            Ring(control: mapping, data: mapping + Self.controlBytes, capacity: capacity),
            Ring(control: mapping + 256, data: mapping + Self.controlBytes + capacity, capacity: capacity),
        ]
        outgoing = isClient ? rings[0] : rings[1]
        incoming = isClient ? rings[1] : rings[0]
        // Weakly: the watch must not keep a session alive, and an action that runs as the
        // transport goes finds nothing to do.
        hangup = HangupWatch.watch(socket.descriptor) { [weak self] in self?.shutdown() }
    }

    deinit {
        // Before the socket can be closed (it goes with this object).
        if let hangup { HangupWatch.forget(hangup) }
        xpu_shm_unmap(mapping, mappedBytes)
        if memory >= 0 { close(memory) }
    }

    /// Connects to the server's Unix socket at `path` and sets up rings of `capacity` bytes each.
    public static func connect(path: String, capacity: Int = defaultCapacity) throws(TransportError) -> SharedMemoryTransport {
        precondition(capacity > 0 && capacity <= maximumCapacity && capacity % 4096 == 0)
        let socket = try UnixSocket.connect(path: path)
        let descriptor = xpu_shm_create(controlBytes + 2 * capacity)
        guard descriptor >= 0 else { throw TransportError(.io, "cannot create shared memory (memfd): \(errorText())") }
        defer { close(descriptor) }
        let transport = try SharedMemoryTransport(socket: socket, descriptor: descriptor, capacity: capacity, isClient: true)
        let setup = SetupMessage(capacity: UInt32(capacity)).encoded
        let sent = setup.withUnsafeBytes { xpu_send_with_fd(socket.descriptor, $0.baseAddress, $0.count, descriptor) }
        guard sent == 0 else { throw TransportError(.connectionFailed, "unix:\(path): cannot pass the shared memory: \(errorText())") }
        var answer: UInt8 = 0
        do {
            try withUnsafeMutableBytes(of: &answer) { buffer throws(TransportError) in try socket.receive(into: buffer) }
        } catch {
            throw TransportError(.connectionFailed, "unix:\(path): the server refused the shared-memory rings (\(error.message))")
        }
        guard answer == UInt8(ascii: "K") else {
            throw TransportError(.connectionFailed, "unix:\(path): unexpected answer to the shared-memory setup")
        }
        return transport
    }

    /// The server's side of the setup on an accepted Unix connection.
    public static func accept(_ socket: SocketTransport) throws(TransportError) -> SharedMemoryTransport {
        var bytes = [UInt8](repeating: 0, count: SetupMessage.size)
        var descriptor: Int32 = -1
        let received = bytes.withUnsafeMutableBytes { xpu_receive_with_fd(socket.descriptor, $0.baseAddress, $0.count, &descriptor) }
        // The transport owns the descriptor once it exists; until then it is closed on the way out.
        var owned = false
        defer { if descriptor >= 0 && !owned { close(descriptor) } }
        guard received == 0 else { throw TransportError(.closed, "client left before the shared-memory setup") }
        guard let setup = SetupMessage(decoding: bytes) else {
            throw TransportError(.connectionFailed, "the client did not set up shared memory (a unix: client must use the shared-memory transport)")
        }
        let capacity = Int(setup.capacity)
        guard capacity > 0, capacity <= maximumCapacity, capacity % 4096 == 0 else {
            throw TransportError(.connectionFailed, "shared-memory ring capacity \(capacity) is not a multiple of 4 KiB up to 256 MiB")
        }
        guard descriptor >= 0, xpu_shm_check(descriptor, controlBytes + 2 * capacity) == 0 else {
            throw TransportError(.connectionFailed, "the client's shared memory is not a sealed memfd of the announced size")
        }
        let transport = try SharedMemoryTransport(socket: socket, descriptor: descriptor, capacity: capacity, isClient: false)
        owned = true
        var ok = UInt8(ascii: "K")
        try withUnsafeBytes(of: &ok) { buffer throws(TransportError) in try socket.send(buffer) }
        return transport
    }

    // MARK: Moving the server's side to another process

    /// How far this side has come in each ring. With the socket and the memfd (`memory`), it is
    /// all another process needs to continue the session: every other piece of state lives in
    /// the mapping, which both processes then share.
    public struct Position: Sendable, Hashable {
        public var capacity: Int
        /// Bytes this side has put into its outgoing ring and taken from its incoming ring.
        public var produced: UInt64
        public var consumed: UInt64

        public init(capacity: Int, produced: UInt64, consumed: UInt64) {
            self.capacity = capacity
            self.produced = produced
            self.consumed = consumed
        }
    }

    /// Where this side stands; the process handing the session over must not use the
    /// transport afterwards, except to `shutdown` it (which the other process then sees).
    public var position: Position { Position(capacity: capacity, produced: produced, consumed: consumed) }

    /// The server's side of a session that another process set up and handed over at
    /// `position` (a tenant process of `--tenant-processes`); takes ownership of `memory`, which
    /// is checked as at setup: a sealed memfd of exactly the rings' size.
    public static func resume(socket: SocketTransport, memory: Int32, position: Position) throws(TransportError) -> SharedMemoryTransport {
        // As in `accept`: the transport owns the descriptor once it exists.
        var owned = false
        defer { if !owned { close(memory) } }
        let capacity = position.capacity
        guard capacity > 0, capacity <= maximumCapacity, capacity % 4096 == 0,
            xpu_shm_check(memory, controlBytes + 2 * capacity) == 0
        else {
            throw TransportError(.connectionFailed, "the handed-over shared memory is not a sealed memfd of \(capacity)-byte rings")
        }
        let transport = try SharedMemoryTransport(socket: socket, descriptor: memory, capacity: capacity, isClient: false)
        owned = true
        transport.produced = position.produced
        transport.consumed = position.consumed
        return transport
    }

    // MARK: Transport

    public func send(_ bytes: UnsafeRawBufferPointer) throws(TransportError) {
        var offset = 0
        while offset < bytes.count {
            let free = try freeSpace()
            let count = min(free, bytes.count - offset)
            let start = Int(produced % UInt64(capacity))
            let first = min(count, capacity - start)
            (outgoing.data + start).copyMemory(from: bytes.baseAddress! + offset, byteCount: first)
            if count > first { outgoing.data.copyMemory(from: bytes.baseAddress! + offset + first, byteCount: count - first) }
            produced &+= UInt64(count)
            xpu_store_release_u64(outgoing.tail, produced)
            offset += count
            Self.notify(waiting: outgoing.consumerWaiting, sequence: outgoing.dataSequence)
        }
    }

    public func receiveSome(into buffer: UnsafeMutableRawBufferPointer) throws(TransportError) -> Int {
        guard buffer.count > 0 else { return 0 }
        let available = try availableBytes()
        let count = min(available, buffer.count)
        let start = Int(consumed % UInt64(capacity))
        let first = min(count, capacity - start)
        buffer.baseAddress!.copyMemory(from: incoming.data + start, byteCount: first)
        if count > first { (buffer.baseAddress! + first).copyMemory(from: incoming.data, byteCount: count - first) }
        consumed &+= UInt64(count)
        xpu_store_release_u64(incoming.head, consumed)
        Self.notify(waiting: incoming.producerWaiting, sequence: incoming.spaceSequence)
        return count
    }

    /// Closes both rings and the socket; the peer's waits end. Safe from any thread.
    public func shutdown() {
        for ring in [outgoing, incoming] {
            xpu_store_u32(ring.closed, 1)
            _ = xpu_fetch_add_u32(ring.dataSequence, 1)
            _ = xpu_fetch_add_u32(ring.spaceSequence, 1)
            xpu_futex_wake(ring.dataSequence)
            xpu_futex_wake(ring.spaceSequence)
        }
        socket.shutdown()
    }

    /// Stops the hang-up watch on this side's socket: a sleeping side then looks at the socket
    /// every `unwatchedPeerCheck`, as in a process that cannot watch. For tests of that path;
    /// call it before the transport is read from or written to.
    func stopWatchingPeer() {
        if let hangup { HangupWatch.forget(hangup) }
        hangup = nil
    }

    // MARK: Waiting

    /// Bytes the peer has published and this side has not consumed; waits for at least one.
    private func availableBytes() throws(TransportError) -> Int {
        let ring = incoming
        var spinUntil: ContinuousClock.Instant?
        var spins = 0
        while true {
            let tail = xpu_load_acquire_u64(ring.tail)
            let available = tail &- consumed
            guard available <= UInt64(capacity) else { throw corrupted() }
            if available > 0 { return Int(available) }
            if xpu_load_u32(ring.closed) != 0 { throw TransportError(.closed, "peer closed the connection") }
            // Spin a little: a reply that is on its way costs no system call.
            spins += 1
            if spins & 31 != 0 {
                xpu_cpu_relax()
                continue
            }
            // Let the peer run when it shares this CPU (it is what this side waits for).
            sched_yield()
            let now = ContinuousClock.now
            if spinUntil == nil { spinUntil = now + Self.spinDuration }
            if now < spinUntil! { continue }
            try sleep(waiting: ring.consumerWaiting, sequence: ring.dataSequence) {
                xpu_load_acquire_u64(ring.tail) != self.consumed || xpu_load_u32(ring.closed) != 0
            }
        }
    }

    /// Room in the outgoing ring; waits for at least one byte.
    private func freeSpace() throws(TransportError) -> Int {
        let ring = outgoing
        var spinUntil: ContinuousClock.Instant?
        var spins = 0
        while true {
            if xpu_load_u32(ring.closed) != 0 { throw TransportError(.closed, "the connection is closed") }
            let head = xpu_load_acquire_u64(ring.head)
            let used = produced &- head
            guard used <= UInt64(capacity) else { throw corrupted() }
            if used < UInt64(capacity) { return capacity - Int(used) }
            spins += 1
            if spins & 31 != 0 {
                xpu_cpu_relax()
                continue
            }
            // Let the peer run when it shares this CPU (it is what this side waits for).
            sched_yield()
            let now = ContinuousClock.now
            if spinUntil == nil { spinUntil = now + Self.spinDuration }
            if now < spinUntil! { continue }
            try sleep(waiting: ring.producerWaiting, sequence: ring.spaceSequence) {
                self.produced &- xpu_load_acquire_u64(ring.head) < UInt64(self.capacity) || xpu_load_u32(ring.closed) != 0
            }
        }
    }

    /// Announces that this side sleeps, re-checks `ready` (so a wake-up between the check and
    /// the sleep is not lost), and sleeps on the sequence word until the peer (or the hang-up
    /// watch, or `shutdown`) moves it. Unwatched, it wakes every `unwatchedPeerCheck` to see
    /// whether the peer is gone.
    private func sleep(waiting: UnsafeMutablePointer<UInt32>, sequence: UnsafeMutablePointer<UInt32>, ready: () -> Bool)
        throws(TransportError)
    {
        let observed = xpu_load_u32(sequence)
        xpu_store_u32(waiting, 1)
        xpu_fence()
        defer { xpu_store_u32(waiting, 0) }
        if ready() { return }
        let timeout = hangup == nil ? Self.unwatchedPeerCheck : -1
        if xpu_futex_wait(sequence, observed, timeout) == 1, xpu_socket_peer_gone(socket.descriptor) == 1 {
            throw TransportError(.closed, "peer closed the connection")
        }
    }

    private static func notify(waiting: UnsafeMutablePointer<UInt32>, sequence: UnsafeMutablePointer<UInt32>) {
        xpu_fence()
        guard xpu_load_u32(waiting) != 0 else { return }
        _ = xpu_fetch_add_u32(sequence, 1)
        xpu_futex_wake(sequence)
    }

    private func corrupted() -> TransportError {
        TransportError(.io, "the peer corrupted the shared-memory ring counters")
    }
}
