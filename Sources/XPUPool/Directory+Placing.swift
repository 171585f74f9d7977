import CXPUDriver
import Foundation
import Synchronization
import XPUAdmission
import XPUPlacement
import XPUProtocol

/// Placing requests, at once or after waiting in the queue.
///
/// Every request joins the queue (`PlacementQueue`: higher priority first, then arrival) and is
/// offered capacity in that order: when it arrives, at each heartbeat (a server beats at once
/// when a slice is given back), and when a reservation lapses or a request leaves the queue. A
/// request that asked to wait (`XPU_POOL_WAIT`) stays queued until it is placed, its wait runs
/// out or its client hangs up; one that did not fails at once when it is not placed.
extension Directory {
    /// One request as the directory places it.
    struct Ask {
        var text: String
        var client: String
        var count: UInt32
        var wanted: PlacementRequest
        var memory: UInt64
        var computeMilli: Int
        /// The API family it asks for: only servers of that family are offered.
        var api: APIFamily
    }

    /// A queued request and, once a pass placed it, where.
    struct Waiting {
        var ask: Ask
        var since: ContinuousClock.Instant
        var deadline: ContinuousClock.Instant
        /// When it ordered preemptions (it then waits for its victims at least `preemptionGrace`).
        var preemptedAt: ContinuousClock.Instant?
        /// Whether the last pass offered it capacity (not held back by a higher priority).
        var offered = false
        var outcome: [Placed]?
    }

    /// One slice placed: where, and what the client asks that server for (the request with the
    /// chosen `device=` and the `grant=` token).
    struct Placed {
        var server: String
        var device: Int
        var token: String
        var slice: String
    }

    /// What a pass over the queue did, logged once the lock is released.
    enum Event {
        case placed(Ask, [Placed], waited: Duration)
        case preempting(Ask, server: String, device: Int, victims: [PoolSlice], total: Int)
    }

    enum PlaceFailure: Error {
        case noServer
        /// Servers are registered, none of the request's API family.
        case noServerOfFamily(String)
        case nothingFits(String)
    }

    /// How often a waiting request looks whether its client is still there when nothing tells it
    /// that the client hung up (`clientWatched` false; a pass that places it wakes it at once).
    static let clientPoll: Duration = .milliseconds(50)

    /// What a waiting request found when it looked at the queue.
    private enum Look {
        case placed([Placed])
        case failed(PlaceFailure)
        case waits(until: ContinuousClock.Instant)
    }

