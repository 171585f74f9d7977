import ArgumentParser
import CXPUDriver
import Foundation
import XPUPlacement
import XPUTransport

/// `xpu-bench bandwidth`: blocking host-to-device and device-to-host copies through the shim, for
/// sizes from 4 KiB to 256 MiB and three kinds of data, beside raw TCP stream throughput of the same
/// byte count over loopback in the same run.
struct BandwidthCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bandwidth",
        abstract: "HtoD and DtoH copy throughput through the shim, beside raw TCP stream throughput.",
        discussion: """
            For each size and kind of data: cuMemcpyHtoD_v2 and cuMemcpyDtoH_v2 of that many bytes \
            (pageable host memory), with LZ4 on and (where the shim can switch it) off, beside the \
            raw TCP baseline (a 24-byte header plus the bytes one way, a 24-byte answer the other \
            way, between two sockets on loopback in this process). The series are interleaved: each \
            round takes one sample of each in turn (starting one series later than the round \
            before), so that load from other processes falls on all of them alike. Rounds repeat until about --bytes-per-point bytes moved per series (at \
            least --min-repeats times); each point is the median, in MB/s (10^6 bytes/s), the raw \
            lines the median of the samples taken beside every kind. After timing, one round trip \
            per size and kind is checked byte for byte.
            Kinds: zeros; text (words drawn from a 64-word vocabulary: compressible, low entropy); \
            random (incompressible).
            """)

    @OptionGroup var rig: BenchRigOptions
    @OptionGroup var settings: BandwidthSettings

    @Option(help: "Write an SVG plot of throughput vs size to this file.")
    var svg: String?

    func run() throws {
        let rig = try BenchRig(options: rig)
        defer { rig.shutdown() }
        let result = try BandwidthBench(settings: settings).run(rig: rig)
        if let svg {
            try BandwidthPlot.svg(result).write(toFile: svg, atomically: true, encoding: .utf8)
            progress("bandwidth: plot written to \(svg)")
        }
        if self.rig.json {
            print(try BenchOutput.json(BandwidthReport(run: BenchRunInfo(rig: rig), bandwidth: result)))
        } else {
            print(result.matrix, terminator: "")
        }
    }
}

struct BandwidthReport: Codable {
    var run: BenchRunInfo
    var bandwidth: BandwidthResult
}

struct BandwidthSettings: ParsableArguments {
    @Option(help: "Copy sizes, comma-separated (4KiB,1MiB,...).", transform: BandwidthSettings.parseSizes)
    var sizes: [Int] = (0..<9).map { 4096 << (2 * $0) }  // 4 KiB, 16 KiB, ..., 256 MiB

    @Option(help: "Data kinds, comma-separated: zeros, text, random.", transform: BandwidthSettings.parseKinds)
    var kinds: [BandwidthKind] = BandwidthKind.allCases

    @Option(help: "Bytes each point moves, in repeats of its size (e.g. 128MiB).", transform: { text in
        guard let bytes = parseByteSize(text), bytes > 0 else { throw ValidationError("not a size: \(text)") }
        return bytes
    })
    var bytesPerPoint = 512 << 20

    @Option(help: "Fewest repeats of one point.")
    var minRepeats = 5

    @Option(help: "Most repeats of one point.")
    var maxRepeats = 2_000

    static func parseSizes(_ text: String) throws -> [Int] {
        try text.split(separator: ",").map { item in
            guard let size = parseByteSize(String(item)), size > 0 else { throw ValidationError("not a size: \(item)") }
            return size
        }
    }

