/// Requests waiting for capacity, in the order they are offered it: higher priority first, then
/// first come, first served.
///
/// Each time capacity may have freed, `serve` offers it down the queue. A request that still
/// does not fit holds back every request of lower priority behind it (they would take what it
/// waits for), but not those of its own priority: a small request may pass a large one that
/// waits, so one request that fits nowhere does not stall its whole class.
public struct PlacementQueue<Ticket: Hashable & Sendable>: Sendable {
    public struct Entry: Hashable, Sendable {
        public var ticket: Ticket
        public var priority: Priority
        /// Arrival order among all requests queued so far.
        public var arrival: UInt64
    }

    /// The waiting requests, in the order they are offered capacity.
    public private(set) var entries: [Entry] = []
    private var arrivals: UInt64 = 0

    public init() {}

    public var isEmpty: Bool { entries.isEmpty }

    /// Queues `ticket` behind everything of its priority or higher.
    public mutating func enqueue(_ ticket: Ticket, priority: Priority) {
        arrivals += 1
        let entry = Entry(ticket: ticket, priority: priority, arrival: arrivals)
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

    /// Offers capacity in queue order: `place` is asked for each request that may be placed now
    /// and says whether it was. Placed requests leave the queue; they are returned in order.
    @discardableResult
    public mutating func serve(_ place: (Ticket) -> Bool) -> [Ticket] {
        var placed: [Ticket] = []
        var blockedBelow: Priority?
        for entry in entries {
            if let blockedBelow, entry.priority < blockedBelow { break }
            if place(entry.ticket) {
                placed.append(entry.ticket)
            } else if blockedBelow == nil {
                blockedBelow = entry.priority
            }
        }
        entries.removeAll { entry in placed.contains(entry.ticket) }
        return placed
    }
}
