import ArgumentParser
import Foundation
import XPUPlacement
import XPUTransport

#if canImport(Glibc)
import Glibc
#endif

/// `xpu-bench opencl`: enqueue rate of an empty kernel and buffer bandwidth through our OpenCL ICD
/// against an `xpu-remote-server --device opencl` on PoCL, beside the same calls directly on PoCL
/// and raw TCP over loopback, all in one run.
struct OpenCLCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "opencl",
        abstract: "OpenCL enqueue rate and buffer bandwidth through the ICD, beside direct PoCL and raw TCP.",
        discussion: """
            The ICD (dist/lib/libxpu-opencl.so) is loaded directly, as a program loads it as \
            libOpenCL.so.1; the direct side is the system's ICD loader (libOpenCL.so.1) with \
            OCL_ICD_VENDORS naming PoCL's .icd file alone. Without --server, xpu-bench starts \
            xpu-remote-server --device opencl:pocl on loopback with the same OCL_ICD_VENDORS.
            Enqueue rate: each round times N clEnqueueNDRangeKernel calls of an empty kernel (one \
            work-item, one buffer argument) and the clFinish after them, on both sides; the figure \
            is the median round. Its raw TCP line is the rate of 64-byte request / 40-byte reply \
            round trips over loopback (what a synchronous call could reach).
            Bandwidth: blocking clEnqueueWriteBuffer and clEnqueueReadBuffer of incompressible \
            data, 4 KiB to 64 MiB, interleaved with the direct calls and raw TCP streams of the \
            same byte count (a 24-byte header plus the bytes one way, 24 bytes back) round by \
            round; each point is the median, in MB/s (10^6 bytes/s). After timing, one round trip \
            per size is checked byte for byte on both sides.
            """)

    @Option(help: "A running xpu-remote-server --device opencl (host:port). Without it, one is started on loopback.")
    var server: String?

    @Option(help: "The dist/ folder of scripts/build.sh (default: found from the xpu-bench executable or the current folder).")
    var dist: String?

    @Option(help: "PoCL's ICD file: the direct side and the started server load PoCL alone through it.")
    var poclIcd = "/etc/OpenCL/vendors/pocl.icd"

    @Option(help: "Enqueues per round, before the one clFinish.")
    var enqueues = 10_000

    @Option(help: "Rounds per side; the median round is reported.")
    var rounds = 5

    @Option(help: "Unmeasured enqueues per side first.")
    var warmup = 200

    @Option(help: "Transfer sizes, comma-separated (4KiB,1MiB,...).", transform: BandwidthSettings.parseSizes)
    var sizes: [Int] = (0..<8).map { 4096 << (2 * $0) }  // 4 KiB, 16 KiB, ..., 64 MiB

    @Option(help: "Bytes each point moves, in repeats of its size (e.g. 128MiB).", transform: { text in
        guard let bytes = parseByteSize(text), bytes > 0 else { throw ValidationError("not a size: \(text)") }
        return bytes
    })
    var bytesPerPoint = 256 << 20

    @Option(help: "Fewest repeats of one point.")
    var minRepeats = 5

    @Option(help: "Most repeats of one point.")
    var maxRepeats = 1_000

    @Flag(help: "Print one JSON object instead of the tables.")
    var json = false

    func run() throws {
        let dist = try BenchRig.findDist(dist)
        guard FileManager.default.fileExists(atPath: poclIcd) else {
            throw BenchError("\(poclIcd) not found (apt-get install pocl-opencl-icd, or pass --pocl-icd)")
        }
        // Read by the ICD loader on its first call, and inherited by the server started here.
        setenv("OCL_ICD_VENDORS", poclIcd, 1)
        var localServer: Process?
        let endpoint: String
        if let server {
            endpoint = server
        } else {
            let (process, address) = try BenchRig.startServer(
                dist: dist, device: ["--device", "opencl:pocl"], arguments: ["--listen", "127.0.0.1:0"])
            localServer = process
            endpoint = address
        }
        defer {
            localServer?.terminate()
            localServer?.waitUntilExit()
        }
        setenv("XPU_SERVER", endpoint, 1)
        let remote = try BenchOpenCLSession(api: BenchOpenCL(label: "ICD", path: dist + "/lib/libxpu-opencl.so"))
        let direct = try BenchOpenCLSession(api: BenchOpenCL(label: "PoCL", path: "libOpenCL.so.1"))
        defer {
            remote.release()
            direct.release()
        }
        progress("opencl: server \(endpoint)\(localServer == nil ? "" : " (--device opencl:pocl, started by xpu-bench)"); remote platform \"\(remote.platformName)\", direct platform \"\(direct.platformName)\"")
        let raw = try RawTCPBaseline()
        let enqueue = try enqueueRate(remote: remote, direct: direct, raw: raw)
        let bandwidth = try bandwidth(remote: remote, direct: direct, raw: raw)
        let report = OpenCLReport(
            run: BenchRunInfo(
                server: localServer == nil ? endpoint : "\(endpoint) (xpu-remote-server --device opencl:pocl, started by xpu-bench)",
                dist: dist),
            remotePlatform: remote.platformName, directPlatform: direct.platformName,
            figures: enqueue.figures + bandwidth.figures, enqueue: enqueue, bandwidth: bandwidth)
        if json {
            print(try BenchOutput.json(report))
        } else {
            print("server: \(report.run.server); commit \(report.run.commit ?? "unknown"); \(report.run.cores) cores\n")
            print("enqueue: \(enqueues) clEnqueueNDRangeKernel + 1 clFinish per round, median of \(rounds) rounds")
            print(BenchOutput.table(enqueue.figures))
            print(bandwidth.matrix, terminator: "")
        }
    }

    func enqueueRate(remote: BenchOpenCLSession, direct: BenchOpenCLSession, raw: RawTCPBaseline) throws -> OpenCLEnqueueResult {
        progress("opencl: enqueue warm-up")
        _ = try remote.enqueueRound(count: warmup)
        _ = try direct.enqueueRound(count: warmup)
        var remoteRates: [Double] = [], directRates: [Double] = [], rawRates: [Double] = []
        for round in 0..<max(1, rounds) {
            progress("opencl: enqueue round \(round + 1)/\(rounds)")
            remoteRates.append(try remote.enqueueRound(count: enqueues))
            directRates.append(try direct.enqueueRound(count: enqueues))
            let start = monotonicNanoseconds()
            for _ in 0..<enqueues { try raw.exchange(request: 64, reply: 40) }
            rawRates.append(Double(enqueues) / (Double(monotonicNanoseconds() - start) / 1e9))
        }
        let result = OpenCLEnqueueResult(
            enqueuesPerRound: enqueues, remoteRounds: remoteRates, directRounds: directRates, rawRoundTripRounds: rawRates)
        return result
    }

    func bandwidth(remote: BenchOpenCLSession, direct: BenchOpenCLSession, raw: RawTCPBaseline) throws -> OpenCLBandwidthResult {
        guard let largest = sizes.max() else { throw BenchError("no sizes") }
        let source = UnsafeMutableRawBufferPointer.allocate(byteCount: largest + RawTCPBaseline.headerBytes, alignment: 4096)
        let destination = UnsafeMutableRawBufferPointer.allocate(byteCount: largest + RawTCPBaseline.headerBytes, alignment: 4096)
        defer {
            source.deallocate()
            destination.deallocate()
        }
        BandwidthKind.random.fill(source)
        destination.initializeMemory(as: UInt8.self, repeating: 0)
        let remoteBuffer = try remote.buffer(largest)
        let directBuffer = try direct.buffer(largest)
        defer {
            _ = remote.api.clReleaseMemObject(remoteBuffer)
            _ = direct.api.clReleaseMemObject(directBuffer)
        }
        var points: [OpenCLBandwidthPoint] = []
        for size in sizes {
            let repeats = min(maxRepeats, max(minRepeats, bytesPerPoint / size))
            progress("opencl: bandwidth \(BenchOutput.bytes(size)) x \(repeats), with direct PoCL and raw TCP interleaved")
            let sourceBytes = UnsafeRawBufferPointer(source)
            let series: [(name: String, series: BandwidthBench.Series)] = [
                ("raw up", .init(bytes: size) { try raw.exchange(request: RawTCPBaseline.headerBytes + size, reply: RawTCPBaseline.headerBytes, data: sourceBytes) }),
                ("write ICD", .init(bytes: size) { try remote.write(remoteBuffer, source.baseAddress!, size) }),
                ("write PoCL", .init(bytes: size) { try direct.write(directBuffer, source.baseAddress!, size) }),
                ("raw down", .init(bytes: size) { try raw.exchange(request: RawTCPBaseline.headerBytes, reply: RawTCPBaseline.headerBytes + size, into: destination) }),
                ("read ICD", .init(bytes: size) { try remote.read(remoteBuffer, destination.baseAddress!, size) }),
                ("read PoCL", .init(bytes: size) { try direct.read(directBuffer, destination.baseAddress!, size) }),
            ]
            // One unmeasured run of each, then rounds taking one sample of every series in a fresh
            // seeded order, so that load from other processes falls on all of them alike.
            var shuffler = SeededGenerator(seed: UInt64(size))
            for round in 0...repeats {
                for index in series.indices.shuffled(using: &shuffler) { try series[index].series.run(round > 0) }
            }
            var verified: [String: Bool] = [:]
            for (label, session, buffer) in [("ICD", remote, remoteBuffer), ("PoCL", direct, directBuffer)] {
                destination.initializeMemory(as: UInt8.self, repeating: 0xA5)
                try session.read(buffer, destination.baseAddress!, size)
                verified[label] = memcmp(source.baseAddress!, destination.baseAddress!, size) == 0
                if verified[label] == false { progress("opencl: \(BenchOutput.bytes(size)): the \(label) read back other bytes than it wrote") }
            }
            for (name, measured) in series {
                let side = name.hasSuffix("ICD") ? "ICD" : name.hasSuffix("PoCL") ? "PoCL" : nil
                points.append(OpenCLBandwidthPoint(
                    bytes: size, series: name, megabytesPerSecond: measured.median, repeats: measured.count,
                    verified: side.flatMap { verified[$0] }))
            }
        }
        return OpenCLBandwidthResult(sizes: sizes, points: points)
    }
}

