import Foundation
import Logging
import Synchronization
import Testing
import XPUTransport

@testable import XPUServer

#if canImport(Glibc)
    import Glibc
#endif

/// The lobby that holds connections until their first bytes, in process over socket pairs (whose
/// source address is "unix", so they all share one source).
@Suite("Connection lobby")
struct ConnectionLobbyTests {
    /// Hand-offs the lobby made, for the test to wait on.
    final class HandOffs: Sendable {
        let tickets = Mutex<[(SocketTransport, HandshakeTicket)]>([])
        /// Signalled once per hand-off.
        private let handedOff = DispatchSemaphore(value: 0)

        func append(_ socket: SocketTransport, _ ticket: HandshakeTicket) {
            tickets.withLock { $0.append((socket, ticket)) }
            handedOff.signal()
        }

        func count() -> Int { tickets.withLock { $0.count } }

        /// Waits for `count` more hand-offs; false when they did not all come within `timeout`.
        func waitFor(_ count: Int, within timeout: Duration) -> Bool {
            let deadline = DispatchTime.now() + .nanoseconds(Int(timeout.components.seconds) * 1_000_000_000)
            return (0..<count).allSatisfy { _ in handedOff.wait(timeout: deadline) == .success }
        }
    }

    static func lobby(timeout: Duration, perSource: Int = 8, total: Int = 8) throws -> (ConnectionLobby, HandOffs) {
        let lobby = try ConnectionLobby(
            limits: AdmissionLimits(handshakeTimeout: timeout, maxPending: total, maxPendingPerSource: perSource),
            statistics: AdmissionStatistics(), logger: Logger(label: "test"))
        let handOffs = HandOffs()
        lobby.start { socket, ticket in handOffs.append(socket, ticket) }
        return (lobby, handOffs)
    }

    /// True once `socket`'s peer has closed, within `timeout`.
    static func closes(_ socket: SocketTransport, within timeout: Duration) -> Bool {
        var poller = pollfd(fd: socket.descriptor, events: Int16(POLLIN), revents: 0)
        let milliseconds = Int32(timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        guard poll(&poller, 1, milliseconds) == 1 else { return false }
        return socket.peerHasClosed
    }

    @Test("a silent connection is closed at the deadline without being handed off")
    func silentConnectionExpires() throws {
        let (lobby, handOffs) = try Self.lobby(timeout: .milliseconds(200))
        defer { lobby.shutdown() }
        let (server, client) = try SocketTransport.pair()
        lobby.enter(server)
        #expect(lobby.statistics.pending.load(ordering: .relaxed) == 1)
        #expect(Self.closes(client, within: .seconds(30)))
        #expect(handOffs.count() == 0)
        #expect(lobby.statistics.timedOut.load(ordering: .relaxed) == 1)
        #expect(lobby.statistics.pending.load(ordering: .relaxed) == 0)
    }

    @Test("a connection whose first bytes arrive is handed off, and shut down at the deadline unless finished")
    func firstBytesHandOff() throws {
        let (lobby, handOffs) = try Self.lobby(timeout: .seconds(1))
        defer { lobby.shutdown() }
        let (finishedServer, finishedClient) = try SocketTransport.pair()
        let (stalledServer, stalledClient) = try SocketTransport.pair()
        lobby.enter(finishedServer)
        lobby.enter(stalledServer)
        var byte: UInt8 = 1
        try withUnsafeBytes(of: &byte) { try finishedClient.send($0) }
        try withUnsafeBytes(of: &byte) { try stalledClient.send($0) }
        try #require(handOffs.waitFor(2, within: .seconds(30)))
        try #require(handOffs.count() == 2)
        // The first sends its Hello in time: finished, it is left alone.
        handOffs.tickets.withLock { tickets in tickets.first { $0.0 === finishedServer }!.1.finish() }
        #expect(lobby.statistics.pending.load(ordering: .relaxed) == 1)
        // The other is cut at the deadline (its thread's read would end).
        #expect(Self.closes(stalledClient, within: .seconds(30)))
        #expect(!finishedClient.peerHasClosed)
        #expect(lobby.statistics.timedOut.load(ordering: .relaxed) == 1)
    }

    @Test("connections over the per-source or total cap are closed at once")
    func caps() throws {
        let (lobby, _) = try Self.lobby(timeout: .seconds(600), perSource: 2)
        defer { lobby.shutdown() }
        var pairs: [(SocketTransport, SocketTransport)] = []
        for _ in 0..<3 { pairs.append(try SocketTransport.pair()) }
        for (server, _) in pairs { lobby.enter(server) }
        #expect(Self.closes(pairs[2].1, within: .seconds(30)))
        #expect(!pairs[0].1.peerHasClosed && !pairs[1].1.peerHasClosed)
        #expect(lobby.statistics.refusedPerSource.load(ordering: .relaxed) == 1)

        let (totalLobby, _) = try Self.lobby(timeout: .seconds(600), perSource: 8, total: 1)
        defer { totalLobby.shutdown() }
        let first = try SocketTransport.pair()
        let second = try SocketTransport.pair()
        totalLobby.enter(first.0)
        totalLobby.enter(second.0)
        #expect(Self.closes(second.1, within: .seconds(30)))
        #expect(totalLobby.statistics.refusedTotal.load(ordering: .relaxed) == 1)
    }
}
