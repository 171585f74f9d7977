import CXPUDriver
import Foundation
import Logging
import Synchronization
import XPUPlacement
import XPUProtocol
import XPUServer

/// The pool's directory: soft state rebuilt from server heartbeats, and placement of slices on it.
///
/// Each device of each server is one placement `Node`: its GPU share is the device's ungranted
/// compute (milli-device), and its "CPU" and memory dimensions both carry the device's ungranted
/// memory in MiB, so that best fit, spread and FGD weigh memory as the trace weighs CPU. A slice
/// `mem=M,compute=C%` is a request for M MiB and 10*C milli-GPU of one card.
///
/// A placement is reserved (subtracted from the server's last heartbeat) until the server reports
/// its grant token as admitted, or for `reservationLifetime` if the client never shows up.
public final class Directory: Sendable {
    public let policy: NamedPolicy.Name
    public let heartbeatTimeout: Duration
    public let reservationLifetime: Duration
    let logger: Logger
    private let state = Mutex(State())

    struct ServerEntry {
        var heartbeat: PoolHeartbeat
        var lastSeen: ContinuousClock.Instant
    }

    struct Reservation {
        var token: String
        var server: String
        var device: Int
        var memory: UInt64
        var computeMilli: Int
        var made: ContinuousClock.Instant
    }

    struct State {
        var servers: [String: ServerEntry] = [:]
        var reservations: [Reservation] = []
        /// Recent requests: FGD's demand distribution.
        var recent: [PlacementRequest] = []
        var nextGrant: UInt64 = 1
    }

    public init(
        policy: NamedPolicy.Name, heartbeatTimeout: Duration = .seconds(3), reservationLifetime: Duration = .seconds(10),
        logger: Logger
    ) {
        self.policy = policy
        self.heartbeatTimeout = heartbeatTimeout
        self.reservationLifetime = reservationLifetime
        self.logger = logger
    }

    /// Records a server's heartbeat (the first one registers it).
    public func record(_ heartbeat: PoolHeartbeat, now: ContinuousClock.Instant = .now) {
        let isNew = state.withLock { state in
            let isNew = state.servers[heartbeat.address] == nil
            state.servers[heartbeat.address] = ServerEntry(heartbeat: heartbeat, lastSeen: now)
            let admitted = Set(heartbeat.admitted)
            state.reservations.removeAll { $0.server == heartbeat.address && admitted.contains($0.token) }
            return isNew
        }
        if isNew {
            let devices = heartbeat.devices.map { "\($0.totalMemory >> 20)MiB" }.joined(separator: ",")
            logger.info(
                "server registered \(heartbeat.address) devices=[\(devices)]",
                metadata: ["labels": "\(heartbeat.labels.joined(separator: ","))"])
        }
    }

    /// Drops servers whose heartbeats stopped and reservations nobody claimed; returns the
    /// dropped servers.
    @discardableResult
    public func sweep(now: ContinuousClock.Instant = .now) -> [String] {
        let dropped = state.withLock { state in
            let dead = state.servers.filter { now - $0.value.lastSeen > heartbeatTimeout }.map(\.key).sorted()
            for address in dead { state.servers[address] = nil }
            state.reservations.removeAll { now - $0.made > reservationLifetime || state.servers[$0.server] == nil }
            return dead
        }
        for address in dropped {
            logger.warning("server dropped \(address): no heartbeat for \(heartbeatTimeout)")
        }
        return dropped
    }

    /// Servers registered now, by address.
    public var servers: [String] { state.withLock { $0.servers.keys.sorted() } }

    /// The directory's view as placement sees it: one node per device, servers in address order,
    /// with reservations subtracted. `index` maps each node back to (server, device).
    static func cluster(of state: State) -> (Cluster, [(server: String, device: Int)]) {
        var nodes: [Node] = []
        var index: [(server: String, device: Int)] = []
        for address in state.servers.keys.sorted() {
            let heartbeat = state.servers[address]!.heartbeat
            for (ordinal, device) in heartbeat.devices.enumerated() {
                var freeMemory = Int64(clamping: device.freeMemory)
                var freeCompute = Int(device.freeComputeMilli)
                for reservation in state.reservations where reservation.server == address && reservation.device == ordinal {
                    freeMemory -= Int64(clamping: reservation.memory)
                    freeCompute -= reservation.computeMilli
                }
                let totalMiB = Int(device.totalMemory >> 20)
                let freeMiB = Int(max(freeMemory, -1) >> 20)
                var node = Node(name: "\(address)#\(ordinal)", cpuMilli: totalMiB, memoryMiB: totalMiB, gpuCount: 1, gpuModel: "device")
                node.cpuFree = freeMemory < 0 ? -1 : freeMiB
                node.memoryFree = node.cpuFree
                node.gpuFree = [max(-1, min(freeCompute, Node.wholeGPU))]
                nodes.append(node)
                index.append((address, ordinal))
            }
        }
        return (Cluster(nodes: nodes), index)
    }

