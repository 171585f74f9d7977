import Testing
import XPUProtocol

@Suite("Frame header")
struct FrameHeaderTests {
    @Test("round-trips every field, little-endian")
    func roundTrip() throws {
        let header = FrameHeader(
            length: 0x0102_0304, call: 0x0506, flags: [.reply, .noReply], sequence: 0x0708_090A, status: 0x0B0C_0D0E,
            context: 0x0F10_1112_1314_1516)
        let bytes = header.encoded
        #expect(bytes.count == FrameHeader.size)
        #expect(Array(bytes[0..<4]) == [0x04, 0x03, 0x02, 0x01])
        // The length check fires before the round trip: use a legal length for decoding.
        var legal = header
        legal.length = 12
        #expect(try FrameHeader(decoding: legal.encoded) == legal)
    }

    @Test("rejects a length above the frame limit before reading the payload")
    func oversizedLength() {
        let header = FrameHeader(length: UInt32(ProtocolLimits.maximumFrameBytes + 1), call: 1, sequence: 1)
        #expect(throws: ProtocolError.self) { try FrameHeader(decoding: header.encoded) }
    }

    @Test("rejects unknown flag bits")
    func unknownFlags() {
        let header = FrameHeader(length: 0, call: 1, flags: FrameFlags(rawValue: 0x80), sequence: 1)
        #expect(throws: ProtocolError.self) { try FrameHeader(decoding: header.encoded) }
    }

    @Test("a header cut short at any byte fails as truncated")
    func truncatedHeader() {
        let bytes = FrameHeader(length: 4, call: 1, sequence: 1).encoded
        for cut in 0..<bytes.count {
            #expect(throws: ProtocolError.self) { try FrameHeader(decoding: Array(bytes[0..<cut])) }
        }
    }
}
