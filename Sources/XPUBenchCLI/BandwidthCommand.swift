import ArgumentParser
import CXPUDriver
import Foundation

/// `xpu-bench bandwidth`: blocking host-to-device and device-to-host copies through the shim, for
/// sizes from 4 KiB to 256 MiB and three kinds of data, beside raw TCP stream throughput of the same
/// byte count over loopback in the same run.
struct BandwidthCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bandwidth",
        abstract: "HtoD and DtoH copy throughput through the shim, beside raw TCP stream throughput.",
        discussion: """
            For each size: the raw TCP baseline (a 24-byte header plus the bytes one way, a 24-byte \
            answer the other way, between two sockets on loopback in this process), then for each \
            kind of data cuMemcpyHtoD_v2 and cuMemcpyDtoH_v2 of that many bytes (pageable host \
            memory). Each point repeats the operation until about --bytes-per-point bytes moved \
            (at least --min-repeats times) and reports the median repeat, in MB/s (10^6 bytes/s). \
            After timing, one round trip per size and kind is checked byte for byte.
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
        for size in sizes {
            let repeats = min(settings.maxRepeats, max(settings.minRepeats, settings.bytesPerPoint / size))
            let label = BenchOutput.bytes(size)
            progress("bandwidth: \(label) x \(repeats): raw TCP")
            let sourceBytes = UnsafeRawBufferPointer(source)
            let rawUp = try Self.measure(size, repeats) {
                try raw.exchange(request: RawTCPBaseline.headerBytes + size, reply: RawTCPBaseline.headerBytes, data: sourceBytes)
            }
            let rawDown = try Self.measure(size, repeats) {
                try raw.exchange(request: RawTCPBaseline.headerBytes, reply: RawTCPBaseline.headerBytes + size, into: destination)
            }
            points.append(BandwidthPoint(bytes: size, series: "raw up", megabytesPerSecond: rawUp, repeats: repeats))
            points.append(BandwidthPoint(bytes: size, series: "raw down", megabytesPerSecond: rawDown, repeats: repeats))
            for kind in settings.kinds {
                progress("bandwidth: \(label) x \(repeats): \(kind.rawValue)")
                let data = UnsafeMutableRawBufferPointer(rebasing: source[0..<size])
                kind.fill(data)
                // LZ4 off first (when the session has it), then on: both in this run.
                var uncompressed: (htod: Double, dtoh: Double)?
                if let setCompression = driver.setCompression, setCompression(0) == 0, setCompression(1) == 1 {
                    _ = setCompression(0)
                    let htodOff = try Self.measure(size, repeats) {
                        try driver.check(driver.cuMemcpyHtoD(device, source.baseAddress, size), "cuMemcpyHtoD_v2(\(size))")
                    }
                    let dtohOff = try Self.measure(size, repeats) {
                        try driver.check(driver.cuMemcpyDtoH(destination.baseAddress, device, size), "cuMemcpyDtoH_v2(\(size))")
                    }
                    uncompressed = (htodOff, dtohOff)
                    _ = setCompression(1)
                }
                let htod = try Self.measure(size, repeats) {
                    try driver.check(driver.cuMemcpyHtoD(device, source.baseAddress, size), "cuMemcpyHtoD_v2(\(size))")
                }
                let dtoh = try Self.measure(size, repeats) {
                    try driver.check(driver.cuMemcpyDtoH(destination.baseAddress, device, size), "cuMemcpyDtoH_v2(\(size))")
                }
                // Check the last round trip's bytes (untimed).
                destination.initializeMemory(as: UInt8.self, repeating: 0xA5)
                try driver.check(driver.cuMemcpyDtoH(destination.baseAddress, device, size), "cuMemcpyDtoH_v2(\(size))")
                let verified = memcmp(source.baseAddress!, destination.baseAddress!, size) == 0
                if !verified { progress("bandwidth: \(label) \(kind.rawValue): DtoH did not read back what HtoD wrote") }
                points.append(BandwidthPoint(bytes: size, series: "HtoD", kind: kind.rawValue, megabytesPerSecond: htod, repeats: repeats, verified: verified))
                points.append(BandwidthPoint(bytes: size, series: "DtoH", kind: kind.rawValue, megabytesPerSecond: dtoh, repeats: repeats, verified: verified))
                figures.append(BenchFigure(
                    name: "HtoD \(label) \(kind.rawValue)", unit: "MB/s", value: htod,
                    baselineName: "raw TCP stream \(label) up", baseline: rawUp, better: .higher))
                figures.append(BenchFigure(
                    name: "DtoH \(label) \(kind.rawValue)", unit: "MB/s", value: dtoh,
                    baselineName: "raw TCP stream \(label) down", baseline: rawDown, better: .higher))
                if let uncompressed {
                    points.append(BandwidthPoint(bytes: size, series: "HtoD LZ4 off", kind: kind.rawValue, megabytesPerSecond: uncompressed.htod, repeats: repeats, verified: verified))
                    points.append(BandwidthPoint(bytes: size, series: "DtoH LZ4 off", kind: kind.rawValue, megabytesPerSecond: uncompressed.dtoh, repeats: repeats, verified: verified))
                    figures.append(BenchFigure(
                        name: "HtoD \(label) \(kind.rawValue), LZ4 on", unit: "MB/s", value: htod,
                        baselineName: "same copies with LZ4 off", baseline: uncompressed.htod, better: .higher))
                    figures.append(BenchFigure(
                        name: "DtoH \(label) \(kind.rawValue), LZ4 on", unit: "MB/s", value: dtoh,
                        baselineName: "same copies with LZ4 off", baseline: uncompressed.dtoh, better: .higher))
                }
            }
        }
        return BandwidthResult(sizes: sizes, kinds: settings.kinds, points: points, figures: figures)
    }

    /// Median MB/s over `repeats` runs of `body` moving `bytes` each, after one unmeasured run.
    private static func measure(_ bytes: Int, _ repeats: Int, _ body: () throws -> Void) throws -> Double {
        try body()
        var rates: [Double] = []
        rates.reserveCapacity(repeats)
        for _ in 0..<repeats {
            let start = monotonicNanoseconds()
            try body()
            let seconds = Double(monotonicNanoseconds() - start) / 1e9
            rates.append(Double(bytes) / seconds / 1e6)
        }
        return BenchSample(rates).median
    }
}
