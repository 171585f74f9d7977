import Testing

@testable import XPUServer

@Suite("SHA-256 and constant-time comparison")
struct SHA256Tests {
    @Test("Known digests (FIPS 180-4 examples, and a multi-block message)")
    func knownDigests() {
        #expect(SHA256.hex(SHA256.digest([])) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hex(SHA256.digest(Array("abc".utf8))) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(
            SHA256.hex(SHA256.digest(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)))
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        #expect(
            SHA256.hex(SHA256.digest([UInt8](repeating: UInt8(ascii: "a"), count: 1000)))
                == "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3")
    }

    @Test("Hex parsing and constant-time equality")
    func hexAndEquality() {
        let digest = SHA256.digest(Array("token".utf8))
        #expect(SHA256.parseHex(SHA256.hex(digest)) == digest)
        #expect(SHA256.parseHex(SHA256.hex(digest).uppercased()) == digest)
        #expect(SHA256.parseHex("abc") == nil)
        #expect(SHA256.parseHex(String(repeating: "g", count: 64)) == nil)
        #expect(SHA256.constantTimeEqual(digest, digest))
        var other = digest
        other[31] ^= 1
        #expect(!SHA256.constantTimeEqual(digest, other))
        #expect(!SHA256.constantTimeEqual(digest, Array(digest.prefix(31))))
    }
}
