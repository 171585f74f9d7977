/// The slice a pod asks for, in Kubernetes terms: memory, a compute share in percent, and the
/// pool's scheduling options. It is written into the container as `XPU_SLICE` (docs/slices-and-isolation.md),
/// whether it came from a DRA claim's consumed capacity or from the annotation
/// `xpu-remote.io/slice: "mem=4GiB,compute=30%"`. Pure.
public struct SliceShape: Hashable, Sendable {
    public enum Priority: String, Hashable, Sendable, CaseIterable { case low, normal, high }
    public enum Mode: String, Hashable, Sendable, CaseIterable { case guaranteed, capped }

    /// Device memory in bytes; nil for none asked.
    public var memoryBytes: UInt64?
    /// Compute share of a device in percent, 1...100; nil for none asked.
    public var computePercent: Int?
    public var priority: Priority?
    public var mode: Mode?

    public init(memoryBytes: UInt64? = nil, computePercent: Int? = nil, priority: Priority? = nil, mode: Mode? = nil) {
        self.memoryBytes = memoryBytes
        self.computePercent = computePercent
        self.priority = priority
        self.mode = mode
    }

    /// The annotation's form: comma-separated `mem=` (`4GiB`, `512MiB`, or a Kubernetes quantity
    /// such as `4Gi`), `compute=` (`30%` or `30`, a whole percentage), `priority=`
    /// (`low|normal|high`) and `mode=` (`guaranteed|capped`), each at most once, at least one.
    /// `device=` and `grant=` are the pool's to choose and are refused here.
    public init(annotation text: String) throws(KubeError) {
        self.init()
        guard text.utf8.count <= 256 else { throw KubeError(.badSlice, "slice longer than 256 bytes") }
        var seen: Set<String> = []
        for item in text.split(separator: ",") {
            let item = item.trimmingCharacters(" ")
            guard !item.isEmpty else { continue }
            guard let equals = item.firstIndex(of: "=") else { throw KubeError(.badSlice, "'\(item)' is not key=value") }
            let key = String(item[..<equals]).trimmingCharacters(" ")
            let value = String(item[item.index(after: equals)...]).trimmingCharacters(" ")
            guard seen.insert(key).inserted else { throw KubeError(.badSlice, "'\(key)' given twice") }
            switch key {
            case "mem", "memory":
                guard let bytes = Self.bytes(value), bytes > 0 else {
                    throw KubeError(.badSlice, "mem='\(value)' is not a size such as 512MiB, 4GiB or 4Gi")
                }
                memoryBytes = bytes
            case "compute":
                let number = value.hasSuffix("%") ? String(value.dropLast()) : value
                guard let percent = Int(number), (1...100).contains(percent) else {
                    throw KubeError(.badSlice, "compute='\(value)' is not a whole percentage in 1...100")
                }
                computePercent = percent
            case "priority":
                guard let parsed = Priority(rawValue: value) else {
                    throw KubeError(.badSlice, "priority='\(value)' is not low, normal or high")
                }
                priority = parsed
            case "mode":
                guard let parsed = Mode(rawValue: value) else { throw KubeError(.badSlice, "mode='\(value)' is not guaranteed or capped") }
                mode = parsed
            default:
                throw KubeError(.badSlice, "unknown slice key '\(key)' (mem, compute, priority, mode)")
            }
        }
        guard !seen.isEmpty else { throw KubeError(.badSlice, "empty slice (give mem=, compute=, priority= or mode=)") }
    }

    /// `XPU_SLICE` for the shim: `mem=4GiB,compute=30%,priority=high,mode=capped`, plus
    /// `device=` when the slice is pinned to one device of a server.
    public func xpuSlice(device: Int32? = nil) -> String {
        var items: [String] = []
        if let memoryBytes { items.append("mem=\(Self.serverSize(memoryBytes))") }
        if let computePercent { items.append("compute=\(computePercent)%") }
        if let priority { items.append("priority=\(priority.rawValue)") }
        if let mode { items.append("mode=\(mode.rawValue)") }
        if let device { items.append("device=\(device)") }
        return items.joined(separator: ",")
    }

    /// A size as the server reads it (`4GiB`, `1536MiB`, or bytes).
    static func serverSize(_ bytes: UInt64) -> String {
        let quantity = KubeQuantity.bytes(bytes)
        return quantity.last == "i" ? quantity + "B" : quantity
    }

    /// `4GiB`/`512MiB` as the server writes them, or a Kubernetes quantity (`4Gi`, `4G`).
    static func bytes(_ text: String) -> UInt64? {
        for (suffix, shift) in [("KiB", 10), ("MiB", 20), ("GiB", 30), ("TiB", 40)] where text.hasSuffix(suffix) {
            guard let number = UInt64(text.dropLast(3)) else { return nil }
            let (result, overflow) = number.multipliedReportingOverflow(by: 1 << UInt64(shift))
            return overflow ? nil : result
        }
        return KubeQuantity.parse(text)
    }
}

extension StringProtocol {
    func trimmingCharacters(_ character: Character) -> String {
        var result = Substring(self)
        while result.first == character { result = result.dropFirst() }
        while result.last == character { result = result.dropLast() }
        return String(result)
    }
}
