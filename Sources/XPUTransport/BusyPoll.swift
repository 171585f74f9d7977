/// How long a reader spins on a non-blocking receive before it blocks, adapted to how long its
/// recent waits lasted.
///
/// A blocking receive on a machine whose CPUs are idle pays the wake-up of a sleeping CPU (tens
/// of microseconds, more than a small round trip over loopback or a fast network). A reader
/// that expects its data soon (the shim awaiting a reply, the server awaiting a session's next
/// request in a loop of synchronous calls) spins instead, for at most `limit`, and then blocks
/// as before. Only the read of a message's first bytes spins (`Transport.receiveMessageStart`);
/// the spin is bounded, it happens only while a read is waiting, and nothing runs between reads:
/// an idle program costs nothing.
///
/// The state machine (no clock inside; the reader reports what happened, so tests drive it):
/// - a wait that the spin caught keeps the full budget (`limit`);
/// - a wait that outlasted its spin halves the budget, and below `minimumBudget` the reader
///   stops spinning (waits are long here: a thinking client, a long synchronization);
/// - while it does not spin, every `probeInterval`-th wait spins the full `limit` again as a
///   probe, and a caught probe restores the budget. A blocked wait cannot tell how soon its data
///   came (its wake-up adds the very delay spinning avoids), so only a spin can show it pays;
/// - a wait on a crowded machine (more runnable threads than CPUs, which the transport asks
///   `RunQueue` before it spins) blocks at once and leaves the budget as it was: spinning there
///   takes a CPU from a thread that needs one, often the peer, and a blocked reader's wake-up
///   finds a CPU awake anyway.
public struct BusyPoll: Sendable, Hashable {
    public struct Settings: Sendable, Hashable {
        /// The longest spin, in nanoseconds; 0 turns spinning off.
        public var limit: UInt64
        /// Below this the budget drops to 0 (no spin) instead of halving further.
        public var minimumBudget: UInt64
        /// While not spinning, one wait in this many spins `limit` as a probe.
        public var probeInterval: Int

        public init(limit: UInt64, minimumBudget: UInt64? = nil, probeInterval: Int = 64) {
            self.limit = limit
            self.minimumBudget = minimumBudget ?? max(1, limit / 8)
            self.probeInterval = max(1, probeInterval)
        }

        /// `limit` in microseconds (`XPU_POLL_US`, `--busy-poll-us`).
        public init(microseconds: Int) {
            self.init(limit: UInt64(max(0, microseconds)) * 1000)
        }

        public static let off = Settings(limit: 0)

        /// The spin a reader uses when nothing configures it, in microseconds. An idle virtual
        /// CPU takes 60-80 us to wake on the development VM, so a spin must outlast that to
        /// catch a reply the peer sends after its own wake-up: with 200 us the idle-machine p50
        /// of a synchronous call met its target in 5 of 5 runs where 50 us met it in 2 and no
        /// spin in 2, and 4 KiB synchronous copies ran 7-8x faster
        /// (bench/latency-bandwidth/idle-latency.json). Adaptive: where spins stop paying (a
        /// busy machine, a thinking client) the reader backs off to blocking.
        public static let defaultMicroseconds = 200
    }

    /// How a wait ended.
    public enum Outcome: Sendable, Hashable {
        /// Data came while spinning.
        case caught
        /// The spin ran out (or there was none) and the reader blocked until data came.
        case blocked
        /// The reader blocked without spinning: the machine had more runnable threads than CPUs
        /// (`RunQueue`). The budget stays as it was, so spinning resumes once CPUs are free.
        case crowded
    }

    public let settings: Settings
    /// The spin for the next wait while not probing, in nanoseconds.
    public private(set) var budget: UInt64
    /// Waits since the last probe, counted while `budget` is 0.
    public private(set) var waitsWithoutSpin = 0
    /// Counters for reports: waits, waits caught by spinning, nanoseconds spent spinning.
    public private(set) var waits: UInt64 = 0
    public private(set) var caught: UInt64 = 0
    public private(set) var spunNanoseconds: UInt64 = 0
    /// Waits that did not spin because the machine was crowded.
    public private(set) var crowded: UInt64 = 0

    public init(_ settings: Settings) {
        self.settings = settings
        budget = settings.limit
    }

    public var isEnabled: Bool { settings.limit > 0 }

    /// The spin, in nanoseconds, for a wait that starts now (a read found no data). Call
    /// `finish` when it ends.
    public mutating func spinForNextWait() -> UInt64 {
        guard isEnabled else { return 0 }
        waits &+= 1
        if budget > 0 { return budget }
        waitsWithoutSpin += 1
        guard waitsWithoutSpin >= settings.probeInterval else { return 0 }
        waitsWithoutSpin = 0
        return settings.limit
    }

    /// Records how the wait ended and how long this side spun in it.
    public mutating func finish(_ outcome: Outcome, spun: UInt64) {
        guard isEnabled else { return }
        spunNanoseconds &+= spun
        switch outcome {
        case .caught:
            caught &+= 1
            budget = settings.limit
            waitsWithoutSpin = 0
        case .crowded:
            crowded &+= 1
        case .blocked:
            guard spun > 0 else { return }  // nothing learned: the wait did not spin
            let halved = budget / 2
            budget = halved < settings.minimumBudget ? 0 : halved
        }
    }
}

extension BusyPoll.Settings {
    /// The settings `text` names: a whole number of microseconds up to one second ("0" is off).
    /// Nil for anything else, so a caller can report the bad value.
    public init?(parsingMicroseconds text: String) {
        guard let microseconds = Int(text), microseconds >= 0, microseconds <= 1_000_000 else { return nil }
        self.init(microseconds: microseconds)
    }
}
