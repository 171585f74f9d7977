/// The parsed form of an API description file (`proto/*.api`, grammar in proto/PROTOCOL.md).
public struct APIDescription: Hashable, Sendable {
    public var remoteCalls: [RemoteCall] = []
    public var customCalls: [CustomCall] = []
    public var driverEntries: [DriverEntry] = []
    public var structs: [WireStruct] = []

    /// Every symbol the shim serves with generated code (remote calls and their aliases).
    public var generatedExports: [String] {
        remoteCalls.flatMap { [$0.symbol] + $0.aliases }
    }
}

/// A C parameter of a remote call or driver entry point.
public struct Parameter: Hashable, Sendable {
    public enum Direction: String, Hashable, Sendable { case input = "in", output = "out" }
    public var direction: Direction
    public var type: ParameterType
    public var name: String
    public var annotation: Annotation?
}

public enum ParameterType: Hashable, Sendable {
    case u8, u16, u32, i32, u64, size, f32, device, devptr, uuid, string
    case handle(HandleKind)
    case enumeration(String)
    /// An output character buffer whose capacity is the named input parameter.
    case chars(lengthParameter: String)
    /// Server-only pointer types used by driver entries.
    case hostPointer, mutableHostPointer, pointerArray, functionArray
}

public enum HandleKind: String, Hashable, Sendable, CaseIterable {
    case ctx, stream, event, module, `func`

    public var cType: String {
        switch self {
        case .ctx: "CUcontext"
        case .stream: "CUstream"
        case .event: "CUevent"
        case .module: "CUmodule"
        case .func: "CUfunction"
        }
    }

    /// The Swift name of the server's `HandleKind` case.
    public var serverKind: String {
        switch self {
        case .ctx: "context"
        case .stream: "stream"
        case .event: "event"
        case .module: "module"
        case .func: "function"
        }
    }
}

public enum Annotation: Hashable, Sendable {
    case range(String)
    case alloc(String)
    case free
    case global(String)
    case release
}

public struct RemoteCall: Hashable, Sendable {
    public var id: UInt16
    public var symbol: String
    public var parameters: [Parameter]
    public var aliases: [String]
    /// The shim calls a hand-written `Shim.completed<Symbol>` after success (client-side state).
    public var hook: Bool
    /// Fire-and-forget: the shim validates what it can locally and sends without awaiting a reply.
    public var isAsync: Bool = false
    /// The answer never changes during a session: the shim keeps the first successful reply.
    public var isCached: Bool = false
    /// The shim's export is written by hand (it answers locally, or routes in a way the generator
    /// does not express); the codec and the server's dispatch are still generated.
    public var isManual: Bool = false
}

/// A field of a generated message type.
public struct Field: Hashable, Sendable {
    public var name: String
    public var type: FieldType
}

public indirect enum FieldType: Hashable, Sendable {
    case u8, u16, u32, i32, u64, f32, string, bytes
    case fixed(Int)
    case named(String)
    case list(FieldType)
}

public struct CustomCall: Hashable, Sendable {
    public var id: UInt16
    public var name: String
    public var request: [Field]
    public var reply: [Field]
}

public struct DriverEntry: Hashable, Sendable {
    public var symbol: String
    public var parameters: [Parameter]
}

public struct WireStruct: Hashable, Sendable {
    public var name: String
    public var fields: [Field]
}
