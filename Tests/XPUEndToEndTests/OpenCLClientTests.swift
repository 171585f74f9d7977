import Foundation
import Testing

/// OpenCL clients, unmodified: the C programs of Tests/opencl run directly on PoCL and through our
/// ICD against `xpu-remote-server --device opencl:pocl` (the same PoCL behind the server), and
/// both runs must print the same thing and end the same way; `clinfo` through the ICD lists the
/// remote device with the slice's memory.
///
/// The direct runs need PoCL, the ICD loader and the OpenCL headers (scripts/lib/prereqs.sh); the
/// remote ones need `dist/lib/libxpu-opencl.so` and the server from scripts/build.sh.
@Suite("End to end: OpenCL clients, direct on PoCL vs through the ICD", .serialized)
struct OpenCLClientTests {
    static let needsICD = Testing.ConditionTrait.enabled(
        if: OpenCLHarness.icdBuilt, "needs the OpenCL ICD in dist/lib/libxpu-opencl.so (scripts/build.sh)")

    @Test("Each program passes its own checks directly on PoCL", arguments: OpenCLHarness.programNames)
    func direct(program: String) throws {
        let harness = try OpenCLHarness.get()
        let direct = try harness.runDirect(program)
        #expect(direct.status == .exited(0), "\(program) direct:\n\(direct.stdout)\n\(direct.stderr)")
        #expect(direct.stdout.hasSuffix("PASS\n"), "\(program) direct:\n\(direct.stdout)\n\(direct.stderr)")
    }

    @Test("Same output directly and through the ICD", needsICD, arguments: OpenCLHarness.programNames)
    func differential(program: String) throws {
        let harness = try OpenCLHarness.get()
        let direct = try harness.runDirect(program)
        let server = try harness.server()
        defer { server.stop() }
        let remote = try harness.runRemote(program, server: server)
        expectSameBehaviour(program, direct: direct, remote: remote)
        #expect(remote.stdout.hasSuffix("PASS\n"), "\(program) remote:\n\(remote.stdout)\n\(remote.stderr)")
    }

    @Test("Calls the ICD does not serve fail as documented", needsICD, arguments: OpenCLHarness.icdProgramNames)
    func icdOnly(program: String) throws {
        let harness = try OpenCLHarness.get()
        let server = try harness.server()
        defer { server.stop() }
        let remote = try harness.runRemote(program, server: server)
        #expect(remote.status == .exited(0), "\(program) remote:\n\(remote.stdout)\n\(remote.stderr)")
        #expect(remote.stdout.hasSuffix("PASS\n"), "\(program) remote:\n\(remote.stdout)\n\(remote.stderr)")
    }

    @Test("clinfo through the ICD lists the remote device, with the slice's memory when it has one", needsICD)
    func clinfo() throws {
        let harness = try OpenCLHarness.get()
        let direct = try harness.runTool("clinfo", ["--raw"], environment: harness.directEnvironment())
        try #require(direct.status == .exited(0), "clinfo on PoCL:\n\(direct.stdout)\n\(direct.stderr)")
        let poclMemory = try #require(
            ClinfoRaw(direct.stdout).deviceValues("CL_DEVICE_GLOBAL_MEM_SIZE").first.flatMap { UInt64($0) },
            "no CL_DEVICE_GLOBAL_MEM_SIZE in clinfo --raw on PoCL:\n\(direct.stdout)")

