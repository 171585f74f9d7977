/// The lowered, executable form of a PTX instruction.
///
/// Every operand is a register index: immediates live in constant registers that the loader fills
/// in, special registers (`%tid.x`, ...) in per-thread registers set at thread start, and symbol
/// addresses in constant registers patched at launch. Labels are resolved to instruction indices.
public enum Opcode: UInt8, Sendable {
    // Integer arithmetic (width and signedness from `type`).
    case mov, add, sub, mulLo, mulHi, mulWide, madLo, madHi, madWide, mul24Lo, mul24Hi, mad24Lo
    case div, rem, abs, neg, min, max, sad
    case and, or, xor, not, cnot, shl, shr, popc, clz, brev, bfe, bfi
    /// `mov` of `{a, b}` into one wider register, and the reverse.
    case pack, unpack
    // Floating point (precision from `type`).
    case fadd, fsub, fmul, ffma, fdiv, fabs, fneg, fmin, fmax, frcp, fsqrt, frsqrt
    case fsin, fcos, fex2, flg2, ftanh
    // Comparison and selection.
    case setp, selp
    // Conversion.
    case cvt, cvtaToGeneric, cvtaFromGeneric
    // Memory.
    case ld, st, atom
    // Control.
    case bra, ret, exit, barrier, trap, nop
    case readClock
}

/// Comparison operators of `setp`.
public enum CompareOp: UInt8, Sendable {
    case eq, ne, lt, le, gt, ge, lo, ls, hi, hs
    case equ, neu, ltu, leu, gtu, geu, num, nan
}

/// Rounding modifiers of `cvt` and floating-point instructions.
public enum Rounding: UInt8, Sendable {
    case none, rn, rz, rm, rp, rni, rzi, rmi, rpi
}

/// Operations of `atom` and `red`.
public enum AtomicOp: UInt8, Sendable {
    case add, min, max, exch, cas, and, or, xor, inc, dec
}

public struct Instruction: Sendable {
    public var opcode: Opcode
    /// The operation type (destination type for `cvt`).
    public var type: ScalarType
    /// The source type of `cvt`.
    public var sourceType: ScalarType = .b32
    /// CompareOp, Rounding or AtomicOp raw value, depending on the opcode.
    public var mode: UInt8 = 0
    /// setp's boolean combination (0 none, 1 and, 2 or, 3 xor); bit 2: the combining source is negated.
    /// For cvt and float ops: 1 = `.sat`.
    public var flags: UInt8 = 0
    public var space: StateSpace = .generic
    /// Vector width of ld/st/mov-pack (1, 2, 4); vector elements are in `Program.vectorOperands`.
    public var vectorWidth: UInt8 = 1
    /// Guard predicate register, or -1.
    public var guardRegister: Int32 = -1
    public var guardNegated = false
    public var d: Int32 = -1
    public var d2: Int32 = -1
    public var a: Int32 = -1
    public var b: Int32 = -1
    public var c: Int32 = -1
    /// Address offset for memory operations; target index for branches.
    public var offset: Int64 = 0
    /// Source line, for fault reports.
    public var line: Int32 = 0

    public init(opcode: Opcode, type: ScalarType) {
        self.opcode = opcode
        self.type = type
    }
}
