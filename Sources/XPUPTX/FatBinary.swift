/// The fatbinary that `nvcc -fatbin` writes and `cuModuleLoadData` accepts: one or more containers
/// back to back, each starting at the 8-byte boundary after the previous (as in a `.nv_fatbin`
/// section). A container is a 16-byte header (magic 0xBA55ED50, version 1, header size 16, size
/// of the entries), then entries, each a header followed by its payload: PTX text (kind 1) or a
/// cubin (kind 2), plain, LZ4-compressed (flag 0x2000, `-compress-mode=speed`) or zstd-compressed
/// (flag 0x8000, the default of CUDA 13). The entries of all containers form one list, from
/// which code is chosen as from one container. The layout was read off files written by nvcc
/// 13.5; see Tests/XPUPTXTests/FatBinaryTests.swift.
public struct FatBinary: Sendable {
    public static let magic: UInt32 = 0xBA55_ED50

    /// zstd's largest expansion: a 4-byte RLE block (3-byte header, the byte) stands for up to a
    /// 128 KiB block.
    public static let zstdMaximumRatio = 128 * 1024 / 4

    public enum Kind: Sendable, Hashable { case ptx, cubin, other(UInt16) }
    public enum Compression: Sendable, Hashable { case none, lz4, zstd }

    public struct Entry: Sendable {
        public var kind: Kind
        /// The SM architecture (75 for sm_75 / compute_75).
        public var architecture: Int
        public var compression: Compression
        /// The payload as stored (compressed or not).
        public var payload: [UInt8]
        /// Size after decompression (the payload size when not compressed).
        public var uncompressedSize: Int
    }

    public struct FormatError: Error, Sendable, CustomStringConvertible {
        public var message: String
        public var description: String { "fatbinary: \(message)" }
    }

    public var entries: [Entry]

    /// Reads the container at the start of `bytes` and every container after it; bytes after the
    /// last container that do not start another (padding) are ignored.
    public init(_ bytes: UnsafeRawBufferPointer) throws(FormatError) {
        var entries: [Entry] = []
        var start = 0
        repeat {
            let end = try FatBinary.readContainer(bytes, at: start, into: &entries)
            start = (end + 7) / 8 * 8
        } while start + 16 <= bytes.count && bytes.loadUnaligned(fromByteOffset: start, as: UInt32.self) == FatBinary.magic
        self.entries = entries
    }

    /// Appends the entries of the container at `offset` in `bytes`; returns where it ends.
    private static func readContainer(_ bytes: UnsafeRawBufferPointer, at offset: Int, into entries: inout [Entry]) throws(FormatError) -> Int {
        func u16(_ at: Int) -> UInt16 { bytes.loadUnaligned(fromByteOffset: offset + at, as: UInt16.self) }
        func u32(_ at: Int) -> UInt32 { bytes.loadUnaligned(fromByteOffset: offset + at, as: UInt32.self) }
        func u64(_ at: Int) -> UInt64 { bytes.loadUnaligned(fromByteOffset: offset + at, as: UInt64.self) }
        guard bytes.count - offset >= 16, u32(0) == FatBinary.magic else { throw FormatError(message: "bad magic") }
        guard u16(4) == 1, u16(6) == 16 else { throw FormatError(message: "unknown version \(u16(4)) / header size \(u16(6))") }
        let declared = u64(8)
        guard declared <= UInt64(bytes.count - offset - 16) else { throw FormatError(message: "truncated: header says \(declared) bytes follow") }
        let end = 16 + Int(declared)
        var at = 16
        while at + 64 <= end {
            let kind = u16(at)
            let headerSize = Int(u32(at + 4))
            let paddedSize = u64(at + 8)
            let storedSize = Int(u32(at + 16))
            let architecture = Int(u32(at + 28))
            let flags = u64(at + 40)
            let uncompressed = u64(at + 56)
            guard headerSize >= 64, paddedSize <= UInt64(end), at + headerSize + Int(paddedSize) <= end else {
                throw FormatError(message: "entry at offset \(at) runs past the container")
            }
            let compression: Compression = flags & 0x8000 != 0 ? .zstd : flags & 0x2000 != 0 ? .lz4 : .none
            // Plain entries store their size in the padded field only.
            let payloadSize = compression == .none ? Int(paddedSize) : storedSize
            guard payloadSize <= Int(paddedSize), uncompressed <= 1 << 31 else {
                throw FormatError(message: "entry at offset \(at) has inconsistent sizes")
            }
            // A compressed entry cannot decode to more than its format allows from the payload;
            // a larger claim would make the reader reserve memory for a lie.
            let most = compression == .lz4 ? LZ4Block.maximumDecodedSize(ofInputCount: payloadSize) : payloadSize * FatBinary.zstdMaximumRatio
            guard compression == .none || Int(uncompressed) <= most else {
                throw FormatError(message: "entry at offset \(at) claims \(uncompressed) bytes decompressed from \(payloadSize)")
            }
            let start = at + headerSize
            entries.append(
                Entry(
                    kind: kind == 1 ? .ptx : kind == 2 ? .cubin : .other(kind), architecture: architecture,
                    compression: compression, payload: Array(bytes[(offset + start)..<(offset + start + payloadSize)]),
                    uncompressedSize: compression == .none ? payloadSize : Int(uncompressed)))
            at = start + Int(paddedSize)
        }
        return offset + end
    }

    /// The PTX entry to run on a device of compute capability `architecture` (90 for 9.0): the
    /// newest one not above it, as a driver JIT-compiles. PTX runs on its own architecture and
    /// every later one, never on an earlier one. Nil when there is none.
    public func ptx(forArchitecture architecture: Int) -> Entry? {
        entries.filter { $0.kind == .ptx && $0.architecture <= architecture }.max { $0.architecture < $1.architecture }
    }

    /// The architectures of the PTX entries, in order (for diagnostics).
    public var ptxArchitectures: [Int] { entries.filter { $0.kind == .ptx }.map(\.architecture).sorted() }
}

extension FatBinary.Entry {
    /// The PTX text of an uncompressed or LZ4 entry; `zstd` decodes zstd payloads when the host
    /// can (the simulated device loads the system libzstd), else zstd entries fail.
    public func text(zstd: (([UInt8], Int) -> [UInt8]?)? = nil) throws(FatBinary.FormatError) -> String {
        var bytes: [UInt8]
        switch compression {
        case .none: bytes = payload
        case .lz4:
            guard let decoded = LZ4Block.decode(payload, expectedSize: uncompressedSize) else {
                throw FatBinary.FormatError(message: "corrupt LZ4 payload")
            }
            bytes = decoded
        case .zstd:
            guard let zstd else { throw FatBinary.FormatError(message: "zstd-compressed entry and no zstd decoder") }
            guard let decoded = zstd(payload, uncompressedSize) else { throw FatBinary.FormatError(message: "corrupt zstd payload") }
            bytes = decoded
        }
        // The text is NUL-terminated and padded.
        if let nul = bytes.firstIndex(of: 0) { bytes.removeSubrange(nul...) }
        return String(decoding: bytes, as: UTF8.self)
    }
}
