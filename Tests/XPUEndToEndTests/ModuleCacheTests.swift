import Foundation
import Testing

/// The server's module cache (proto/PROTOCOL.md, "Module cache") seen from two client processes.
@Suite("End to end: module cache")
struct ModuleCacheTests {
    /// The module cache: the runtime registers its fatbinary at start-up; a second process loading
    /// the same image names it by digest and the server loads it from its cache, so the image
    /// crosses the network once.
    @Test func aModuleLoadedByTwoProcessesCrossesTheNetworkOnce() throws {
        let harness = try Harness.get()
        let executable = try #require(try RuntimeProgramTests.built.get()["vector_add"])
        let server = try Server(harness: harness, arguments: ["--log-level", "debug"])
        defer { server.stop() }
        var received: [Int] = []
        for run in 1...2 {
            let output = try ChildProcess(
                harness.runBinary, ["--server", server.address, "--", executable], environment: Harness.baseEnvironment()
            ).finish(timeout: harness.programTimeout)
            #expect(output.stdout.hasSuffix("PASS\n"), "run \(run):\n\(output.stdout)\n\(output.stderr)")
            let released = { server.process.stderr.text.split(separator: "\n").filter { $0.contains("session released") } }
            _ = server.process.waitForLog(where: { _ in released().count >= run }, timeout: .seconds(30))
            let lines = released()
            try #require(lines.count == run, "\(server.process.stderr.text)")
            received.append(try #require(Self.number(after: "bytesReceived=", in: lines[run - 1])))
        }
        let hits = server.process.stderr.text.split(separator: "\n").filter { $0.contains("module cache hit") }
        #expect(hits.count == 1, "\(server.process.stderr.text)")
        let imageBytes = try #require(hits.first.flatMap { Self.number(after: "bytes=", in: $0) })
        #expect(imageBytes > 4096)
        // The second session received everything the first did except the image (and its 36
        // bytes of request instead of the image's frame).
        #expect(received[1] <= received[0] - imageBytes + 64, "bytes received: \(received), image \(imageBytes)")
    }

    static func number(after key: String, in line: Substring) -> Int? {
        guard let range = line.range(of: key) else { return nil }
        return Int(line[range.upperBound...].prefix { $0.isNumber })
    }
}
