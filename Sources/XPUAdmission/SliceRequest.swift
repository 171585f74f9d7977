/// What a client asks for in `Hello.slice` (`XPU_SLICE`): comma-separated `key=value` items,
/// `mem=8GiB,compute=30%,priority=high,device=0`. Every key is optional; an empty string asks for
/// the server's default. Parsed before authorization so that a tenant cannot ask for more than its
/// policy allows (proto/SECURITY.md). Pure: no IO (fuzzed by scripts/fuzz-handshake.sh).
public struct SliceRequest: Hashable, Sendable {
    /// Device memory in bytes (`mem=`).
    public var memoryBytes: UInt64?
    /// Compute share in percent of the device, 0 < share <= 100 (`compute=30%` or `compute=30`).
    public var computePercent: Double?
    public var priority: SlicePriority?
    /// Device ordinal on the server (`device=`).
    public var device: Int32?
    /// `mode=capped`: the compute share is also a ceiling (default `guaranteed`: a floor, idle
    /// capacity is borrowed).
    public var capped = false
    /// The pool directory's placement token (`grant=`, set by the shim from the directory's
    /// answer): the server reports it in its next heartbeats so the directory stops reserving.
    public var grant: String?

    public init(memoryBytes: UInt64? = nil, computePercent: Double? = nil, priority: SlicePriority? = nil, device: Int32? = nil) {
        self.memoryBytes = memoryBytes
        self.computePercent = computePercent
        self.priority = priority
        self.device = device
    }

    public init(parsing text: String) throws(SliceRequestError) {
        self.init()
        guard text.utf8.count <= 1024 else { throw SliceRequestError("slice request longer than 1024 bytes") }
        var seen: Set<Substring> = []
        for item in text.split(separator: ",", omittingEmptySubsequences: true) {
            let item = item.trimmingSpaces
            guard let equals = item.firstIndex(of: "=") else { throw SliceRequestError("'\(item)' is not key=value") }
            let key = item[..<equals].trimmingSpaces
            let value = item[item.index(after: equals)...].trimmingSpaces
            guard seen.insert(key).inserted else { throw SliceRequestError("'\(key)' given twice") }
            switch key {
            case "mem", "memory":
                guard let bytes = ByteSize.parse(value) else { throw SliceRequestError("mem='\(value)' is not a size like 512MiB or 8GiB") }
                memoryBytes = bytes
            case "compute":
                let number = value.hasSuffix("%") ? value.dropLast() : value
                guard let percent = Double(String(number)), percent.isFinite, percent > 0, percent <= 100 else {
                    throw SliceRequestError("compute='\(value)' is not a share in (0, 100]%")
                }
                computePercent = percent
            case "priority":
                guard let parsed = SlicePriority(rawValue: String(value)) else {
                    throw SliceRequestError("priority='\(value)' is not one of low, normal, high")
                }
                priority = parsed
            case "device":
                guard let ordinal = Int32(value), ordinal >= 0 else { throw SliceRequestError("device='\(value)' is not a device ordinal") }
                device = ordinal
            case "mode":
                switch value {
                case "guaranteed": capped = false
                case "capped": capped = true
                default: throw SliceRequestError("mode='\(value)' is not guaranteed or capped")
                }
            case "grant":
                guard !value.isEmpty, value.utf8.count <= 64 else { throw SliceRequestError("grant='\(value)' is not a pool grant") }
                grant = String(value)
            default:
                throw SliceRequestError("unknown slice key '\(key)' (mem, compute, priority, mode, device, grant)")
            }
        }
    }
}

/// Scheduling priority of a slice, ordered low < normal < high.
public enum SlicePriority: String, Hashable, Sendable, Comparable, CaseIterable, Codable {
    case low, normal, high

    public static func < (a: SlicePriority, b: SlicePriority) -> Bool { a.rank < b.rank }

    public var rank: Int {
        switch self {
        case .low: 0
        case .normal: 1
        case .high: 2
        }
    }
}

public struct SliceRequestError: Error, Hashable, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { "bad slice request: \(message)" }
}

/// Sizes as written on command lines and in slices: a number with an optional unit (`B`, `KiB`,
/// `MiB`, `GiB`, `TiB`, or `K`/`M`/`G`/`T` meaning the same binary units).
public enum ByteSize {
    public static func parse<S: StringProtocol>(_ text: S) -> UInt64? {
        let text = String(text)
        let digits = text.prefix { $0.isASCII && $0.isNumber }
        guard !digits.isEmpty, digits.count <= 20, let number = UInt64(digits) else { return nil }
        let unit = text.dropFirst(digits.count).lowercased()
        let shift: UInt64
        switch unit {
        case "", "b": shift = 0
        case "k", "kib", "kb": shift = 10
        case "m", "mib", "mb": shift = 20
        case "g", "gib", "gb": shift = 30
        case "t", "tib", "tb": shift = 40
        default: return nil
        }
        let (result, overflow) = number.multipliedReportingOverflow(by: 1 << shift)
        return overflow ? nil : result
    }
}

extension Substring {
    var trimmingSpaces: Substring {
        var result = self
        while result.first == " " { result = result.dropFirst() }
        while result.last == " " { result = result.dropLast() }
        return result
    }
}
