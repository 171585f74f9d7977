import Foundation
import XPUPlacement

/// What a `pool-sim` run was asked to do.
struct PoolSimSetup: Codable {
    var nodesFile: String
    var podsFile: String
    var nodes: Int
    var gpus: Int
    var traceTasks: Int
    var mode: PlacementMode
    var wholeCard: Bool
    var ratio: Double
    var order: WorkloadTuning.Order
    var seeds: [UInt64]
}

extension PlacementMode: Codable {}
extension WorkloadTuning.Order: Codable {}

/// Mean, spread and range of one figure over seeds.
struct PoolSimStatistic: Codable {
    var mean: Double
    /// Sample standard deviation (0 for one seed).
    var sd: Double
    var min: Double
    var max: Double

    init(_ values: [Double]) {
        let count = Double(values.count)
        mean = values.reduce(0, +) / count
        let mean = self.mean
        sd = values.count > 1 ? (values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / (count - 1)).squareRoot() : 0
        min = values.min() ?? 0
        max = values.max() ?? 0
    }
}

/// One policy's figures over all seeds.
struct PoolSimPolicyResult: Codable {
    struct Seed: Codable {
        var seed: UInt64
        var tasks: Int
        var allocationRate: Double
        var servedRate: Double
        var fragmentationRate: Double
        var failedTasks: Int
        var failedGPUTasks: Int
        var remoteTasks: Int
        var failedByKind: [String: Int]
        var seconds: Double
    }

    var policy: String
    var allocationRate: PoolSimStatistic
    var servedRate: PoolSimStatistic
    var fragmentationRate: PoolSimStatistic
    var failedTasks: PoolSimStatistic
    var remoteTasks: PoolSimStatistic
    var secondsPerSeed: PoolSimStatistic
    var perSeed: [Seed]
    /// Mean over seeds of allocation (and served) rate at arrived workload 0, 0.01, ...: the plot.
    var curve: [PoolSimCurvePoint]

    init(policy: String, outcomes: [ReplayOutcome], secondsPerSeed seconds: [Double]) {
        self.policy = policy
        allocationRate = PoolSimStatistic(outcomes.map(\.allocationRate))
        servedRate = PoolSimStatistic(outcomes.map(\.servedRate))
        fragmentationRate = PoolSimStatistic(outcomes.map(\.fragmentationRate))
        failedTasks = PoolSimStatistic(outcomes.map { Double($0.failedTasks) })
        remoteTasks = PoolSimStatistic(outcomes.map { Double($0.remoteTasks) })
        secondsPerSeed = PoolSimStatistic(seconds)
        perSeed = zip(outcomes, seconds).map { outcome, seconds in
            Seed(
                seed: outcome.seed, tasks: outcome.tasks, allocationRate: outcome.allocationRate,
                servedRate: outcome.servedRate, fragmentationRate: outcome.fragmentationRate,
                failedTasks: outcome.failedTasks, failedGPUTasks: outcome.failedGPUTasks,
                remoteTasks: outcome.remoteTasks,
                failedByKind: Dictionary(uniqueKeysWithValues: outcome.failedByKind.map { ($0.key.rawValue, $0.value) }),
                seconds: seconds)
        }
        curve = PoolSimCurvePoint.mean(of: outcomes)
    }
}

/// A point of the allocation curve.
struct PoolSimCurvePoint: Codable {
    var arrived: Double
    var allocation: Double
    var served: Double

    /// Averages the seeds' samples on a common grid of arrived workload (step 0.01), each seed
    /// read as a step function (its last sample at or before the grid point).
    static func mean(of outcomes: [ReplayOutcome]) -> [PoolSimCurvePoint] {
        let end = outcomes.map { $0.samples.last?.arrived ?? 0 }.min() ?? 0
        var points: [PoolSimCurvePoint] = []
        var step = 0
        while Double(step) * 0.01 <= end + 1e-9 {
            let x = Double(step) * 0.01
            var allocation = 0.0
            var served = 0.0
            for outcome in outcomes {
                let sample = outcome.samples.last { $0.arrived <= x + 1e-9 }
                allocation += sample?.allocation ?? 0
                served += sample?.served ?? 0
            }
            let count = Double(outcomes.count)
            points.append(PoolSimCurvePoint(arrived: x, allocation: allocation / count, served: served / count))
            step += 1
        }
        return points
    }
}

/// The whole run's results, as a table or JSON.
struct PoolSimReport: Codable {
    var setup: PoolSimSetup
    var results: [PoolSimPolicyResult]

    func json() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }

    func table() -> String {
        let seeds = setup.seeds
        let seedRange = seeds.count == 1 ? "\(seeds[0])" : "\(seeds.first!)..\(seeds.last!)"
        var lines: [String] = []
        lines.append(
            "pool-sim: \(setup.nodes) nodes, \(setup.gpus) GPUs, \(setup.traceTasks) trace tasks tuned to "
                + String(format: "%.2f", setup.ratio) + "x GPU capacity (\(setup.order.rawValue) order), "
                + "seeds \(seedRange), placement \(setup.mode.rawValue), "
                + (setup.wholeCard ? "whole cards" : "GPU sharing"))
        lines.append(
            pad("policy", 8) + pad("alloc % (mean ± sd)", 21) + pad("[min, max]", 17) + pad("served %", 10)
                + pad("frag %", 8) + pad("failed tasks", 14) + pad("remote", 8) + "s/seed")
        for result in results {
            let a = result.allocationRate
            lines.append(
                pad(result.policy, 8)
                    + pad(String(format: "%.2f ± %.2f", a.mean * 100, a.sd * 100), 21)
                    + pad(String(format: "[%.2f, %.2f]", a.min * 100, a.max * 100), 17)
                    + pad(String(format: "%.2f", result.servedRate.mean * 100), 10)
                    + pad(String(format: "%.2f", result.fragmentationRate.mean * 100), 8)
                    + pad(String(format: "%.1f ± %.1f", result.failedTasks.mean, result.failedTasks.sd), 14)
                    + pad(String(format: "%.0f", result.remoteTasks.mean), 8)
                    + String(format: "%.1f", result.secondsPerSeed.mean))
        }
        return lines.joined(separator: "\n")
    }

    private func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text + " " : text + String(repeating: " ", count: width - text.count)
    }
}
