/// A reliable, ordered byte stream between a client and a server.
///
/// Frames are built on top by `FrameChannel`; a transport only moves bytes. Implementations: TCP
/// (`SocketTransport.connect`), and a connected socket pair for tests (`SocketTransport.pair`).
/// Later transports (TLS, shared memory, RDMA) conform to the same protocol.
public protocol Transport: AnyObject, Sendable {
    /// Writes all of `bytes`, or throws.
    func send(_ bytes: UnsafeRawBufferPointer) throws(TransportError)
    /// Writes several buffers as one stream, in order (a frame's header and its bulk data straight
    /// from the caller's memory, without first copying them together).
    func send(parts: [UnsafeRawBufferPointer]) throws(TransportError)
    /// Fills all of `buffer`, or throws (`.closed` when the peer ends the stream first,
    /// `.closedMidMessage` when it ends it part-way). Every transport gets this from
    /// `receiveSome` (the extension below).
    func receive(into buffer: UnsafeMutableRawBufferPointer) throws(TransportError)
    /// Reads whatever is available, at least one byte and at most `buffer.count`; returns the
    /// count (`.closed` at the end of the stream). Lets a reader take many small frames in one read.
    func receiveSome(into buffer: UnsafeMutableRawBufferPointer) throws(TransportError) -> Int
    /// `receiveSome` for the first bytes of a message (a frame's header, with nothing of it
    /// buffered yet): where the transport busy-polls, this is the read that spins before it
    /// blocks. The rest of a message, bulk data included, is read without spinning: its bytes
    /// are already on their way, and a spinning reader would take a core the sender may need.
    func receiveMessageStart(into buffer: UnsafeMutableRawBufferPointer) throws(TransportError) -> Int
    /// Ends the stream in both directions; pending and later calls fail. Idempotent.
    func shutdown()
    /// Wakes a reader blocked on this transport, from any thread, and makes later reads end the
    /// stream, while sends still work: so the reading thread can still say goodbye (the server
    /// ending a session it was told to preempt). Transports that cannot end one direction alone
    /// end both (the default).
    func interruptReceiving()
    /// The rate at which the peer has recently been receiving what this side sends, as the
    /// kernel measures it from acknowledgements (TCP); nil where the transport cannot tell.
    func deliveryRate() -> DeliveryRate?
    /// Makes a `receiveMessageStart` that finds no data spin for a while before it blocks
    /// (`BusyPoll`). Call it
    /// before the transport is read from. Transports that wait their own way ignore it (shared
    /// memory spins already; RDMA polls its completion queue).
    func setBusyPoll(_ settings: BusyPoll.Settings)
    /// The busy-poll state of the reading side (its counters), where the transport has one.
    var busyPoll: BusyPoll? { get }
}

extension Transport {
    public func interruptReceiving() { shutdown() }
    public func deliveryRate() -> DeliveryRate? { nil }
    public func setBusyPoll(_ settings: BusyPoll.Settings) {}
    public var busyPoll: BusyPoll? { nil }
    public func receiveMessageStart(into buffer: UnsafeMutableRawBufferPointer) throws(TransportError) -> Int {
        try receiveSome(into: buffer)
    }
}

/// The link's rate as the sender's kernel measures it: bytes acknowledged by the peer per second
/// over the last round trips (Linux `tcpi_delivery_rate`). Timing `send` cannot tell this once
/// the data fits in the socket buffers, which take megabytes at memory speed whatever the link.
public struct DeliveryRate: Sendable, Hashable {
    public var bytesPerSecond: Double
    /// The sender did not keep the link busy during the measurement (small calls between bulk
    /// data): the link can carry at least this much, maybe more.
    public var applicationLimited: Bool

    public init(bytesPerSecond: Double, applicationLimited: Bool) {
        self.bytesPerSecond = bytesPerSecond
        self.applicationLimited = applicationLimited
    }
}

/// A failure of the byte stream itself.
public struct TransportError: Error, Hashable, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        public static let closed = Code(name: "closed by peer")
        /// The peer closed the stream part-way through a message.
        public static let closedMidMessage = Code(name: "closed by peer mid-message")
        public static let connectionFailed = Code(name: "connection failed")
        public static let io = Code(name: "I/O error")
        public static let badAddress = Code(name: "bad address")
        public var description: String { name }
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }
}

extension Transport {
    public func send(parts: [UnsafeRawBufferPointer]) throws(TransportError) {
        for part in parts where part.count > 0 { try send(part) }
    }

    /// The one loop that fills a buffer from `receiveSome`. An end of stream after the first
    /// byte is a message cut short.
    public func receive(into buffer: UnsafeMutableRawBufferPointer) throws(TransportError) {
        var offset = 0
        while offset < buffer.count {
            do {
                offset += try receiveSome(into: UnsafeMutableRawBufferPointer(rebasing: buffer[offset...]))
            } catch {
                guard error.code == .closed, offset > 0 else { throw error }
                throw TransportError(.closedMidMessage, "peer closed the connection after \(offset) of \(buffer.count) bytes")
            }
        }
    }
}