        let server = try harness.server()
        defer { server.stop() }
        // A whole device: the remote device reports what PoCL reports.
        let whole = try harness.runTool("clinfo", ["--raw"], environment: harness.remoteEnvironment(server))
        try #require(whole.status == .exited(0), "clinfo through the ICD:\n\(whole.stdout)\n\(whole.stderr)")
        let wholeInfo = ClinfoRaw(whole.stdout)
        #expect(wholeInfo.count("#PLATFORMS") == "1", "clinfo --raw through the ICD:\n\(whole.stdout)")
        #expect(wholeInfo.deviceValues("#DEVICES") == ["1"], "clinfo --raw through the ICD:\n\(whole.stdout)")
        #expect(wholeInfo.deviceValues("CL_DEVICE_GLOBAL_MEM_SIZE") == [String(poclMemory)])
        #expect(
            wholeInfo.deviceValues("CL_DEVICE_TYPE") == ClinfoRaw(direct.stdout).deviceValues("CL_DEVICE_TYPE"),
            "the remote device has PoCL's type")
        // Extensions: the kernel-language ones of PoCL's list only; no SVM.
        let pocl = Set(ClinfoRaw(direct.stdout).deviceValues("CL_DEVICE_EXTENSIONS").first?.split(separator: " ").map(String.init) ?? [])
        let remote = Set(wholeInfo.deviceValues("CL_DEVICE_EXTENSIONS").first?.split(separator: " ").map(String.init) ?? [])
        #expect(remote.isSubset(of: pocl), "remote extensions \(remote) beyond PoCL's \(pocl)")
        #expect(remote.isDisjoint(with: ["cl_khr_3d_image_writes", "cl_khr_command_buffer", "cl_khr_spir", "cl_khr_il_program"]))
        #expect(pocl.contains("cl_khr_fp64") == remote.contains("cl_khr_fp64"), "cl_khr_fp64 is kernel language: kept")
        // clinfo --raw prints SVM capabilities as flag names, none when they are 0.
        #expect(!ClinfoRaw(direct.stdout).deviceValues("CL_DEVICE_SVM_CAPABILITIES").isEmpty, "PoCL reports SVM")
        #expect(wholeInfo.deviceValues("CL_DEVICE_SVM_CAPABILITIES").isEmpty, "clinfo --raw:\n\(whole.stdout)")

        // A slice of 256 MiB: the device's global memory is the slice, and no allocation may exceed it.
        let slice: UInt64 = 256 << 20
        let sliced = try harness.runTool(
            "clinfo", ["--raw"], environment: harness.remoteEnvironment(server, ["XPU_SLICE": "mem=256MiB"]))
        try #require(sliced.status == .exited(0), "clinfo with XPU_SLICE=mem=256MiB:\n\(sliced.stdout)\n\(sliced.stderr)")
        let slicedInfo = ClinfoRaw(sliced.stdout)
        #expect(slicedInfo.deviceValues("CL_DEVICE_GLOBAL_MEM_SIZE") == [String(slice)], "clinfo --raw:\n\(sliced.stdout)")
        let maxAllocation = try #require(slicedInfo.deviceValues("CL_DEVICE_MAX_MEM_ALLOC_SIZE").first.flatMap { UInt64($0) })
        #expect(maxAllocation <= slice, "CL_DEVICE_MAX_MEM_ALLOC_SIZE \(maxAllocation) is larger than the slice")
    }
}

/// The lines of `clinfo --raw`: platform lines `NAME VALUE`, device lines `[SUFFIX/INDEX] NAME VALUE`.
struct ClinfoRaw {
    let lines: [[Substring]]

    init(_ text: String) {
        lines = text.split(separator: "\n").map { $0.split(whereSeparator: { $0 == " " || $0 == "\t" }) }
    }

    /// The value of a platform-level counter such as `#PLATFORMS`.
    func count(_ name: String) -> String? {
        lines.first { $0.count >= 2 && $0[0] == name }.map { String($0[1]) }
    }

    /// The values of `name` on the device lines (`[SUFFIX/0]`, `[SUFFIX/1]`, ...; `[SUFFIX/*]`
    /// for per-platform counters such as `#DEVICES`), the rest of the line joined by spaces.
    func deviceValues(_ name: String) -> [String] {
        lines.filter { $0.count >= 3 && $0[0].hasPrefix("[") && $0[1] == name }
            .map { $0[2...].joined(separator: " ") }
    }
}
