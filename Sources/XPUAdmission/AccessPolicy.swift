import Foundation

/// Who may use this server and what each may ask for: the `--policy` file (proto/SECURITY.md).
///
/// ```json
/// { "limits": { "maxTenantsPerDevice": 4, "minMemory": "256MiB", "maxMemory": "16GiB", "computeStep": 10 },
///   "tenants": [
///     { "name": "team-a", "tokenSHA256": "<64 hex digits>", "devices": [0],
///       "maxMemory": "8GiB", "maxCompute": 50, "maxPriority": "normal", "maxSessions": 4 },
///     { "name": "batch", "certificateCommonName": "batch-client", "maxPriority": "low" } ] }
/// ```
///
/// A tenant is identified by a token (stored only as its SHA-256, `printf %s TOKEN | sha256sum`)
/// or by the common name of a verified TLS client certificate, or both. Absent limits mean no
/// limit beyond the server's own (`limits`, `ServerLimits`, which apply to every session).
public struct AccessPolicy: Hashable, Sendable {
    public struct Tenant: Hashable, Sendable {
        public var name: String
        /// SHA-256 of the tenant's token; nil when the tenant authenticates by certificate only.
        public var tokenDigest: [UInt8]?
        public var certificateCommonName: String?
        /// Device ordinals the tenant may use; nil for all.
        public var devices: [Int32]?
        public var maxMemoryBytes: UInt64?
        public var maxComputePercent: Double?
        public var maxPriority: SlicePriority
        /// Sessions the tenant may have open at once (on this server); nil for no limit.
        public var maxSessions: Int?

        public init(
            name: String, tokenDigest: [UInt8]? = nil, certificateCommonName: String? = nil, devices: [Int32]? = nil,
            maxMemoryBytes: UInt64? = nil, maxComputePercent: Double? = nil, maxPriority: SlicePriority = .normal,
            maxSessions: Int? = nil
        ) {
            self.name = name
            self.tokenDigest = tokenDigest
            self.certificateCommonName = certificateCommonName
            self.devices = devices
            self.maxMemoryBytes = maxMemoryBytes
            self.maxComputePercent = maxComputePercent
            self.maxPriority = maxPriority
            self.maxSessions = maxSessions
        }

        /// Why `slice` exceeds this tenant's policy; nil when it is allowed.
        public func refusal(for slice: SliceRequest) -> String? {
            if let device = slice.device, let devices, !devices.contains(device) {
                return "tenant '\(name)' may not use device \(device) (allowed: \(devices.map(String.init).joined(separator: ", ")))"
            }
            if let limit = maxMemoryBytes, let asked = slice.memoryBytes, asked > limit {
                return "tenant '\(name)' may not request mem=\(asked) bytes (policy allows \(limit))"
            }
            if let limit = maxComputePercent, let asked = slice.computePercent, asked > limit {
                return "tenant '\(name)' may not request compute=\(asked)% (policy allows \(limit)%)"
            }
            if let asked = slice.priority, asked > maxPriority {
                return "tenant '\(name)' may not request priority=\(asked.rawValue) (policy allows \(maxPriority.rawValue))"
            }
            return nil
        }
    }

    public var tenants: [Tenant]
    /// What every session may have, tenant or not.
    public var limits: ServerLimits

    public init(tenants: [Tenant], limits: ServerLimits = ServerLimits()) throws(PolicyError) {
        var names: Set<String> = []
        var digests: Set<[UInt8]> = []
        var commonNames: Set<String> = []
        for tenant in tenants {
            guard !tenant.name.isEmpty, names.insert(tenant.name).inserted else {
                throw PolicyError("tenant names must be non-empty and unique ('\(tenant.name)')")
            }
            guard tenant.tokenDigest != nil || tenant.certificateCommonName != nil else {
                throw PolicyError("tenant '\(tenant.name)' has neither tokenSHA256 nor certificateCommonName")
            }
            if let digest = tenant.tokenDigest, !digests.insert(digest).inserted {
                throw PolicyError("tenant '\(tenant.name)' shares its token with another tenant")
            }
            if let commonName = tenant.certificateCommonName, !commonNames.insert(commonName).inserted {
                throw PolicyError("tenant '\(tenant.name)' shares certificateCommonName '\(commonName)' with another tenant")
            }
            if let percent = tenant.maxComputePercent, !(percent > 0 && percent <= 100) {
                throw PolicyError("tenant '\(tenant.name)': maxCompute must be in (0, 100]")
            }
            if let sessions = tenant.maxSessions, sessions < 1 {
                throw PolicyError("tenant '\(tenant.name)': maxSessions must be at least 1")
            }
        }
        if let inconsistency = limits.inconsistency { throw PolicyError("limits: \(inconsistency)") }
        self.tenants = tenants
        self.limits = limits
    }

