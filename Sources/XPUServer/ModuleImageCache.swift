import Crypto
import Synchronization

/// The module images this server received, named by their SHA-256 (computed here, never taken
/// from a client), shared by every session of the process: a client that names an image by its
/// digest (`ModuleLoadCached`) loads it without sending it again. Images stay until `capacity`
/// bytes are exceeded; then the least recently used go first.
final class ModuleImageCache: Sendable {
    /// One cache per server process.
    static let shared = ModuleImageCache(capacity: 512 << 20)

    struct Statistics: Equatable, Sendable {
        var hits = 0
        var misses = 0
        /// Bytes that did not cross the network because the image was here.
        var bytesSaved = 0
        var images = 0
        var bytes = 0
    }

    private struct State {
        var images: [[UInt8]: (image: [UInt8], lastUse: UInt64)] = [:]
        var bytes = 0
        var clock: UInt64 = 0
        var statistics = Statistics()
    }

    let capacity: Int
    private let state = Mutex(State())

    init(capacity: Int) { self.capacity = capacity }

    /// The SHA-256 an image is named by (swift-crypto's).
    static func digest(of image: [UInt8]) -> [UInt8] { Array(SHA256.hash(data: image)) }

    /// The image named by `digest`, counting a hit or a miss.
    func image(for digest: [UInt8]) -> [UInt8]? {
        state.withLock { state in
            guard let entry = state.images[digest] else {
                state.statistics.misses += 1
                return nil
            }
            state.clock += 1
            state.images[digest] = (entry.image, state.clock)
            state.statistics.hits += 1
            state.statistics.bytesSaved += entry.image.count
            return entry.image
        }
    }

    /// Keeps an image that loaded; an image larger than the whole cache is not kept.
    func insert(_ image: [UInt8]) {
        guard image.count <= capacity else { return }
        let digest = Self.digest(of: image)
        state.withLock { state in
            state.clock += 1
            if state.images.updateValue((image, state.clock), forKey: digest) == nil { state.bytes += image.count }
            while state.bytes > capacity, let oldest = state.images.min(by: { $0.value.lastUse < $1.value.lastUse }) {
                state.images[oldest.key] = nil
                state.bytes -= oldest.value.image.count
            }
            state.statistics.images = state.images.count
            state.statistics.bytes = state.bytes
        }
    }

    var statistics: Statistics { state.withLock { $0.statistics } }
}
