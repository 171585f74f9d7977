/// The first frame of a session (call 0), sent by the client (proto/PROTOCOL.md, "Handshake").
public struct Hello: Hashable, Sendable {
    public var magic: UInt32
    public var version: UInt16
    /// Feature bits the client can use (`Features`).
    public var features: UInt32
    /// The CUDA version the application was built for, as `cuDriverGetVersion` encodes it.
    public var clientCUDAVersion: Int32
    /// The requested slice (`XPU_SLICE`), empty for the server's default.
    public var slice: String
    /// Who is asking, for the server's log: program name and pid.
    public var client: String
    /// The tenant's secret (`XPU_TOKEN`), empty for none; never logged (proto/SECURITY.md).
    public var token: String

    public init(
        magic: UInt32 = ProtocolLimits.magic, version: UInt16 = ProtocolLimits.version, features: UInt32 = 0,
        clientCUDAVersion: Int32, slice: String = "", client: String, token: String = ""
    ) {
        self.magic = magic
        self.version = version
        self.features = features
        self.clientCUDAVersion = clientCUDAVersion
        self.slice = slice
        self.client = client
        self.token = token
    }
}

/// The server's answer to `Hello`; the header's status is `CUDA_SUCCESS` when the session is open.
public struct Welcome: Hashable, Sendable {
    public var version: UInt16
    /// Features both sides will use: the intersection of what was offered and what the server has.
    public var features: UInt32
    public var session: UInt64
    public var maximumFrameBytes: UInt32
    public var maximumBulkBytes: UInt32
    /// `cuDriverGetVersion` of the driver the server replays on.
    public var driverVersion: Int32
    /// Why the session was refused (empty when accepted).
    public var reason: String

    public init(
        version: UInt16 = ProtocolLimits.version, features: UInt32, session: UInt64,
        maximumFrameBytes: UInt32 = UInt32(ProtocolLimits.maximumFrameBytes),
        maximumBulkBytes: UInt32 = UInt32(ProtocolLimits.maximumBulkBytes), driverVersion: Int32, reason: String = ""
    ) {
        self.version = version
        self.features = features
        self.session = session
        self.maximumFrameBytes = maximumFrameBytes
        self.maximumBulkBytes = maximumBulkBytes
        self.driverVersion = driverVersion
        self.reason = reason
    }
}

/// Feature bits negotiated in the handshake.
public struct Features: OptionSet, Hashable, Sendable {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// The client may send `noReply` frames and the server latches their errors.
    public static let fireAndForget = Features(rawValue: 1 << 0)
    /// Bulk data may travel LZ4-compressed (`FrameFlags.compressed`); offered by a peer that
    /// could load liblz4.
    public static let lz4 = Features(rawValue: 1 << 1)
    /// Module images may be named by their SHA-256 (`ModuleLoadCached`); the server keeps the
    /// images it received in a content-addressed cache.
    public static let moduleCache = Features(rawValue: 1 << 2)
    /// The server sends what kernels print (`DeviceOutputNotice`) before the reply to the
    /// synchronizing call that flushed it; without it the output stays on the server.
    public static let deviceOutput = Features(rawValue: 1 << 3)

    public static let supported: Features = [.fireAndForget, .lz4, .moduleCache, .deviceOutput]
}

extension Hello: WireMessage {
    public func encode(into writer: inout WireWriter) {
        writer.write(magic)
        writer.write(version)
        writer.write(features)
        writer.write(clientCUDAVersion)
        writer.write(slice)
        writer.write(client)
        writer.write(token)
    }

    public init(from reader: inout WireReader) throws(ProtocolError) {
        magic = try reader.read()
        guard magic == ProtocolLimits.magic else {
            throw ProtocolError(.badMagic, "expected 0x\(String(ProtocolLimits.magic, radix: 16)), got 0x\(String(magic, radix: 16))")
        }
        version = try reader.read()
        guard version == ProtocolLimits.version else {
            throw ProtocolError(.unsupportedVersion, "client speaks version \(version), server \(ProtocolLimits.version)")
        }
        features = try reader.read()
        clientCUDAVersion = try reader.read()
        slice = try reader.readString()
        client = try reader.readString()
        token = try reader.readString()
    }
}

extension Welcome: WireMessage {
    public func encode(into writer: inout WireWriter) {
        writer.write(version)
        writer.write(features)
        writer.write(session)
        writer.write(maximumFrameBytes)
        writer.write(maximumBulkBytes)
        writer.write(driverVersion)
        writer.write(reason)
    }

    public init(from reader: inout WireReader) throws(ProtocolError) {
        version = try reader.read()
        features = try reader.read()
        session = try reader.read()
        maximumFrameBytes = try reader.read()
        maximumBulkBytes = try reader.read()
        driverVersion = try reader.read()
        reason = try reader.readString()
    }
}
