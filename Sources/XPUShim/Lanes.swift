#if canImport(Glibc)
import Glibc
#endif
import CXPUShimSupport
import XPUTransport

/// The process's lanes: one session per server, fixed at load time by the environment.
///
/// - `XPU_SERVER=host:port[,host:port...]`: one lane per entry (default `127.0.0.1:7070`), each
///   asking its server for `XPU_SLICE`; every device of every server becomes a device of the
///   application, server by server in the order given.
/// - `XPU_POOL=dir:port` (without `XPU_SERVER`): `XPU_DEVICES` lanes (default 1), each a slice
///   the directory places (`PoolClient`); each lane shows only its slice's device.
///
/// How an id names its lane: sessions mint ids independently (each from its session's range, bits
/// 32...55, and session numbers repeat across servers), so two servers can hand out the same
/// values. The application sees each id with its lane's index in bits 56...61 (`tag`); the wire
/// carries the server's own value (`wire`). Servers never set bits 56...62 (PROTOCOL.md,
/// "Handles"). The wire's top bit, the marker of shim-minted ids (streams, events), is bit 62 of
/// the application's id: handles the application sees have the top bit clear, as the user-space
/// pointers of a real driver do (cuda.core reads a handle as a signed integer and refuses a
/// negative one). Device pointers are not tagged (kernels take them as raw bytes): `Target`
/// finds their lane in the lanes' allocation maps.
enum Lanes {
    static let tagShift: UInt64 = 56
    static let tagMask: UInt64 = 0x3F << tagShift
    /// Where a shim-minted id's marker is: on the wire, and in the application's id.
    static let wireMintedBit: UInt64 = 1 << 63
    static let applicationMintedBit: UInt64 = 1 << 62

    /// Built once, on first use; never changes (a forked child reuses the lanes with new sessions).
    /// No lanes when the environment is unusable, with the reason (cuInit logs it).
    static let configuration: (lanes: [Lane], problem: String?) = configure()

    static var all: [Lane] { configuration.lanes }

    /// Whether the pool places the lanes (their servers are unknown until cuInit).
    static let pooled = getenv("XPU_SERVER") == nil && getenv("XPU_POOL") != nil

    static func tag(_ wireID: UInt64, lane: Int) -> UInt64 {
        guard wireID != 0 else { return 0 }
        let marker = wireID & wireMintedBit != 0 ? applicationMintedBit : 0
        return wireID & ~wireMintedBit | marker | (UInt64(lane) << tagShift)
    }

    static func wire(_ id: UInt64) -> UInt64 {
        let marker = id & applicationMintedBit != 0 ? wireMintedBit : 0
        return id & ~(tagMask | applicationMintedBit) | marker
    }

    /// The lane an application id belongs to (nil when it names none: a stray value).
    static func lane(of id: UInt64) -> Lane? {
        let index = Int((id & tagMask) >> tagShift)
        return index < all.count ? all[index] : nil
    }

    /// `lane(of:)` without a reference count, for the launch path: lanes live as long as the
    /// process, so `_withUnsafeGuaranteedRef` on the answer is safe.
    static func unretainedLane(of id: UInt64) -> Unmanaged<Lane>? {
        let index = Int((id & tagMask) >> tagShift)
        return index < unretained.count ? unretained[index] : nil
    }

    private static let unretained = all.map { Unmanaged.passUnretained($0) }

    private static func configure() -> (lanes: [Lane], problem: String?) {
        let slice = Session.environment("XPU_SLICE")
        if pooled {
            let raw = Session.environment("XPU_DEVICES")
            guard let count = raw.isEmpty ? 1 : Int(raw), count >= 1, count <= Int(XPU_LANE_CAPACITY) else {
                return ([], "XPU_DEVICES must be a count from 1 to \(XPU_LANE_CAPACITY), got '\(raw)'")
            }
            return ((0..<count).map { Lane(index: $0, server: nil, slice: slice) }, nil)
        }
        let raw = getenv("XPU_SERVER").map { String(cString: $0) } ?? "127.0.0.1:7070"
        // Addresses never contain commas (a unix socket path with one cannot be listed).
        let entries = raw.split(separator: ",").map { String($0).filter { $0 != " " } }.filter { !$0.isEmpty }
        var servers: [ServerAddress] = []
        for entry in entries {
            guard let server = ServerAddress(parsing: entry) else {
                return ([], "XPU_SERVER entries must be host:port, tls://host:port, unix:/path or rdma://host:port, got '\(entry)'")
            }
            servers.append(server)
        }
        guard !servers.isEmpty, servers.count <= Int(XPU_LANE_CAPACITY) else {
            return ([], "XPU_SERVER must name 1 to \(XPU_LANE_CAPACITY) servers, got '\(raw)'")
        }
        return (servers.enumerated().map { Lane(index: $0.offset, server: $0.element, slice: slice) }, nil)
    }
}