struct OpenCLReport: Codable {
    var run: BenchRunInfo
    var remotePlatform: String
    var directPlatform: String
    /// Every figure of the run: value, baseline, ratio.
    var figures: [BenchFigure]
    var enqueue: OpenCLEnqueueResult
    var bandwidth: OpenCLBandwidthResult
}

struct OpenCLEnqueueResult: Codable, Sendable {
    var enqueuesPerRound: Int
    /// Enqueues (or raw round trips) per second, every round.
    var remoteRounds: [Double]
    var directRounds: [Double]
    var rawRoundTripRounds: [Double]

    var figures: [BenchFigure] {
        let remote = BenchSample(remoteRounds).median
        return [
            BenchFigure(
                name: "enqueue rate: empty kernel via ICD", unit: "enqueues/s", value: remote,
                baselineName: "same enqueues direct on PoCL", baseline: BenchSample(directRounds).median, better: .higher),
            BenchFigure(
                name: "enqueue rate: empty kernel via ICD", unit: "enqueues/s", value: remote,
                baselineName: "raw TCP round trips 64 B / 40 B", baseline: BenchSample(rawRoundTripRounds).median,
                better: .higher),
        ]
    }
}

/// One point: a size and a series (write/read through the ICD or on PoCL, raw up/down), in MB/s.
struct OpenCLBandwidthPoint: Codable, Sendable {
    var bytes: Int
    /// "write ICD", "write PoCL", "raw up", "read ICD", "read PoCL", "raw down".
    var series: String
    var megabytesPerSecond: Double
    var repeats: Int
    /// Whether a round trip read back what was written (nil for the raw baseline).
    var verified: Bool?
}

