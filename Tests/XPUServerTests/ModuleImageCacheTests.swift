import Testing

@testable import XPUServer

@Suite struct ModuleImageCacheTests {
    @Test func imagesAreNamedByTheirSHA256() {
        // FIPS 180-4's example "abc".
        let digest = ModuleImageCache.digest(of: Array("abc".utf8))
        let hex = digest.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
        #expect(hex == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        // FIPS 180-4's one million 'a': many blocks, as a module image has.
        let million = ModuleImageCache.digest(of: [UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000))
        let millionHex = million.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
        #expect(millionHex == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test func aKeptImageIsFoundByDigestAndCounted() {
        let cache = ModuleImageCache(capacity: 1 << 20)
        let image = [UInt8](repeating: 7, count: 5000)
        #expect(cache.image(for: ModuleImageCache.digest(of: image)) == nil)
        cache.insert(image)
        #expect(cache.image(for: ModuleImageCache.digest(of: image)) == image)
        #expect(cache.image(for: [UInt8](repeating: 0, count: 32)) == nil)
        let statistics = cache.statistics
        #expect(statistics.hits == 1 && statistics.misses == 2 && statistics.bytesSaved == 5000)
        #expect(statistics.images == 1 && statistics.bytes == 5000)
        // The same image again is one entry.
        cache.insert(image)
        #expect(cache.statistics.images == 1 && cache.statistics.bytes == 5000)
    }

    @Test func theLeastRecentlyUsedImageGoesFirstWhenFull() {
        let cache = ModuleImageCache(capacity: 10_000)
        let a = [UInt8](repeating: 1, count: 4000), b = [UInt8](repeating: 2, count: 4000), c = [UInt8](repeating: 3, count: 4000)
        cache.insert(a)
        cache.insert(b)
        #expect(cache.image(for: ModuleImageCache.digest(of: a)) != nil)  // a is now more recent than b
        cache.insert(c)
        #expect(cache.image(for: ModuleImageCache.digest(of: b)) == nil)
        #expect(cache.image(for: ModuleImageCache.digest(of: a)) == a)
        #expect(cache.image(for: ModuleImageCache.digest(of: c)) == c)
        #expect(cache.statistics.bytes == 8000)
        // An image larger than the whole cache is not kept.
        cache.insert([UInt8](repeating: 4, count: 20_000))
        #expect(cache.statistics.images == 2)
    }
}
