/// The lowered, executable form of a PTX instruction.
///
/// Every operand is a register index: immediates live in constant registers that the loader fills
/// in, special registers (`%tid.x`, ...) in per-thread registers set at thread start, and symbol
/// addresses in constant registers patched at launch. Labels are resolved to instruction indices.
public enum Opcode: UInt8, Sendable {
    // Integer arithmetic (width and signedness from `type`).
    case mov, add, sub, mulLo, mulHi, mulWide, madLo, madHi, madWide, mul24Lo, mul24Hi, mad24Lo
    case div, rem, abs, neg, min, max, sad
    case and, or, xor, not, cnot, shl, shr, popc, clz, brev, bfe, bfi, bfind, prmt
    /// Extended-precision `add.cc`/`addc`, `sub.cc`/`subc`, `mad{c}.lo/hi{.cc}`: `flags` bit 0
    /// reads the carry flag, bit 1 writes it, bit 2 (madCarry) takes the high half of the product.
    case addCarry, subCarry, madCarry
    /// Funnel shift of `{b, a}` by `c`: `flags` bit 0 shifts right, bit 1 clamps the amount to 32
    /// (else it wraps modulo 32).
    case funnelShift
    /// `dp4a`/`dp2a`: `c` plus the products of `a`'s bytes (dp2a: halves) with `b`'s bytes;
    /// `flags` bit 0: `a` is signed, bit 1: `b` is signed, bit 2: dp2a, bit 3: dp2a takes `b`'s
    /// upper two bytes.
    case dotProduct
    /// `mov` of `{a, b}` into one wider register, and the reverse.
    case pack, unpack
    // Floating point (precision from `type`).
    case fadd, fsub, fmul, ffma, fdiv, fabs, fneg, fmin, fmax, frcp, fsqrt, frsqrt
    case fsin, fcos, fex2, flg2, ftanh
    /// `copysign`: `b` with the sign of `a`.
    case fcopysign
    // Comparison and selection.
    case setp, selp, slct
    /// `set.cmp.dtype.stype`: the comparison as a value of `type` (an integer: all ones; a float:
    /// 1.0), or 0; `flags` combines with the predicate `c` as setp's do.
    case set
    // Conversion.
    case cvt, cvtaToGeneric, cvtaFromGeneric
    /// Two values to a pair of FP8 bytes (`cvt.rn.satfinite{.relu}.e4m3x2/e5m2x2`): from `a` (upper
    /// byte) and `b` (lower) of `sourceType` f32, or from the two halves of `a` (f16x2/bf16x2).
    /// `flags` bit 0: e5m2 (else e4m3), bit 1: `.relu`.
    case cvtToFP8x2
    /// A pair of FP8 bytes in `a` to the two halves of `type` (f16x2/bf16x2); flags as above.
    case cvtFromFP8x2
    // Memory.
    case ld, st, atom
    /// Copies `c` bytes of local memory from offset `a` to offset `b` (raw numbers, not registers):
    /// call arguments and results moving between caller and callee slots.
    case copyLocal
    // Control.
    case bra, exit, barrier, trap, nop
    /// `d` = return address, jump to `offset`.
    case call
    /// Jump to the address in register `a` (the function's link register).
    case ret
    case readClock
    /// `call vprintf, (format, arguments)`: `a` and `b` hold the format string's and the argument
    /// buffer's generic addresses, or (flags bit 0, bit 1) the local addresses of `.param` slots
    /// holding them; the result (0, or -1 when the FIFO is full) goes to `d`, or (flags bit 2) to
    /// the local slot whose address `d` holds. See `DevicePrintf`.
    case printf
    /// `call __assertfail, (message, file, line, function, charSize)`: reads `a` (message), `b`
    /// (file), `c` (line) and `d` (function) as `printf` reads its operands (flags bits 0-3: the
    /// operand is the local address of a `.param` slot), writes CUDA's assertion report to the
    /// launch's output and stops the kernel with an assertion fault.
    case assertFail
    /// Stores the registers `a..<b` (a function that may already be running: a recursive call)
    /// at local offset `offset` of the running call level (the next level's save area).
    case saveFrame
    /// Loads them back from there.
    case restoreFrame
    /// Moves the thread to the next call level (`offset` > 0, the level size) or back to the
    /// previous one (`offset` < 0): register `d` holds the running level's offset in the thread's
    /// local memory; `.local` addresses are relative to it.
    case shiftFrame
    // Warp collectives: every lane of the warp that reaches one stops there, and the block runner
    // executes it for those lanes together (see `WarpCollective`).
    case shfl, vote, activemask, warpSync, redux, matchAny

    /// Whether the lanes of a warp meet at this instruction.
    public var isWarpCollective: Bool {
        switch self {
        case .shfl, .vote, .activemask, .warpSync, .redux, .matchAny: true
        default: false
        }
    }
}

/// Comparison operators of `setp`.
public enum CompareOp: UInt8, Sendable {
    case eq, ne, lt, le, gt, ge, lo, ls, hi, hs
    case equ, neu, ltu, leu, gtu, geu, num, nan
}

/// Modes of `shfl.sync`.
public enum ShuffleMode: UInt8, Sendable {
    case up, down, bfly, idx
}

/// Modes of `vote.sync`.
public enum VoteMode: UInt8, Sendable {
    case all, any, uni, ballot
}

/// Block-wide reductions of `bar.red` (mode of a `barrier` instruction; `none` for `bar.sync`).
public enum BarrierReduction: UInt8, Sendable {
    case none, popc, and, or
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
    /// For cvt and float ops: 1 = `.sat`. For vote and bar.red: 1 = the predicate source is negated.
    /// For bfind: 1 = `.shiftamt`. For the carry, funnel-shift and dot-product opcodes: see there.
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
