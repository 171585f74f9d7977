import CXPUShm

/// One completed work request of a queue pair.
public struct VerbsCompletion: Hashable, Sendable {
    public enum Kind: Hashable, Sendable {
        case send
        case receive
        /// An RDMA WRITE from a staging slot (`slot` is the staging slot).
        case write
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

/// Where a peer's registered memory is, for RDMA WRITE: its virtual address and remote key.
public struct VerbsRemoteRegion: Hashable, Sendable {
    public var address: UInt64
    public var rkey: UInt32

    public init(address: UInt64, rkey: UInt32) {
        self.address = address
        self.rkey = rkey
    }
}

/// The verbs operations the RDMA transport needs from one connected, reliable queue pair with
/// registered send and receive slots, and optionally bulk regions: `bulkSlotCount` staging slots
/// (the local source of RDMA WRITEs) and as many landing slots the peer may WRITE into, whose
/// address and rkey the peer learned while connecting (`peerLanding` is the peer's). Both sides
/// of a connection have the same geometry. Implemented on libibverbs/librdmacm
/// (`VerbsConnection`) and, for tests, in memory (Tests/XPUTransportTests/FakeVerbs.swift).
///
/// Every receive slot is posted when the queue pair is handed over (before the connection is
/// established, so the peer's first SEND finds one); the transport reposts each after use.
public protocol VerbsQueuePair: AnyObject, Sendable {
    var slotCount: Int { get }
    var slotBytes: Int { get }
    /// 0 when the connection has no bulk regions.
    var bulkSlotCount: Int { get }
    var bulkSlotBytes: Int { get }
    /// The peer's landing region (`bulkSlotCount` slots of `bulkSlotBytes`); nil without bulk.
    var peerLanding: VerbsRemoteRegion? { get }
    /// The memory of a send slot; valid until its send completes.
    func sendSlot(_ slot: Int) -> UnsafeMutableRawBufferPointer
    /// The memory of a receive slot; valid from its receive completion until it is posted again.
    func receiveSlot(_ slot: Int) -> UnsafeRawBufferPointer
    /// A staging slot; must not change between `postWrite` and the write's completion.
    func stagingSlot(_ slot: Int) -> UnsafeMutableRawBufferPointer
    /// A landing slot, where the peer's WRITEs arrive.
    func landingSlot(_ slot: Int) -> UnsafeRawBufferPointer
    func postReceive(slot: Int) throws(TransportError)
    /// Posts a signaled SEND of the first `length` bytes of `slot`.
    func postSend(slot: Int, length: Int) throws(TransportError)
    /// Posts a signaled RDMA WRITE of the first `length` bytes of staging slot `stagingSlot` to
    /// `remoteAddress` (in the region of `rkey`). A SEND posted after it is delivered after the
    /// written bytes are in place (reliable-connected ordering).
    func postWrite(stagingSlot: Int, length: Int, remoteAddress: UInt64, rkey: UInt32) throws(TransportError)
    /// The completions that are ready, waiting up to `timeoutMilliseconds` for the first; empty
    /// on timeout. Throws `.closed` once the peer has disconnected and nothing is left.
    func waitForCompletions(timeoutMilliseconds: Int32) throws(TransportError) -> [VerbsCompletion]
    /// Disconnects; wakes a thread in `waitForCompletions`. Safe from any thread.
    func disconnect()
}

extension VerbsQueuePair {
    public var bulkSlotCount: Int { 0 }
    public var bulkSlotBytes: Int { 0 }
    public var peerLanding: VerbsRemoteRegion? { nil }
    public func stagingSlot(_ slot: Int) -> UnsafeMutableRawBufferPointer { UnsafeMutableRawBufferPointer(start: nil, count: 0) }
    public func landingSlot(_ slot: Int) -> UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: nil, count: 0) }
    public func postWrite(stagingSlot: Int, length: Int, remoteAddress: UInt64, rkey: UInt32) throws(TransportError) {
        throw TransportError(.io, "this queue pair has no bulk regions")
    }
}

