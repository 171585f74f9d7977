#if canImport(Glibc)
import Glibc
#endif
import CXPUShimSupport

/// The application's devices: each device a lane shows (lane by lane, in the lane's order) is one
/// device of the combined list, and `CUDA_VISIBLE_DEVICES` picks and orders the ordinals the
/// application sees as `0..n-1`. A `CUdevice` is that ordinal, as on a real driver; requests carry
/// the server's own ordinal (`Target`). Built by cuInit and guarded by the registry lock.
struct DeviceList {
    /// One device: the lane that reaches it and the server's ordinal for it.
    struct Entry: Hashable {
        var lane: Int
        var remote: Int32
    }

    /// Every device of every lane. NVML lists these, as NVML ignores CUDA_VISIBLE_DEVICES.
    var all: [Entry] = []
    /// The devices the application sees, by ordinal.
    var visible: [Entry] = []
    /// The process (fork generation) that built the list; a forked child starts with none.
    var generation: UInt64 = .max

    init() {}

    /// `uuids`: every device's UUID, in `all`'s order, when `CUDA_VISIBLE_DEVICES` names devices
    /// by UUID (cuInit asks the servers for them only then).
    init(lanes: [Lane], visibility: String?, uuids: [[UInt8]]? = nil) {
        all = lanes.flatMap { lane in lane.devices.map { Entry(lane: lane.index, remote: $0) } }
        let names = uuids?.map(Management.uuidString)
        visible = Self.visibleIndices(visibility, count: all.count, uuids: names).map { all[$0] }
        generation = xpu_fork_generation()
    }

    /// Whether `CUDA_VISIBLE_DEVICES` names a device by UUID.
    static func namesUUIDs(_ visibility: String?) -> Bool {
        visibility?.split(separator: ",").contains { $0.filter { $0 != " " }.hasPrefix("GPU-") } ?? false
    }

    func entry(_ ordinal: Int32) -> Entry? {
        ordinal >= 0 && Int(ordinal) < visible.count ? visible[Int(ordinal)] : nil
    }

    /// The application's ordinal of a lane's device (nil when CUDA_VISIBLE_DEVICES hides it).
    func ordinal(lane: Int, remote: Int32) -> Int32? {
        visible.firstIndex(of: Entry(lane: lane, remote: remote)).map { Int32($0) }
    }

    /// Which of `count` devices `CUDA_VISIBLE_DEVICES` shows, in its order. Unset: all. An entry
    /// is an ordinal or a UUID as nvidia-smi prints it (`GPU-1a2b...`, any prefix that names one
    /// device; `uuids` are the devices' in that form). As CUDA reads it, the list ends at the
    /// first entry that names no device (out of range, not a number, an unknown or ambiguous UUID,
    /// `MIG-...`, or one already listed), so `1,7,0` with two devices shows only device 1 and an
    /// empty value shows none.
    static func visibleIndices(_ text: String?, count: Int, uuids: [String]? = nil) -> [Int] {
        guard let text else { return Array(0..<count) }
        var shown: [Int] = []
        for entry in text.split(separator: ",", omittingEmptySubsequences: false) {
            let trimmed = String(entry.filter { $0 != " " })
            let index: Int?
            if trimmed.hasPrefix("GPU-"), let uuids {
                let wanted = "GPU-" + trimmed.dropFirst(4).lowercased()
                let matches = uuids.indices.filter { uuids[$0].hasPrefix(wanted) }
                index = matches.count == 1 ? matches[0] : nil
            } else {
                index = Int(trimmed)
            }
            guard let index, index >= 0, index < count, !shown.contains(index) else { break }
            shown.append(index)
        }
        return shown
    }

    nonisolated(unsafe) private static var stored = DeviceList()

    /// The list cuInit built in this process, or an empty one before that.
    static var current: DeviceList {
        xpu_registry_lock()
        defer { xpu_registry_unlock() }
        return stored.generation == xpu_fork_generation() ? stored : DeviceList()
    }

    static func publish(_ list: DeviceList) {
        xpu_registry_lock()
        defer { xpu_registry_unlock() }
        stored = list
    }
}
