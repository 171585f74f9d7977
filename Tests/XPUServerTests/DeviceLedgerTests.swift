import CXPUDriver
import Testing
import XPUAdmission

@testable import XPUServer

@Suite("Device ledger: slices and tenants per device")
struct DeviceLedgerTests {
    static func slice(_ text: String) throws -> Slice { Slice(try SliceRequest(parsing: text)) }

    @Test("A device serves at most maxTenants sessions; a session without a slice counts on every device")
    func tenantsPerDevice() throws {
        let ledger = DeviceLedger()
        let first = try ledger.admit(try Self.slice("mem=1GiB"), deviceMemory: 8 << 30, deviceCount: 2, maxTenants: 2).get()
        let whole = try ledger.admit(nil, deviceMemory: 0, deviceCount: 2, maxTenants: 2).get()
        #expect(whole.devices == [0, 1])
        #expect(ledger.state(of: 0).tenants == 2 && ledger.state(of: 1).tenants == 1)
        guard case .failure(let refusal) = ledger.admit(try Self.slice("mem=1GiB"), deviceMemory: 8 << 30, deviceCount: 2, maxTenants: 2) else {
            Issue.record("a third session on device 0 must be refused")
            return
        }
        #expect(refusal.status == CUDA_ERROR_DEVICE_UNAVAILABLE)
        #expect(refusal.reason == "device 0 already serves 2 sessions (the server allows 2 per device)")
        // Device 1 has room, and so has every device for an unlimited server.
        #expect((try? ledger.admit(try Self.slice("device=1"), deviceMemory: 8 << 30, deviceCount: 2, maxTenants: 2).get()) != nil)
        #expect((try? ledger.admit(nil, deviceMemory: 0, deviceCount: 2).get()) != nil)

        ledger.release(first)
        #expect(ledger.state(of: 0).memory == 0 && ledger.state(of: 0).tenants == 2)
        ledger.release(whole)
        #expect(ledger.state(of: 0).tenants == 1 && ledger.state(of: 1).tenants == 2)
        #expect((try? ledger.admit(try Self.slice("mem=1GiB"), deviceMemory: 8 << 30, deviceCount: 2, maxTenants: 2).get()) != nil)
    }

    @Test("Memory and compute still have to fit; a refused slice counts nothing")
    func fit() throws {
        let ledger = DeviceLedger()
        let big = try ledger.admit(try Self.slice("mem=6GiB,compute=70"), deviceMemory: 8 << 30, deviceCount: 1).get()
        if case .failure(let refusal) = ledger.admit(try Self.slice("mem=3GiB"), deviceMemory: 8 << 30, deviceCount: 1) {
            #expect(refusal.status == CUDA_ERROR_OUT_OF_MEMORY)
        } else {
            Issue.record("mem=3GiB must not fit")
        }
        if case .failure(let refusal) = ledger.admit(try Self.slice("compute=40"), deviceMemory: 8 << 30, deviceCount: 1) {
            #expect(refusal.status == CUDA_ERROR_INVALID_DEVICE)
        } else {
            Issue.record("compute=40 must not fit")
        }
        #expect(ledger.state(of: 0).tenants == 1)
        ledger.release(big)
        #expect(ledger.state(of: 0).memory == 0 && ledger.state(of: 0).compute == 0 && ledger.state(of: 0).tenants == 0)
    }
}