/// A byte stream over RDMA with credit-based flow control (`XPU_SERVER=rdma://`): small data by
/// SEND/RECV on pre-posted slots, bulk data by RDMA WRITE into the peer's registered landing slots.
///
/// Every receive slot is posted when the queue pair is handed over. A message is one SEND into
/// one slot: an 8-byte header (`length` u32, `credits` u16, `kind` u8, `bulk released` u8) and up
/// to `slotBytes - 8` payload bytes. A sender holds one *credit* per receive the peer has posted
/// and not yet filled: sending costs a credit, and the receiver returns credits in the header of
/// its next message, or in a credit-only message once half the slots are owed. Data may use
/// every credit but the last, which is kept for credit-only messages, so two sides that both wait
/// for credits always have one left to unblock each other. A SEND therefore never finds no
/// receive posted (no RNR), which `FakeVerbs` checks.
///
/// Bulk: when the queue pair has bulk regions, a `send` with more than `bulkThreshold` bytes left
/// copies up to `bulkSlotBytes` of them into a free staging slot, WRITEs them into the peer's next
/// landing slot (round robin) and then SENDs a `bulk` message (payload: the byte count), which the
/// reliable connection delivers after the written bytes. The landing slots are a second kind of
/// credit: the sender starts with `bulkSlotCount`, spends one per WRITE, and the receiver returns
/// them in the `bulk released` byte of its headers once it has copied a slot out (a credit-only
/// message carries them when nothing else goes back, without touching the reserved credit).
///
/// Received payloads (SENT or written) are copied out at once and the slot reposted or released,
/// so credits flow back while the application is busy; once `inboxLimit` bytes wait unread,
/// receive and landing slots are held back and the sender is throttled.
///
/// Not implemented: RDMA READ, zero-copy from or into application buffers (bulk bytes are copied
/// through the registered staging and landing slots), and striping over several queue pairs.
///
/// One thread at a time sends or receives (like `TLSTransport`); `shutdown` may come from any thread.
public final class RDMATransport: Transport, @unchecked Sendable {
    public static let headerBytes = 8
    public static let defaultSlotCount = 32
    public static let defaultSlotBytes = 64 << 10
    public static let defaultBulkSlotCount = 4
    public static let defaultBulkSlotBytes = 1 << 20
    public static let defaultBulkThreshold = 64 << 10

    enum Kind: UInt8 {
        case data = 0
        case credit = 1
        /// The next landing slot holds `UInt32` payload bytes, written before this message.
        case bulk = 2
    }

    public let queuePair: any VerbsQueuePair
    let inboxLimit: Int
    /// Sends with more bytes left than this go by RDMA WRITE (when the queue pair has bulk regions).
    public let bulkThreshold: Int

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

    // Bulk, sending side.
    private let peerLanding: VerbsRemoteRegion?
    /// Landing slots of the peer this side may write.
    public private(set) var bulkCredits: Int
    private var nextLanding = 0
    private var freeStagingSlots: [Int]
    // Bulk, receiving side.
    private var nextLandingToRead = 0
    /// Landing slots copied out whose release the peer has not been told about.
    private var bulkReleasesOwed = 0
    /// Landing slots copied out but held back while the inbox is over its limit.
    private var withheldLandings = 0
    /// Landing slots the peer has filled and not yet been told are free again.
    private var landingsInUse = 0

    /// Counters for tests: credit-only messages sent, and bulk (RDMA WRITE) messages sent.
    public private(set) var creditMessagesSent = 0
    public private(set) var bulkMessagesSent = 0