    static func parseKinds(_ text: String) throws -> [BandwidthKind] {
        try text.split(separator: ",").map { item in
            guard let kind = BandwidthKind(rawValue: String(item)) else {
                throw ValidationError("unknown kind \(item); kinds are \(BandwidthKind.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return kind
        }
    }
}

enum BandwidthKind: String, CaseIterable, Codable, Sendable {
    case zeros, text, random

    /// Fills `buffer` with this kind of data (deterministic: the same bytes every run).
    func fill(_ buffer: UnsafeMutableRawBufferPointer) {
        switch self {
        case .zeros:
            buffer.initializeMemory(as: UInt8.self, repeating: 0)
        case .random:
            var generator = XorShift(seed: 0x9E37_79B9_7F4A_7C15)
            let words = buffer.count / 8
            let wordBuffer = buffer.bindMemory(to: UInt64.self)
            for index in 0..<words { wordBuffer[index] = generator.next() }
            for index in (words * 8)..<buffer.count { buffer[index] = UInt8(truncatingIfNeeded: generator.next()) }
        case .text:
            let vocabulary = BandwidthKind.vocabulary
            var generator = XorShift(seed: 42)
            var offset = 0
            while offset < buffer.count {
                let word = vocabulary[Int(generator.next() & 63)]
                let count = min(word.count, buffer.count - offset)
                word.withUnsafeBytes { source in
                    (buffer.baseAddress! + offset).copyMemory(from: source.baseAddress!, byteCount: count)
                }
                offset += count
            }
        }
    }

    /// 64 words with their separator, as UTF-8.
    static let vocabulary: [[UInt8]] = {
        let words = """
            the of and to in is it that for was on are as with his they at be this from have or by one \
            had not but what all were when we there can an your which their said if do will each about \
            how up out them then she many some so these would other into has more her two like him see \
            time could
            """.split(separator: " ")
        return words.prefix(64).enumerated().map { index, word in
            Array((word + (index % 9 == 8 ? ".\n" : " ")).utf8)
        }
    }()
}

/// A small, fast, seeded generator for test data (xorshift64*).
struct XorShift {
    var state: UInt64
    init(seed: UInt64) { state = seed == 0 ? 1 : seed }
    @inline(__always)
    mutating func next() -> UInt64 {
        state ^= state >> 12
        state ^= state << 25
        state ^= state >> 27
        return state &* 0x2545_F491_4F6C_DD1D
    }
}

/// One point: a size, a direction and a kind (or the raw baseline), in MB/s.
struct BandwidthPoint: Codable, Sendable {
    var bytes: Int
    /// "HtoD", "DtoH", or "raw up" / "raw down" for the baseline.
    var series: String
    var kind: String?
    var megabytesPerSecond: Double
    var repeats: Int
    /// Whether the round trip read back what was written (nil for the raw baseline).
    var verified: Bool?
}

struct BandwidthResult: Codable, Sendable {
    var sizes: [Int]
    var kinds: [BandwidthKind]
    var points: [BandwidthPoint]
    var figures: [BenchFigure]

    func point(_ series: String, _ kind: BandwidthKind?, _ bytes: Int) -> BandwidthPoint? {
        points.first { $0.series == series && $0.kind == kind?.rawValue && $0.bytes == bytes }
    }

    /// The readable table: a row per size, MB/s and the ratio to the raw line of the same direction.
    var matrix: String {
        var header = ["size", "raw up"]
        for kind in kinds { header.append("HtoD \(kind.rawValue)") }
        header.append("raw down")
        for kind in kinds { header.append("DtoH \(kind.rawValue)") }
        var rows: [[String]] = []
        for size in sizes {
            var row = [BenchOutput.bytes(size)]
            for (direction, rawName) in [("HtoD", "raw up"), ("DtoH", "raw down")] {
                let raw = point(rawName, nil, size)?.megabytesPerSecond ?? .nan
                row.append(String(format: "%.0f", raw))
                for kind in kinds {
                    let value = point(direction, kind, size)
                    let mark = value?.verified == false ? " BAD" : ""
                    row.append(String(format: "%.0f (%.2fx)%@", value?.megabytesPerSecond ?? .nan,
                                      (value?.megabytesPerSecond ?? .nan) / raw, mark))
                }
            }
            rows.append(row)
        }
        let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max() ?? 0 }
        func line(_ cells: [String]) -> String {
            cells.indices.map { String(repeating: " ", count: widths[$0] - cells[$0].count) + cells[$0] }
                .joined(separator: "  ")
        }
        var text = "bandwidth: MB/s (10^6 bytes/s), median repeat; (ratio to raw TCP of the same direction and size)\n"
        text += line(header) + "\n" + line(widths.map { String(repeating: "-", count: $0) }) + "\n"
        for row in rows { text += line(row) + "\n" }
        return text
    }
}

struct BandwidthBench {
    var settings: BandwidthSettings

