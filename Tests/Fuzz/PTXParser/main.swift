// libFuzzer target for the PTX front end (lexer, parser, lowering) and the fatbinary container
// reader: any input must be accepted or rejected with an error, within bounded time and memory.
// Built with the XPUPTX sources in one module by scripts/fuzz-ptx.sh.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPTXParser(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeBufferPointer(start: data, count: size)
    let text = String(decoding: bytes, as: UTF8.self)
    if let module = try? PTXModule(source: text) {
        // Loading succeeded: the layout must be self-consistent.
        for kernel in module.kernels {
            precondition(kernel.parameterBufferSize <= Compiler.maximumParameterBytes)
            precondition(kernel.localSize <= Compiler.maximumLocalBytes)
        }
    }
    if let fatbin = try? FatBinary(UnsafeRawBufferPointer(bytes)) {
        for entry in fatbin.entries where entry.compression != .zstd { _ = try? entry.text() }
    }
    return 0
}
