import ArgumentParser
import Foundation
import XPUPlacement

/// `xpu-bench pool-sim`: replays the openb trace through the pool's placement policies with the
/// FGD simulator's protocol and reports GPU allocation, fragmentation and failed tasks.
struct PoolSimCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pool-sim",
        abstract: "Replay the openb GPU trace through the pool's placement policies.",
        discussion: """
            Protocol (FGD simulator, USENIX ATC'23): the trace's tasks, then uniform draws from it \
            until the asked milli-GPU reaches --ratio x the cluster's; placed one by one, no \
            departures; a task that fits nowhere fails and is skipped. Reports the final GPU \
            allocation rate (allocated / total milli-GPU), the fragmentation rate (share of idle \
            milli-GPU the workload cannot use) and failed tasks, mean and spread over seeds.
            """)

    @Option(help: "Node list CSV (sn,cpu_milli,memory_mib,gpu,model).")
    var nodes = "../shared/data/openb/openb_node_list_gpu_node.csv"

    @Option(help: "Task list CSV (name,cpu_milli,memory_mib,num_gpu,gpu_milli[,gpu_spec,qos]).")
    var pods = "../shared/data/openb/openb_pod_list_default.csv"

    @Option(help: "Placement policy: \(NamedPolicy.Name.allCases.map(\.rawValue).joined(separator: ", ")), or all.")
    var policy = "all"

    @Option(help: "Number of seeds (workload draws) per policy.")
    var seeds = 10

    @Option(help: "First seed; seeds run first-seed, first-seed+1, ...")
    var firstSeed: UInt64 = 42

    @Option(help: "Target asked milli-GPU as a multiple of the cluster's.")
    var ratio = 1.3

    @Option(help: "Order of the trace's own tasks: trace (file order) or shuffled (by seed, as the FGD artifact runs).")
    var order: WorkloadTuning.Order = .shuffled

    @Flag(help: "Remote placement: a task's GPUs may be on another node than its CPU and memory.")
    var remote = false

    @Flag(help: "Whole-card allocation: every GPU task takes whole cards (no slicing).")
    var wholeCard = false

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    @Option(help: "Write an SVG plot of allocation rate vs arrived workload to this file.")
    var svg: String?

    @Flag(help: "No progress on stderr.")
    var quiet = false

    mutating func validate() throws {
        guard seeds > 0 else { throw ValidationError("--seeds must be at least 1") }
        guard ratio > 0 else { throw ValidationError("--ratio must be positive") }
        guard policy == "all" || NamedPolicy.Name(rawValue: policy) != nil else {
            throw ValidationError("unknown policy '\(policy)'")
        }
    }

    func run() throws {
        let nodeList = try TraceCSV.nodes(fromCSV: try PoolSimInput.read(nodes))
        let trace = try TraceCSV.requests(fromCSV: try PoolSimInput.read(pods))
        let names = policy == "all" ? NamedPolicy.Name.allCases : [NamedPolicy.Name(rawValue: policy)!]
        let setup = PoolSimSetup(
            nodesFile: nodes, podsFile: pods, nodes: nodeList.count,
            gpus: nodeList.reduce(0) { $0 + $1.gpuCount }, traceTasks: trace.count,
            mode: remote ? .remote : .local, wholeCard: wholeCard, ratio: ratio, order: order,
            seeds: Array(firstSeed..<(firstSeed + UInt64(seeds))))
        var results: [PoolSimPolicyResult] = []
        for name in names {
            let simulation = PoolSimulation(
                nodes: nodeList, trace: trace, policy: name, mode: setup.mode, wholeCards: wholeCard,
                tuning: WorkloadTuning(ratio: ratio, order: order))
            var outcomes: [ReplayOutcome] = []
            var seconds: [Double] = []
            for seed in setup.seeds {
                let started = Date()
                let label = "\(name.rawValue) seed \(seed)"
                let outcome = simulation.run(seed: seed) { done, total in
                    if !quiet { PoolSimInput.progress("\(label): \(done)/\(total) tasks") }
                }
                let elapsed = Date().timeIntervalSince(started)
                if !quiet {
                    PoolSimInput.progress(
                        String(
                            format: "%@: allocation %.2f%%, %d failed, %.1f s", label,
                            outcome.allocationRate * 100, outcome.failedTasks, elapsed), done: true)
                }
                outcomes.append(outcome)
                seconds.append(elapsed)
            }
            results.append(PoolSimPolicyResult(policy: name.rawValue, outcomes: outcomes, secondsPerSeed: seconds))
        }
        let report = PoolSimReport(setup: setup, results: results)
        print(json ? try report.json() : report.table())
        if let svg {
            try PoolSimPlot(report: report).svg().write(toFile: svg, atomically: true, encoding: .utf8)
        }
    }
}

extension WorkloadTuning.Order: ExpressibleByArgument {}

/// File reading and progress output: the command's only IO.
enum PoolSimInput {
    static func read(_ path: String) throws -> String {
        do {
            return try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ValidationError("cannot read \(path): \(error.localizedDescription)")
        }
    }

    /// One progress line on stderr, rewritten in place until `done`.
    static func progress(_ line: String, done: Bool = false) {
        let text = "\r\u{1B}[K" + line + (done ? "\n" : "")
        FileHandle.standardError.write(Data(text.utf8))
    }
}
