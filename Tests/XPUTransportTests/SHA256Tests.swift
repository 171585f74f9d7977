import Testing
import XPUAdmission

@testable import XPUServer

@Suite("Token digests: SHA-256 and their text form")
struct SHA256Tests {
    @Test("Known digests (FIPS 180-4 examples, and a multi-block message)")
    func knownDigests() {
        #expect(TokenDigest.hex(tokenDigest("")) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(TokenDigest.hex(tokenDigest("abc")) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(
            TokenDigest.hex(tokenDigest("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"))
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        #expect(
            TokenDigest.hex(tokenDigest(String(repeating: "a", count: 1000)))
                == "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3")
    }

    @Test("Hex parsing")
    func hexAndEquality() {
        let digest = tokenDigest("token")
        let bytes = Array(digest)
        #expect(TokenDigest.parse(hex: TokenDigest.hex(digest)) == bytes)
        #expect(TokenDigest.parse(hex: TokenDigest.hex(digest).uppercased()) == bytes)
        #expect(TokenDigest.parse(hex: "abc") == nil)
        #expect(TokenDigest.parse(hex: String(repeating: "g", count: 64)) == nil)
    }

    @Test("A policy digest written by sha256sum admits its token, and only it")
    func policyDigestVerifies() throws {
        // `printf %s abc | sha256sum`
        let policy = try AccessPolicy(
            json: Array(#"{"tenants":[{"name":"t","tokenSHA256":"BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"}]}"#.utf8))
        #expect(policy.tenant(presenting: "abc")?.name == "t")
        #expect(policy.tenant(presenting: "abd") == nil)
        #expect(policy.tenant(presenting: "") == nil)
    }
}
