#if canImport(Glibc)
import Glibc
#endif

/// LZ4 block compression for bulk data, from the system's liblz4 loaded at first use.
///
/// Loaded with dlopen so the shim still loads on a host without liblz4: there `shared` is nil and
/// the session simply does not offer compression in its handshake.
public final class LZ4Codec: @unchecked Sendable {
    private typealias Compress = @convention(c) (UnsafeRawPointer?, UnsafeMutableRawPointer?, Int32, Int32, Int32) -> Int32
    private typealias Decompress = @convention(c) (UnsafeRawPointer?, UnsafeMutableRawPointer?, Int32, Int32) -> Int32
    private typealias Bound = @convention(c) (Int32) -> Int32

    private let compressFast: Compress
    private let decompressSafe: Decompress
    private let compressBound: Bound

    /// nil when liblz4.so.1 is not installed.
    public static let shared: LZ4Codec? = LZ4Codec()

    private init?() {
        guard let library = dlopen("liblz4.so.1", RTLD_NOW | RTLD_LOCAL) ?? dlopen("liblz4.so", RTLD_NOW | RTLD_LOCAL),
            let compress = dlsym(library, "LZ4_compress_fast"), let decompress = dlsym(library, "LZ4_decompress_safe"),
            let bound = dlsym(library, "LZ4_compressBound")
        else { return nil }
        compressFast = unsafeBitCast(compress, to: Compress.self)
        decompressSafe = unsafeBitCast(decompress, to: Decompress.self)
        compressBound = unsafeBitCast(bound, to: Bound.self)
    }

    /// Room the compressed form of `count` bytes may need.
    public func bound(_ count: Int) -> Int { Int(compressBound(Int32(count))) }

    /// Compresses `source` into `destination`; nil unless the result is at most `limit` bytes.
    public func compress(_ source: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer, limit: Int) -> Int? {
        guard source.count > 0 else { return nil }
        let written = compressFast(
            source.baseAddress, destination.baseAddress, Int32(source.count), Int32(min(limit, destination.count)), 1)
        return written > 0 ? Int(written) : nil
    }

    /// Decompresses exactly `destination.count` bytes; false if the data is malformed or of another size.
    public func decompress(_ source: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer) -> Bool {
        guard source.count > 0, destination.count > 0 else { return source.count == 0 && destination.count == 0 }
        if LZ4Run.decode(source, into: destination) { return true }
        return libraryDecompress(source, into: destination)
    }

    /// `decompress` by liblz4 alone, without the run fast path (tests check both agree).
    func libraryDecompress(_ source: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer) -> Bool {
        let written = decompressSafe(source.baseAddress, destination.baseAddress, Int32(source.count), Int32(destination.count))
        return Int(written) == destination.count
    }
}

/// Runs of one byte value (zero-filled buffers above all) as LZ4 blocks, encoded and decoded at
/// memory speed. liblz4 takes a run at a few GB/s each way (a match is extended, and inflated,
/// 8 bytes at a time), slower than a loopback link; a run needs no search: it is one literal, one
/// match at offset 1 as long as the run allows, and the five literals the format requires last.
/// The block is ordinary LZ4 that any decoder inflates; `decode` recognizes exactly this shape
/// (and leaves every other block to liblz4).
public enum LZ4Run {
    /// The byte every byte of `data` equals, or nil (at the first byte that differs).
    public static func byte(of data: UnsafeRawBufferPointer) -> UInt8? {
        guard let base = data.baseAddress, data.count > 0 else { return nil }
        // Equal to itself shifted by one byte: every byte equals the first (memcmp is vectorized).
        return memcmp(base, base + 1, data.count - 1) == 0 ? data[0] : nil
    }

    /// Bytes of the block for a run of `count` bytes.
    public static func encodedCount(_ count: Int) -> Int {
        let match = count - 1 - lastLiterals
        return 1 + 1 + 2 + (match - minimumMatch >= 15 ? (match - minimumMatch - 15) / 255 + 1 : 0) + 1 + lastLiterals
    }

    /// Writes the block for `count` copies of `value` into `destination`; its size, or nil when
    /// `count` is too short for the shape or the block does not fit.
    public static func encode(_ value: UInt8, count: Int, into destination: UnsafeMutableRawBufferPointer) -> Int? {
        guard count >= minimumRun, encodedCount(count) <= destination.count, let out = destination.baseAddress else { return nil }
        let match = count - 1 - lastLiterals
        var at = 0
        func put(_ byte: UInt8) {
            out.storeBytes(of: byte, toByteOffset: at, as: UInt8.self)
            at += 1
        }
        let field = match - minimumMatch
        put(0x10 | UInt8(min(field, 15)))  // one literal, then the match length (extended below)
        put(value)
        put(1)  // offset 1, little-endian
        put(0)
        if field >= 15 {
            let extra = field - 15
            let full = extra / 255
            memset(out + at, 255, full)
            at += full
            put(UInt8(extra % 255))
        }
        put(UInt8(lastLiterals << 4))  // the last sequence: literals only
        for _ in 0..<lastLiterals { put(value) }
        return at
    }