struct OpenCLBandwidthResult: Codable, Sendable {
    var sizes: [Int]
    var points: [OpenCLBandwidthPoint]

    func rate(_ series: String, _ bytes: Int) -> Double {
        points.first { $0.series == series && $0.bytes == bytes }?.megabytesPerSecond ?? .nan
    }

    var figures: [BenchFigure] {
        sizes.flatMap { size -> [BenchFigure] in
            let label = BenchOutput.bytes(size)
            return [("write", "raw up", "up"), ("read", "raw down", "down")].flatMap { direction, raw, way in
                [
                    BenchFigure(
                        name: "clEnqueue\(direction == "write" ? "Write" : "Read")Buffer \(label) via ICD", unit: "MB/s",
                        value: rate("\(direction) ICD", size), baselineName: "same on PoCL directly",
                        baseline: rate("\(direction) PoCL", size), better: .higher),
                    BenchFigure(
                        name: "clEnqueue\(direction == "write" ? "Write" : "Read")Buffer \(label) via ICD", unit: "MB/s",
                        value: rate("\(direction) ICD", size), baselineName: "raw TCP stream \(label) \(way)",
                        baseline: rate(raw, size), better: .higher),
                ]
            }
        }
    }

    /// The readable table: a row per size, MB/s, the ICD's ratio to raw TCP of the same direction.
    var matrix: String {
        let header = ["size", "raw up", "write ICD", "write PoCL", "raw down", "read ICD", "read PoCL"]
        var rows: [[String]] = []
        for size in sizes {
            var row = [BenchOutput.bytes(size)]
            for (raw, icd, pocl) in [("raw up", "write ICD", "write PoCL"), ("raw down", "read ICD", "read PoCL")] {
                let baseline = rate(raw, size)
                let bad = points.contains { $0.bytes == size && ($0.series == icd || $0.series == pocl) && $0.verified == false }
                row.append(String(format: "%.0f", baseline))
                row.append(String(format: "%.0f (%.2fx)%@", rate(icd, size), rate(icd, size) / baseline, bad ? " BAD" : ""))
                row.append(String(format: "%.0f", rate(pocl, size)))
            }
            rows.append(row)
        }
        let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max() ?? 0 }
        func line(_ cells: [String]) -> String {
            cells.indices.map { String(repeating: " ", count: widths[$0] - cells[$0].count) + cells[$0] }.joined(separator: "  ")
        }
        var text = "bandwidth: MB/s (10^6 bytes/s), median repeat; (ICD's ratio to raw TCP of the same direction and size)\n"
        text += line(header) + "\n" + line(widths.map { String(repeating: "-", count: $0) }) + "\n"
        for row in rows { text += line(row) + "\n" }
        return text
    }
}
