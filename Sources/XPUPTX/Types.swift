/// A PTX fundamental type (`.u32`, `.f64`, `.pred`, ...).
public enum ScalarType: UInt8, Sendable, Hashable, CaseIterable {
    case b8, b16, b32, b64, b128
    case u8, u16, u32, u64
    case s8, s16, s32, s64
    case f16, f16x2, bf16, bf16x2, f32, f64
    case pred

    init?(suffix: Substring) {
        switch suffix {
        case "b8": self = .b8
        case "b16": self = .b16
        case "b32": self = .b32
        case "b64": self = .b64
        case "b128": self = .b128
        case "u8": self = .u8
        case "u16": self = .u16
        case "u32": self = .u32
        case "u64": self = .u64
        case "s8": self = .s8
        case "s16": self = .s16
        case "s32": self = .s32
        case "s64": self = .s64
        case "f16": self = .f16
        case "f16x2": self = .f16x2
        case "bf16": self = .bf16
        case "bf16x2": self = .bf16x2
        case "f32": self = .f32
        case "f64": self = .f64
        case "pred": self = .pred
        default: return nil
        }
    }

    /// Size in bytes (a predicate counts as 1).
    public var size: Int {
        switch self {
        case .b8, .u8, .s8, .pred: 1
        case .b16, .u16, .s16, .f16, .bf16: 2
        case .b32, .u32, .s32, .f32, .f16x2, .bf16x2: 4
        case .b64, .u64, .s64, .f64: 8
        case .b128: 16
        }
    }
    public var bits: Int { size * 8 }
    public var isSigned: Bool { self == .s8 || self == .s16 || self == .s32 || self == .s64 }
    public var isFloat: Bool {
        self == .f16 || self == .f32 || self == .f64 || self == .bf16 || self == .f16x2 || self == .bf16x2
    }
}

/// A PTX state space.
public enum StateSpace: UInt8, Sendable, Hashable {
    case generic, global, shared, local, const, param, reg

    init?(suffix: Substring) {
        switch suffix {
        case "global": self = .global
        case "shared": self = .shared
        case "local": self = .local
        case "const": self = .const
        case "param": self = .param
        default: return nil
        }
    }
}

/// The generic address map of the interpreter: global memory is addressed directly by its device
/// address; shared and local memory appear in generic space at fixed windows (as on a GPU, where
/// `cvta` moves an address between a state space and the generic space).
public enum GenericWindow {
    public static let sharedBase: UInt64 = 0x0000_1000_0000_0000
    public static let localBase: UInt64 = 0x0000_2000_0000_0000
    public static let windowSize: UInt64 = 0x0000_0001_0000_0000
}
