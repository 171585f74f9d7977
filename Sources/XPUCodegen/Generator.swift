/// Everything the generator writes, computed from the inputs under a package root.
public struct Generator {
    public struct Output: Hashable, Sendable {
        public var path: String
        public var contents: String
    }

    public var api: String
    public var header: String
    public var exports: String
    public var procVersions: String
    /// The OpenCL API file (`proto/opencl.api`): `struct` and `custom` lines only.
    public var openCL: String

    public init(api: String, header: String, exports: String, procVersions: String, openCL: String) {
        self.api = api
        self.header = header
        self.exports = exports
        self.procVersions = procVersions
        self.openCL = openCL
    }

    public static let inputs = (
        api: "proto/cuda-driver.api",
        header: "Sources/CXPUDriver/include/CXPUDriver.h",
        exports: "proto/cuda-exports.txt",
        procVersions: "proto/cuda-proc-versions.txt",
        openCL: "proto/opencl.api"
    )

    public func outputs() throws(APIParseError) -> [Output] {
        let description = try APIParser.parse(api)
        let openCLDescription = try APIParser.parse(openCL)
        try Self.checkFamily(openCLDescription, ids: 1000...1999, against: description)
        let served = ProcTableEmitter.declaredFunctions(header: header)
        return [
            Output(
                path: "Sources/XPUProtocol/Generated/Calls.swift",
                contents: ProtocolEmitter.render(description, others: [openCLDescription])),
            Output(
                path: "Sources/XPUProtocol/Generated/OpenCLCalls.swift",
                contents: ProtocolEmitter.renderFamily(openCLDescription, source: Self.inputs.openCL)),
            Output(path: "Sources/XPUShim/Generated/Exports.swift", contents: ShimEmitter.render(description)),
            Output(path: "Sources/XPUServer/Generated/DriverTable.swift", contents: ServerEmitter.renderDriverTable(description)),
            Output(path: "Sources/XPUServer/Generated/Dispatch.swift", contents: ServerEmitter.renderDispatch(description)),
            Output(
                path: "Sources/CXPUShimSupport/proc_table.c",
                contents: ProcTableEmitter.render(served: served, versions: procVersions)),
            Output(
                path: "Sources/CXPUShimSupport/unsupported.c",
                contents: renderUnsupportedStubs(exports: parseExportList(exports), served: Set(served))),
        ]
    }

    /// Another family's file may hold only `struct` and `custom` lines, with call ids in its own
    /// range and struct names the CUDA file does not use (line 0: the error is about the file).
    static func checkFamily(_ family: APIDescription, ids: ClosedRange<UInt16>, against cuda: APIDescription) throws(APIParseError) {
        guard family.remoteCalls.isEmpty, family.driverEntries.isEmpty else {
            throw APIParseError(line: 0, message: "only 'struct' and 'custom' lines are allowed here")
        }
        for call in family.customCalls where !ids.contains(call.id) {
            throw APIParseError(line: 0, message: "call id \(call.id) of \(call.name) is outside \(ids)")
        }
        let cudaStructs = Set(cuda.structs.map(\.name))
        for wireStruct in family.structs where cudaStructs.contains(wireStruct.name) {
            throw APIParseError(line: 0, message: "struct \(wireStruct.name) is also defined in the CUDA file")
        }
    }
}