    /// Parses the JSON policy file format above.
    public init(json: [UInt8]) throws(PolicyError) {
        struct File: Decodable {
            struct Entry: Decodable {
                var name: String
                var tokenSHA256: String?
                var certificateCommonName: String?
                var devices: [Int32]?
                var maxMemory: String?
                var maxCompute: Double?
                var maxPriority: SlicePriority?
                var maxSessions: Int?
            }
            struct Limits: Decodable {
                var maxTenantsPerDevice: Int?
                var minMemory: String?
                var maxMemory: String?
                var minCompute: Double?
                var maxCompute: Double?
                var computeStep: Double?
                var priorities: Set<SlicePriority>?
                var modes: Set<SliceMode>?
            }
            var limits: Limits?
            var tenants: [Entry]
        }
        let file: File
        do {
            file = try JSONDecoder().decode(File.self, from: Data(json))
        } catch {
            throw PolicyError("not a policy file: \(error)")
        }
        var tenants: [Tenant] = []
        for entry in file.tenants {
            var digest: [UInt8]?
            if let hex = entry.tokenSHA256 {
                guard let parsed = TokenDigest.parse(hex: hex) else {
                    throw PolicyError("tenant '\(entry.name)': tokenSHA256 must be 64 hex digits (printf %s TOKEN | sha256sum)")
                }
                digest = parsed
            }
            var memory: UInt64?
            if let text = entry.maxMemory {
                guard let bytes = ByteSize.parse(text) else { throw PolicyError("tenant '\(entry.name)': maxMemory '\(text)' is not a size") }
                memory = bytes
            }
            tenants.append(
                Tenant(
                    name: entry.name, tokenDigest: digest, certificateCommonName: entry.certificateCommonName,
                    devices: entry.devices, maxMemoryBytes: memory, maxComputePercent: entry.maxCompute,
                    maxPriority: entry.maxPriority ?? .normal, maxSessions: entry.maxSessions))
        }
        var limits = ServerLimits()
        if let entry = file.limits {
            func size(_ text: String?, _ key: String) throws(PolicyError) -> UInt64? {
                guard let text else { return nil }
                guard let bytes = ByteSize.parse(text) else { throw PolicyError("limits: \(key) '\(text)' is not a size") }
                return bytes
            }
            limits = ServerLimits(
                maxTenantsPerDevice: entry.maxTenantsPerDevice, minMemoryBytes: try size(entry.minMemory, "minMemory"),
                maxMemoryBytes: try size(entry.maxMemory, "maxMemory"), minComputePercent: entry.minCompute,
                maxComputePercent: entry.maxCompute, computeStepPercent: entry.computeStep, priorities: entry.priorities,
                modes: entry.modes)
        }
        try self.init(tenants: tenants, limits: limits)
    }

    public init(contentsOfFile path: String) throws(PolicyError) {
        guard let data = FileManager.default.contents(atPath: path) else { throw PolicyError("cannot read policy file \(path)") }
        do {
            try self.init(json: Array(data))
        } catch {
            throw PolicyError("\(path): \(error.message)")
        }
    }

    /// The tenant that presents a verified TLS client certificate of this common name.
    public func tenant(certificateCommonName: String) -> Tenant? {
        tenants.first { $0.certificateCommonName == certificateCommonName }
    }
}

public struct PolicyError: Error, Hashable, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
