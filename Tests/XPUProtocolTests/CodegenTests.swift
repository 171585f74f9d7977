import Foundation
import Testing
import XPUCodegen

@Suite("Code generator")
struct CodegenTests {
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func read(_ path: String) throws -> String {
        try String(contentsOf: root.appendingPathComponent(path), encoding: .utf8)
    }

    @Test("the committed generated files are what proto/ generates")
    func noDrift() throws {
        let generator = Generator(
            api: try Self.read(Generator.inputs.api), header: try Self.read(Generator.inputs.header),
            exports: try Self.read(Generator.inputs.exports), procVersions: try Self.read(Generator.inputs.procVersions),
            openCL: try Self.read(Generator.inputs.openCL))
        for output in try generator.outputs() {
            #expect(try Self.read(output.path) == output.contents, "\(output.path) is stale: run scripts/codegen.sh")
        }
    }

    @Test("parses a remote call with annotations, aliases and a hook")
    func parsesRemote() throws {
        let api = try APIParser.parse(
            "remote 5 cuMemsetD32_v2(in devptr dst @range(N*4), in u32 ui, in size N) hook alias cuMemsetD32_v2_ptds\n")
        let call = try #require(api.remoteCalls.first)
        #expect(call.id == 5 && call.symbol == "cuMemsetD32_v2" && call.hook && call.aliases == ["cuMemsetD32_v2_ptds"])
        #expect(call.parameters.map(\.name) == ["dst", "ui", "N"])
        #expect(call.parameters[0].annotation == .range("N*4"))
    }

    @Test("parses custom calls with nested structs and lists")
    func parsesCustom() throws {
        let api = try APIParser.parse(
            """
            struct P(u32 offset, u32 size)
            custom 9 Load(bytes image) -> (u64 module, [P] parameters)
            """)
        #expect(api.structs.first?.fields.count == 2)
        #expect(api.customCalls.first?.reply.last?.type == .list(.named("P")))
    }

    @Test("errors name the line", arguments: [
        ("remote 1 cuA()\nremote 1 cuB()", 2, "used twice"),
        ("remote x cuA()", 1, "call id"),
        ("remote 1 cuA(in bogus x)", 1, "unknown parameter type"),
        ("frobnicate", 1, "unknown keyword"),
        ("remote 1 cuA(in u32 x @weird)", 1, "unknown annotation"),
        ("custom 2 A(u32 x)", 1, "->"),
    ])
    func errors(source: String, line: Int, fragment: String) {
        do {
            _ = try APIParser.parse(source)
            Issue.record("expected an error for \(source)")
        } catch {
            #expect(error.line == line)
            #expect(error.message.contains(fragment), "\(error)")
        }
    }

    @Test("unserved exports become NOT_SUPPORTED stubs; served ones do not")
    func stubs() {
        let text = renderUnsupportedStubs(exports: ["cuA", "cuB", "cuA"], served: ["cuB"])
        #expect(text.contains("int cuA(void)"))
        #expect(!text.contains("int cuB(void)"))
        #expect(text.components(separatedBy: "int cuA(void)").count == 2)
    }
}
