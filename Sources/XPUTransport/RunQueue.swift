import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Whether this machine has more runnable threads than CPUs: then a reader that spins takes a
/// CPU from a thread that needs one (on a busy machine, often the very peer it waits for), and
/// a blocked reader wakes on a CPU that is running anyway, so spinning cannot win and blocking
/// costs no idle wake-up.
///
/// The count is the kernel's instantaneous number of runnable threads (`/proc/loadavg`, fourth
/// field, "runnable/total"), which includes the reader itself and a peer it has just woken: two
/// threads of one synchronous call on an otherwise idle two-CPU machine are not crowded. It is
/// read at most once per `sampleInterval` per process (one `pread`); between samples every
/// reader uses the last answer. Where the file cannot be read, the machine never counts as
/// crowded.
enum RunQueue {
    /// How long one reading of the run queue stands for, in nanoseconds.
    static let sampleInterval: UInt64 = 10_000_000

    /// When the last reading was taken (monotonic nanoseconds; 0: never).
    private static let sampledAt = Atomic<UInt64>(0)
    private static let crowdedFlag = Atomic<Bool>(false)
    private static let loadAverage: Int32 = open("/proc/loadavg", O_RDONLY | O_CLOEXEC)
    private static let processors = max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))

    /// Whether more threads are runnable than there are CPUs, as of a reading at most
    /// `sampleInterval` before `now`.
    static func isCrowded(now: UInt64) -> Bool {
        let last = sampledAt.load(ordering: .relaxed)
        if last != 0, now &- last < sampleInterval { return crowdedFlag.load(ordering: .relaxed) }
        // One reader takes the new sample; the others go on with the last answer meanwhile.
        guard sampledAt.compareExchange(expected: last, desired: max(now, 1), ordering: .relaxed).exchanged else {
            return crowdedFlag.load(ordering: .relaxed)
        }
        let crowded = runnableThreads().map { $0 > processors } ?? false
        crowdedFlag.store(crowded, ordering: .relaxed)
        return crowded
    }

    /// The runnable threads on the machine now, or nil when `/proc/loadavg` cannot be read.
    static func runnableThreads() -> Int? {
        guard loadAverage >= 0 else { return nil }
        return withUnsafeTemporaryAllocation(byteCount: 128, alignment: 1) { buffer -> Int? in
            let count = pread(loadAverage, buffer.baseAddress, buffer.count, 0)
            guard count > 0 else { return nil }
            return runnable(inLoadAverage: UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
        }
    }

    /// The runnable count in a `/proc/loadavg` line ("0.52 0.58 0.59 3/412 12345"): the number
    /// before the slash of the fourth field. Nil when the line does not have that shape.
    static func runnable(inLoadAverage line: UnsafeRawBufferPointer) -> Int? {
        var fields = 0
        var index = 0
        while index < line.count, fields < 3 {
            if line[index] == UInt8(ascii: " ") { fields += 1 }
            index += 1
        }
        guard fields == 3 else { return nil }
        var value = 0
        var digits = 0
        while index < line.count, line[index] >= UInt8(ascii: "0"), line[index] <= UInt8(ascii: "9"), digits < 9 {
            value = value * 10 + Int(line[index] - UInt8(ascii: "0"))
            digits += 1
            index += 1
        }
        guard digits > 0, index < line.count, line[index] == UInt8(ascii: "/") else { return nil }
        return value
    }
}
