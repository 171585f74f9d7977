/// The pool directory's protocol (`xpu-pool`, README "Running a pool"): the same 24-byte frames as
/// sessions (FrameHeader), on the directory's own port, with these calls. Requests carry no
/// context; every request gets one reply (`FrameFlags.reply`, same call and sequence) whose status
/// is a CUresult (0 for success).
///
/// | call | request | reply |
/// |---|---|---|
/// | 300 heartbeat | `PoolHeartbeat` (a server's whole state; the first one registers it) | empty |
/// | 301 place | `PoolPlaceRequest` (a client's `XPU_SLICE` and how many slices) | `PoolPlaceReply` (every placement) |
///
/// The directory keeps soft state only: a server is what its last heartbeat said, and is dropped
/// when heartbeats stop.
public enum PoolCall: UInt16, Sendable {
    case heartbeat = 300
    case place = 301
}

/// One device of a server as its heartbeat describes it.
public struct PoolDevice: Hashable, Sendable {
    /// Device memory in bytes.
    public var totalMemory: UInt64
    /// Memory not granted to any slice yet (bytes).
    public var freeMemory: UInt64
    /// Compute share not granted to any slice yet, in milli-device (1000 = the whole device).
    public var freeComputeMilli: UInt32

    public init(totalMemory: UInt64, freeMemory: UInt64, freeComputeMilli: UInt32) {
        self.totalMemory = totalMemory
        self.freeMemory = freeMemory
        self.freeComputeMilli = freeComputeMilli
    }
}

/// A server's registration and heartbeat (call 300), sent every second.
public struct PoolHeartbeat: Hashable, Sendable {
    /// The address clients use to reach the server (`XPU_SERVER` form).
    public var address: String
    /// Free-form labels (`zone=a`, `model=sim`).
    public var labels: [String]
    public var devices: [PoolDevice]
    /// Sessions open on the server (for the directory's log).
    public var sessions: UInt32
    /// Pool grant tokens the server admitted lately (`grant=` of `PoolPlaceReply.slice`): the
    /// directory stops reserving for a placement once its server reports the grant.
    public var admitted: [String]

    public init(address: String, labels: [String], devices: [PoolDevice], sessions: UInt32, admitted: [String] = []) {
        self.admitted = admitted
        self.address = address
        self.labels = labels
        self.devices = devices
        self.sessions = sessions
    }

    public var encoded: [UInt8] {
        var writer = WireWriter(capacity: 64 + 24 * devices.count)
        writer.write(address)
        writer.write(UInt32(labels.count))
        for label in labels { writer.write(label) }
        writer.write(UInt32(devices.count))
        for device in devices {
            writer.write(device.totalMemory)
            writer.write(device.freeMemory)
            writer.write(device.freeComputeMilli)
        }
        writer.write(sessions)
        writer.write(UInt32(admitted.count))
        for token in admitted { writer.write(token) }
        return writer.bytes
    }

    public init(decoding bytes: [UInt8]) throws(ProtocolError) {
        var reader = WireReader(bytes)
        address = try reader.readString()
        let labelCount = try reader.read(UInt32.self)
        guard labelCount <= 64 else { throw ProtocolError(.malformed, "\(labelCount) labels (at most 64)") }
        labels = []
        for _ in 0..<labelCount { labels.append(try reader.readString()) }
        let deviceCount = try reader.read(UInt32.self)
        guard deviceCount <= 1024 else { throw ProtocolError(.malformed, "\(deviceCount) devices (at most 1024)") }
        devices = []
        for _ in 0..<deviceCount {
            let total = try reader.read(UInt64.self)
            let free = try reader.read(UInt64.self)
            let compute = try reader.read(UInt32.self)
            devices.append(PoolDevice(totalMemory: total, freeMemory: free, freeComputeMilli: compute))
        }
        sessions = try reader.read(UInt32.self)
        let admittedCount = try reader.read(UInt32.self)
        guard admittedCount <= 65536 else { throw ProtocolError(.malformed, "\(admittedCount) grants (at most 65536)") }
        admitted = []
        for _ in 0..<admittedCount { admitted.append(try reader.readString()) }
        try reader.expectEnd()
    }
}

/// A client's request for slices (call 301): `count` slices of the same shape, one per device the
/// client wants (`XPU_DEVICES`).
public struct PoolPlaceRequest: Hashable, Sendable {
    /// The client's `XPU_SLICE` (`mem=2GiB,compute=30%`); empty for a whole device's worth of nothing.
    public var slice: String
    /// Who is asking (program and pid), for the directory's log.
    public var client: String
    /// How many slices, each on a device of its own where the pool has enough of them.
    public var count: UInt32

    public init(slice: String, client: String, count: UInt32 = 1) {
        self.slice = slice
        self.client = client
        self.count = count
    }

    public var encoded: [UInt8] {
        var writer = WireWriter(capacity: 36 + slice.utf8.count + client.utf8.count)
        writer.write(slice)
        writer.write(client)
        writer.write(count)
        return writer.bytes
    }

    public init(decoding bytes: [UInt8]) throws(ProtocolError) {
        var reader = WireReader(bytes)
        slice = try reader.readString()
        client = try reader.readString()
        // A client from before counts asks for one slice.
        count = reader.remaining == 0 ? 1 : try reader.read()
        try reader.expectEnd()
    }
}

/// One placed slice: where to connect and what to ask for there.
public struct PoolPlacement: Hashable, Sendable {
    /// The server to connect to (`XPU_SERVER` form).
    public var server: String
    /// The server's ordinal of the chosen device.
    public var device: Int32
    /// The slice to ask that server for: the request with the chosen `device=` and the grant token.
    public var slice: String

    public init(server: String, device: Int32, slice: String) {
        self.server = server
        self.device = device
        self.slice = slice
    }
}

/// The directory's answer to a placement (the header's status says whether it was placed): all
/// the slices asked for, or none.
public struct PoolPlaceReply: Hashable, Sendable {
    /// One per slice asked for, in order; empty when not placed.
    public var placements: [PoolPlacement]
    /// Why the request was not placed (empty when placed).
    public var reason: String

    public init(placements: [PoolPlacement], reason: String) {
        self.placements = placements
        self.reason = reason
    }

    public var encoded: [UInt8] {
        var writer = WireWriter(capacity: 64 + reason.utf8.count)
        writer.write(UInt32(placements.count))
        for placement in placements {
            writer.write(placement.server)
            writer.write(placement.device)
            writer.write(placement.slice)
        }
        writer.write(reason)
        return writer.bytes
    }

    public init(decoding bytes: [UInt8]) throws(ProtocolError) {
        var reader = WireReader(bytes)
        let count: UInt32 = try reader.read()
        guard count <= ProtocolLimits.maximumPoolPlacements else {
            throw ProtocolError(.malformed, "\(count) placements in one reply")
        }
        placements = []
        for _ in 0..<count {
            let server = try reader.readString()
            let device: Int32 = try reader.read()
            placements.append(PoolPlacement(server: server, device: device, slice: try reader.readString()))
        }
        reason = try reader.readString()
        try reader.expectEnd()
    }
}
