/// The pool directory's protocol (`xpu-pool`, docs/pool.md): the same 24-byte frames as
/// sessions (FrameHeader), on the directory's own port, with these calls. Requests carry no
/// context; every request gets one reply (`FrameFlags.reply`, same call and sequence) whose status
/// is a CUresult (0 for success).
///
/// | call | request | reply |
/// |---|---|---|
/// | 300 heartbeat | `PoolHeartbeat` (a server's whole state; the first one registers it) | `PoolHeartbeatReply` (sessions to preempt; empty for none) |
/// | 301 place | `PoolPlaceRequest` (a client's `XPU_SLICE`, how many slices, how long it may wait) | `PoolPlaceReply` (every placement) |
/// | 302 list | empty | `PoolListReply` (the registered servers and their devices; what `xpu-kube controller` publishes) |
/// | 303 watch | `PoolWatchRequest` (the inventory generation the caller knows, how long to wait) | `PoolWatchReply` (the generation and the list, once it differs or the wait ends) |
///
/// The directory keeps soft state only: a server is what its last heartbeat said, and is dropped
/// when heartbeats stop. The directory never connects to a server: what it asks of one (end a
/// session, for preemption) rides on the reply to that server's next heartbeat.
public enum PoolCall: UInt16, Sendable {
    case heartbeat = 300
    case place = 301
    case list = 302
    case watch = 303
}

/// One device of a server as its heartbeat describes it.
public struct PoolDevice: Hashable, Sendable {
    /// Device memory in bytes.
    public var totalMemory: UInt64
    /// Memory not granted to any slice yet (bytes).
    public var freeMemory: UInt64
    /// Compute share not granted to any slice yet, in milli-device (1000 = the whole device).
    public var freeComputeMilli: UInt32
    /// Measured busy time since the server's previous heartbeat, per mille of wall time (device
    /// time of every session's kernels; docs/metrics.md); nil when the server does not measure.
    public var busyMilli: UInt32?

    public init(totalMemory: UInt64, freeMemory: UInt64, freeComputeMilli: UInt32, busyMilli: UInt32? = nil) {
        self.totalMemory = totalMemory
        self.freeMemory = freeMemory
        self.freeComputeMilli = freeComputeMilli
        self.busyMilli = busyMilli
    }
}

/// One slice a server holds, as its heartbeat lists it: what the directory may preempt.
public struct PoolSlice: Hashable, Sendable {
    /// The server's session id (what a preemption names).
    public var session: UInt64
    public var device: Int32
    /// Its memory quota in bytes (0 for none).
    public var memory: UInt64
    /// Its compute share in milli-device (0 for none).
    public var computeMilli: UInt32
    /// `XPU_SLICE`'s `priority=`: 0 low, 1 normal, 2 high.
    public var priority: UInt8
    /// The pool's grant token, empty for a slice asked of the server directly.
    public var grant: String

    public init(session: UInt64, device: Int32, memory: UInt64, computeMilli: UInt32, priority: UInt8, grant: String) {
        self.session = session
        self.device = device
        self.memory = memory
        self.computeMilli = computeMilli
        self.priority = priority
        self.grant = grant
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
    /// The slices the server holds now.
    public var slices: [PoolSlice]

    public init(
        address: String, labels: [String], devices: [PoolDevice], sessions: UInt32, admitted: [String] = [],
        slices: [PoolSlice] = []
    ) {
        self.admitted = admitted
        self.slices = slices
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
        // Added after the first release, at the end so that either side may be older: busy time
        // per device (u32::max for not measured), then the slices.
        writer.write(UInt32(devices.count))
        for device in devices { writer.write(device.busyMilli ?? .max) }
        writer.write(UInt32(slices.count))
        for slice in slices {
            writer.write(slice.session)
            writer.write(slice.device)
            writer.write(slice.memory)
            writer.write(slice.computeMilli)
            writer.write(slice.priority)
            writer.write(slice.grant)
        }
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
        slices = []
        if reader.remaining > 0 {  // a server from before sends neither busy time nor slices
            let busyCount = try reader.read(UInt32.self)
            guard busyCount == deviceCount else { throw ProtocolError(.malformed, "busy time of \(busyCount) devices for \(deviceCount)") }
            for index in devices.indices {
                let busy = try reader.read(UInt32.self)
                devices[index].busyMilli = busy == .max ? nil : busy
            }
            let sliceCount = try reader.read(UInt32.self)
            guard sliceCount <= 65536 else { throw ProtocolError(.malformed, "\(sliceCount) slices (at most 65536)") }
            for _ in 0..<sliceCount {
                slices.append(
                    PoolSlice(
                        session: try reader.read(), device: try reader.read(), memory: try reader.read(),
                        computeMilli: try reader.read(), priority: try reader.read(), grant: try reader.readString()))
            }
        }
        try reader.expectEnd()
    }
}

/// The directory's reply to a heartbeat: sessions the server must end because a request of
/// higher priority preempts them (`xpu-pool --preempt`). An empty payload (a directory from
/// before) orders nothing.
public struct PoolHeartbeatReply: Hashable, Sendable {
    public var preemptions: [PoolPreemption]

