/// The part of a `resource.k8s.io/v1` ResourceClaim the DRA plugin reads: who it is and what the
/// scheduler allocated (devices, consumed capacity, opaque configuration). Unknown fields are
/// ignored, so newer API servers decode too.
public struct ResourceClaim: Hashable, Sendable, Decodable {
    public var metadata: ObjectMeta
    public var status: Status?

    public struct ObjectMeta: Hashable, Sendable, Codable {
        public var name: String
        public var namespace: String?
        public var uid: String?
        public var resourceVersion: String?
        public init(name: String, namespace: String? = nil, uid: String? = nil, resourceVersion: String? = nil) {
            self.name = name
            self.namespace = namespace
            self.uid = uid
            self.resourceVersion = resourceVersion
        }
    }

    public struct Status: Hashable, Sendable, Decodable {
        public var allocation: Allocation?
    }

    public struct Allocation: Hashable, Sendable, Decodable {
        public var devices: DeviceAllocation?
    }

    public struct DeviceAllocation: Hashable, Sendable, Decodable {
        public var results: [Result]?
        public var config: [Configuration]?
    }

    /// One allocated device (or share of one).
    public struct Result: Hashable, Sendable, Decodable {
        public var request: String
        public var driver: String
        public var pool: String
        public var device: String
        public var shareID: String?
        /// Capacity name to quantity (`memory: 4Gi`, `compute: "30"`).
        public var consumedCapacity: [String: String]?

        public init(
            request: String, driver: String, pool: String, device: String, shareID: String? = nil,
            consumedCapacity: [String: String]? = nil
        ) {
            self.request = request
            self.driver = driver
            self.pool = pool
            self.device = device
            self.shareID = shareID
            self.consumedCapacity = consumedCapacity
        }
    }

    public struct Configuration: Hashable, Sendable, Decodable {
        /// `FromClass` or `FromClaim`: a claim's own configuration overrides its class's.
        public var source: String
        /// The requests it applies to; empty or absent for all.
        public var requests: [String]?
        public var opaque: Opaque?
    }

    public struct Opaque: Hashable, Sendable, Decodable {
        public var driver: String
        public var parameters: SliceConfig
    }
}

/// The driver's opaque configuration (in a DeviceClass or a claim):
/// `{"apiVersion": "xpu-remote.io/v1", "kind": "SliceConfig", "priority": "high", "mode": "capped",
/// "placement": "pool", "poolWait": "30s"}`. Every field but apiVersion and kind is optional.
public struct SliceConfig: Hashable, Sendable, Decodable {
    public static let apiVersion = "xpu-remote.io/v1"
    public static let kind = "SliceConfig"

    /// Who chooses the device: `pool` (default; the pool directory at `cuInit`) or `device` (the
    /// device the Kubernetes scheduler allocated, reached directly).
    public enum Placement: String, Hashable, Sendable, Decodable { case pool, device }

    public var apiVersion: String
    public var kind: String
    public var priority: SliceShape.Priority?
    public var mode: SliceShape.Mode?
    public var placement: Placement?
    /// `XPU_POOL_WAIT` (`30s`, `2m`): how long the pool may queue the request.
    public var poolWait: String?

    public init(
        priority: SliceShape.Priority? = nil, mode: SliceShape.Mode? = nil, placement: Placement? = nil, poolWait: String? = nil
    ) {
        apiVersion = Self.apiVersion
        kind = Self.kind
        self.priority = priority
        self.mode = mode
        self.placement = placement
        self.poolWait = poolWait
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case apiVersion, kind, priority, mode, placement, poolWait }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        apiVersion = try container.decode(String.self, forKey: .apiVersion)
        kind = try container.decode(String.self, forKey: .kind)
        guard apiVersion == Self.apiVersion, kind == Self.kind else {
            throw DecodingError.dataCorruptedError(
                forKey: .kind, in: container, debugDescription: "expected \(Self.apiVersion) \(Self.kind), got \(apiVersion) \(kind)")
        }
        // Unknown keys are refused: a misspelt option must not be silently ignored.
        let known = Set(CodingKeys.allCases.map(\.stringValue))
        if let unknown = try decoder.container(keyedBy: AnyKey.self).allKeys.first(where: { !known.contains($0.stringValue) }) {
            throw DecodingError.dataCorruptedError(
                forKey: .kind, in: container, debugDescription: "unknown SliceConfig field '\(unknown.stringValue)'")
        }
        priority = try container.decodeIfPresent(SliceShape.Priority.self, forKey: .priority)
        mode = try container.decodeIfPresent(SliceShape.Mode.self, forKey: .mode)
        placement = try container.decodeIfPresent(Placement.self, forKey: .placement)
        poolWait = try container.decodeIfPresent(String.self, forKey: .poolWait)
    }

    /// Later configuration wins field by field (class first, then claim, as the API orders them).
    func overridden(by other: SliceConfig) -> SliceConfig {
        SliceConfig(
            priority: other.priority ?? priority, mode: other.mode ?? mode, placement: other.placement ?? placement,
            poolWait: other.poolWait ?? poolWait)
    }
}

extension SliceShape.Priority: Decodable {}
extension SliceShape.Mode: Decodable {}

struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}
