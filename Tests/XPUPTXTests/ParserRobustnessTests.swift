import Testing
@testable import XPUPTX

/// Inputs that must be rejected quickly and without a crash or a huge allocation (the limits the
/// fuzz target, scripts/fuzz-ptx.sh, relies on). Crashes the fuzzer finds become cases here.
@Suite struct ParserRobustnessTests {
    static let header = ".version 8.0\n.target sm_80\n.address_size 64\n"

    @Test(arguments: [
        ".visible .entry k() { .reg .b32 %r<100000000>; ret; }",
        ".visible .entry k() { .reg .b32 %r<-5>; ret; }",
        ".visible .entry k() { .shared .b8 s[1000000000000]; ret; }",
        ".visible .entry k() { .shared .b8 s[4294967296][4294967296]; ret; }",
        ".visible .entry k() { .local .b8 s[100000000]; ret; }",
        ".visible .entry k() { .shared .align 3 .b8 s[4]; ret; }",
        ".visible .entry k() { .shared .align 0 .b8 s[4]; ret; }",
        ".visible .entry k(.param .align 8 .b8 p[100000]) { ret; }",
        ".global .u32 g[2] = " + String(repeating: "{", count: 5000),
        ".visible .entry k() { call f, " + String(repeating: "(", count: 5000) + "; }",
        ".visible .entry k() { mov.u32 %r1, -9223372036854775808; }",
        ".visible .entry k() { .reg .b32 %r1; mov.u32 %r1, 1e300; ret; }",
        ".visible .entry k() { /* unterminated",
        ".visible .entry k() { .reg .b32 %r1; mov.u32 %r1, \"unterminated",
        // Found by fuzzing: cvt counts its operands before it reads its destination.
        ".visible .entry k() { cvt.u32.u64; ret; }",
        ".visible .entry k() { .reg .b32 %r1; cvt.rn.f16x2.f32 %r1; ret; }",
    ])
    func hostileInputIsRejectedOrBounded(body: String) {
        // Either outcome is fine; what matters is that this returns.
        if let module = try? PTXModule(source: Self.header + body) {
            for k in module.kernels { #expect(k.localSize <= Compiler.maximumLocalBytes) }
        }
    }

    @Test func tooManyRegistersIsUnsupported() {
        do {
            _ = try PTXModule(source: Self.header + ".visible .entry k() { .reg .b32 %r<100000000>; ret; }")
            Issue.record("accepted 100M registers")
        } catch {
            #expect(error.code == .unsupported)
        }
    }

    @Test func lz4BlockDecoder() {
        // "abcabcabcabcX": 3 literals, a match of 9 at offset 3, then a last literal.
        let block: [UInt8] = [0x35, 0x61, 0x62, 0x63, 0x03, 0x00, 0x10, 0x58]
        #expect(LZ4Block.decode(block, expectedSize: 13).map { String(decoding: $0, as: UTF8.self) } == "abcabcabcabcX")
        #expect(LZ4Block.decode(block, expectedSize: 12) == nil)
        #expect(LZ4Block.decode([0x35, 0x61, 0x62, 0x63, 0x09, 0x00], expectedSize: 12) == nil)  // offset past the start
        #expect(LZ4Block.decode([0xF0, 0xFF, 0xFF], expectedSize: 100) == nil)
    }

    /// A one-entry container whose entry header claims `uncompressed` bytes from an 8-byte payload.
    private static func fatbinary(flags: UInt64, uncompressed: UInt64) -> [UInt8] {
        func bytes<T: FixedWidthInteger>(_ value: T) -> [UInt8] { withUnsafeBytes(of: value.littleEndian, Array.init) }
        var entry = [UInt8](repeating: 0, count: 64)
        func put(_ value: [UInt8], at offset: Int) { entry.replaceSubrange(offset..<(offset + value.count), with: value) }
        put(bytes(UInt16(1)), at: 0)  // PTX
        put(bytes(UInt32(64)), at: 4)  // header size
        put(bytes(UInt64(8)), at: 8)  // padded payload size
        put(bytes(UInt32(8)), at: 16)  // stored payload size
        put(bytes(UInt32(75)), at: 28)
        put(bytes(flags), at: 40)
        put(bytes(uncompressed), at: 56)
        let payload: [UInt8] = [0x70, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67]  // 7 literals
        return [0x50, 0xED, 0x55, 0xBA, 1, 0, 16, 0] + bytes(UInt64(72)) + entry + payload
    }

    /// Found by fuzzing: an LZ4 entry claiming 2 GiB must not make the reader reserve 2 GiB. The
    /// claim is checked against the most its payload can decode to (LZ4 255:1, zstd 32768:1).
    @Test func compressedEntryClaimingMoreThanItsPayloadCanHoldIsAnError() throws {
        let lz4Lie = Self.fatbinary(flags: 0x2000, uncompressed: 1 << 31)
        #expect(throws: FatBinary.FormatError.self) { try lz4Lie.withUnsafeBytes { try FatBinary($0) } }
        let zstdLie = Self.fatbinary(flags: 0x8000, uncompressed: 8 * 32768 + 1)
        #expect(throws: FatBinary.FormatError.self) { try zstdLie.withUnsafeBytes { try FatBinary($0) } }
        #expect(LZ4Block.decode([0x70, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67], expectedSize: 1 << 31) == nil)
        // Honest sizes still read, and the LZ4 entry decodes.
        let honest = Self.fatbinary(flags: 0x2000, uncompressed: 7)
        let entry = try #require(try honest.withUnsafeBytes { try FatBinary($0) }.entries.first)
        #expect(try entry.text() == "abcdefg")
        let zstd = Self.fatbinary(flags: 0x8000, uncompressed: 8 * 32768)
        #expect(try zstd.withUnsafeBytes { try FatBinary($0) }.entries.count == 1)
    }

    @Test func truncatedFatbinaryIsAnError() {
        let bytes: [UInt8] = [0x50, 0xED, 0x55, 0xBA, 1, 0, 16, 0, 0xFF, 0, 0, 0, 0, 0, 0, 0]
        #expect(throws: FatBinary.FormatError.self) { try bytes.withUnsafeBytes { try FatBinary($0) } }
    }
}
