/// How the generator names things in Swift, in one place so every emitter agrees.
enum SwiftNames {
    static func messageType(remote symbol: String) -> String {
        symbol.prefix(1).uppercased() + symbol.dropFirst()
    }

    static func messageType(custom name: String) -> String { name }

    static func callCase(remote symbol: String) -> String { symbol }

    static func callCase(custom name: String) -> String {
        name.prefix(1).lowercased() + name.dropFirst()
    }

    /// The Swift type of a message field.
    static func swiftType(_ type: FieldType) -> String {
        switch type {
        case .u8: "UInt8"
        case .u16: "UInt16"
        case .u32: "UInt32"
        case .i32: "Int32"
        case .u64: "UInt64"
        case .f32: "Float"
        case .string: "String"
        case .bytes, .fixed: "[UInt8]"
        case .named(let name): name
        case .list(let element): "[\(swiftType(element))]"
        }
    }

    /// The wire field that carries a C parameter of a remote call.
    static func wireType(_ type: ParameterType) -> FieldType {
        switch type {
        case .u8: .u8
        case .u16: .u16
        case .u32, .enumeration: .u32
        case .i32, .device: .i32
        case .u64, .size, .devptr, .handle: .u64
        case .f32: .f32
        case .uuid: .fixed(16)
        case .string, .chars: .string
        case .hostPointer, .mutableHostPointer, .pointerArray, .functionArray: .u64
        }
    }

    /// The Swift spelling of a C parameter in an `@c` function or a `@convention(c)` type.
    static func cParameterType(_ parameter: Parameter) -> String {
        let scalar: String
        switch parameter.type {
        case .u8: scalar = "UInt8"
        case .u16: scalar = "UInt16"
        case .u32: scalar = "UInt32"
        case .i32: scalar = "Int32"
        case .u64: scalar = "UInt64"
        case .size: scalar = "Int"
        case .f32: scalar = "Float"
        case .device: scalar = "CUdevice"
        case .devptr: scalar = "CUdeviceptr"
        case .uuid: scalar = "CUuuid"
        case .handle(let kind): scalar = "\(kind.cType)?"
        case .enumeration(let name): scalar = name
        case .string:
            return parameter.direction == .input
                ? "UnsafePointer<CChar>?" : "UnsafeMutablePointer<UnsafePointer<CChar>?>?"
        case .chars: return "UnsafeMutablePointer<CChar>?"
        case .hostPointer: return "UnsafeRawPointer?"
        case .mutableHostPointer: return "UnsafeMutableRawPointer?"
        case .pointerArray: return "UnsafeMutablePointer<UnsafeMutableRawPointer?>?"
        case .functionArray: return "UnsafeMutablePointer<CUfunction?>?"
        }
        return parameter.direction == .input ? scalar : "UnsafeMutablePointer<\(scalar)>?"
    }
}
