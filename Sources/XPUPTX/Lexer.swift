/// One token of PTX text.
struct Token: Equatable {
    enum Kind: Equatable {
        /// Names, opcodes, directives and registers: `ld.global.f32`, `.reg`, `%r1`, `$L__BB0_2`.
        case identifier
        /// Numbers as written: `42`, `0x1F`, `0f3F800000`, `1.5e-3`.
        case number
        /// A quoted string, without the quotes.
        case string
        /// One punctuation character: `, ; { } [ ] ( ) + - ! | @ < > : =`.
        case punct
        case end
    }
    var kind: Kind
    var text: String
    var line: Int

    func isPunct(_ c: Character) -> Bool { kind == .punct && text.first == c }
}

/// Splits PTX text into tokens, dropping comments.
struct Lexer {
    static func tokenize(_ source: String) throws(PTXError) -> [Token] {
        var tokens: [Token] = []
        let bytes = Array(source.utf8)
        var i = 0
        var line = 1
        let n = bytes.count

        @inline(__always) func isIdentStart(_ c: UInt8) -> Bool {
            (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x5F || c == 0x24 || c == 0x25 || c == 0x2E
        }
        @inline(__always) func isIdentBody(_ c: UInt8) -> Bool {
            isIdentStart(c) || (c >= 0x30 && c <= 0x39)
        }
        @inline(__always) func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }

        while i < n {
            let c = bytes[i]
            if c == 0x0A { line += 1; i += 1; continue }
            if c == 0x20 || c == 0x09 || c == 0x0D || c == 0x0C || c == 0 { i += 1; continue }
            if c == 0x2F, i + 1 < n, bytes[i + 1] == 0x2F {  // line comment
                while i < n, bytes[i] != 0x0A { i += 1 }
                continue
            }
            if c == 0x2F, i + 1 < n, bytes[i + 1] == 0x2A {  // block comment
                i += 2
                while i + 1 < n, !(bytes[i] == 0x2A && bytes[i + 1] == 0x2F) {
                    if bytes[i] == 0x0A { line += 1 }
                    i += 1
                }
                i += 2
                continue
            }
            let start = i
            if isIdentStart(c) {
                i += 1
                while i < n {
                    if isIdentBody(bytes[i]) { i += 1; continue }
                    // `L1::evict_last` style qualifiers stay inside the opcode.
                    if bytes[i] == 0x3A, i + 1 < n, bytes[i + 1] == 0x3A { i += 2; continue }
                    break
                }
                tokens.append(Token(kind: .identifier, text: String(decoding: bytes[start..<i], as: UTF8.self), line: line))
                continue
            }
            if isDigit(c) {
                let prefixed = c == 0x30 && i + 1 < n && "xXfFdD".utf8.contains(bytes[i + 1])
                i += 1
                while i < n {
                    let d = bytes[i]
                    guard isIdentBody(d), d != 0x25, d != 0x24 else { break }
                    i += 1
                    // Decimal exponent with a sign: 1.5e-3.
                    if !prefixed, d == 0x65 || d == 0x45, i < n, bytes[i] == 0x2D || bytes[i] == 0x2B { i += 1 }
                }
                tokens.append(Token(kind: .number, text: String(decoding: bytes[start..<i], as: UTF8.self), line: line))
                continue
            }
            if c == 0x22 {  // string
                i += 1
                while i < n, bytes[i] != 0x22 {
                    if bytes[i] == 0x0A { line += 1 }
                    i += 1
                }
                tokens.append(Token(kind: .string, text: String(decoding: bytes[(start + 1)..<min(i, n)], as: UTF8.self), line: line))
                i += 1
                continue
            }
            switch c {
            case UInt8(ascii: ","), UInt8(ascii: ";"), UInt8(ascii: "{"), UInt8(ascii: "}"), UInt8(ascii: "["),
                UInt8(ascii: "]"), UInt8(ascii: "("), UInt8(ascii: ")"), UInt8(ascii: "+"), UInt8(ascii: "-"),
                UInt8(ascii: "!"), UInt8(ascii: "|"), UInt8(ascii: "@"), UInt8(ascii: "<"), UInt8(ascii: ">"),
                UInt8(ascii: ":"), UInt8(ascii: "="), UInt8(ascii: "*"):
                tokens.append(Token(kind: .punct, text: String(UnicodeScalar(c)), line: line))
                i += 1
            default:
                throw PTXError(code: .syntax, line: line, message: "unexpected character '\(String(UnicodeScalar(c)))'")
            }
        }
        tokens.append(Token(kind: .end, text: "", line: line))
        return tokens
    }
}
