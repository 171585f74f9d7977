import Testing
import XPUProtocol

/// The device printf notice: round trips whole, fails cleanly on every truncation and on
/// trailing bytes, and is negotiated by its own feature bit.
@Suite struct DeviceOutputNoticeTests {
    @Test func roundTripsAndRefusesMalformedPayloads() throws {
        let text = Array("thread 0 of 4: x=0.000\nplain\n".utf8) + [0, 0xFF]
        let notice = DeviceOutputNotice(text: text)
        #expect(try DeviceOutputNotice(decoding: notice.encoded) == notice)
        #expect(try DeviceOutputNotice(decoding: DeviceOutputNotice(text: []).encoded).text.isEmpty)
        for cut in 0..<notice.encoded.count {
            #expect(throws: ProtocolError.self) { _ = try DeviceOutputNotice(decoding: Array(notice.encoded.prefix(cut))) }
        }
        #expect(throws: ProtocolError.self) { _ = try DeviceOutputNotice(decoding: notice.encoded + [0]) }
    }

    @Test func hasItsOwnCallIDAndFeature() {
        #expect(DeviceOutputNotice.call != SessionEnd.call)
        #expect(CallID(rawValue: DeviceOutputNotice.call) == nil)
        #expect(Features.supported.contains(.deviceOutput))
        #expect(Features.deviceOutput.rawValue & (Features.fireAndForget.rawValue | Features.lz4.rawValue | Features.moduleCache.rawValue) == 0)
    }
}
