/// The parsed (not yet lowered) form of a PTX module: what the text says, with names unresolved.

/// A literal as written in the PTX text.
enum Immediate: Equatable {
    case integer(UInt64)
    case decimal(Double)
    /// `0fXXXXXXXX`: the bits of a single-precision value.
    case f32Bits(UInt32)
    /// `0dXXXXXXXXXXXXXXXX`: the bits of a double-precision value.
    case f64Bits(UInt64)

    /// The register bits this literal has when used as an operand of type `type`.
    func bits(as type: ScalarType) -> UInt64 {
        switch (self, type) {
        case (.integer(let v), .f32): UInt64(Float(Int64(bitPattern: v)).bitPattern)
        case (.integer(let v), .f64): Double(Int64(bitPattern: v)).bitPattern
        case (.integer(let v), _): v
        case (.decimal(let d), .f64): d.bitPattern
        case (.decimal(let d), .f16): UInt64(Float16(d).bitPattern)
        case (.decimal(let d), .bf16): FloatFormat.encode(d, .bf16, .rn, sat: false)
        case (.decimal(let d), _):
            type.isFloat ? UInt64(Float(d).bitPattern) : UInt64(bitPattern: Int64(exactly: d.rounded(.towardZero)) ?? 0)
        case (.f32Bits(let b), .f64): Double(Float(bitPattern: b)).bitPattern
        case (.f32Bits(let b), _): UInt64(b)
        case (.f64Bits(let b), .f32): UInt64(Float(Double(bitPattern: b)).bitPattern)
        case (.f64Bits(let b), _): b
        }
    }
}

indirect enum Operand: Equatable {
    case register(String)
    case immediate(Immediate)
    /// A label, variable or parameter name, optionally with a byte offset.
    case symbol(String, offset: Int64)
    /// `[base+offset]`; base is a register or symbol name, or nil for an absolute address.
    case address(base: String?, offset: Int64)
    /// `{%r1, %r2}`; `_` is kept as the sink name "_".
    case vector([String])
    /// `!%p` (negated predicate source).
    case negated(String)
    /// `%p|%q` (setp's two destinations).
    case pair(String, String)
    /// `(a, b)` as in call sequences.
    case list([Operand])
}

struct ParsedInstruction {
    var guardRegister: String?
    var guardNegated = false
    var opcode: String
    var operands: [Operand]
    var line: Int
}

enum Statement {
    case label(String, line: Int)
    case instruction(ParsedInstruction)
}

struct ParsedVariable {
    var name: String
    var space: StateSpace
    var type: ScalarType
    var alignment: Int
    var vectorWidth: Int = 1
    /// Number of elements; nil for a scalar; 0 for an unsized `[]` array.
    var count: Int?
    var initializer: [Immediate] = []
    var isExtern = false
    var line: Int

    var elementSize: Int { type.size * vectorWidth }
    var byteSize: Int { elementSize * (count ?? 1) }
}

struct ParsedFunction {
    var name: String
    var isEntry: Bool
    var isVisible: Bool
    var hasBody: Bool
    var parameters: [ParsedVariable]
    var returnParameters: [ParsedVariable]
    var registers: [(name: String, type: ScalarType)] = []
    var variables: [ParsedVariable] = []
    var body: [Statement] = []
    var maxThreads: (Int, Int, Int)?
    var line: Int
}

struct ParsedModule {
    var version: (major: Int, minor: Int) = (0, 0)
    var target: String = ""
    var addressSize = 64
    var functions: [ParsedFunction] = []
    var variables: [ParsedVariable] = []
}
