import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// What a set of threads did over an interval, from /proc: how often they were switched in
/// (every wake-up of a sleeping thread is a switch) and how much CPU they used. It shows whether
/// anything of ours ran beside a measurement that should have had the machine to itself.
struct ThreadActivity: Sendable {
    var switches: UInt64 = 0
    var cpuNanoseconds: UInt64 = 0

    /// Switches and CPU so far of each thread of process `pid`, by thread id, leaving out
    /// `excluded`; nil when the process is gone.
    static func snapshot(process pid: pid_t, excluding excluded: Set<pid_t> = []) -> [pid_t: ThreadActivity]? {
        let tasks = "/proc/\(pid)/task"
        guard let threads = try? FileManager.default.contentsOfDirectory(atPath: tasks) else { return nil }
        var result: [pid_t: ThreadActivity] = [:]
        for thread in threads {
            guard let id = pid_t(thread), !excluded.contains(id) else { continue }
            var activity = ThreadActivity()
            // A thread that ended meanwhile has no files: it adds nothing.
            if let status = try? String(contentsOfFile: "\(tasks)/\(thread)/status", encoding: .utf8) {
                for line in status.split(separator: "\n")
                where line.hasPrefix("voluntary_ctxt_switches:") || line.hasPrefix("nonvoluntary_ctxt_switches:") {
                    activity.switches += line.split(separator: "\t").last.flatMap { UInt64($0.trimmingCharacters(in: .whitespaces)) } ?? 0
                }
            }
            if let text = try? String(contentsOfFile: "\(tasks)/\(thread)/schedstat", encoding: .utf8),
                let onCPU = text.split(separator: " ").first.flatMap({ UInt64($0) })
            {
                activity.cpuNanoseconds = onCPU
            }
            result[id] = activity
        }
        return result
    }

    /// What the threads of `later` did since `earlier`: a thread in both counts its difference,
    /// a new one all it did; one that ended is not seen (it adds nothing).
    static func during(_ earlier: [pid_t: ThreadActivity], _ later: [pid_t: ThreadActivity]) -> ThreadActivity {
        var total = ThreadActivity()
        for (id, now) in later {
            let before = earlier[id] ?? ThreadActivity()
            total.switches += now.switches >= before.switches ? now.switches - before.switches : 0
            total.cpuNanoseconds += now.cpuNanoseconds >= before.cpuNanoseconds ? now.cpuNanoseconds - before.cpuNanoseconds : 0
        }
        return total
    }
}

/// The whole machine's CPU use from /proc/stat: jiffies busy and in total, all cores.
struct MachineCPU: Sendable {
    var busy: UInt64 = 0
    var total: UInt64 = 0

    static func now() -> MachineCPU {
        guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
            let first = text.split(separator: "\n").first, first.hasPrefix("cpu ")
        else { return MachineCPU() }
        // user nice system idle iowait irq softirq steal ...: idle and iowait are the idle ones.
        let fields = first.split(separator: " ").dropFirst().compactMap { UInt64($0) }
        guard fields.count >= 5 else { return MachineCPU() }
        let total = fields.prefix(8).reduce(0, +)
        return MachineCPU(busy: total - fields[3] - fields[4], total: total)
    }

    /// The fraction of all cores' time that was busy between `earlier` and this.
    func busyFraction(since earlier: MachineCPU) -> Double {
        let total = self.total &- earlier.total
        return total == 0 ? .nan : Double(busy &- earlier.busy) / Double(total)
    }
}

/// CPU time of the calling thread, in nanoseconds.
func threadCPUNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
}

/// The kernel's id of the calling thread (from /proc/thread-self, which links to "PID/task/TID").
func currentThreadID() -> pid_t {
    let link = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/thread-self")) ?? ""
    return link.split(separator: "/").last.flatMap { pid_t($0) } ?? getpid()
}
