import ArgumentParser
import Foundation

/// `xpu-bench transports`: the same small-call latency and bulk bandwidth over each transport
/// (tcp, tls, shm), each beside its raw TCP baseline, in one run. The shim holds one session per
/// process, so each transport is measured by a child `xpu-bench` (latency, then bandwidth) with
/// its own server; the table puts them side by side and compares shared memory with TCP.
struct TransportsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "transports",
        abstract: "Latency and bandwidth over tcp, tls and shm, each beside its raw TCP baseline, in one run.")

    @Option(help: "The dist/ folder of scripts/build.sh (default: found from the xpu-bench executable).")
    var dist: String?

    @Option(help: "Measured calls per latency series.")
    var iterations = 10_000

    @Option(help: "Bulk sizes (e.g. 1MiB,16MiB).")
    var sizes = "1MiB,16MiB"

    @Flag(help: "Print one JSON object instead of the table.")
    var json = false

    struct Row: Codable {
        var transport: String
        var figures: [BenchFigure]
    }

    func run() throws {
        let dist = try BenchRig.findDist(dist)
        let executable = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().path
        var rows: [Row] = []
        for transport in BenchTransport.allCases {
            progress("transports: \(transport.rawValue): latency")
            var figures = try Self.figures(
                executable, ["latency", "--transport", transport.rawValue, "--dist", dist, "--iterations", String(iterations), "--json"])
            progress("transports: \(transport.rawValue): bandwidth")
            figures += try Self.figures(
                executable,
                ["bandwidth", "--transport", transport.rawValue, "--dist", dist, "--sizes", sizes, "--kinds", "random", "--json"]
            ).filter { !$0.name.contains("LZ4") }
            rows.append(Row(transport: transport.rawValue, figures: figures.filter { $0.baselineName.hasPrefix("raw TCP") }))
        }
        let p50 = { (transport: String) in
            rows.first { $0.transport == transport }?.figures.first { $0.name.hasPrefix("latency p50") }?.value
        }
        if json {
            print(try BenchOutput.json(rows))
            return
        }
        for row in rows {
            print("\n\(row.transport):")
            print(BenchOutput.table(row.figures), terminator: "")
        }
        if let tcp = p50("tcp"), let shm = p50("shm") {
            print(String(format: "\nshared memory vs TCP, small-call p50: %.2f us vs %.2f us (%.1fx lower)", shm, tcp, tcp / shm))
        }
    }

    /// Runs a child xpu-bench with `--json` and collects every figure it reports.
    static func figures(_ executable: String, _ arguments: [String]) throws -> [BenchFigure] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw BenchError("xpu-bench \(arguments.joined(separator: " ")) failed (exit \(process.terminationStatus))")
        }
        return collectFigures(try JSONSerialization.jsonObject(with: data))
    }

    /// Every object under a "figures" key, wherever it sits in a report.
    static func collectFigures(_ value: Any) -> [BenchFigure] {
        if let object = value as? [String: Any] {
            var found: [BenchFigure] = []
            for (key, child) in object {
                if key == "figures", let list = child as? [Any] {
                    for item in list {
                        guard let data = try? JSONSerialization.data(withJSONObject: item),
                            let figure = try? JSONDecoder().decode(BenchFigure.self, from: data)
                        else { continue }
                        found.append(figure)
                    }
                } else {
                    found += collectFigures(child)
                }
            }
            return found
        }
        if let list = value as? [Any] { return list.flatMap(collectFigures) }
        return []
    }
}
