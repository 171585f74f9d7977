import Foundation
import Testing
import XPUTransport

/// The link's delivery rate, which the compression governor trusts over send timings.
@Suite("Delivery rate")
struct DeliveryRateTests {
    @Test("TCP reports the rate the peer received at; a Unix socket pair reports none")
    func tcpReportsARate() throws {
        let listener = try Listener(binding: Endpoint(host: "127.0.0.1", port: 0))
        let client = try SocketTransport.connect(to: listener.endpoint)
        let server = try listener.accept()
        let total = 32 << 20
        // The server reads everything on a thread of its own while the client sends.
        let reader = Thread {
            var buffer = [UInt8](repeating: 0, count: 1 << 20)
            var received = 0
            while received < total {
                guard let count = try? buffer.withUnsafeMutableBytes({ try server.receiveSome(into: $0) }) else { return }
                received += count
            }
        }
        reader.start()
        let chunk = [UInt8](repeating: 7, count: 1 << 20)
        for _ in 0..<(total >> 20) { try chunk.withUnsafeBytes { try client.send($0) } }
        let rate = try #require(client.deliveryRate(), "TCP_INFO gave no delivery rate after 32 MiB")
        // Loopback delivers far faster than 10 MB/s, and no link delivers at more than 1 TB/s.
        #expect(rate.bytesPerSecond > 10e6 && rate.bytesPerSecond < 1e12, "\(rate)")
        let (a, b) = try SocketTransport.pair()
        #expect(a.deliveryRate() == nil && b.deliveryRate() == nil)
        client.shutdown()
        server.shutdown()
        listener.shutdown()
    }
}
