import CXPUShm

/// One completed work request of a queue pair.
public struct VerbsCompletion: Hashable, Sendable {
    public enum Kind: Hashable, Sendable {
        case send
        case receive
    }

    public var kind: Kind
    public var slot: Int
    /// Bytes received (receives only).
    public var length: Int
    /// Why the work request failed (the verbs status in words); nil on success.
    public var failure: String?

    public init(kind: Kind, slot: Int, length: Int = 0, failure: String? = nil) {
        self.kind = kind
        self.slot = slot
        self.length = length
        self.failure = failure
    }
}

/// The verbs operations the RDMA transport needs from one connected, reliable queue pair with
/// registered send and receive slots. Implemented on libibverbs/librdmacm (`VerbsConnection`)
/// and, for tests, in memory (Tests/XPUTransportTests/FakeVerbs.swift).
public protocol VerbsQueuePair: AnyObject, Sendable {
    var slotCount: Int { get }
    var slotBytes: Int { get }
    /// The memory of a send slot; valid until its send completes.
    func sendSlot(_ slot: Int) -> UnsafeMutableRawBufferPointer
    /// The memory of a receive slot; valid from its receive completion until it is posted again.
    func receiveSlot(_ slot: Int) -> UnsafeRawBufferPointer
    func postReceive(slot: Int) throws(TransportError)
    /// Posts a signaled SEND of the first `length` bytes of `slot`.
    func postSend(slot: Int, length: Int) throws(TransportError)
    /// The completions that are ready, waiting up to `timeoutMilliseconds` for the first; empty
    /// on timeout. Throws `.closed` once the peer has disconnected and nothing is left.
    func waitForCompletions(timeoutMilliseconds: Int32) throws(TransportError) -> [VerbsCompletion]
    /// Disconnects; wakes a thread in `waitForCompletions`. Safe from any thread.
    func disconnect()
}

/// A byte stream over RDMA SEND/RECV with credit-based flow control (`XPU_SERVER=rdma://`).
///
/// Each side pre-posts every receive slot. A message is one SEND into one slot: an 8-byte
/// header (`length` u32, `credits` u16, `kind` u8, 0) and up to `slotBytes - 8` payload bytes.
/// A sender holds one *credit* per receive the peer has posted and not yet filled: sending costs a
/// credit, and the receiver returns credits in the header of its next message, or in a
/// credit-only message once half the slots are owed. Data may use every credit but the last, which
/// is kept for credit-only messages, so two sides that both wait for credits always have one
/// left to unblock each other. A SEND therefore never finds no receive posted (no RNR), which
/// `FakeVerbs` checks.
///
/// Received payloads are copied out of their slot at once and the slot reposted, so credits
/// flow back while the application is busy; once `inboxLimit` bytes wait unread, slots are held
/// back and the sender is throttled.
///
/// Not implemented yet: bulk data by RDMA WRITE/READ into registered application buffers (every
/// byte goes through the slots today), and striping over several queue pairs.
///
/// One thread at a time sends or receives (like `TLSTransport`); `shutdown` may come from any thread.
public final class RDMATransport: Transport, @unchecked Sendable {
    public static let headerBytes = 8
    public static let defaultSlotCount = 32
    public static let defaultSlotBytes = 64 << 10

    enum Kind: UInt8 {
        case data = 0
        case credit = 1
    }

    public let queuePair: any VerbsQueuePair
    let inboxLimit: Int

    /// Receives the peer has posted that this side may still fill.
    public private(set) var sendCredits: Int
    /// Slots reposted here whose credit the peer has not been told about.
    public private(set) var creditsOwed = 0
    private var freeSendSlots: [Int]
    private var inbox: [UInt8] = []
    private var inboxStart = 0
    private var withheldSlots: [Int] = []
    private var failure: TransportError?
    private let closedFlag = ClosedFlag()
    /// Counters for tests: credit-only messages sent, and the fewest credits seen before a send.
    public private(set) var creditMessagesSent = 0

    public init(queuePair: any VerbsQueuePair, inboxLimit: Int = 16 << 20) throws(TransportError) {
        precondition(queuePair.slotBytes > Self.headerBytes && queuePair.slotCount >= 2)
        self.queuePair = queuePair
        self.inboxLimit = inboxLimit
        sendCredits = queuePair.slotCount
        freeSendSlots = Array((0..<queuePair.slotCount).reversed())
        for slot in 0..<queuePair.slotCount { try queuePair.postReceive(slot: slot) }
    }

    var payloadPerMessage: Int { queuePair.slotBytes - Self.headerBytes }
    var inboxCount: Int { inbox.count - inboxStart }

