/// A token's SHA-256 digest as the policy file writes it (`tokenSHA256`, the output of
/// `printf %s TOKEN | sha256sum`): 64 hex digits. Hashing a presented token is the server's
/// (Authentication+Token.swift); this is only the text form.
public enum TokenDigest {
    /// Bytes in a SHA-256 digest.
    public static let byteCount = 32

    /// The digest written as `text` (lowercase or uppercase hex of exactly 32 bytes); nil otherwise.
    public static func parse(hex text: String) -> [UInt8]? {
        let characters = Array(text.utf8)
        guard characters.count == 2 * byteCount else { return nil }
        func nibble(_ character: UInt8) -> UInt8? {
            switch character {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): character - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): character - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): character - UInt8(ascii: "A") + 10
            default: nil
            }
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(byteCount)
        for index in stride(from: 0, to: characters.count, by: 2) {
            guard let high = nibble(characters[index]), let low = nibble(characters[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
        }
        return bytes
    }

    /// Lowercase hex of `bytes`, as `sha256sum` prints a digest.
    public static func hex(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef")
        return String(bytes.flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 15)]] })
    }
}
