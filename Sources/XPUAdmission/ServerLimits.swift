/// What any session on this server may have, whoever it is: how many sessions share a device
/// and which slices may be asked for. Set by server flags (`--max-tenants-per-device`,
/// `--slice-memory`, ...) and by the policy file's `limits` (proto/SECURITY.md); a flag wins over
/// the file. Tenants' own limits (`AccessPolicy.Tenant`) apply on top. Pure: no IO.
public struct ServerLimits: Hashable, Sendable {
    /// Sessions a device may serve at once: a session with a slice counts on its slice's device,
    /// one without counts on every device (it may use any of them). nil: no limit.
    public var maxTenantsPerDevice: Int?
    /// Bounds of `mem=`. When either is set, a session must ask for `mem=`: without a quota it
    /// would see the whole device, which is outside every bounded size.
    public var minMemoryBytes: UInt64?
    public var maxMemoryBytes: UInt64?
    /// Bounds of `compute=` in percent; when either is set, a session must ask for `compute=`.
    public var minComputePercent: Double?
    public var maxComputePercent: Double?
    /// `compute=` must be a multiple of this many percent (10: 10%, 20%, ...).
    public var computeStepPercent: Double?
    /// The priorities and modes that may be asked for; nil: all of them.
    public var priorities: Set<SlicePriority>?
    public var modes: Set<SliceMode>?

    public init(
        maxTenantsPerDevice: Int? = nil, minMemoryBytes: UInt64? = nil, maxMemoryBytes: UInt64? = nil,
        minComputePercent: Double? = nil, maxComputePercent: Double? = nil, computeStepPercent: Double? = nil,
        priorities: Set<SlicePriority>? = nil, modes: Set<SliceMode>? = nil
    ) {
        self.maxTenantsPerDevice = maxTenantsPerDevice
        self.minMemoryBytes = minMemoryBytes
        self.maxMemoryBytes = maxMemoryBytes
        self.minComputePercent = minComputePercent
        self.maxComputePercent = maxComputePercent
        self.computeStepPercent = computeStepPercent
        self.priorities = priorities
        self.modes = modes
    }

    /// Why these limits cannot hold together (a minimum above its maximum, a share outside
    /// (0, 100], no tenant allowed at all); nil when they are coherent.
    public var inconsistency: String? {
        if let limit = maxTenantsPerDevice, limit < 1 { return "max tenants per device must be at least 1" }
        if let low = minMemoryBytes, let high = maxMemoryBytes, low > high {
            return "the slice memory minimum (\(low) bytes) is above the maximum (\(high) bytes)"
        }
        for (name, value) in [("minimum", minComputePercent), ("maximum", maxComputePercent), ("step", computeStepPercent)] {
            if let value, !(value > 0 && value <= 100) { return "the slice compute \(name) must be in (0, 100], not \(value)" }
        }
        if let low = minComputePercent, let high = maxComputePercent, low > high {
            return "the slice compute minimum (\(low)%) is above the maximum (\(high)%)"
        }
        if priorities?.isEmpty == true { return "no slice priority is allowed" }
        if modes?.isEmpty == true { return "no slice mode is allowed" }
        return nil
    }

    /// Why `slice` is not a slice this server hands out; nil when it is.
    public func refusal(for slice: SliceRequest) -> String? {
        if minMemoryBytes != nil || maxMemoryBytes != nil {
            guard let asked = slice.memoryBytes else {
                return "this server hands out memory slices of \(memoryRange): ask for one with XPU_SLICE=mem=SIZE"
            }
            if asked < minMemoryBytes ?? 0 || asked > maxMemoryBytes ?? .max {
                return "mem=\(asked) bytes is outside the slice sizes this server allows (\(memoryRange))"
            }
        }
        if minComputePercent != nil || maxComputePercent != nil || computeStepPercent != nil {
            guard let asked = slice.computePercent else {
                return "this server hands out compute shares of \(computeRange): ask for one with XPU_SLICE=compute=PCT%"
            }
            if asked < minComputePercent ?? 0 || asked > maxComputePercent ?? 100 || !isMultiple(asked, of: computeStepPercent) {
                return "compute=\(Self.percent(asked)) is outside the shares this server allows (\(computeRange))"
            }
        }
        let priority = slice.priority ?? .normal
        if let priorities, !priorities.contains(priority) {
            return "priority=\(priority.rawValue) is not allowed on this server (allowed: \(Self.list(priorities)))"
        }
        let mode: SliceMode = slice.capped ? .capped : .guaranteed
        if let modes, !modes.contains(mode) {
            return "mode=\(mode.rawValue) is not allowed on this server (allowed: \(Self.list(modes)))"
        }
        return nil
    }

    /// These limits with every limit that `flags` sets taken from `flags` (flags override the file).
    public func overridden(by flags: ServerLimits) -> ServerLimits {
        ServerLimits(
            maxTenantsPerDevice: flags.maxTenantsPerDevice ?? maxTenantsPerDevice,
            minMemoryBytes: flags.minMemoryBytes ?? minMemoryBytes, maxMemoryBytes: flags.maxMemoryBytes ?? maxMemoryBytes,
            minComputePercent: flags.minComputePercent ?? minComputePercent,
            maxComputePercent: flags.maxComputePercent ?? maxComputePercent,
            computeStepPercent: flags.computeStepPercent ?? computeStepPercent,
            priorities: flags.priorities ?? priorities, modes: flags.modes ?? modes)
    }

    /// The limits that are set, as the server logs them at start.
    public var summary: String {
        var parts: [String] = []
        if let limit = maxTenantsPerDevice { parts.append("maxTenantsPerDevice=\(limit)") }
        if minMemoryBytes != nil || maxMemoryBytes != nil { parts.append("mem=\(memoryRange)") }
        if minComputePercent != nil || maxComputePercent != nil || computeStepPercent != nil { parts.append("compute=\(computeRange)") }
        if let priorities { parts.append("priorities=\(Self.list(priorities))") }
        if let modes { parts.append("modes=\(Self.list(modes))") }
        return parts.isEmpty ? "none" : parts.joined(separator: " ")
    }

    private var memoryRange: String {
        "\(minMemoryBytes.map { "\($0)" } ?? "0") to \(maxMemoryBytes.map { "\($0)" } ?? "any number of") bytes"
    }

    private var computeRange: String {
        let range = "\(Self.percent(minComputePercent ?? computeStepPercent ?? 0)) to \(Self.percent(maxComputePercent ?? 100))"
        return computeStepPercent.map { "\(range) in steps of \(Self.percent($0))" } ?? range
    }

    /// Shares are decimals (`compute=33.3`): a step is met within a millionth of a percent.
    private func isMultiple(_ value: Double, of step: Double?) -> Bool {
        guard let step else { return true }
        let steps = (value / step).rounded()
        return steps >= 1 && abs(steps * step - value) < 1e-6
    }

    static func percent(_ value: Double) -> String {
        value == value.rounded() ? "\(Int(value))%" : "\(value)%"
    }

    private static func list<T: RawRepresentable & Comparable>(_ values: Set<T>) -> String where T.RawValue == String {
        values.sorted().map(\.rawValue).joined(separator: ", ")
    }
}

/// Whether a compute share is only a floor (`guaranteed`: idle capacity is borrowed) or also a
/// ceiling (`capped`), as `mode=` in a slice request says.
public enum SliceMode: String, Hashable, Sendable, CaseIterable, Comparable, Codable {
    case guaranteed, capped

    public static func < (a: SliceMode, b: SliceMode) -> Bool { a == .guaranteed && b == .capped }
}
