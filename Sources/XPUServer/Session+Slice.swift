import CXPUDriver
import XPUAdmission
import XPUProtocol

extension Session {
    /// Calls a slice answers or refuses differently from the whole device: allocations beyond the
    /// quota fail with CUDA_ERROR_OUT_OF_MEMORY before reaching the driver, and memory queries
    /// report the slice (total = quota, free = quota - used). nil: replay the call as it is.
    func dispatchSliced(_ call: CallID, _ reader: WireReader) throws(ProtocolError) -> CallOutcome? {
        guard let slice, let quota = slice.memoryQuota else { return nil }
        var probe = reader
        switch call {
        case .cuMemAlloc_v2:
            let request = try CuMemAlloc_v2Request(from: &probe)
            let (wanted, overflow) = chargedBytes.addingReportingOverflow(Slice.charge(request.bytesize))
            guard overflow || wanted > quota else { return nil }
            return .failure(CUDA_ERROR_OUT_OF_MEMORY)
        case .cuMemGetInfo_v2:
            _ = try CuMemGetInfo_v2Request(from: &probe)
            try probe.expectEnd()
            return perform { () throws(CallFailure) in
                var free = 0
                var total = 0
                try check(table.cuMemGetInfo_v2(&free, &total))
                let used = chargedBytes
                // What the quota leaves, and never more than the device really has free.
                let sliceFree = quota > used ? quota - used : 0
                return CuMemGetInfo_v2Reply(free: min(sliceFree, UInt64(free)), total: quota)
            }
        case .cuDeviceTotalMem_v2:
            let request = try CuDeviceTotalMem_v2Request(from: &probe)
            try probe.expectEnd()
            guard request.dev == slice.device else { return nil }
            return perform { () throws(CallFailure) in CuDeviceTotalMem_v2Reply(bytes: quota) }
        default:
            return nil
        }
    }

    /// Admits the session a client asked for in its Hello, with the slice it asked for (an empty
    /// request means no slice: the whole device, shared), or says why not (the handshake refuses
    /// with that status and reason): a malformed request, a slice outside the server's `limits`,
    /// or one its device cannot hold now (`ledger`).
    static func admit(
        _ text: String, driver: Driver, limits: ServerLimits, ledger: DeviceLedger, session: UInt64
    ) -> Result<DeviceLedger.Tenancy, SliceRefusal> {
        let request: SliceRequest
        do {
            request = text.isEmpty ? SliceRequest() : try SliceRequest(parsing: text)
        } catch {
            return .failure(SliceRefusal(status: CUDA_ERROR_INVALID_VALUE, reason: "\(error)"))
        }
        if let reason = limits.refusal(for: request) {
            return .failure(SliceRefusal(status: CUDA_ERROR_NOT_PERMITTED, reason: "not permitted: \(reason)"))
        }
        let slice = text.isEmpty ? nil : Slice(request)
        let count = driver.deviceCount()
        guard count > 0 else {
            return .failure(SliceRefusal(status: CUDA_ERROR_NO_DEVICE, reason: "the server's driver reports no device"))
        }
        let total = slice.map { driver.totalMemory($0.device) } ?? 0
        return ledger.admit(slice, deviceMemory: total, deviceCount: count, maxTenants: limits.maxTenantsPerDevice, session: session)
    }
}