    public init(preemptions: [PoolPreemption] = []) { self.preemptions = preemptions }

    public var encoded: [UInt8] {
        guard !preemptions.isEmpty else { return [] }
        var writer = WireWriter(capacity: 8 + 64 * preemptions.count)
        writer.write(UInt32(preemptions.count))
        for preemption in preemptions {
            writer.write(preemption.session)
            writer.write(preemption.reason)
        }
        return writer.bytes
    }

    public init(decoding bytes: [UInt8]) throws(ProtocolError) {
        preemptions = []
        guard !bytes.isEmpty else { return }
        var reader = WireReader(bytes)
        let count = try reader.read(UInt32.self)
        guard count <= 65536 else { throw ProtocolError(.malformed, "\(count) preemptions (at most 65536)") }
        for _ in 0..<count {
            preemptions.append(PoolPreemption(session: try reader.read(), reason: try reader.readString()))
        }
        try reader.expectEnd()
    }
}

/// One session a server must end, and why (the reason reaches the session's client).
public struct PoolPreemption: Hashable, Sendable {
    public var session: UInt64
    public var reason: String

    public init(session: UInt64, reason: String) {
        self.session = session
        self.reason = reason
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
    /// How long the request may wait in the directory's queue for capacity (`XPU_POOL_WAIT`),
    /// in milliseconds; 0 fails at once when nothing fits.
    public var waitMilliseconds: UInt32
    /// Where the client runs (`XPU_ZONE`), empty when unknown: servers labelled `zone=` the same
    /// are preferred between otherwise equal placements.
    public var zone: String
    /// The API family the client speaks (`APIFamily`'s raw value: `cuda`, `opencl`); the pool
    /// places it only on servers of that family. Empty is `cuda`.
    public var api: String

    public init(slice: String, client: String, count: UInt32 = 1, waitMilliseconds: UInt32 = 0, zone: String = "", api: String = "") {
        self.slice = slice
        self.client = client
        self.count = count
        self.waitMilliseconds = waitMilliseconds
        self.zone = zone
        self.api = api
    }

    public var encoded: [UInt8] {
        var writer = WireWriter(capacity: 56 + slice.utf8.count + client.utf8.count + zone.utf8.count + api.utf8.count)
        writer.write(slice)
        writer.write(client)
        writer.write(count)
        writer.write(waitMilliseconds)
        writer.write(zone)
        writer.write(api)
        return writer.bytes
    }

    public init(decoding bytes: [UInt8]) throws(ProtocolError) {
        var reader = WireReader(bytes)
        slice = try reader.readString()
        client = try reader.readString()
        // A client from before counts asks for one slice.
        count = reader.remaining == 0 ? 1 : try reader.read()
        // ... and one from before waiting neither waits nor has a zone.
        waitMilliseconds = reader.remaining == 0 ? 0 : try reader.read()
        zone = reader.remaining == 0 ? "" : try reader.readString()
        // ... and one that names no family is a CUDA client.
        api = reader.remaining == 0 ? "" : try reader.readString()
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

/// The directory's inventory (call 302): every registered server, as its last heartbeat described
/// it, in address order.
public struct PoolListReply: Hashable, Sendable {
    public struct Server: Hashable, Sendable {
        public var address: String
        public var labels: [String]
        public var devices: [PoolDevice]

        public init(address: String, labels: [String], devices: [PoolDevice]) {
            self.address = address
            self.labels = labels
            self.devices = devices
        }
    }

    public var servers: [Server]

    public init(servers: [Server]) { self.servers = servers }

    public var encoded: [UInt8] {
        var writer = WireWriter(capacity: 16 + 64 * servers.count)
        writer.write(UInt32(servers.count))
        for server in servers {
            writer.write(server.address)
            writer.write(UInt32(server.labels.count))
            for label in server.labels { writer.write(label) }
            writer.write(UInt32(server.devices.count))
            for device in server.devices {
                writer.write(device.totalMemory)
                writer.write(device.freeMemory)
                writer.write(device.freeComputeMilli)
            }
        }
        return writer.bytes
    }

    public init(decoding bytes: [UInt8]) throws(ProtocolError) {
        var reader = WireReader(bytes)
        let count = try reader.read(UInt32.self)
        guard count <= 65536 else { throw ProtocolError(.malformed, "\(count) servers (at most 65536)") }
        servers = []
        for _ in 0..<count {
            let address = try reader.readString()
            let labelCount = try reader.read(UInt32.self)
            guard labelCount <= 64 else { throw ProtocolError(.malformed, "\(labelCount) labels (at most 64)") }
            var labels: [String] = []
            for _ in 0..<labelCount { labels.append(try reader.readString()) }
            let deviceCount = try reader.read(UInt32.self)
            guard deviceCount <= 1024 else { throw ProtocolError(.malformed, "\(deviceCount) devices (at most 1024)") }
            var devices: [PoolDevice] = []
            for _ in 0..<deviceCount {
                devices.append(PoolDevice(totalMemory: try reader.read(), freeMemory: try reader.read(), freeComputeMilli: try reader.read()))
            }
            servers.append(Server(address: address, labels: labels, devices: devices))
        }
        try reader.expectEnd()
    }
}

/// A long poll of the directory's inventory (call 303): answered at once when the directory's
/// inventory generation differs from `known`, else when it changes, or when the wait ends.
public struct PoolWatchRequest: Hashable, Sendable {
    /// The generation of the caller's last answer; 0 for none (always answered at once).
    public var known: UInt64
    /// The longest the directory holds the request (it caps this at `maximumWait`).
    public var waitMilliseconds: UInt32

    /// The directory's cap on a watch's wait: a watcher that vanished without closing its
    /// connection holds a thread no longer than this.
    public static let maximumWait: Duration = .seconds(60)

    public init(known: UInt64, waitMilliseconds: UInt32) {
        self.known = known
        self.waitMilliseconds = waitMilliseconds
    }

    public var encoded: [UInt8] {
        var writer = WireWriter(capacity: 12)
        writer.write(known)
        writer.write(waitMilliseconds)
        return writer.bytes
    }

    public init(decoding bytes: [UInt8]) throws(ProtocolError) {
        var reader = WireReader(bytes)
        known = try reader.read()
        waitMilliseconds = try reader.read()
        try reader.expectEnd()
    }
}

/// The answer to a watch: the inventory's generation and the inventory as the list call gives it.
/// The generation changes when a server registers or is dropped, or its labels or devices'
/// memory change, not with free capacity (which every heartbeat changes). A restarted directory
/// counts from a new random base, so a watcher never takes it for the one it knew.
public struct PoolWatchReply: Hashable, Sendable {
    public var generation: UInt64
    public var inventory: PoolListReply

    public init(generation: UInt64, inventory: PoolListReply) {
        self.generation = generation
        self.inventory = inventory
    }

    public var encoded: [UInt8] {
        var writer = WireWriter(capacity: 8)
        writer.write(generation)
        return writer.bytes + inventory.encoded
    }

    public init(decoding bytes: [UInt8]) throws(ProtocolError) {
        guard bytes.count >= 8 else { throw ProtocolError(.malformed, "watch reply of \(bytes.count) bytes") }
        var reader = WireReader(Array(bytes.prefix(8)))
        generation = try reader.read()
        inventory = try PoolListReply(decoding: Array(bytes.dropFirst(8)))
    }
}
