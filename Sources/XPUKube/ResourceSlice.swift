/// The pool's devices as the Kubernetes scheduler sees them: `resource.k8s.io/v1` ResourceSlices
/// of one DRA pool, every real device of every server registered with the pool directory, each
/// shareable by several claims (`allowMultipleAllocations`) by its `memory` and `compute`
/// capacities. Devices are network-attached: available on all nodes or on the nodes a selector
/// picks (the CPU nodes). Pure: `ResourceSliceController` fetches and publishes.
public struct ResourceSliceObject: Hashable, Sendable, Codable {
    public var apiVersion = "resource.k8s.io/v1"
    public var kind = "ResourceSlice"
    public var metadata: ResourceClaim.ObjectMeta
    public var spec: Spec

    public struct Spec: Hashable, Sendable, Codable {
        public var driver: String
        public var pool: Pool
        public var allNodes: Bool?
        public var nodeSelector: NodeSelector?
        public var devices: [Device]
    }

    public struct Pool: Hashable, Sendable, Codable {
        public var name: String
        public var generation: Int64
        public var resourceSliceCount: Int64
        public init(name: String, generation: Int64, resourceSliceCount: Int64) {
            self.name = name
            self.generation = generation
            self.resourceSliceCount = resourceSliceCount
        }
    }

    public struct NodeSelector: Hashable, Sendable, Codable {
        public var nodeSelectorTerms: [Term]
        public struct Term: Hashable, Sendable, Codable {
            public var matchExpressions: [Requirement]
        }
        public struct Requirement: Hashable, Sendable, Codable {
            public var key: String
            public var `operator`: String
            public var values: [String]
        }
    }

    public struct Device: Hashable, Sendable, Codable {
        public var name: String
        public var attributes: [String: Attribute]
        public var capacity: [String: Capacity]
        public var allowMultipleAllocations: Bool
    }

    public struct Attribute: Hashable, Sendable, Codable {
        public var string: String?
        public var int: Int64?
        public init(string: String) { self.string = string }
        public init(int: Int64) { self.int = int }
    }

    public struct Capacity: Hashable, Sendable, Codable {
        public var value: String
        public var requestPolicy: RequestPolicy?
    }

    public struct RequestPolicy: Hashable, Sendable, Codable {
        public var `default`: String
        public var validRange: Range
        public struct Range: Hashable, Sendable, Codable {
            public var min: String
            public var max: String?
            public var step: String?
            public init(min: String, max: String?, step: String?) {
                self.min = min
                self.max = max
                self.step = step
            }
        }
    }
}

/// Names of the capacities a device publishes and a claim requests.
public enum DeviceCapacity {
    /// Device memory in bytes (`4Gi`).
    public static let memory = "memory"
    /// Share of the device's compute in percent (`30`), 10...100 in steps of 10.
    public static let compute = "compute"
}

/// What the pool directory reports: servers and their devices (`xpu-pool`'s list call).
public struct PoolInventory: Hashable, Sendable {
    public struct Server: Hashable, Sendable {
        public var address: String
        public var labels: [String]
        /// Total memory of each device, by ordinal.
        public var deviceMemory: [UInt64]
        public init(address: String, labels: [String], deviceMemory: [UInt64]) {
            self.address = address
            self.labels = labels
            self.deviceMemory = deviceMemory
        }
    }

    public var servers: [Server]
    public init(servers: [Server]) { self.servers = servers }

    /// Where a published device is (its server and ordinal), by its name.
    public func locate(_ deviceName: String) -> (server: String, ordinal: Int32)? {
        for server in servers {
            for ordinal in server.deviceMemory.indices where Self.deviceName(server: server.address, ordinal: ordinal) == deviceName {
                return (server.address, Int32(ordinal))
            }
        }
        return nil
    }

    /// A device's name in the ResourceSlice: a DNS label made of the server's address and the
    /// ordinal (`10-0-0-5-7070-d0`), with a hash of the address where it had to be shortened.
    public static func deviceName(server: String, ordinal: Int) -> String {
        var label = String(server.lowercased().map { $0.isASCII && ($0.isLetter || $0.isNumber) ? $0 : "-" })
        label = label.trimmingCharacters("-")
        let suffix = "-d\(ordinal)"
        if label.isEmpty || label.count + suffix.count > 63 {
            var hash: UInt64 = 0xcbf2_9ce4_8422_2325  // FNV-1a
            for byte in server.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
            let digest = String(hash, radix: 16)
            label = String(label.prefix(63 - suffix.count - digest.count - 1)).trimmingCharacters("-")
            label = label.isEmpty ? "x\(digest)" : "\(label)-\(digest)"
        }
        return label + suffix
    }
}

