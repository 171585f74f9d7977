import Testing

@testable import XPUTransport

/// Runs of one byte as LZ4 blocks (`LZ4Run`): what the fast path writes is LZ4 that liblz4 inflates
/// to the same bytes, the fast path takes exactly those blocks and leaves every other one to
/// liblz4, and a cut or resized block is refused without a write.
@Suite("LZ4 runs")
struct LZ4RunTests {
    static let sizes = [LZ4Run.minimumRun, 255, 4096, 64 << 10, (64 << 10) + 19 + 255, (4 << 20) + 3]

    @Test("a run encodes to a block liblz4 inflates to the same bytes, and the fast path agrees", arguments: sizes)
    func roundTrip(count: Int) throws {
        let codec = try #require(LZ4Codec.shared, "liblz4.so.1 is needed")
        for value: UInt8 in [0, 0xA7] {
            let packed = UnsafeMutableRawBufferPointer.allocate(byteCount: codec.bound(count), alignment: 16)
            defer { packed.deallocate() }
            let size = try #require(LZ4Run.encode(value, count: count, into: packed))
            #expect(size == LZ4Run.encodedCount(count))
            #expect(size <= count / 255 + 16)
            let block = UnsafeRawBufferPointer(rebasing: packed[0..<size])
            // What a server turns into a memset: the run's byte, for exactly its length.
            #expect(LZ4Run.byte(ofBlock: block, count: count) == value)
            #expect(LZ4Run.byte(ofBlock: block, count: count + 1) == nil)
            // The same shape whose last literal differs still inflates but is no run.
            packed[size - 1] = value &+ 1
            #expect(LZ4Run.byte(ofBlock: block, count: count) == nil)
            packed[size - 1] = value
            for decoder in ["fast path", "liblz4"] {
                let out = UnsafeMutableRawBufferPointer.allocate(byteCount: count, alignment: 16)
                defer { out.deallocate() }
                out.initializeMemory(as: UInt8.self, repeating: value &+ 1)
                let inflated = decoder == "liblz4" ? codec.libraryDecompress(block, into: out) : LZ4Run.decode(block, into: out)
                #expect(inflated, "\(decoder), \(count) bytes of \(value)")
                #expect(out.allSatisfy { $0 == value }, "\(decoder), \(count) bytes of \(value)")
            }
        }
    }

