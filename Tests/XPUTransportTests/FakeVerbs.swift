import Foundation
import XPUTransport

/// Two connected in-memory queue pairs that behave like a reliable-connected RDMA QP: a SEND
/// lands in the oldest posted receive of the peer, with a receive completion there and a send
/// completion here; a SEND that finds no receive posted fails as receiver-not-ready (RNR) and
/// breaks the connection, as on hardware with `rnr_retry` exhausted. Misuse a real QP would not
/// survive (posting a slot twice, reusing a send slot before its completion) is recorded in
/// `violations`.
final class FakeVerbsLink: @unchecked Sendable {
    let condition = NSCondition()
    var disconnected = false
    var violations: [String] = []
    var rnrFailures = 0
    private(set) var a: FakeQueuePair!
    private(set) var b: FakeQueuePair!

    init(slotCount: Int, slotBytes: Int) {
        a = FakeQueuePair(link: self, slotCount: slotCount, slotBytes: slotBytes)
        b = FakeQueuePair(link: self, slotCount: slotCount, slotBytes: slotBytes)
        a.peer = b
        b.peer = a
    }

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
    let sendMemory: UnsafeMutableRawBufferPointer
    let receiveMemory: UnsafeMutableRawBufferPointer
    var postedReceives: [Int] = []
    var sendsInFlight: Set<Int> = []
    var completions: [VerbsCompletion] = []
    var sendsPosted = 0

    init(link: FakeVerbsLink, slotCount: Int, slotBytes: Int) {
        self.link = link
        self.slotCount = slotCount
        self.slotBytes = slotBytes
        sendMemory = .allocate(byteCount: slotCount * slotBytes, alignment: 64)
        receiveMemory = .allocate(byteCount: slotCount * slotBytes, alignment: 64)
    }

    deinit {
        sendMemory.deallocate()
        receiveMemory.deallocate()
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