/// Turns the pool's inventory into the ResourceSlices of one DRA pool.
public struct ResourceSlicePublication: Hashable, Sendable {
    /// The DRA driver's name (`xpu-remote.io`).
    public var driver: String
    /// The DRA pool's name, and the prefix of its ResourceSlices' names.
    public var poolName: String
    /// Nodes that may use the devices, `key=value` labels all of which a node must carry; empty:
    /// every node.
    public var nodeLabels: [(key: String, value: String)]

    public init(driver: String, poolName: String, nodeLabels: [(key: String, value: String)]) {
        self.driver = driver
        self.poolName = poolName
        self.nodeLabels = nodeLabels
    }

    public static func == (a: Self, b: Self) -> Bool {
        a.driver == b.driver && a.poolName == b.poolName && a.nodeLabels.elementsEqual(b.nodeLabels, by: ==)
    }
    public func hash(into hasher: inout Hasher) {
        hasher.combine(driver)
        hasher.combine(poolName)
    }

    /// The API allows 128 devices in one ResourceSlice.
    public static let devicesPerSlice = 128

    /// The devices, sorted by name so that the same inventory gives the same objects.
    public func devices(of inventory: PoolInventory) -> [ResourceSliceObject.Device] {
        var devices: [ResourceSliceObject.Device] = []
        for server in inventory.servers {
            for (ordinal, memory) in server.deviceMemory.enumerated() where memory > 0 {
                var attributes: [String: ResourceSliceObject.Attribute] = [
                    "server": .init(string: String(server.address.prefix(64))),
                    "ordinal": .init(int: Int64(ordinal)),
                ]
                for label in server.labels {
                    let parts = label.split(separator: "=", maxSplits: 1)
                    guard parts.count == 2, Self.isAttributeName(String(parts[0])), !attributes.keys.contains(String(parts[0])) else { continue }
                    attributes[String(parts[0])] = .init(string: String(parts[1].prefix(64)))
                }
                let memoryStep: UInt64 = 256 << 20
                devices.append(
                    ResourceSliceObject.Device(
                        name: PoolInventory.deviceName(server: server.address, ordinal: ordinal), attributes: attributes,
                        capacity: [
                            DeviceCapacity.memory: .init(
                                value: KubeQuantity.bytes(memory),
                                requestPolicy: memory >= 2 * memoryStep
                                    ? .init(default: KubeQuantity.bytes(memoryStep), validRange: .init(min: KubeQuantity.bytes(memoryStep), max: nil, step: KubeQuantity.bytes(memoryStep)))
                                    : nil),
                            DeviceCapacity.compute: .init(
                                value: "100", requestPolicy: .init(default: "10", validRange: .init(min: "10", max: "100", step: "10"))),
                        ],
                        allowMultipleAllocations: true))
            }
        }
        return devices.sorted { $0.name < $1.name }
    }

    /// The ResourceSlices for `inventory` at `generation` (bumped by the caller whenever the
    /// devices change): `<poolName>-0`, `<poolName>-1`... each with at most 128 devices; one with
    /// no device when the pool has none, so that the scheduler sees the pool empty.
    public func slices(of inventory: PoolInventory, generation: Int64) -> [ResourceSliceObject] {
        let devices = devices(of: inventory)
        let chunks = stride(from: 0, to: max(devices.count, 1), by: Self.devicesPerSlice).map {
            Array(devices[min($0, devices.count)..<min($0 + Self.devicesPerSlice, devices.count)])
        }
        return chunks.enumerated().map { index, chunk in
            ResourceSliceObject(
                metadata: .init(name: "\(poolName)-\(index)"),
                spec: .init(
                    driver: driver, pool: .init(name: poolName, generation: generation, resourceSliceCount: Int64(chunks.count)),
                    allNodes: nodeLabels.isEmpty ? true : nil,
                    nodeSelector: nodeLabels.isEmpty
                        ? nil
                        : .init(nodeSelectorTerms: [
                            .init(matchExpressions: nodeLabels.map { .init(key: $0.key, operator: "In", values: [$0.value]) })
                        ]),
                    devices: chunk))
        }
    }

    /// Attribute names are C identifiers of at most 32 characters (without a domain).
    static func isAttributeName(_ name: String) -> Bool {
        guard let first = name.first, first.isASCII, first.isLetter, name.count <= 32 else { return false }
        return name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }
    }
}