    func run(rig: BenchRig) throws -> BandwidthResult {
        let sizes = settings.sizes
        guard let largest = sizes.max() else { throw BenchError("no sizes") }
        let session = rig.remote
        let driver = session.driver
        try session.makeCurrent()
        let raw = try RawTCPBaseline()
        // +24: the raw baseline's answer header lands in the same buffer as a download's bytes.
        let source = UnsafeMutableRawBufferPointer.allocate(byteCount: largest + RawTCPBaseline.headerBytes, alignment: 4096)
        let destination = UnsafeMutableRawBufferPointer.allocate(byteCount: largest + RawTCPBaseline.headerBytes, alignment: 4096)
        defer {
            source.deallocate()
            destination.deallocate()
        }
        source.initializeMemory(as: UInt8.self, repeating: 0)
        destination.initializeMemory(as: UInt8.self, repeating: 0)
        var device: CUdeviceptr = 0
        try driver.check(driver.cuMemAlloc(&device, largest), "cuMemAlloc(\(largest))")
        defer { _ = driver.cuMemFree(device) }

        var points: [BandwidthPoint] = []
        var figures: [BenchFigure] = []
        let setCompression = driver.setCompression.flatMap { set in set(0) == 0 && set(1) == 1 ? set : nil }
        for size in sizes {
            let repeats = min(settings.maxRepeats, max(settings.minRepeats, settings.bytesPerPoint / size))
            let label = BenchOutput.bytes(size)
            let sourceBytes = UnsafeRawBufferPointer(source)
            let rawUp = Series(bytes: size) {
                try raw.exchange(request: RawTCPBaseline.headerBytes + size, reply: RawTCPBaseline.headerBytes, data: sourceBytes)
            }
            let rawDown = Series(bytes: size) {
                try raw.exchange(request: RawTCPBaseline.headerBytes, reply: RawTCPBaseline.headerBytes + size, into: destination)
            }
            var results: [(kind: BandwidthKind, htod: Series, dtoh: Series, off: (htod: Series, dtoh: Series)?, verified: Bool)] = []
            for kind in settings.kinds {
                progress("bandwidth: \(label) x \(repeats): \(kind.rawValue), with raw TCP interleaved")
                let data = UnsafeMutableRawBufferPointer(rebasing: source[0..<size])
                kind.fill(data)
                let htodBody = { try driver.check(driver.cuMemcpyHtoD(device, source.baseAddress, size), "cuMemcpyHtoD_v2(\(size))") }
                let dtohBody = { try driver.check(driver.cuMemcpyDtoH(destination.baseAddress, device, size), "cuMemcpyDtoH_v2(\(size))") }
                let htod = Series(bytes: size, htodBody)
                let dtoh = Series(bytes: size, dtohBody)
                // LZ4 off (when the session can switch it) beside LZ4 on, in the same rounds.
                let off = setCompression.map { _ in (htod: Series(bytes: size, htodBody), dtoh: Series(bytes: size, dtohBody)) }
                func compression(_ on: Bool) { _ = setCompression?(on ? 1 : 0) }
                // One unmeasured run of each, then rounds that take one sample of every series in
                // turn, so that load from other processes falls on the baseline and the copies
                // alike; each round takes them in a fresh (seeded) order, because the order
                // matters: a download right after the raw one runs at about half speed at 1-4 MiB,
                // and a fixed cyclic order would give that place to one series always.
                var steps: [(Bool) throws -> Void] = [rawUp.run, htod.run, rawDown.run, dtoh.run]
                if let off {
                    steps.insert({ measured in
                        compression(false)
                        defer { compression(true) }
                        try off.htod.run(measured)
                    }, at: 1)
                    steps.insert({ measured in
                        compression(false)
                        defer { compression(true) }
                        try off.dtoh.run(measured)
                    }, at: 4)
                }
                var shuffler = SeededGenerator(seed: UInt64(size))
                for round in 0...repeats {
                    for index in steps.indices.shuffled(using: &shuffler) { try steps[index](round > 0) }
                }
                // Check the last round trip's bytes (untimed).
                destination.initializeMemory(as: UInt8.self, repeating: 0xA5)
                try dtohBody()
                let verified = memcmp(source.baseAddress!, destination.baseAddress!, size) == 0
                if !verified { progress("bandwidth: \(label) \(kind.rawValue): DtoH did not read back what HtoD wrote") }
                results.append((kind, htod, dtoh, off, verified))
            }
            let (up, down) = (rawUp.median, rawDown.median)
            points.append(BandwidthPoint(bytes: size, series: "raw up", megabytesPerSecond: up, repeats: rawUp.count))
            points.append(BandwidthPoint(bytes: size, series: "raw down", megabytesPerSecond: down, repeats: rawDown.count))
            for result in results {
                let (kind, verified) = (result.kind, result.verified)
                let (htod, dtoh) = (result.htod.median, result.dtoh.median)
                points.append(BandwidthPoint(bytes: size, series: "HtoD", kind: kind.rawValue, megabytesPerSecond: htod, repeats: repeats, verified: verified))
                points.append(BandwidthPoint(bytes: size, series: "DtoH", kind: kind.rawValue, megabytesPerSecond: dtoh, repeats: repeats, verified: verified))
                figures.append(BenchFigure(
                    name: "HtoD \(label) \(kind.rawValue)", unit: "MB/s", value: htod,
                    baselineName: "raw TCP stream \(label) up", baseline: up, better: .higher))
                figures.append(BenchFigure(
                    name: "DtoH \(label) \(kind.rawValue)", unit: "MB/s", value: dtoh,
                    baselineName: "raw TCP stream \(label) down", baseline: down, better: .higher))
                if let off = result.off {
                    let (htodOff, dtohOff) = (off.htod.median, off.dtoh.median)
                    points.append(BandwidthPoint(bytes: size, series: "HtoD LZ4 off", kind: kind.rawValue, megabytesPerSecond: htodOff, repeats: repeats, verified: verified))
                    points.append(BandwidthPoint(bytes: size, series: "DtoH LZ4 off", kind: kind.rawValue, megabytesPerSecond: dtohOff, repeats: repeats, verified: verified))
                    figures.append(BenchFigure(
                        name: "HtoD \(label) \(kind.rawValue), LZ4 on", unit: "MB/s", value: htod,
                        baselineName: "same copies with LZ4 off", baseline: htodOff, better: .higher))
                    figures.append(BenchFigure(
                        name: "DtoH \(label) \(kind.rawValue), LZ4 on", unit: "MB/s", value: dtoh,
                        baselineName: "same copies with LZ4 off", baseline: dtohOff, better: .higher))
                }
            }
        }
        return BandwidthResult(sizes: sizes, kinds: settings.kinds, points: points, figures: figures)
    }

    /// Timed runs of one operation that moves `bytes`, in MB/s; `median` of those measured.
    final class Series {
        let bytes: Int
        let body: () throws -> Void
        private var rates: [Double] = []

        init(bytes: Int, _ body: @escaping () throws -> Void) {
            self.bytes = bytes
            self.body = body
        }

        /// Runs the operation once; records its rate when `measured` (else it is a warm-up).
        func run(_ measured: Bool) throws {
            let start = monotonicNanoseconds()
            try body()
            if measured { rates.append(Double(bytes) / (Double(monotonicNanoseconds() - start) / 1e9) / 1e6) }
        }

        var median: Double { BenchSample(rates).median }
        var count: Int { rates.count }
    }
}
