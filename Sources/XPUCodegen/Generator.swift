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

    public init(api: String, header: String, exports: String, procVersions: String) {
        self.api = api
        self.header = header
        self.exports = exports
        self.procVersions = procVersions
    }

    public static let inputs = (
        api: "proto/cuda-driver.api",
        header: "Sources/CXPUDriver/include/CXPUDriver.h",
        exports: "proto/cuda-exports.txt",
        procVersions: "proto/cuda-proc-versions.txt"
    )

    public func outputs() throws(APIParseError) -> [Output] {
        let description = try APIParser.parse(api)
        let served = ProcTableEmitter.declaredFunctions(header: header)
        return [
            Output(path: "Sources/XPUProtocol/Generated/Calls.swift", contents: ProtocolEmitter.render(description)),
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
}
