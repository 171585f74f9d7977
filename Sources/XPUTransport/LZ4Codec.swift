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
        let written = decompressSafe(source.baseAddress, destination.baseAddress, Int32(source.count), Int32(destination.count))
        return Int(written) == destination.count
    }
}

/// Decides, chunk by chunk, whether compressing pays: it must shrink the data AND be faster than
/// the link, since compressing costs CPU time the raw send would not. A sample of each chunk is
/// compressed and timed; with the link's measured throughput L, the compression rate c and the
/// ratio r, compressing pays when c > L / (1 - r) (sending r·n bytes after compressing n takes
/// less than sending n). Chunks that do not pay go raw, with exponentially fewer tries while it
/// stays so, so incompressible data (or a fast link) costs a small sample now and then.
public struct CompressionGovernor: Sendable {
    /// Compress only when the result is at most this fraction of the original.
    public static let worthwhileRatio = 0.9
    static let sampleBytes = 32 << 10
    /// Chunks smaller than this are always sent raw: compression cannot repay its latency.
    public static let minimumChunk = 64 << 10

    private var skip = 0
    private var backoff = 1
    /// Recent throughput of the link (bytes per second), from timed sends.
    private var linkBytesPerSecond: Double?

    public init() {}

    /// Records how long sending `bytes` took (both raw and compressed sends teach the link rate).
    public mutating func recordSend(bytes: Int, nanoseconds: UInt64) {
        guard bytes >= Self.minimumChunk, nanoseconds > 0 else { return }
        let rate = Double(bytes) / (Double(nanoseconds) / 1e9)
        linkBytesPerSecond = linkBytesPerSecond.map { 0.7 * $0 + 0.3 * rate } ?? rate
    }

    /// Whether to compress this chunk.
    public mutating func shouldCompress(
        _ chunk: UnsafeRawBufferPointer, codec: LZ4Codec, scratch: UnsafeMutableRawBufferPointer
    ) -> Bool {
        guard chunk.count >= Self.minimumChunk else { return false }
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
        if let compressed, let link = linkBytesPerSecond {
            let ratio = Double(compressed) / Double(sample.count)
            let compressionRate = Double(sample.count) / (Double(elapsed) / 1e9)
            pays = compressionRate > link / max(1 - ratio, 0.01)
        }
        if pays {
            backoff = 1
            return true
        }
        skip = backoff
        backoff = min(backoff * 2, 64)
        return false
    }
}

/// Nanoseconds on the monotonic clock.
public func monotonicNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
}
