/// Requests waiting for capacity, in the order they are offered it: higher priority first, then
/// first come, first served.
///
/// Each time capacity may have freed, `serve` offers it down the queue. A request that still
/// does not fit holds back every request of lower priority behind it (they would take what it
/// waits for). Requests of its own priority may pass it while it is young: a small request then
/// need not stall behind a large one. Once it has waited `passingWindow`, it holds back its own
/// priority too, so a stream of small requests cannot starve it: the capacity that frees goes to
/// it first. A request that fits on no device even when idle holds back no one (it waits for
/// capacity that does not exist).
public struct PlacementQueue<Ticket: Hashable & Sendable>: Sendable {
    public struct Entry: Hashable, Sendable {
        public var ticket: Ticket
        public var priority: Priority
        /// Arrival order among all requests queued so far.
        public var arrival: UInt64
        /// When it was queued.
        public var since: ContinuousClock.Instant
    }

    /// What offering capacity to a request came to.
    public enum Offer: Sendable {
        /// Placed: it leaves the queue.
        case placed
        /// It does not fit yet, but would on some device once enough frees.
        case waits
        /// It does not fit on any device even when idle.
        case fitsNowhere
    }

    /// The waiting requests, in the order they are offered capacity.
    public private(set) var entries: [Entry] = []
    /// How long a waiting request may be passed by later requests of its priority.
    public var passingWindow: Duration
    private var arrivals: UInt64 = 0

    public init(passingWindow: Duration = .seconds(30)) {
        self.passingWindow = passingWindow
    }

    public var isEmpty: Bool { entries.isEmpty }

    /// Queues `ticket` behind everything of its priority or higher.
    public mutating func enqueue(_ ticket: Ticket, priority: Priority, at now: ContinuousClock.Instant = .now) {
        arrivals += 1
        let entry = Entry(ticket: ticket, priority: priority, arrival: arrivals, since: now)
        let position = entries.firstIndex { $0.priority < priority } ?? entries.endIndex
        entries.insert(entry, at: position)
    }

    /// Takes `ticket` out of the queue (placed elsewhere, timed out, or its client left).
    public mutating func remove(_ ticket: Ticket) {
        entries.removeAll { $0.ticket == ticket }
    }

    /// Whether `ticket` waits here.
    public func contains(_ ticket: Ticket) -> Bool {
        entries.contains { $0.ticket == ticket }
    }

    /// Offers capacity in queue order: `offer` is asked for each request that may be placed now
    /// and says what came of it. Placed requests leave the queue; they are returned in order.
    @discardableResult
    public mutating func serve(now: ContinuousClock.Instant = .now, _ offer: (Ticket) -> Offer) -> [Ticket] {
        var placed: [Ticket] = []
        var blockedBelow: Priority?
        offering: for entry in entries {
            if let blockedBelow, entry.priority < blockedBelow { break }
            switch offer(entry.ticket) {
            case .placed:
                placed.append(entry.ticket)
            case .waits:
                if blockedBelow == nil { blockedBelow = entry.priority }
                // Waited long enough: what frees from now on is its, before its own priority's.
                if now - entry.since >= passingWindow { break offering }
            case .fitsNowhere:
                continue
            }
        }
        entries.removeAll { entry in placed.contains(entry.ticket) }
        return placed
    }
}