    public func send(_ bytes: UnsafeRawBufferPointer) throws(TransportError) {
        var offset = 0
        while offset < bytes.count {
            try progress { self.sendCredits >= 2 && !self.freeSendSlots.isEmpty }
            let count = min(payloadPerMessage, bytes.count - offset)
            try post(kind: .data, payload: UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + count]))
            offset += count
        }
    }

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

    public func receiveSome(into buffer: UnsafeMutableRawBufferPointer) throws(TransportError) -> Int {
        guard buffer.count > 0 else { return 0 }
        try progress { self.inboxCount > 0 }
        let count = min(buffer.count, inboxCount)
        inbox.withUnsafeBytes { source in
            buffer.baseAddress!.copyMemory(from: source.baseAddress! + inboxStart, byteCount: count)
        }
        inboxStart += count
        if inboxStart == inbox.count {
            inbox.removeAll(keepingCapacity: true)
            inboxStart = 0
        } else if inboxStart > (1 << 20) && inboxStart * 2 > inbox.count {
            inbox.removeFirst(inboxStart)
            inboxStart = 0
        }
        // Room again: repost the slots held back, and tell the peer.
        while inboxCount < inboxLimit, let slot = withheldSlots.popLast() {
            try queuePair.postReceive(slot: slot)
            creditsOwed += 1
        }
        try returnCreditsIfDue()
        return count
    }

    public func shutdown() {
        closedFlag.set()
        queuePair.disconnect()
    }

    // MARK: The state machine

    /// Handles completions until `ready` holds; throws when the connection failed or closed.
    private func progress(until ready: () -> Bool) throws(TransportError) {
        while !ready() {
            if let failure { throw failure }
            if closedFlag.isSet { throw TransportError(.closed, "the connection is shut down") }
            let completions: [VerbsCompletion]
            do {
                completions = try queuePair.waitForCompletions(timeoutMilliseconds: 100)
            } catch {
                failure = error
                throw error
            }
            for completion in completions {
                do {
                    try handle(completion)
                } catch {
                    failure = error
                    queuePair.disconnect()
                    throw error
                }
            }
        }
    }

    private func handle(_ completion: VerbsCompletion) throws(TransportError) {
        if let reason = completion.failure {
            throw TransportError(.io, "RDMA \(completion.kind == .send ? "send" : "receive") failed: \(reason)")
        }
        switch completion.kind {
        case .send:
            freeSendSlots.append(completion.slot)
        case .receive:
            let slot = queuePair.receiveSlot(completion.slot)
            guard completion.length >= Self.headerBytes, completion.length <= slot.count else {
                throw TransportError(.io, "RDMA message of \(completion.length) bytes is malformed")
            }
            let length = Int(slot.loadUnaligned(fromByteOffset: 0, as: UInt32.self).littleEndian)
            let credits = Int(slot.loadUnaligned(fromByteOffset: 4, as: UInt16.self).littleEndian)
            let kind = Kind(rawValue: slot[6])
            guard let kind, length == completion.length - Self.headerBytes else {
                throw TransportError(.io, "RDMA message header is malformed (length \(length), kind \(slot[6]))")
            }
            guard sendCredits + credits <= queuePair.slotCount else {
                throw TransportError(.io, "peer returned \(credits) credits, more than it could owe")
            }
            sendCredits += credits
            if kind == .data, length > 0 {
                inbox.append(contentsOf: UnsafeRawBufferPointer(rebasing: slot[Self.headerBytes..<Self.headerBytes + length]))
            }
            if inboxCount <= inboxLimit {
                try queuePair.postReceive(slot: completion.slot)
                creditsOwed += 1
            } else {
                withheldSlots.append(completion.slot)
            }
            try returnCreditsIfDue()
        }
    }

    /// Sends a credit-only message once half the slots are owed (it may use the last credit).
    private func returnCreditsIfDue() throws(TransportError) {
        guard creditsOwed >= max(1, queuePair.slotCount / 2), sendCredits >= 1, !freeSendSlots.isEmpty else { return }
        try post(kind: .credit, payload: UnsafeRawBufferPointer(start: nil, count: 0))
        creditMessagesSent += 1
    }

    /// One SEND: header with the credits owed, then the payload. Costs a credit and a send slot.
    private func post(kind: Kind, payload: UnsafeRawBufferPointer) throws(TransportError) {
        let slot = freeSendSlots.removeLast()
        let memory = queuePair.sendSlot(slot)
        memory.storeBytes(of: UInt32(payload.count).littleEndian, toByteOffset: 0, as: UInt32.self)
        memory.storeBytes(of: UInt16(creditsOwed).littleEndian, toByteOffset: 4, as: UInt16.self)
        memory[6] = kind.rawValue
        memory[7] = 0
        if payload.count > 0 {
            (memory.baseAddress! + Self.headerBytes).copyMemory(from: payload.baseAddress!, byteCount: payload.count)
        }
        let owed = creditsOwed
        do {
            try queuePair.postSend(slot: slot, length: Self.headerBytes + payload.count)
        } catch {
            freeSendSlots.append(slot)
            throw error
        }
        creditsOwed -= owed
        sendCredits -= 1
    }
}

/// A flag set once from any thread.
final class ClosedFlag: @unchecked Sendable {
    private let storage = UnsafeMutablePointer<UInt32>.allocate(capacity: 1)
    init() { storage.initialize(to: 0) }
    deinit { storage.deallocate() }
    func set() { xpu_store_u32(storage, 1) }
    var isSet: Bool { xpu_load_u32(storage) != 0 }
}
