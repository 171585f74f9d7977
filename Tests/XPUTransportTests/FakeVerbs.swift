import Foundation
import XPUTransport

/// Two connected in-memory queue pairs that behave like a reliable-connected RDMA QP: every
/// receive slot is posted at the start (as `VerbsConnection` does before the connection is
/// established); a SEND lands in the oldest posted receive of the peer, with a receive completion
/// there and a send completion here; a SEND that finds no receive posted fails as
/// receiver-not-ready (RNR) and breaks the connection, as on hardware with `rnr_retry` exhausted.
/// An RDMA WRITE copies from a staging slot into the registered landing region named by its rkey
/// at once (so a later SEND finds the bytes in place, as RC ordering guarantees), with a write
/// completion here; a bad rkey or a range outside the region fails as a remote access error and
/// breaks the connection. Misuse a real QP would not survive (posting a slot twice, reusing a
/// send or staging slot before its completion, a WRITE outside the region) is recorded in
/// `violations`.
final class FakeVerbsLink: @unchecked Sendable {
    let condition = NSCondition()
    var disconnected = false
    var violations: [String] = []
    var rnrFailures = 0
    private(set) var a: FakeQueuePair!
    private(set) var b: FakeQueuePair!

    init(slotCount: Int, slotBytes: Int, bulkSlotCount: Int = 0, bulkSlotBytes: Int = 0) {
        a = FakeQueuePair(link: self, slotCount: slotCount, slotBytes: slotBytes, bulkSlotCount: bulkSlotCount, bulkSlotBytes: bulkSlotBytes, rkey: 0x1000)
        b = FakeQueuePair(link: self, slotCount: slotCount, slotBytes: slotBytes, bulkSlotCount: bulkSlotCount, bulkSlotBytes: bulkSlotBytes, rkey: 0x2000)
        a.peer = b
        b.peer = a
    }

    /// Total bytes moved by RDMA WRITE, both ways.
    var bytesWritten: Int { locked { a.bytesWritten + b.bytesWritten } }

    func locked<R>(_ body: () throws -> R) rethrows -> R {
        condition.lock()
        defer { condition.unlock() }
        return try body()
    }
}

final class FakeQueuePair: VerbsQueuePair, @unchecked Sendable {
    unowned let link: FakeVerbsLink
    weak var peer: FakeQueuePair?
    let slotCount: Int
    let slotBytes: Int
    let bulkSlotCount: Int
    let bulkSlotBytes: Int
    let sendMemory: UnsafeMutableRawBufferPointer
    let receiveMemory: UnsafeMutableRawBufferPointer
    let stagingMemory: UnsafeMutableRawBufferPointer
    let landingMemory: UnsafeMutableRawBufferPointer
    /// The remote key of `landingMemory`.
    let rkey: UInt32
    var postedReceives: [Int]
    var sendsInFlight: Set<Int> = []
    var writesInFlight: Set<Int> = []
    var completions: [VerbsCompletion] = []
    var sendsPosted = 0
    var writesPosted = 0
    var bytesWritten = 0

    init(link: FakeVerbsLink, slotCount: Int, slotBytes: Int, bulkSlotCount: Int, bulkSlotBytes: Int, rkey: UInt32) {
        self.link = link
        self.slotCount = slotCount
        self.slotBytes = slotBytes
        self.bulkSlotCount = bulkSlotCount
        self.bulkSlotBytes = bulkSlotBytes
        self.rkey = rkey
        sendMemory = .allocate(byteCount: slotCount * slotBytes, alignment: 64)
        receiveMemory = .allocate(byteCount: slotCount * slotBytes, alignment: 64)
        stagingMemory = .allocate(byteCount: max(1, bulkSlotCount * bulkSlotBytes), alignment: 64)
        landingMemory = .allocate(byteCount: max(1, bulkSlotCount * bulkSlotBytes), alignment: 64)
        postedReceives = Array(0..<slotCount)
    }

    deinit {
        sendMemory.deallocate()
        receiveMemory.deallocate()
        stagingMemory.deallocate()
        landingMemory.deallocate()
    }

    var peerLanding: VerbsRemoteRegion? {
        guard bulkSlotCount > 0, let peer else { return nil }
        return VerbsRemoteRegion(address: UInt64(UInt(bitPattern: peer.landingMemory.baseAddress!)), rkey: peer.rkey)
    }

