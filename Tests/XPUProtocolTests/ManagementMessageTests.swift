import Testing
import XPUProtocol

/// The NVML messages (`# NVML` in proto/cuda-driver.api) round-trip, fed whole and one byte short.
@Suite("Management message codecs")
struct ManagementMessageTests {
    static let samples: [any WireMessage & Sendable] = [
        ManagementOpenRequest(flags: 1),
        ManagementOpenReply(driverVersion: "xpu-sim 13.0", deviceCount: 2),
        DeviceFactsRequest(device: 1),
        DeviceFactsReply(
            name: "xpu-remote Simulated GPU", uuid: Array(0..<16), serial: "XPUSIM000001", pciDomain: 0, pciBus: 0x11,
            pciDevice: 0, pciDeviceId: 0, pciSubSystemId: 0, computeCapabilityMajor: 9, computeCapabilityMinor: 0,
            computeMode: 0, maxGraphicsClockMHz: 1755, maxMemoryClockMHz: 2619, powerLimitMilliwatts: 700_000),
        DeviceViewRequest(device: 0),
        DeviceViewReply(
            memoryTotal: 16 << 30, memoryUsed: 384 << 20, utilizationGPU: 87, utilizationMemory: 0,
            temperatureCelsius: 73, powerUsageMilliwatts: 618_100, graphicsClockMHz: 1755, memoryClockMHz: 2619,
            processes: [DeviceProcess(pid: 4242, usedMemory: 384 << 20)]),
        DeviceViewReply(
            memoryTotal: 0, memoryUsed: 0, utilizationGPU: 0, utilizationMemory: 0, temperatureCelsius: 0,
            powerUsageMilliwatts: 0, graphicsClockMHz: 0, memoryClockMHz: 0, processes: []),
    ]

    @Test("encode then decode gives the same message", arguments: 0..<samples.count)
    func roundTrip(index: Int) throws {
        let message = Self.samples[index]
        let bytes = message.encoded
        let decoded = try type(of: message).init(decoding: bytes)
        #expect(decoded.encoded == bytes)
        #expect(String(describing: decoded) == String(describing: message))
    }

    @Test("every proper prefix fails with a ProtocolError", arguments: 0..<samples.count)
    func prefixes(index: Int) {
        let bytes = Self.samples[index].encoded
        for length in 0..<bytes.count {
            #expect(throws: ProtocolError.self) { _ = try type(of: Self.samples[index]).init(decoding: Array(bytes.prefix(length))) }
        }
    }

    @Test("the calls keep their ids (200+)")
    func ids() {
        #expect(CallID.managementOpen.rawValue == 200)
        #expect(CallID.deviceFacts.rawValue == 201)
        #expect(CallID.deviceView.rawValue == 202)
    }
}