    public init(queuePair: any VerbsQueuePair, inboxLimit: Int = 16 << 20, bulkThreshold: Int = RDMATransport.defaultBulkThreshold)
        throws(TransportError)
    {
        precondition(queuePair.slotBytes > Self.headerBytes && queuePair.slotCount >= 2 && queuePair.slotCount <= Int(UInt16.max))
        precondition(queuePair.bulkSlotCount <= Int(UInt8.max))
        self.queuePair = queuePair
        self.inboxLimit = inboxLimit
        self.bulkThreshold = bulkThreshold
        sendCredits = queuePair.slotCount
        freeSendSlots = Array((0..<queuePair.slotCount).reversed())
        let bulk = queuePair.bulkSlotCount > 0 && queuePair.bulkSlotBytes > 0
        peerLanding = bulk ? queuePair.peerLanding : nil
        bulkCredits = peerLanding == nil ? 0 : queuePair.bulkSlotCount
        freeStagingSlots = peerLanding == nil ? [] : Array((0..<queuePair.bulkSlotCount).reversed())
    }

    var payloadPerMessage: Int { queuePair.slotBytes - Self.headerBytes }
    var inboxCount: Int { inbox.count - inboxStart }

    public func send(_ bytes: UnsafeRawBufferPointer) throws(TransportError) {
        var offset = 0
        while offset < bytes.count {
            let remaining = bytes.count - offset
            if let peerLanding, remaining > bulkThreshold {
                try progress {
                    self.sendCredits >= 2 && !self.freeSendSlots.isEmpty && self.bulkCredits >= 1 && !self.freeStagingSlots.isEmpty
                }
                let count = min(remaining, queuePair.bulkSlotBytes)
                try write(UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + count]), to: peerLanding)
                offset += count
                continue
            }
            try progress { self.sendCredits >= 2 && !self.freeSendSlots.isEmpty }
            let count = min(payloadPerMessage, remaining)
            try post(kind: .data, payload: UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + count]))
            offset += count
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
        // Room again: repost the slots held back, release the landing slots, and tell the peer.
        if inboxCount < inboxLimit {
            while let slot = withheldSlots.popLast() {
                try queuePair.postReceive(slot: slot)
                creditsOwed += 1
            }
            bulkReleasesOwed += withheldLandings
            withheldLandings = 0
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
            let operation = switch completion.kind {
            case .send: "send"
            case .receive: "receive"
            case .write: "WRITE"
            }
            throw TransportError(.io, "RDMA \(operation) failed: \(reason)")
        }
        switch completion.kind {
        case .send:
            freeSendSlots.append(completion.slot)
        case .write:
            freeStagingSlots.append(completion.slot)
        case .receive:
            let slot = queuePair.receiveSlot(completion.slot)
            guard completion.length >= Self.headerBytes, completion.length <= slot.count else {
                throw TransportError(.io, "RDMA message of \(completion.length) bytes is malformed")
            }
            let length = Int(slot.loadUnaligned(fromByteOffset: 0, as: UInt32.self).littleEndian)
            let credits = Int(slot.loadUnaligned(fromByteOffset: 4, as: UInt16.self).littleEndian)
            let kind = Kind(rawValue: slot[6])
            let released = Int(slot[7])
            guard let kind, length == completion.length - Self.headerBytes else {
                throw TransportError(.io, "RDMA message header is malformed (length \(length), kind \(slot[6]))")
            }
            guard sendCredits + credits <= queuePair.slotCount else {
                throw TransportError(.io, "peer returned \(credits) credits, more than it could owe")
            }
            guard released == 0 || (peerLanding != nil && bulkCredits + released <= queuePair.bulkSlotCount) else {
                throw TransportError(.io, "peer released \(released) landing slots, more than were written")
            }
            sendCredits += credits
            bulkCredits += released
            switch kind {
            case .data where length > 0:
                inbox.append(contentsOf: UnsafeRawBufferPointer(rebasing: slot[Self.headerBytes..<Self.headerBytes + length]))
            case .bulk:
                try receiveBulk(announcement: UnsafeRawBufferPointer(rebasing: slot[Self.headerBytes..<Self.headerBytes + length]))
            default:
                break
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

    /// A `bulk` message: the bytes are in the next landing slot; copy them out and free the slot.
    private func receiveBulk(announcement: UnsafeRawBufferPointer) throws(TransportError) {
        guard queuePair.bulkSlotCount > 0, announcement.count == 4 else {
            let bulk = queuePair.bulkSlotCount > 0 ? "on" : "off"
            throw TransportError(.io, "RDMA bulk message is malformed (\(announcement.count) bytes, bulk \(bulk))")
        }
        let count = Int(announcement.loadUnaligned(as: UInt32.self).littleEndian)
        guard count > 0, count <= queuePair.bulkSlotBytes else {
            throw TransportError(.io, "RDMA bulk message announces \(count) bytes; a landing slot holds \(queuePair.bulkSlotBytes)")
        }
        guard landingsInUse < queuePair.bulkSlotCount else {
            throw TransportError(.io, "peer wrote more landing slots than it was given")
        }
        let landing = queuePair.landingSlot(nextLandingToRead)
        nextLandingToRead = (nextLandingToRead + 1) % queuePair.bulkSlotCount
        inbox.append(contentsOf: UnsafeRawBufferPointer(rebasing: landing[0..<count]))
        landingsInUse += 1
        if inboxCount <= inboxLimit {
            bulkReleasesOwed += 1
        } else {
            withheldLandings += 1
        }
    }

    /// Copies `payload` into a staging slot, WRITEs it to the peer's next landing slot, then
    /// SENDs the `bulk` message. Costs a landing slot, a staging slot, a send slot and a credit.
    private func write(_ payload: UnsafeRawBufferPointer, to region: VerbsRemoteRegion) throws(TransportError) {
        let staging = freeStagingSlots.removeLast()
        let memory = queuePair.stagingSlot(staging)
        memory.baseAddress!.copyMemory(from: payload.baseAddress!, byteCount: payload.count)
        let landing = nextLanding
        do {
            try queuePair.postWrite(
                stagingSlot: staging, length: payload.count,
                remoteAddress: region.address + UInt64(landing * queuePair.bulkSlotBytes), rkey: region.rkey)
        } catch {
            freeStagingSlots.append(staging)
            throw error
        }
        nextLanding = (landing + 1) % queuePair.bulkSlotCount
        bulkCredits -= 1
        var announcement = UInt32(payload.count).littleEndian
        do {
            try withUnsafeBytes(of: &announcement) { (raw) throws(TransportError) in try post(kind: .bulk, payload: raw) }
        } catch {
            // The landing slot is written but never announced: the stream is broken.
            failure = error
            queuePair.disconnect()
            throw error
        }
        bulkMessagesSent += 1
    }

    /// Sends a credit-only message once half the slots are owed (it may use the last credit), or
    /// when landing slots are owed and a credit besides the reserved one is left.
    private func returnCreditsIfDue() throws(TransportError) {
        guard !freeSendSlots.isEmpty else { return }
        let creditsDue = creditsOwed >= max(1, queuePair.slotCount / 2) && sendCredits >= 1
        let landingsDue = bulkReleasesOwed > 0 && sendCredits >= 2
        guard creditsDue || landingsDue else { return }
        try post(kind: .credit, payload: UnsafeRawBufferPointer(start: nil, count: 0))
        creditMessagesSent += 1
    }

    /// One SEND: header with the credits and landing slots owed, then the payload. Costs a credit
    /// and a send slot.
    private func post(kind: Kind, payload: UnsafeRawBufferPointer) throws(TransportError) {
        let slot = freeSendSlots.removeLast()
        let memory = queuePair.sendSlot(slot)
        let released = min(bulkReleasesOwed, Int(UInt8.max))
        memory.storeBytes(of: UInt32(payload.count).littleEndian, toByteOffset: 0, as: UInt32.self)
        memory.storeBytes(of: UInt16(creditsOwed).littleEndian, toByteOffset: 4, as: UInt16.self)
        memory[6] = kind.rawValue
        memory[7] = UInt8(released)
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
        bulkReleasesOwed -= released
        landingsInUse -= released
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
