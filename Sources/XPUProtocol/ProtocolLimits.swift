/// Sizes every peer enforces before it allocates anything (proto/PROTOCOL.md, "Limits").
public enum ProtocolLimits {
    /// The magic at the start of the handshake: "XPUR" read as a little-endian u32.
    public static let magic: UInt32 = 0x5255_5058
    /// The protocol version this build speaks; the handshake rejects any other.
    public static let version: UInt16 = 1
    /// Largest payload of one frame (the header's length field), bulk data included.
    public static let maximumFrameBytes = 17 << 20
    /// Largest byte blob carried in one frame; larger copies are split into chunks.
    public static let maximumBulkBytes = 16 << 20
    /// The chunk size the shim uses for copies, chosen by measurement (bench/latency-bandwidth,
    /// "Copy chunk size"): more chunks in flight overlap one end's work with the other's; 1 MiB beat
    /// 2, 4 and 8 MiB both ways, 512 KiB was about as fast, and 256 KiB collapsed uploads.
    public static let copyChunkBytes = 1 << 20
    /// Largest string field (symbol names, device names, the requested slice).
    public static let maximumStringBytes = 4096
    /// Largest kernel parameter block, as on the real driver (32 KiB since CUDA 12.1).
    public static let maximumKernelParameterBytes = 32_764
    /// Most slices one pool placement may ask for (as many as a client has lanes).
    public static let maximumPoolPlacements: UInt32 = 16
}