    /// Inflates `source` when it is a block of the shape `encode` writes (one literal sequence with
    /// a match at offset 1, then literals only, the whole block consumed, exactly
    /// `destination.count` bytes out); false for any other block, touching nothing.
    public static func decode(_ source: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer) -> Bool {
        guard let out = destination.baseAddress, let run = Shape(source, count: destination.count) else { return false }
        _ = memcpy(out, source.baseAddress! + 1, run.literals)
        _ = memset(out + run.literals, Int32(run.value), run.match)
        _ = memcpy(out + run.literals + run.match, source.baseAddress! + run.lastAt, run.last)
        return true
    }

    /// The byte every one of the `count` bytes `source` inflates to equals, when `source` is a
    /// block of `encode`'s shape for a run; nil otherwise. A server turns such a chunk into a
    /// device memset instead of inflating and copying it.
    public static func byte(ofBlock source: UnsafeRawBufferPointer, count: Int) -> UInt8? {
        guard let run = Shape(source, count: count) else { return nil }
        let literals = UnsafeRawBufferPointer(rebasing: source[1..<(1 + run.literals)])
        let last = UnsafeRawBufferPointer(rebasing: source[run.lastAt..<(run.lastAt + run.last)])
        guard literals.allSatisfy({ $0 == run.value }), last.allSatisfy({ $0 == run.value }) else { return nil }
        return run.value
    }

    /// Where the parts of a block of `encode`'s shape lie: leading literals from byte 1, the
    /// repeated byte and the match's length, the last literals at `lastAt`.
    private struct Shape {
        var literals: Int
        var value: UInt8
        var match: Int
        var lastAt: Int
        var last: Int

        init?(_ source: UnsafeRawBufferPointer, count: Int) {
            let n = source.count
            guard n >= 4 + 1 else { return nil }
            let token = source[0]
            let literals = Int(token >> 4)
            guard literals >= 1, literals < 15, n >= 1 + literals + 2 else { return nil }
            var at = 1 + literals
            guard source[at] == 1, source[at + 1] == 0 else { return nil }
            at += 2
            var match = Int(token & 15)
            if match == 15 {
                // Extension bytes: a run of 255s then one below 255 (memchr-fast to find its end).
                let rest = UnsafeRawBufferPointer(rebasing: source[at...])
                guard let stop = rest.firstIndex(where: { $0 != 255 }) else { return nil }
                match += 255 * stop + Int(rest[stop])
                at += stop + 1
            }
            match += LZ4Run.minimumMatch
            guard at < n else { return nil }
            let last = Int(source[at] >> 4)
            guard source[at] & 15 == 0, last < 15, at + 1 + last == n, literals + match + last == count else { return nil }
            self.literals = literals
            self.value = source[literals]
            self.match = match
            self.lastAt = at + 1
            self.last = last
        }
    }

    static let minimumMatch = 4
    static let lastLiterals = 5
    /// The format wants the last match to start at least 12 bytes before the end.
    static let minimumRun = 1 + minimumMatch + lastLiterals + 12
}

/// Decides, chunk by chunk, whether compressing pays: it must shrink the data AND be faster than
/// the link, since compressing costs CPU time the raw send would not. A sample of each chunk is
/// compressed and timed; with the link's measured throughput L, the compression rate c and the
/// ratio r, compressing pays when c > L / (1 - r) (sending r·n bytes after compressing n takes
/// less than sending n). Chunks that do not pay go raw, with exponentially fewer tries while it
/// stays so, so incompressible data on a fast link costs a small sample now and then; where a
/// sample costs under 2% of a chunk's time on the link, every chunk is sampled.
public struct CompressionGovernor: Sendable {
    /// Compress only when the result is at most this fraction of the original.
    public static let worthwhileRatio = 0.9
    static let sampleBytes = 32 << 10
    /// Chunks smaller than this are always sent raw: compression cannot repay its latency.
    public static let minimumChunk = 64 << 10