    /// Places `count` slices `text` (`XPU_SLICE`) for `client`, all or none: the CUresult and the
    /// reply. Each slice goes to a device the others of the request do not use when one fits, so a
    /// client that asks for two devices gets two (it may share one only when nothing else fits).
    public func place(slice text: String, count: UInt32 = 1, client: String) -> (CUresult, PoolPlaceReply) {
        sweep()
        let request: SliceRequest
        do {
            request = try SliceRequest(parsing: text)
        } catch {
            return refuse(CUDA_ERROR_INVALID_VALUE, "\(error)", client: client, slice: text)
        }
        guard request.device == nil, request.grant == nil else {
            return refuse(CUDA_ERROR_INVALID_VALUE, "device= and grant= are chosen by the pool, not by XPU_SLICE", client: client, slice: text)
        }
        guard count >= 1, count <= ProtocolLimits.maximumPoolPlacements else {
            return refuse(
                CUDA_ERROR_INVALID_VALUE, "a client may ask for 1 to \(ProtocolLimits.maximumPoolPlacements) slices, not \(count)",
                client: client, slice: text)
        }
        let bytes = request.memoryBytes ?? 0
        let memoryMiB = Int((bytes + (1 << 20) - 1) >> 20)
        let computeMilli = Int(((request.computePercent ?? 0) * 10).rounded(.up))
        let wanted = PlacementRequest(
            name: client, cpuMilli: memoryMiB, memoryMiB: memoryMiB, gpuCount: 1, gpuMilli: computeMilli)
        let outcome: Result<[(String, Int, String)], PlaceFailure> = state.withLock { state in
            guard !state.servers.isEmpty else { return .failure(.noServer) }
            var placed: [(server: String, device: Int, token: String)] = []
            for _ in 0..<count {
                let (cluster, index) = Self.cluster(of: state)
                state.recent.append(wanted)
                if state.recent.count > 256 { state.recent.removeFirst(state.recent.count - 256) }
                let placer = Placer(policy: NamedPolicy(policy, demand: DemandDistribution(requests: state.recent)))
                // First among the devices this request has not used yet, then anywhere.
                var unused = cluster
                for node in unused.nodes.indices where placed.contains(where: { index[node] == ($0.server, $0.device) }) {
                    unused.nodes[node].cpuFree = -1
                    unused.nodes[node].memoryFree = -1
                    unused.nodes[node].gpuFree = unused.nodes[node].gpuFree.map { _ in -1 }
                }
                var random = SeededGenerator(seed: 1)
                guard let placement = placer.place(wanted, in: unused, using: &random) ?? placer.place(wanted, in: cluster, using: &random)
                else {
                    // All or none: what this request reserved so far is given back.
                    state.reservations.removeAll { reservation in placed.contains { $0.token == reservation.token } }
                    let free = cluster.nodes.map { "\($0.name) \(max($0.cpuFree, 0))MiB \(max($0.gpuFree[0], 0) / 10)%" }
                    return .failure(.nothingFits(free.joined(separator: ", ")))
                }
                let (server, device) = index[placement.gpuNode]
                let token = "g\(state.nextGrant)"
                state.nextGrant += 1
                state.reservations.append(
                    Reservation(token: token, server: server, device: device, memory: bytes, computeMilli: computeMilli, made: .now))
                placed.append((server, device, token))
            }
            return .success(placed.map { ($0.server, $0.device, $0.token) })
        }
        switch outcome {
        case .failure(.noServer):
            return refuse(CUDA_ERROR_NO_DEVICE, "no server is registered with the pool", client: client, slice: text)
        case .failure(.nothingFits(let free)):
            let what = count == 1 ? "'\(text)'" : "\(count) x '\(text)'"
            return refuse(CUDA_ERROR_OUT_OF_MEMORY, "nothing fits \(what) (free: \(free))", client: client, slice: text)
        case .success(let placed):
            let trimmed = text.trimmingCharacters(in: .whitespaces)
            var placements: [PoolPlacement] = []
            for (server, device, token) in placed {
                let granted = (trimmed.isEmpty ? "" : trimmed + ",") + "device=\(device),grant=\(token)"
                logger.info("placed '\(text)' for \(client) on \(server) device \(device) (policy \(policy.rawValue), grant \(token))")
                placements.append(PoolPlacement(server: server, device: Int32(device), slice: granted))
            }
            return (CUDA_SUCCESS, PoolPlaceReply(placements: placements, reason: ""))
        }
    }

    private func refuse(_ status: CUresult, _ reason: String, client: String, slice: String) -> (CUresult, PoolPlaceReply) {
        logger.warning("not placed '\(slice)' for \(client): \(reason)")
        return (status, PoolPlaceReply(placements: [], reason: reason))
    }

    enum PlaceFailure: Error {
        case noServer
        case nothingFits(String)
    }
}
