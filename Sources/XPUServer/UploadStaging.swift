#if canImport(Glibc)
import Glibc
#endif
import CXPUDriver
import XPUProtocol

/// Host-to-device chunks on their way through the driver's copy (real drivers, `--staged-copies`).
///
/// Two buffers take turns: while the device copies chunk i out of one, chunk i+1 is received from
/// the client into the other, so the link and the copy overlap instead of waiting for each other
/// (a synchronous copy per chunk left the link idle for the copy's time, and the copy engine idle
/// for the link's). Each chunk's copy is issued with `cuMemcpyHtoDAsync` on the copy's stream (the
/// legacy stream for a synchronous copy, which orders it as `cuMemcpyHtoD` would be) and an event
/// is recorded behind it; a buffer is written again only once its event has completed.
///
/// Where the driver can page-lock memory (`cuMemHostRegister`, portable: usable from every
/// context), the buffers are registered, so the copy is DMA straight from them and really runs
/// while the next chunk arrives. Where it cannot (the simulated device), or the registration went
/// with the context that made it, the copy is the driver's copy from pageable memory: correct,
/// with less overlap.
///
/// Pending copies never outlive a run of host-to-device frames: the session drains them before
/// it serves anything else (`Connection`), so no event is left behind by a context the client
/// destroys, and everything after a copy sees it finished, as before the buffers took turns.
final class UploadStaging {
    private struct Slot {
        var memory: UnsafeMutableRawBufferPointer
        var registered: Bool
        /// Recorded behind the last copy out of this slot; nil once that copy has finished.
        var pending: CUevent?
    }

    typealias HostRegister = @convention(c) (UnsafeMutableRawPointer?, Int, UInt32) -> CUresult
    typealias HostUnregister = @convention(c) (UnsafeMutableRawPointer?) -> CUresult

    static let slotCount = 2
    static let pageBytes = Int(sysconf(Int32(_SC_PAGESIZE)))
    /// `CU_MEMHOSTREGISTER_PORTABLE`: the registration serves every context, not only the one
    /// current when it was made (a session may copy into several).
    static let portable: UInt32 = 0x01

    private let table: DriverTable
    private let register: HostRegister?
    private let unregister: HostUnregister?
    private var slots: [Slot?] = Array(repeating: nil, count: slotCount)
    private var next = 0
    /// Some slot holds an event: its copy may still be running.
    private(set) var hasPending = false

    init(table: DriverTable, register: HostRegister?, unregister: HostUnregister?) {
        self.table = table
        self.register = register
        self.unregister = unregister
    }

    deinit {
        drain()
        for slot in slots.compactMap({ $0 }) { release(slot) }
    }

    /// The buffer for the next chunk of `count` bytes, once the copy last made out of it has
    /// finished; `slot` names it for `copy`.
    func take(count: Int) -> (slot: Int, memory: UnsafeMutableRawBufferPointer) {
        let index = next
        next = (next + 1) % Self.slotCount
        wait(index)
        if let slot = slots[index], slot.memory.count >= count {
            return (index, UnsafeMutableRawBufferPointer(rebasing: slot.memory[0..<count]))
        }
        if let slot = slots[index] { release(slot) }
        // Whole pages: registration pins pages, and copies out of a page-aligned buffer into
        // (page-aligned) device memory run at memory speed (see `Session.staging`). At least a
        // chunk of our shim's size, so that its copies never regrow a buffer.
        let page = Self.pageBytes
        let bytes = (max(count, ProtocolLimits.copyChunkBytes) + page - 1) / page * page
        var raw: UnsafeMutableRawPointer?
        precondition(posix_memalign(&raw, page, bytes) == 0 && raw != nil, "out of memory for a \(bytes)-byte staging buffer")
        let memory = UnsafeMutableRawBufferPointer(start: raw, count: bytes)
        let registered = register?(raw, bytes, Self.portable) == CUDA_SUCCESS
        slots[index] = Slot(memory: memory, registered: registered, pending: nil)
        return (index, UnsafeMutableRawBufferPointer(rebasing: memory[0..<count]))
    }

    /// Copies `count` bytes of `slot` to `address` on `stream` (nil: the legacy stream) and
    /// returns the driver's status for issuing it. With `wait`, the copy has finished on return
    /// and the status is the copy's (a synchronous copy's last chunk answers only then).
    func copy(slot index: Int, count: Int, to address: CUdeviceptr, stream: CUstream?, wait: Bool) -> CUresult {
        guard let memory = slots[index]?.memory.baseAddress else { return CUDA_ERROR_INVALID_VALUE }
        let issued = table.cuMemcpyHtoDAsync_v2(address, memory, count, stream)
        guard issued == CUDA_SUCCESS else { return issued }
        var event: CUevent?
        if !wait, table.cuEventCreate(&event, UInt32(CU_EVENT_DISABLE_TIMING.rawValue)) == CUDA_SUCCESS {
            if table.cuEventRecord(event, stream) == CUDA_SUCCESS {
                slots[index]?.pending = event
                hasPending = true
                return CUDA_SUCCESS
            }
            _ = table.cuEventDestroy_v2(event)
        }
        // Waited for now: asked to, or no event could mark the copy's end.
        return table.cuStreamSynchronize(stream)
    }

    /// Waits for every copy still running. Their statuses are not reported here: a copy that
    /// failed on the device leaves its context broken, and the next call there says so.
    func drain() {
        guard hasPending else { return }
        for index in slots.indices { wait(index) }
    }

    private func wait(_ index: Int) {
        guard let event = slots[index]?.pending else { return }
        _ = table.cuEventSynchronize(event)
        _ = table.cuEventDestroy_v2(event)
        slots[index]?.pending = nil
        hasPending = slots.contains { $0?.pending != nil }
    }

    private func release(_ slot: Slot) {
        if slot.registered { _ = unregister?(slot.memory.baseAddress) }
        free(slot.memory.baseAddress)
    }
}
