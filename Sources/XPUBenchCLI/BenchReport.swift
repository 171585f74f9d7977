import Foundation

/// One measured figure beside its baseline from the same run.
struct BenchFigure: Codable, Sendable {
    enum Better: String, Codable, Sendable { case lower, higher }

    /// What was measured ("latency p50: cuMemGetInfo_v2 via shim").
    var name: String
    var unit: String
    var value: Double
    /// What the value is compared with ("raw TCP ping-pong 24 B / 40 B").
    var baselineName: String
    var baseline: Double
    /// value / baseline.
    var ratio: Double
    /// Whether a lower or a higher value is the better one (latency: lower; throughput: higher).
    var better: Better

    init(name: String, unit: String, value: Double, baselineName: String, baseline: Double, better: Better) {
        self.name = name
        self.unit = unit
        self.value = value
        self.baselineName = baselineName
        self.baseline = baseline
        self.ratio = baseline == 0 ? .nan : value / baseline
        self.better = better
    }
}

/// Nearest-rank percentiles of a sample (values in any unit).
struct BenchSample: Sendable {
    let sorted: [Double]

    init(_ values: [Double]) { sorted = values.sorted() }

    func percentile(_ p: Double) -> Double {
        guard !sorted.isEmpty else { return .nan }
        let rank = Int((p / 100 * Double(sorted.count)).rounded(.up))
        return sorted[min(max(rank, 1), sorted.count) - 1]
    }

    var median: Double { percentile(50) }
    var mean: Double { sorted.isEmpty ? .nan : sorted.reduce(0, +) / Double(sorted.count) }
}

/// What a run was: where, on what, which commit.
struct BenchRunInfo: Codable, Sendable {
    var server: String
    var dist: String
    var commit: String?
    var host: String
    var cores: Int
    var date: String

    init(rig: BenchRig) {
        self.init(server: rig.serverDescription, dist: rig.dist)
    }

    init(server: String, dist: String) {
        self.server = server
        self.dist = dist
        commit = Self.gitCommit()
        host = ProcessInfo.processInfo.hostName
        cores = ProcessInfo.processInfo.activeProcessorCount
        date = ISO8601DateFormatter().string(from: Date())
    }

    /// `git rev-parse --short HEAD` of the current folder, when it is a checkout.
    private static func gitCommit() -> String? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["git", "rev-parse", "--short", "HEAD"]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return nil }
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { return nil }
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return text.isEmpty ? nil : text
    }
}

enum BenchOutput {
    /// A plain table: figure, value, baseline, baseline value, ratio.
    static func table(_ figures: [BenchFigure]) -> String {
        let header = ["figure", "value", "baseline", "baseline value", "ratio"]
        let rows = figures.map { figure in
            [
                figure.name, format(figure.value, figure.unit), figure.baselineName,
                format(figure.baseline, figure.unit),
                figure.ratio.isFinite ? String(format: "%.2fx", figure.ratio) : "-",
            ]
        }
        let widths = header.indices.map { column in
            ([header] + rows).map { $0[column].count }.max() ?? 0
        }
        func line(_ cells: [String]) -> String {
            cells.indices.map { column in
                let cell = cells[column]
                let pad = String(repeating: " ", count: widths[column] - cell.count)
                // Numbers right-aligned, names left-aligned.
                return column == 0 || column == 2 ? cell + pad : pad + cell
            }.joined(separator: "  ")
        }
        var text = line(header) + "\n" + line(widths.map { String(repeating: "-", count: $0) }) + "\n"
        for row in rows { text += line(row) + "\n" }
        return text
    }

    static func format(_ value: Double, _ unit: String) -> String {
        guard value.isFinite else { return "-" }
        let digits = value >= 1000 ? 0 : value >= 100 ? 1 : value >= 10 ? 2 : 3
        return String(format: "%.\(digits)f \(unit)", value)
    }

    /// Pretty-printed JSON with sorted keys.
    static func json(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(
            positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    /// Human-readable byte counts: 4 KiB, 16 MiB.
    static func bytes(_ count: Int) -> String {
        if count >= 1 << 30, count % (1 << 30) == 0 { return "\(count >> 30) GiB" }
        if count >= 1 << 20, count % (1 << 20) == 0 { return "\(count >> 20) MiB" }
        if count >= 1 << 10, count % (1 << 10) == 0 { return "\(count >> 10) KiB" }
        return "\(count) B"
    }
}

/// Sizes on the command line: 4KiB, 16MiB, 1GiB, 4096.
func parseByteSize(_ text: String) -> Int? {
    let units: [(String, Int)] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10), ("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)]
    for (suffix, scale) in units where text.hasSuffix(suffix) {
        guard let number = Int(text.dropLast(suffix.count)) else { return nil }
        return number * scale
    }
    return Int(text)
}
