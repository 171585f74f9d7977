import CXPUDriver
import Foundation
import Logging
import Synchronization
import XPUPlacement
import XPUProtocol
import XPUTiming

/// The pool's directory: soft state rebuilt from server heartbeats, and placement of slices on it.
///
/// Each device of each server is one placement `Node`: its GPU share is the device's ungranted
/// compute (milli-device), and its "CPU" and memory dimensions both carry the device's ungranted
/// memory in MiB, so that best fit, spread and FGD weigh memory as the trace weighs CPU. A slice
/// `mem=M,compute=C%` is a request for M MiB and 10*C milli-GPU of one card. A request sees only
/// the devices of servers of its API family (`APIFamily`: the server's `api=` label).
///
/// A placement is reserved (subtracted from the server's last heartbeat) until the server reports
/// its grant token as admitted, or for `reservationLifetime` if the client never shows up.
/// Requests that do not fit may wait in a queue (Directory+Placing.swift), and with `preempt` a
/// high-priority one may end low-priority slices (Directory+Preemption.swift).
public final class Directory: Sendable {
    public let policy: NamedPolicy.Name
    public let heartbeatTimeout: Duration
    public let reservationLifetime: Duration
    /// Whether high-priority requests may preempt low-priority slices (`xpu-pool --preempt`).
    public let preempt: Bool
    /// How long a request that preempted waits for its victims' capacity, beyond its own wait:
    /// the server learns of the order at its next heartbeat, ends the sessions and beats again.
    public let preemptionGrace: Duration
    let clock: any DirectoryClock
    let logger: Logger
    let state = Mutex(State())
    /// Signalled when a pass over the queue may have decided a waiting request.
    let changes = ChangeCount()
    /// Signalled when the inventory's membership changes (`inventoryGeneration`): a server
    /// registered or dropped, or its labels or devices' memory changed.
    let membership = ChangeCount()
    /// Where this directory's inventory generations start: random, so that a watcher that knew
    /// another (or an earlier) directory never takes this one's generation for its own.
    let generationBase = UInt64.random(in: 1...UInt64(UInt32.max)) << 32
    /// Signalled when something may lapse sooner than the sweeper expects (a server registered,
    /// a reservation made) and when the sweeper is to stop.
    let lapses = ChangeCount()

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
        /// Requests waiting for capacity, by ticket (Directory+Placing.swift).
        var queue = PlacementQueue<UInt64>()
        var waiting: [UInt64: Waiting] = [:]
        var nextTicket: UInt64 = 1
        /// Preemptions ordered but not yet sent, by server: they ride on the reply to its next
        /// heartbeat.
        var orders: [String: [PoolPreemption]] = [:]
        /// Sessions ordered to end, by server, until its heartbeats stop listing them: never
        /// chosen twice.
        var ending: [String: Set<UInt64>] = [:]
        /// Sessions preempted since the directory started.
        var preemptions = 0
        /// `stopSweeping` was called.
        var sweeperStopped = false
    }

    public init(
        policy: NamedPolicy.Name, heartbeatTimeout: Duration = .seconds(3), reservationLifetime: Duration = .seconds(10),
        preempt: Bool = false, preemptionGrace: Duration = .seconds(10), passingWindow: Duration = .seconds(30),
        clock: any DirectoryClock = SystemDirectoryClock(), logger: Logger
    ) {
        self.policy = policy
        self.clock = clock
        self.heartbeatTimeout = heartbeatTimeout
        self.reservationLifetime = reservationLifetime
        self.preempt = preempt
        self.preemptionGrace = preemptionGrace
        self.logger = logger
        state.withLock { $0.queue.passingWindow = passingWindow }
    }

    /// Records a server's heartbeat (the first one registers it), offers what it frees to the
    /// waiting requests, and returns what the server must do: the preemptions ordered for it.
    @discardableResult
    public func record(_ heartbeat: PoolHeartbeat) -> PoolHeartbeatReply {
        let now = clock.now
        let (isNew, reshaped, orders, placed) = state.withLock { state in
            let previous = state.servers[heartbeat.address]?.heartbeat
            let isNew = previous == nil
            let reshaped = previous.map { $0.labels != heartbeat.labels || $0.devices.map(\.totalMemory) != heartbeat.devices.map(\.totalMemory) } ?? true
            state.servers[heartbeat.address] = ServerEntry(heartbeat: heartbeat, lastSeen: now)
            let admitted = Set(heartbeat.admitted)
            state.reservations.removeAll { $0.server == heartbeat.address && admitted.contains($0.token) }
            let listed = Set(heartbeat.slices.map(\.session))
            state.ending[heartbeat.address] = state.ending[heartbeat.address]?.intersection(listed)
            let orders = state.orders.removeValue(forKey: heartbeat.address) ?? []
            return (isNew, reshaped, orders, serveQueue(&state, now: now))
        }
        if reshaped { membership.notify() }
        if isNew {
            lapses.notify()
            let devices = heartbeat.devices.map { "\($0.totalMemory >> 20)MiB" }.joined(separator: ",")
            logger.info(
                "server registered \(heartbeat.address) devices=[\(devices)]",
                metadata: ["labels": "\(heartbeat.labels.joined(separator: ","))"])
        }
        // Each device's busy fraction in thousandths, as `load` reads it ("-" when not measured).
        logger.debug("heartbeat \(heartbeat.address) busy=\(heartbeat.devices.map { $0.busyMilli.map(String.init) ?? "-" }.joined(separator: ","))")
        notifyWaiters()
        report(placed)
        return PoolHeartbeatReply(preemptions: orders)
    }

    /// Drops servers whose heartbeats stopped and reservations nobody claimed; returns the
    /// dropped servers.
    @discardableResult
    public func sweep() -> [String] {
        let now = clock.now
        let (dropped, placed) = state.withLock { state in
            let dead = state.servers.filter { now - $0.value.lastSeen > heartbeatTimeout }.map(\.key).sorted()
            for address in dead {
                state.servers[address] = nil
                state.orders[address] = nil
                state.ending[address] = nil
            }
            let before = state.reservations.count
            state.reservations.removeAll { now - $0.made > reservationLifetime || state.servers[$0.server] == nil }
            // A reservation that lapsed is capacity again.
            let placed = state.reservations.count < before ? serveQueue(&state, now: now) : []
            return (dead, placed)
        }
        for address in dropped {
            logger.warning("server dropped \(address): no heartbeat for \(heartbeatTimeout)")
        }
        if !dropped.isEmpty { membership.notify() }
        if !placed.isEmpty { notifyWaiters() }
        report(placed)
        return dropped
    }

    /// Sweeps each time a server's heartbeats or a reservation may have lapsed, and sleeps on the
    /// directory's clock in between (with nothing registered, until something is): nothing wakes
    /// on a period. Returns once `stopSweeping` has been called.
    public func sweepUntilStopped() {
        while true {
            let seen = lapses.current
            guard !state.withLock({ $0.sweeperStopped }) else { return }
            sweep()
            let next = state.withLock { nextLapse(of: $0) }
            lapses.wait(after: seen, until: next, on: clock)
        }
    }

    /// Ends `sweepUntilStopped`.
    public func stopSweeping() {
        state.withLock { $0.sweeperStopped = true }
        lapses.notify()
    }

    /// The first instant at which `sweep` drops something (a server or a reservation); nil with
    /// nothing registered or reserved.
    func nextLapse(of state: State) -> ContinuousClock.Instant? {
        // `sweep` drops what is older than its limit, so the first instant past it.
        let servers = state.servers.values.map { $0.lastSeen + heartbeatTimeout }
        let reservations = state.reservations.map { $0.made + reservationLifetime }
        return (servers + reservations).min().map { $0 + .nanoseconds(1) }
    }

    /// Every registered server and its devices, in address order (the list call).
    public var inventory: PoolListReply {
        state.withLock { state in
            PoolListReply(
                servers: state.servers.keys.sorted().compactMap { address in
                    state.servers[address].map { .init(address: address, labels: $0.heartbeat.labels, devices: $0.heartbeat.devices) }
                })
        }
    }

    /// The inventory's generation: changes when a server registers or is dropped, or its labels
    /// or devices' memory change (not with free capacity).
    public var inventoryGeneration: UInt64 { generationBase + membership.current }

    /// The inventory and its generation once the generation differs from `known`, or as they
    /// are when `deadline` passes or `abandoned` (asked at every wake-up) says the caller left.
    /// The generation is read before the inventory: a change between the two is answered again
    /// at the caller's next watch, never missed.
    public func watchInventory(after known: UInt64, until deadline: ContinuousClock.Instant, abandoned: () -> Bool = { false }) -> PoolWatchReply {
        while true {
            let seen = membership.current
            if generationBase + seen != known || clock.now >= deadline || abandoned() {
                return PoolWatchReply(generation: generationBase + seen, inventory: self.inventory)
            }
            membership.wait(after: seen, until: deadline, on: clock)
        }
    }

    /// Answers every watch now (the directory's server is stopping): counted as a change, so
    /// that no watch can miss it between its look at the generation and its wait.
    public func wakeWatchers() { membership.notify() }

    /// Wakes the requests waiting in `place` to look at the queue again.
    func notifyWaiters() { changes.notify() }

    /// How many `place` calls are waiting in the queue now.
    public var waitingRequests: Int { state.withLock { $0.waiting.count } }

    /// Servers registered now, by address.
    public var servers: [String] { state.withLock { $0.servers.keys.sorted() } }

    /// Sessions preempted since the directory started.
    public var preemptions: Int { state.withLock { $0.preemptions } }

    /// The directory's view as placement sees it for requests of `family`: one node per device of
    /// the servers of that family, servers in address order, with reservations subtracted.
    /// `index` maps each node back to (server, device).
    static func cluster(of state: State, family: APIFamily) -> (Cluster, [(server: String, device: Int)]) {
        var nodes: [Node] = []
        var index: [(server: String, device: Int)] = []
        for address in state.servers.keys.sorted() {
            let heartbeat = state.servers[address]!.heartbeat
            guard APIFamily(labels: heartbeat.labels) == family else { continue }
            for (ordinal, device) in heartbeat.devices.enumerated() {
                var freeMemory = Int64(clamping: device.freeMemory)
                var freeCompute = Int(device.freeComputeMilli)
                for reservation in state.reservations where reservation.server == address && reservation.device == ordinal {
                    freeMemory -= Int64(clamping: reservation.memory)
                    freeCompute -= reservation.computeMilli
                }
                let totalMiB = Int(device.totalMemory >> 20)
                let freeMiB = Int(max(freeMemory, -1) >> 20)
                var node = Node(name: nodeName(address, ordinal), cpuMilli: totalMiB, memoryMiB: totalMiB, gpuCount: 1, gpuModel: "device")
                node.cpuFree = freeMemory < 0 ? -1 : freeMiB
                node.memoryFree = node.cpuFree
                node.gpuFree = [max(-1, min(freeCompute, Node.wholeGPU))]
                nodes.append(node)
                index.append((address, ordinal))
            }
        }
        return (Cluster(nodes: nodes), index)
    }

    static func nodeName(_ server: String, _ device: Int) -> String { "\(server)#\(device)" }

    /// How many registered servers serve each family, for a refusal's reason: `cuda 2, opencl 0`.
    static func familyCounts(of state: State) -> String {
        let families = state.servers.values.map { APIFamily(labels: $0.heartbeat.labels) }
        return APIFamily.allCases.map { family in "\(family.rawValue) \(families.filter { $0 == family }.count)" }
            .joined(separator: ", ")
    }

    /// What placement knows of each node beyond its free capacity: measured busy time (for
    /// `load`) and zone (network cost), from the servers' heartbeats.
    static func measurements(of state: State) -> (busy: [String: Double], zones: [String: String]) {
        var busy: [String: Double] = [:]
        var zones: [String: String] = [:]
        for (address, entry) in state.servers {
            let zone = entry.heartbeat.labels.first { $0.hasPrefix("zone=") }.map { String($0.dropFirst("zone=".count)) }
            for (ordinal, device) in entry.heartbeat.devices.enumerated() {
                let name = nodeName(address, ordinal)
                if let milli = device.busyMilli { busy[name] = Double(milli) / 1000 }
                if let zone { zones[name] = zone }
            }
        }
        return (busy, zones)
    }
}

extension Node {
    /// Takes the device out of a placement pass: nothing fits on it any more (a device the
    /// request already has a slice on, while others remain).
    mutating func takeOut() {
        cpuFree = -1
        memoryFree = -1
        gpuFree = gpuFree.map { _ in -1 }
    }
}
