// xpu-codegen: regenerates the code derived from proto/ (see scripts/codegen.sh).
//   xpu-codegen [ROOT]          write the generated files under ROOT (default: .)
//   xpu-codegen --check [ROOT]  exit 1 and name every generated file that differs from its source
import Foundation
import XPUCodegen

var arguments = Array(CommandLine.arguments.dropFirst())
let check = arguments.first == "--check"
if check { arguments.removeFirst() }
let root = URL(fileURLWithPath: arguments.first ?? ".")

func read(_ path: String) -> String {
    do {
        return try String(contentsOf: root.appendingPathComponent(path), encoding: .utf8)
    } catch {
        FileHandle.standardError.write(Data("xpu-codegen: cannot read \(path): \(error)\n".utf8))
        exit(2)
    }
}

let generator = Generator(
    api: read(Generator.inputs.api), header: read(Generator.inputs.header),
    exports: read(Generator.inputs.exports), procVersions: read(Generator.inputs.procVersions),
    openCL: read(Generator.inputs.openCL))
let outputs: [Generator.Output]
do {
    outputs = try generator.outputs()
} catch {
    FileHandle.standardError.write(Data("xpu-codegen: \(Generator.inputs.api): \(error)\n".utf8))
    exit(2)
}

var drifted: [String] = []
for output in outputs {
    let url = root.appendingPathComponent(output.path)
    let current = try? String(contentsOf: url, encoding: .utf8)
    if current == output.contents { continue }
    if check {
        drifted.append(output.path)
    } else {
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try output.contents.write(to: url, atomically: true, encoding: .utf8)
        print("xpu-codegen: wrote \(output.path)")
    }
}
if check {
    if drifted.isEmpty {
        print("xpu-codegen: \(outputs.count) generated files match proto/")
    } else {
        print("xpu-codegen: generated files differ from proto/ (run scripts/codegen.sh and commit):")
        for path in drifted { print("  \(path)") }
        exit(1)
    }
}