    /// While compressing, one chunk in this many goes raw: compressed sends may be too small to
    /// time (under `minimumChunk`), and the link's rate must stay known for the rule to hold.
    public static let probeEvery = 32

    private var skip = 0
    private var backoff = 1
    private var compressedSinceProbe = 0
    /// The link's rate (bytes per second): the transport's delivery rate, else timed sends.
    private var linkBytesPerSecond: Double?

    public init() {}

    /// Records how long sending `bytes` took (both raw and compressed sends teach the link rate),
    /// and the rate the transport measured the link delivering at, when it can tell. A send's
    /// duration measures the link only once the socket buffers are full; until then (transfers
    /// of up to several megabytes, whatever the link) it measures a memory copy, which makes a
    /// 1 Gbit/s link look as fast as loopback. So a delivery rate measured while the sender kept the link
    /// busy is the link's rate; an application-limited one is only a floor under it. `delivery`
    /// is asked for only when the send counts (a chunk of at least `minimumChunk`): it may cost
    /// a system call.
    public mutating func recordSend(bytes: Int, nanoseconds: UInt64, delivery: @autoclosure () -> DeliveryRate? = nil) {
        guard bytes >= Self.minimumChunk, nanoseconds > 0 else { return }
        let delivery = delivery()
        if let delivery, !delivery.applicationLimited {
            // Already averaged by the kernel over the last round trips.
            linkBytesPerSecond = delivery.bytesPerSecond
            return
        }
        var rate = Double(bytes) / (Double(nanoseconds) / 1e9)
        if let delivery { rate = max(rate, delivery.bytesPerSecond) }
        linkBytesPerSecond = linkBytesPerSecond.map { 0.7 * $0 + 0.3 * rate } ?? rate
    }

    /// Compresses `chunk` into `destination` when that pays; the compressed size, or nil to send
    /// the chunk raw. A run of one byte always pays (`LZ4Run`: no search, a block of 1/255 of
    /// its size); anything else is left to the timed sample (`shouldCompress`) and liblz4.
    public mutating func compress(
        _ chunk: UnsafeRawBufferPointer, codec: LZ4Codec, into destination: UnsafeMutableRawBufferPointer,
        sampleScratch: UnsafeMutableRawBufferPointer
    ) -> Int? {
        guard chunk.count >= Self.minimumChunk else { return nil }
        if let value = LZ4Run.byte(of: chunk) { return LZ4Run.encode(value, count: chunk.count, into: destination) }
        guard shouldCompress(chunk, codec: codec, scratch: sampleScratch) else { return nil }
        let limit = Int(Double(chunk.count) * Self.worthwhileRatio)
        return codec.compress(chunk, into: destination, limit: limit)
    }

    /// Whether to compress this chunk.
    public mutating func shouldCompress(
        _ chunk: UnsafeRawBufferPointer, codec: LZ4Codec, scratch: UnsafeMutableRawBufferPointer
    ) -> Bool {
        guard chunk.count >= Self.minimumChunk else { return false }
        // No rate for the link yet: this chunk goes raw and its send measures it. (Compressing
        // before anything is timed would never learn the rate: compressed sends of
        // well-compressing data are too small to time, so the rule would never be applied.)
        guard let link = linkBytesPerSecond else { return false }
        if skip > 0 {
            skip -= 1
            return false
        }
        let sample = UnsafeRawBufferPointer(rebasing: chunk[0..<min(chunk.count, Self.sampleBytes)])
        let limit = Int(Double(sample.count) * Self.worthwhileRatio)
        let start = monotonicNanoseconds()
        let compressed = codec.compress(sample, into: scratch, limit: limit)
        let elapsed = max(monotonicNanoseconds() - start, 1)
        var pays = compressed != nil
        if let compressed {
            let ratio = Double(compressed) / Double(sample.count)
            let compressionRate = Double(sample.count) / (Double(elapsed) / 1e9)
            pays = compressionRate > link / max(1 - ratio, 0.01)
        }
        // A sample that costs under 2% of the chunk's time on the link is cheap enough to take
        // for every chunk: on a slow link the data may turn compressible at the next chunk (a
        // copy of text after one of random bytes), and backing off would send it raw.
        let chunkNanoseconds = Double(chunk.count) / link * 1e9
        if !pays, Double(elapsed) < 0.02 * chunkNanoseconds {
            backoff = 1
            return false
        }
        if pays {
            backoff = 1
            compressedSinceProbe += 1
            if compressedSinceProbe >= Self.probeEvery {
                compressedSinceProbe = 0
                return false
            }
            return true
        }
        skip = backoff
        backoff = min(backoff * 2, 64)
        return false
    }
}
