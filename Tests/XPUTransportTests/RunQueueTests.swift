import Testing

@testable import XPUTransport

/// Reading the runnable-thread count that decides whether a reader may spin.
@Suite("Run queue")
struct RunQueueTests {
    static func runnable(_ line: String) -> Int? {
        Array(line.utf8).withUnsafeBytes { RunQueue.runnable(inLoadAverage: $0) }
    }

    @Test("The runnable count is the number before the slash of /proc/loadavg's fourth field")
    func parses() {
        #expect(Self.runnable("0.52 0.58 0.59 3/412 12345\n") == 3)
        #expect(Self.runnable("12.00 9.10 4.33 17/2048 99") == 17)
    }

    @Test("A line of another shape gives no count")
    func malformed() {
        #expect(Self.runnable("") == nil)
        #expect(Self.runnable("0.52 0.58 0.59") == nil)
        #expect(Self.runnable("0.52 0.58 0.59 x/412 1") == nil)
        #expect(Self.runnable("0.52 0.58 0.59 3 412") == nil)
    }

    @Test("This machine's run queue reads, and counts at least the reading thread")
    func readsThisMachine() throws {
        let runnable = try #require(RunQueue.runnableThreads())
        #expect(runnable >= 1)
    }
}
