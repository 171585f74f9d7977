import Glibc

/// zstd decompression through the host's libzstd, loaded on first use: CUDA 13 compresses the
/// PTX in fatbinaries with zstd by default, and a decoder of our own would be a large piece of
/// code to get right. Hosts without libzstd load such images with a clear error instead.
enum Zstd {
    private typealias Decompress = @convention(c) (UnsafeMutableRawPointer?, Int, UnsafeRawPointer?, Int) -> Int
    private typealias IsError = @convention(c) (Int) -> UInt32

    private struct Library: @unchecked Sendable {
        let decompress: Decompress
        let isError: IsError
    }

    private static let library: Library? = {
        for name in ["libzstd.so.1", "libzstd.so"] {
            guard let handle = dlopen(name, RTLD_NOW | RTLD_LOCAL) else { continue }
            guard let d = dlsym(handle, "ZSTD_decompress"), let e = dlsym(handle, "ZSTD_isError") else { continue }
            return Library(decompress: unsafeBitCast(d, to: Decompress.self), isError: unsafeBitCast(e, to: IsError.self))
        }
        return nil
    }()

    static var isAvailable: Bool { library != nil }

    /// The decoded bytes, or nil if libzstd is missing or the input is corrupt.
    static func decode(_ input: [UInt8], expectedSize: Int) -> [UInt8]? {
        guard let library, expectedSize >= 0 else { return nil }
        var output = [UInt8](repeating: 0, count: expectedSize)
        let written = output.withUnsafeMutableBytes { out in
            input.withUnsafeBytes { inp in library.decompress(out.baseAddress, out.count, inp.baseAddress, inp.count) }
        }
        guard library.isError(written) == 0, written == expectedSize else { return nil }
        return output
    }
}
