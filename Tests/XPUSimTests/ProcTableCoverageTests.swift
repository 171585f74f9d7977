import Foundation
import Testing

/// The simulated device's cuGetProcAddress table is written by hand: every function our header
/// declares must have a row, or cuGetProcAddress would miss an export the library has.
@Suite("Simulated device proc table")
struct ProcTableCoverageTests {
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test("every prototype in CXPUDriver.h has a row in ProcTable.swift")
    func coversHeader() throws {
        let header = try String(
            contentsOf: Self.root.appendingPathComponent("Sources/CXPUDriver/include/CXPUDriver.h"), encoding: .utf8)
        let table = try String(contentsOf: Self.root.appendingPathComponent("Sources/XPUSim/ProcTable.swift"), encoding: .utf8)
        let declared = header.split(separator: "\n").filter { $0.hasPrefix("CUresult cu") }.compactMap { line in
            line.dropFirst("CUresult ".count).split(separator: "(").first.map(String.init)
        }
        #expect(declared.count > 50)
        let missing = declared.filter { !table.contains("symbol: \"\($0)\"") }
        #expect(missing.isEmpty, "no ProcTable row for: \(missing)")
    }
}
