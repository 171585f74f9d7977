import XPUProtocol
import XPUTransport

extension TenantMessage {
    enum Kind: UInt8 {
        case handOff = 1, turnRequest, turnGranted, turnDone, usage, scheduleQuery, schedule
    }

    /// Messages are framed by a u32 length; none is larger than this (a hand-off carries at most
    /// what the server's frame buffer held).
    static let maximumBytes = 1 << 20

    /// The message with its length prefix, as it goes on the control channel.
    var framed: [UInt8] {
        var writer = WireWriter(capacity: 64)
        writer.write(UInt32(0))
        switch self {
        case .handOff(let handOff):
            writer.write(Kind.handOff.rawValue)
            writer.write(handOff.session)
            writer.write(handOff.client)
            writer.write(handOff.clientCUDAVersion)
            writer.write(handOff.slice)
            writer.write(UInt8(handOff.tenant == nil ? 0 : 1))
            writer.write(handOff.tenant ?? "")
            writer.write(handOff.features)
            writer.write(UInt8(handOff.metered ? 1 : 0))
            writer.write(bytes: handOff.buffered)
            writer.write(UInt8(handOff.sharedMemory == nil ? 0 : 1))
            if let position = handOff.sharedMemory {
                writer.write(UInt32(position.capacity))
                writer.write(position.produced)
                writer.write(position.consumed)
            }
        case .turnRequest:
            writer.write(Kind.turnRequest.rawValue)
        case .turnGranted:
            writer.write(Kind.turnGranted.rawValue)
        case .turnDone(let nanoseconds):
            writer.write(Kind.turnDone.rawValue)
            writer.write(nanoseconds)
        case .usage(let report):
            writer.write(Kind.usage.rawValue)
            writer.write(report.memoryBytes)
            writer.write(report.launches)
            writer.write(UInt32(report.deviceTime.count))
            for (device, nanoseconds) in report.deviceTime.sorted(by: { $0.key < $1.key }) {
                writer.write(device)
                writer.write(nanoseconds)
            }
        case .scheduleQuery:
            writer.write(Kind.scheduleQuery.rawValue)
        case .schedule(let deviceNanoseconds, let waitNanoseconds, let stalls):
            writer.write(Kind.schedule.rawValue)
            writer.write(deviceNanoseconds)
            writer.write(waitNanoseconds)
            writer.write(stalls)
        }
        var bytes = writer.bytes
        withUnsafeBytes(of: UInt32(bytes.count - 4).littleEndian) { bytes.replaceSubrange(0..<4, with: $0) }
        return bytes
    }

    /// Decodes one message's body (without its length prefix).
    init(decoding body: [UInt8]) throws(ProtocolError) {
        var reader = WireReader(body)
        let raw = try reader.read(UInt8.self)
        guard let kind = Kind(rawValue: raw) else { throw ProtocolError(.malformed, "unknown tenant message kind \(raw)") }
        switch kind {
        case .handOff:
            let session = try reader.read(UInt64.self)
            let client = try reader.readString()
            let cuda = try reader.read(Int32.self)
            let slice = try reader.readString()
            let hasTenant = try reader.read(UInt8.self) != 0
            let tenant = try reader.readString()
            let features = try reader.read(UInt32.self)
            let metered = try reader.read(UInt8.self) != 0
            let buffered = try reader.readBytes(limit: Self.maximumBytes)
            var sharedMemory: SharedMemoryTransport.Position?
            if try reader.read(UInt8.self) != 0 {
                let capacity = try reader.read(UInt32.self)
                let produced = try reader.read(UInt64.self)
                let consumed = try reader.read(UInt64.self)
                sharedMemory = SharedMemoryTransport.Position(capacity: Int(capacity), produced: produced, consumed: consumed)
            }
            self = .handOff(
                SessionHandOff(
                    session: session, client: client, clientCUDAVersion: cuda, slice: slice, tenant: hasTenant ? tenant : nil,
                    features: features, metered: metered, buffered: buffered, sharedMemory: sharedMemory))
        case .turnRequest:
            self = .turnRequest
        case .turnGranted:
            self = .turnGranted
        case .turnDone:
            self = .turnDone(deviceNanoseconds: try reader.read(UInt64.self))
        case .usage:
            let memory = try reader.read(UInt64.self)
            let launches = try reader.read(UInt64.self)
            let count = try reader.read(UInt32.self)
            guard count <= 4096 else { throw ProtocolError(.tooLarge, "usage of \(count) devices") }
            var deviceTime: [Int32: UInt64] = [:]
            for _ in 0..<count {
                let device = try reader.read(Int32.self)
                deviceTime[device] = try reader.read(UInt64.self)
            }
            self = .usage(TenantUsageReport(memoryBytes: memory, launches: launches, deviceTime: deviceTime))
        case .scheduleQuery:
            self = .scheduleQuery
        case .schedule:
            self = .schedule(
                deviceNanoseconds: try reader.read(UInt64.self), waitNanoseconds: try reader.read(UInt64.self),
                stalls: try reader.read(UInt64.self))
        }
        try reader.expectEnd()
    }
}