    /// Places `count` slices `text` (`XPU_SLICE`) for `client`, all or none: the CUresult and the
    /// reply. Each slice goes to a device the others of the request do not use when one fits, so a
    /// client that asks for two devices gets two (it may share one only when nothing else fits).
    /// Waits up to `wait` for capacity; `clientLeft` tells whether the asker hung up meanwhile.
    /// Only servers of `api`'s family are offered; with none registered it fails at once.
    /// With `clientWatched`, the caller wakes the waiters (`notifyWaiters`) when its client hangs
    /// up, and a waiting request sleeps until it is placed or its wait ends; without, it also
    /// looks at its client every `clientPoll`.
    public func place(
        slice text: String, count: UInt32 = 1, client: String, wait: Duration = .zero, zone: String = "", api: APIFamily = .cuda,
        clientLeft: () -> Bool = { false }, clientWatched: Bool = false
    ) -> (CUresult, PoolPlaceReply) {
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
        let priority: Priority =
            switch request.priority ?? .normal {
            case .low: .bestEffort
            case .normal: .normal
            case .high: .high
            }
        let wanted = PlacementRequest(
            name: client, cpuMilli: memoryMiB, memoryMiB: memoryMiB, gpuCount: 1, gpuMilli: computeMilli, priority: priority,
            origin: zone.isEmpty ? nil : zone)
        let ask = Ask(text: text, client: client, count: count, wanted: wanted, memory: bytes, computeMilli: computeMilli, api: api)

        let arrived = clock.now
        let queued: Result<(ticket: UInt64, events: [Event]), PlaceFailure> = state.withLock { state in
            guard !state.servers.isEmpty else { return .failure(.noServer) }
            guard state.servers.values.contains(where: { APIFamily(labels: $0.heartbeat.labels) == api }) else {
                return .failure(.noServerOfFamily("no \(api.rawValue) server is registered with the pool (servers by API: \(Self.familyCounts(of: state)))"))
            }
            let ticket = state.nextTicket
            state.nextTicket += 1
            state.waiting[ticket] = Waiting(ask: ask, since: arrived, deadline: arrived + wait)
            state.queue.enqueue(ticket, priority: priority, at: arrived)
            // FGD's demand: what clients ask for, once per request (not once per pass it waits).
            state.recent += Array(repeating: wanted, count: Int(count))
            if state.recent.count > 256 { state.recent.removeFirst(state.recent.count - 256) }
            return .success((ticket, serveQueue(&state, now: arrived)))
        }
        let ticket: UInt64
        let events: [Event]
        switch queued {
        case .success(let queued): (ticket, events) = queued
        case .failure(.noServerOfFamily(let why)): return refuse(CUDA_ERROR_NO_DEVICE, why, client: client, slice: text)
        case .failure: return refuse(CUDA_ERROR_NO_DEVICE, "no server is registered with the pool", client: client, slice: text)
        }
        if !events.isEmpty { notifyWaiters() }
        report(events)
        var announced = false
        while true {
            let seen = changes.current
            let left = clientLeft()
            let now = clock.now
            let look: Look = state.withLock { state in
                guard let waiting = state.waiting[ticket] else { return .failed(.nothingFits("the request was dropped")) }
                if let outcome = waiting.outcome {
                    state.waiting[ticket] = nil
                    return .placed(outcome)
                }
                let deadline = waiting.preemptedAt.map { max(waiting.deadline, $0 + preemptionGrace) } ?? waiting.deadline
                guard now >= deadline || left else { return .waits(until: deadline) }
                state.waiting[ticket] = nil
                state.queue.remove(ticket)
                let why = waiting.offered ? Self.freeSummary(of: state, family: waiting.ask.api) : "a request of higher priority, or an older one of its own, waits ahead"
                return .failed(.nothingFits(why))
            }
            switch look {
            case .placed(let placed):
                let placements = placed.map { PoolPlacement(server: $0.server, device: Int32($0.device), slice: $0.slice) }
                return (CUDA_SUCCESS, PoolPlaceReply(placements: placements, reason: ""))
            case .failed(let failure):
                if case .nothingFits = failure {
                    // Leaving the queue may let requests of lower priority through.
                    let events = state.withLock { serveQueue(&$0, now: now) }
                    if !events.isEmpty { notifyWaiters() }
                    report(events)
                }
                if left { return refuse(CUDA_ERROR_OUT_OF_MEMORY, "the client left while waiting", client: client, slice: text) }
                let what = count == 1 ? "'\(text)'" : "\(count) x '\(text)'"
                let waited = wait > .zero ? " after waiting \(Self.seconds(now - arrived))" : ""
                guard case .nothingFits(let why) = failure else { return refuse(CUDA_ERROR_NO_DEVICE, "\(failure)", client: client, slice: text) }
                return refuse(CUDA_ERROR_OUT_OF_MEMORY, "nothing fits \(what)\(waited) (\(why))", client: client, slice: text)
            case .waits(let deadline):
                if !announced {
                    announced = true
                    let limit = wait > .zero ? ", up to \(Self.seconds(wait))" : ", for the room it preempted"
                    logger.info("waiting: '\(text)' for \(client)\(limit) (\(state.withLock { $0.queue.entries.count }) in the queue)")
                }
                // Until a pass may have placed it, its client hung up, or its wait ends (or, with no
                // one to tell of a hang-up, it is time to look at its client).
                changes.wait(after: seen, until: clientWatched ? deadline : min(deadline, now + Self.clientPoll), on: clock)
            }
        }
    }

    /// Offers capacity down the queue (lock held): places what fits, in order, and orders
    /// preemptions for high-priority requests that do not fit when the directory allows it.
    func serveQueue(_ state: inout State, now: ContinuousClock.Instant) -> [Event] {
        guard !state.queue.isEmpty else { return [] }
        var events: [Event] = []
        var queue = state.queue
        for ticket in queue.entries.map(\.ticket) { state.waiting[ticket]?.offered = false }
        queue.serve(now: now) { ticket in
            guard var waiting = state.waiting[ticket], waiting.outcome == nil else { return .placed }
            waiting.offered = true
            defer { state.waiting[ticket] = waiting }
            switch Self.placeNow(waiting.ask, in: &state, policy: policy, now: now) {
            case .success(let placed):
                waiting.outcome = placed
                events.append(.placed(waiting.ask, placed, waited: now - waiting.since))
                return .placed
            case .failure:
                guard Self.fitsWhenIdle(waiting.ask, in: state) else { return .fitsNowhere }
                if preempt, waiting.preemptedAt == nil {
                    let ordered = orderPreemption(for: waiting.ask, in: &state)
                    if !ordered.isEmpty {
                        waiting.preemptedAt = now
                        events += ordered
                    }
                }
                return .waits
            }
        }
        state.queue = queue
        return events
    }