    @Test("only a buffer of one byte value is a run")
    func detection() {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 16, alignment: 16)
        defer { buffer.deallocate() }
        buffer.initializeMemory(as: UInt8.self, repeating: 0)
        #expect(LZ4Run.byte(of: UnsafeRawBufferPointer(buffer)) == 0)
        for index in [0, 1, 4095, buffer.count - 1] {
            buffer[index] = 1
            #expect(LZ4Run.byte(of: UnsafeRawBufferPointer(buffer)) == nil, "byte \(index) differs")
            buffer[index] = 0
        }
        #expect(LZ4Run.byte(of: UnsafeRawBufferPointer(start: nil, count: 0)) == nil)
        #expect(LZ4Run.encode(0, count: LZ4Run.minimumRun - 1, into: buffer) == nil)
    }

    @Test("other LZ4 blocks go to liblz4 and the fast path leaves the destination untouched")
    func otherBlocks() throws {
        let codec = try #require(LZ4Codec.shared, "liblz4.so.1 is needed")
        let count = 256 << 10
        let source = UnsafeMutableRawBufferPointer.allocate(byteCount: count, alignment: 16)
        let packed = UnsafeMutableRawBufferPointer.allocate(byteCount: codec.bound(count), alignment: 16)
        let out = UnsafeMutableRawBufferPointer.allocate(byteCount: count, alignment: 16)
        defer {
            source.deallocate()
            packed.deallocate()
            out.deallocate()
        }
        let words = Array("the of and to in is it that for was on are as with ".utf8)
        var state: UInt64 = 7
        for kind in ["text", "random", "zeros by liblz4", "almost a run"] {
            for index in 0..<count {
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                switch kind {
                case "text": source[index] = words[index % words.count]
                case "random": source[index] = UInt8(truncatingIfNeeded: state >> 33)
                default: source[index] = 0
                }
            }
            if kind == "almost a run" { source[count / 2] = 9 }
            let size = try #require(codec.compress(UnsafeRawBufferPointer(source), into: packed, limit: packed.count), "\(kind)")
            let block = UnsafeRawBufferPointer(rebasing: packed[0..<size])
            out.initializeMemory(as: UInt8.self, repeating: 0x5A)
            if kind != "zeros by liblz4" {
                #expect(!LZ4Run.decode(block, into: out), "\(kind)")
                #expect(LZ4Run.byte(ofBlock: block, count: count) == nil, "\(kind)")
                #expect(out.allSatisfy { $0 == 0x5A }, "\(kind): the fast path wrote")
            }
            #expect(codec.decompress(block, into: out), "\(kind)")
            #expect(out.elementsEqual(source), "\(kind)")
        }
    }

    @Test("a cut block, or one of another size, is refused")
    func damagedBlocks() throws {
        let codec = try #require(LZ4Codec.shared, "liblz4.so.1 is needed")
        let count = 64 << 10
        let packed = UnsafeMutableRawBufferPointer.allocate(byteCount: codec.bound(count), alignment: 16)
        let out = UnsafeMutableRawBufferPointer.allocate(byteCount: count + 1, alignment: 16)
        defer {
            packed.deallocate()
            out.deallocate()
        }
        let size = try #require(LZ4Run.encode(0, count: count, into: packed))
        // Every prefix of the block, fed one byte longer each time.
        for cut in 0..<size {
            let prefix = UnsafeRawBufferPointer(rebasing: packed[0..<cut])
            #expect(!codec.decompress(prefix, into: UnsafeMutableRawBufferPointer(rebasing: out[0..<count])), "cut at \(cut)")
        }
        let block = UnsafeRawBufferPointer(rebasing: packed[0..<size])
        #expect(!codec.decompress(block, into: UnsafeMutableRawBufferPointer(rebasing: out[0..<(count - 1)])))
        #expect(!codec.decompress(block, into: out))
        #expect(codec.decompress(block, into: UnsafeMutableRawBufferPointer(rebasing: out[0..<count])))
    }

    /// A 1 MiB chunk and the governor's output and sample buffers, for the duration of `body`.
    private func withGovernorBuffers(
        _ body: (LZ4Codec, UnsafeMutableRawBufferPointer, UnsafeMutableRawBufferPointer, UnsafeMutableRawBufferPointer) throws -> Void
    ) throws {
        let codec = try #require(LZ4Codec.shared, "liblz4.so.1 is needed")
        let count = 1 << 20
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: count, alignment: 16)
        let packed = UnsafeMutableRawBufferPointer.allocate(byteCount: codec.bound(count), alignment: 16)
        let sample = UnsafeMutableRawBufferPointer.allocate(byteCount: codec.bound(128 << 10), alignment: 16)
        defer {
            chunk.deallocate()
            packed.deallocate()
            sample.deallocate()
        }
        try body(codec, chunk, packed, sample)
    }

    /// Text-like bytes: words of a small vocabulary (LZ4 shrinks them well).
    private static func fillWithText(_ chunk: UnsafeMutableRawBufferPointer) {
        let words = Array("the of and to in is it that for was on are as with ".utf8)
        for index in 0..<chunk.count { chunk[index] = words[(index * 7 + index / 5) % words.count] }
    }

    /// Incompressible bytes from a linear congruential generator.
    private static func fillWithRandomBytes(_ chunk: UnsafeMutableRawBufferPointer, seed: UInt64) {
        var state = seed
        for index in 0..<chunk.count {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            chunk[index] = UInt8(truncatingIfNeeded: state >> 33)
        }
    }

    @Test("the governor always sends a run compressed, even while it backs off incompressible data")
    func governorTakesRuns() throws {
        try withGovernorBuffers { codec, chunk, packed, sample in
            let count = chunk.count
            Self.fillWithRandomBytes(chunk, seed: 3)
            var governor = CompressionGovernor()
            governor.recordSend(bytes: count, nanoseconds: 100_000)  // a fast link: 10 GB/s
            let random = governor.compress(UnsafeRawBufferPointer(chunk), codec: codec, into: packed, sampleScratch: sample)
            #expect(random == nil)
            chunk.initializeMemory(as: UInt8.self, repeating: 0)
            let run = governor.compress(UnsafeRawBufferPointer(chunk), codec: codec, into: packed, sampleScratch: sample)
            #expect(run == LZ4Run.encodedCount(count))
        }
    }

    @Test("the governor measures the link before it compresses, and keeps measuring while it does")
    func governorMeasuresTheLink() throws {
        try withGovernorBuffers { codec, chunk, packed, sample in
            let count = chunk.count
            Self.fillWithText(chunk)
            let text = UnsafeRawBufferPointer(chunk)
            var governor = CompressionGovernor()
            // Nothing timed yet: raw, so that the send measures the link.
            #expect(governor.compress(text, codec: codec, into: packed, sampleScratch: sample) == nil)
            // A slow link (10 MB/s): compression pays, except one chunk in `probeEvery`, sent raw to
            // keep the link's rate current.
            governor.recordSend(bytes: count, nanoseconds: 100_000_000)
            var raw = 0
            for _ in 0..<CompressionGovernor.probeEvery {
                if governor.compress(text, codec: codec, into: packed, sampleScratch: sample) == nil { raw += 1 }
            }
            #expect(raw == 1)
        }
    }

    @Test("on a slow link every chunk is sampled: text right after random bytes compresses; on a fast link sampling backs off")
    func governorSamplesEveryChunkOnASlowLink() throws {
        try withGovernorBuffers { codec, chunk, packed, sample in
            let count = chunk.count
            Self.fillWithRandomBytes(chunk, seed: 5)
            let random = Array(UnsafeRawBufferPointer(chunk))
            Self.fillWithText(chunk)
            let text = Array(UnsafeRawBufferPointer(chunk))
            func compress(_ governor: inout CompressionGovernor, _ data: [UInt8]) -> Int? {
                data.withUnsafeBytes { governor.compress($0, codec: codec, into: packed, sampleScratch: sample) }
            }
            // 1 Gbit/s, measured by the transport: a random chunk does not pay, the text after it does.
            var slow = CompressionGovernor()
            slow.recordSend(bytes: count, nanoseconds: 1_000, delivery: DeliveryRate(bytesPerSecond: 125e6, applicationLimited: false))
            #expect(compress(&slow, random) == nil)
            #expect(compress(&slow, text) != nil)
            // 1 TB/s: after the random chunk the governor skips the next sample, so the text goes
            // raw once (it would not pay on such a link anyway, but it is not even sampled).
            var fast = CompressionGovernor()
            fast.recordSend(bytes: count, nanoseconds: 1_000)
            #expect(compress(&fast, random) == nil)
            #expect(compress(&fast, text) == nil)
        }
    }

    @Test("a delivery rate the transport measured decides over a send that only filled socket buffers")
    func governorBelievesTheDeliveryRate() throws {
        try withGovernorBuffers { codec, chunk, packed, sample in
            let count = chunk.count
            Self.fillWithText(chunk)
            let text = UnsafeRawBufferPointer(chunk)
            // Each send took 1 us (as if copied into the socket buffer at 1 TB/s, faster than any
            // compression), but the link delivered 125 MB/s (1 Gbit/s) while kept busy:
            // compressing text pays.
            var slow = CompressionGovernor()
            for _ in 0..<3 {
                slow.recordSend(
                    bytes: count, nanoseconds: 1_000, delivery: DeliveryRate(bytesPerSecond: 125e6, applicationLimited: false))
            }
            #expect(slow.compress(text, codec: codec, into: packed, sampleScratch: sample) != nil)
            // The same sends, the link's rate unknown or measured while the sender left it idle
            // (a floor, below what the sends showed): the link is taken as fast, text goes raw.
            for delivery in [nil, DeliveryRate(bytesPerSecond: 125e6, applicationLimited: true)] {
                var fast = CompressionGovernor()
                for _ in 0..<3 { fast.recordSend(bytes: count, nanoseconds: 1_000, delivery: delivery) }
                #expect(fast.compress(text, codec: codec, into: packed, sampleScratch: sample) == nil)
            }
        }
    }
}
