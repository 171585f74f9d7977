import CXPUOpenCL
import XPUProtocol

/// How every clGet*Info call hands back its answer: `bytes` into `value` when it has room
/// (CL_INVALID_VALUE when it has not), and the size into `sizeReturn`.
enum Info {
    static func answer(
        _ bytes: [UInt8], _ capacity: Int, _ value: UnsafeMutableRawPointer?, _ sizeReturn: UnsafeMutablePointer<Int>?
    ) throws(ICDError) {
        if let value, !bytes.isEmpty {
            guard capacity >= bytes.count else { throw ICDError(CL_INVALID_VALUE) }
            bytes.withUnsafeBytes { value.copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
        }
        sizeReturn?.pointee = bytes.count
    }

    static func bytes<T>(of value: T) -> [UInt8] {
        withUnsafeBytes(of: value) { Array($0) }
    }

    static func string(_ text: String) -> [UInt8] {
        Array(text.utf8) + [0]
    }

    static func handles(_ objects: [CLObject]) -> [UInt8] {
        objects.flatMap { bytes(of: UInt(bitPattern: $0.handle)) }
    }

    /// The queries the server answers (proto/opencl.api, CLGetInfo).
    enum Query: UInt32 {
        case program = 1, programBuild, kernel, kernelWorkGroup, event, eventProfiling, buffer, queue, context, kernelArgument
        /// A context's image formats (device: the cl_mem_flags, param: the image type).
        case imageFormats
    }

    /// Asks the server.
    static func remote(
        _ state: inout ICDState, _ query: Query, _ object: CLObject, device: CLObject? = nil, _ parameter: cl_uint
    ) throws(ICDError) -> [UInt8] {
        try state.exchange(
            CLGetInfoRequest(query: query.rawValue, object: object.remote, device: device?.remote ?? 0, param: parameter)
        ).value
    }
}

/// Reads `count` handles from a C array.
func handleList(_ count: cl_uint, _ list: UnsafePointer<OpaquePointer?>?) -> [OpaquePointer?] {
    guard count > 0, let list else { return [] }
    return (0..<Int(count)).map { list[$0] }
}