    /// Places every slice of `ask` now, all or none, and reserves them (lock held).
    static func placeNow(_ ask: Ask, in state: inout State, policy: NamedPolicy.Name, now: ContinuousClock.Instant) -> Result<[Placed], PlaceFailure> {
        guard !state.servers.isEmpty else { return .failure(.noServer) }
        let (busy, zones) = measurements(of: state)
        var placed: [Placed] = []
        for _ in 0..<ask.count {
            let (cluster, index) = cluster(of: state, family: ask.api)
            let placer = Placer(
                policy: NamedPolicy(policy, demand: DemandDistribution(requests: state.recent), measuredBusy: busy),
                networkCost: ZoneNetworkCost(zones: zones))
            // First among the devices this request has not used yet, then anywhere.
            var unused = cluster
            for node in unused.nodes.indices where placed.contains(where: { index[node] == ($0.server, $0.device) }) {
                unused.nodes[node].takeOut()
            }
            var random = SeededGenerator(seed: 1)
            guard let placement = placer.place(ask.wanted, in: unused, using: &random) ?? placer.place(ask.wanted, in: cluster, using: &random)
            else {
                // All or none: what this request reserved so far is given back.
                state.reservations.removeAll { reservation in placed.contains { $0.token == reservation.token } }
                return .failure(.nothingFits(freeSummary(of: state, family: ask.api)))
            }
            let (server, device) = index[placement.gpuNode]
            let token = "g\(state.nextGrant)"
            state.nextGrant += 1
            state.reservations.append(
                Reservation(token: token, server: server, device: device, memory: ask.memory, computeMilli: ask.computeMilli, made: now))
            let trimmed = ask.text.trimmingCharacters(in: .whitespaces)
            let granted = (trimmed.isEmpty ? "" : trimmed + ",") + "device=\(device),grant=\(token)"
            placed.append(Placed(server: server, device: device, token: token, slice: granted))
        }
        return .success(placed)
    }

    /// Whether one slice of `ask` fits on some registered device with nothing else on it: if not,
    /// its wait must not hold anyone back.
    static func fitsWhenIdle(_ ask: Ask, in state: State) -> Bool {
        cluster(of: state, family: ask.api).0.nodes.contains { node in
            node.memoryCapacity >= ask.wanted.memoryMiB && node.cpuCapacity >= ask.wanted.cpuMilli
                && ask.wanted.gpuMilli <= Node.wholeGPU
        }
    }

    /// What each device of `family`'s servers has free, for the log and the client's error.
    static func freeSummary(of state: State, family: APIFamily) -> String {
        let (cluster, _) = cluster(of: state, family: family)
        let free = cluster.nodes.map { "\($0.name) \(max($0.cpuFree, 0))MiB \(max($0.gpuFree[0], 0) / 10)%" }
        return "free on \(family.rawValue) servers: " + free.joined(separator: ", ")
    }

    /// Logs what a pass over the queue did, and wakes the sweeper when it made reservations
    /// (one may lapse before what the sweeper waits for).
    func report(_ events: [Event]) {
        if events.contains(where: { if case .placed = $0 { true } else { false } }) { lapses.notify() }
        for event in events {
            switch event {
            case .placed(let ask, let placed, let waited):
                let after = waited > .milliseconds(100) ? " after waiting \(Self.seconds(waited))" : ""
                for slice in placed {
                    logger.info(
                        "placed '\(ask.text)' for \(ask.client) on \(slice.server) device \(slice.device) (policy \(policy.rawValue), grant \(slice.token))\(after)"
                    )
                }
            case .preempting(let ask, let server, let device, let victims, let total):
                for victim in victims {
                    let grant = victim.grant.isEmpty ? "" : ", grant \(victim.grant)"
                    logger.warning(
                        "preempting session \(victim.session) on \(server) device \(device) (\(victim.memory >> 20)MiB \(victim.computeMilli / 10)%, priority low\(grant)) for '\(ask.text)' from \(ask.client) (preemptions: \(total))"
                    )
                }
            }
        }
    }

    func refuse(_ status: CUresult, _ reason: String, client: String, slice: String) -> (CUresult, PoolPlaceReply) {
        logger.warning("not placed '\(slice)' for \(client): \(reason)")
        return (status, PoolPlaceReply(placements: [], reason: reason))
    }

    /// A duration as the log writes it: `1.5s`.
    static func seconds(_ duration: Duration) -> String {
        let milliseconds = duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
        return milliseconds % 1000 == 0 ? "\(milliseconds / 1000)s" : String(format: "%.1fs", Double(milliseconds) / 1000)
    }
}