    func stagingSlot(_ slot: Int) -> UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(rebasing: stagingMemory[slot * bulkSlotBytes..<(slot + 1) * bulkSlotBytes])
    }

    func landingSlot(_ slot: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: landingMemory[slot * bulkSlotBytes..<(slot + 1) * bulkSlotBytes])
    }

    func postWrite(stagingSlot: Int, length: Int, remoteAddress: UInt64, rkey: UInt32) throws(TransportError) {
        let failure: TransportError? = link.locked {
            if link.disconnected { return TransportError(.closed, "fake QP disconnected") }
            if writesInFlight.contains(stagingSlot) { link.violations.append("staging slot \(stagingSlot) reused before its completion") }
            writesPosted += 1
            // The region the rkey names must be the peer's landing region, and the range inside it.
            let base = peer.map { UInt64(UInt(bitPattern: $0.landingMemory.baseAddress!)) } ?? 0
            let size = UInt64(peer.map { $0.bulkSlotCount * $0.bulkSlotBytes } ?? 0)
            guard let peer, rkey == peer.rkey, length <= bulkSlotBytes, remoteAddress >= base,
                remoteAddress + UInt64(length) <= base + size
            else {
                link.violations.append("WRITE of \(length) bytes to \(remoteAddress) with rkey \(rkey) is outside the peer's landing region")
                completions.append(VerbsCompletion(kind: .write, slot: stagingSlot, failure: "remote access error"))
                link.disconnected = true
                link.condition.broadcast()
                return nil
            }
            let destination = peer.landingMemory.baseAddress! + Int(remoteAddress - base)
            destination.copyMemory(from: stagingMemory.baseAddress! + stagingSlot * bulkSlotBytes, byteCount: length)
            bytesWritten += length
            writesInFlight.insert(stagingSlot)
            completions.append(VerbsCompletion(kind: .write, slot: stagingSlot))
            link.condition.broadcast()
            return nil
        }
        if let failure { throw failure }
    }

    func sendSlot(_ slot: Int) -> UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(rebasing: sendMemory[slot * slotBytes..<(slot + 1) * slotBytes])
    }

    func receiveSlot(_ slot: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: receiveMemory[slot * slotBytes..<(slot + 1) * slotBytes])
    }

    func postReceive(slot: Int) throws(TransportError) {
        link.locked {
            if postedReceives.contains(slot) { link.violations.append("receive slot \(slot) posted twice") }
            postedReceives.append(slot)
        }
    }

    func postSend(slot: Int, length: Int) throws(TransportError) {
        let failure: TransportError? = link.locked {
            if link.disconnected { return TransportError(.closed, "fake QP disconnected") }
            if sendsInFlight.contains(slot) { link.violations.append("send slot \(slot) reused before its completion") }
            if length > slotBytes { link.violations.append("send of \(length) bytes exceeds the slot") }
            sendsPosted += 1
            guard let peer, !peer.postedReceives.isEmpty else {
                link.rnrFailures += 1
                completions.append(VerbsCompletion(kind: .send, slot: slot, failure: "RNR retry counter exceeded"))
                link.disconnected = true
                link.condition.broadcast()
                return nil
            }
            let target = peer.postedReceives.removeFirst()
            let destination = peer.receiveMemory.baseAddress! + target * slotBytes
            destination.copyMemory(from: sendMemory.baseAddress! + slot * slotBytes, byteCount: length)
            sendsInFlight.insert(slot)
            peer.completions.append(VerbsCompletion(kind: .receive, slot: target, length: length))
            completions.append(VerbsCompletion(kind: .send, slot: slot))
            link.condition.broadcast()
            return nil
        }
        if let failure { throw failure }
    }

    func waitForCompletions(timeoutMilliseconds: Int32) throws(TransportError) -> [VerbsCompletion] {
        let result: [VerbsCompletion]? = link.locked {
            let deadline = Date(timeIntervalSinceNow: Double(timeoutMilliseconds) / 1000)
            while completions.isEmpty && !link.disconnected {
                if !link.condition.wait(until: deadline) { break }
            }
            if !completions.isEmpty {
                let ready = completions
                completions.removeAll()
                for completion in ready where completion.kind == .send { sendsInFlight.remove(completion.slot) }
                for completion in ready where completion.kind == .write { writesInFlight.remove(completion.slot) }
                return ready
            }
            return link.disconnected ? nil : []
        }
        guard let result else { throw TransportError(.closed, "the fake RDMA peer disconnected") }
        return result
    }

    func disconnect() {
        link.locked {
            link.disconnected = true
            link.condition.broadcast()
        }
    }
}

/// Hands out the server side of fake links, as `VerbsListener` does with real connections:
/// `connect` makes a link, queues its `b` side for `acceptQueuePair` and returns its `a` side.
final class FakeVerbsAcceptor: VerbsAcceptor, @unchecked Sendable {
    let condition = NSCondition()
    var pending: [FakeVerbsLink] = []
    var links: [FakeVerbsLink] = []
    var stopped = false
    let slotCount: Int, slotBytes: Int, bulkSlotCount: Int, bulkSlotBytes: Int
    /// When set, the next accept fails for that client only (like a client with other slot settings).
    var failNext = false

    init(slotCount: Int = 8, slotBytes: Int = 1024, bulkSlotCount: Int = 2, bulkSlotBytes: Int = 16 << 10) {
        self.slotCount = slotCount
        self.slotBytes = slotBytes
        self.bulkSlotCount = bulkSlotCount
        self.bulkSlotBytes = bulkSlotBytes
    }

    var address: String { "rdma://fake:1" }

    func connect() -> FakeQueuePair {
        let link = FakeVerbsLink(slotCount: slotCount, slotBytes: slotBytes, bulkSlotCount: bulkSlotCount, bulkSlotBytes: bulkSlotBytes)
        condition.lock()
        pending.append(link)
        links.append(link)
        condition.broadcast()
        condition.unlock()
        return link.a
    }

    func acceptQueuePair() throws(TransportError) -> (queuePair: any VerbsQueuePair, peerHost: String) {
        condition.lock()
        defer { condition.unlock() }
        while pending.isEmpty && !stopped { condition.wait() }
        if stopped { throw TransportError(.closed, "the fake RDMA listener is shut down") }
        let link = pending.removeFirst()
        if failNext {
            failNext = false
            link.a.disconnect()
            throw TransportError(.io, "refused a fake RDMA client")
        }
        return (link.b, "fake-peer")
    }

    func shutdown() {
        condition.lock()
        stopped = true
        condition.broadcast()
        condition.unlock()
    }
}
