#if canImport(Glibc)
import Glibc
#endif
import CXPUOpenCL
import XPUProtocol
import XPUTransport

/// The process's OpenCL session with its server: the connection, opened on first use with the
/// same settings, handshake and authentication as the CUDA shim (`XPU_SERVER` or `XPU_POOL`,
/// `XPU_TOKEN` / `XPU_TOKEN_FILE`, `XPU_TLS_*`, `XPU_SLICE`, `XPU_PEER_TIMEOUT`).
///
/// Calls that return something wait for their reply (`exchange`); enqueues whose OpenCL
/// semantics are asynchronous are sent fire-and-forget (`post`), and the server returns their
/// failure with the next reply, as OpenCL reports an enqueued command's failure later.
final class ICDSession {
    let channel: FrameChannel
    /// The server's session id (for handles the client mints: events).
    let session: UInt64
    private var sequence: UInt32 = 0
    private var nextEvent: UInt64 = 0

    private init(channel: FrameChannel, session: UInt64) {
        self.channel = channel
        self.session = session
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// Connects and shakes hands, or says why not (logged by the caller). With `XPU_POOL` and no
    /// `XPU_SERVER`, the pool chooses the server, among those serving OpenCL, and the slice.
    static func open() throws(Failure) -> ICDSession {
        let (server, slice) = try destination()
        guard let token = tenantToken() else { throw Failure(description: "cannot read XPU_TOKEN_FILE") }
        let channel: FrameChannel
        do {
            let tls = ClientTLSSettings { name in getenv(name).map { String(cString: $0) } }
            let peerTimeout = try ServerAddress.peerTimeout(environment: getenv("XPU_PEER_TIMEOUT").map { String(cString: $0) }).get()
            channel = FrameChannel(transport: try server.connect(tls: tls, peerTimeout: peerTimeout))
        } catch {
            throw Failure(description: "cannot reach xpu-remote-server at \(server): \(error)")
        }
        // No CUDA version: the server tells OpenCL clients by the call they make, and a CUDA
        // server refuses OpenCL calls.
        let hello = Hello(
            features: Features.fireAndForget.rawValue, clientCUDAVersion: 0, slice: slice,
            client: "\(processName()) pid \(getpid()) (OpenCL)", token: token)
        do {
            try channel.send(FrameHeader(length: 0, call: CallID.handshake.rawValue, sequence: 0), payload: hello.encoded)
            let (header, payload) = try channel.receive()
            let welcome = try Welcome(decoding: payload)
            guard header.status == 0 else {
                throw Failure(description: "xpu-remote-server at \(server) refused the session: \(welcome.reason)")
            }
            ICDLog.log(.info, "session \(welcome.session) open on \(server)")
            return ICDSession(channel: channel, session: welcome.session)
        } catch let failure as Failure {
            throw failure
        } catch {
            throw Failure(description: "handshake with \(server) failed: \(error)")
        }
    }

    /// The server to open the session on and the slice to ask it for: `XPU_SERVER` and
    /// `XPU_SLICE`, or where the pool (`XPU_POOL`, when `XPU_SERVER` is unset) places `XPU_SLICE`.
    static func destination() throws(Failure) -> (ServerAddress, String) {
        let configured = environment("XPU_SERVER")
        let pool = environment("XPU_POOL")
        if configured.isEmpty && !pool.isEmpty {
            let client = "\(processName()) pid \(getpid()) (OpenCL)"
            switch PoolClient.place(slice: environment("XPU_SLICE"), count: 1, client: client, family: .opencl, log: ICDLog.output) {
            case .placed(let placements):
                return (placements[0].server, placements[0].slice)
            case .failed:
                throw Failure(description: "the pool (XPU_POOL=\(pool)) placed no OpenCL slice")
            }
        }
        // As the CUDA shim: 127.0.0.1:7070 when unset. Of several servers, the first serves OpenCL.
        let serverText = configured.isEmpty ? "127.0.0.1:7070" : String(configured.split(separator: ",").first ?? "")
        guard let server = ServerAddress(parsing: serverText) else {
            throw Failure(description: "XPU_SERVER=\(serverText) is not HOST:PORT, tls://HOST:PORT, unix:/path or rdma://HOST:PORT")
        }
        return (server, environment("XPU_SLICE"))
    }

    /// A new event id: the top bit set and the session in bits 32-55, so it never meets an id
    /// the server mints (proto/opencl.api).
    func mintEvent() -> UInt64 {
        nextEvent += 1
        return 1 << 63 | (session & 0xFF_FFFF) << 32 | nextEvent
    }

    /// Sends `request`, waits for its reply: the call's status and, on CL_SUCCESS, the reply.
    func exchange<R: CallRequest>(_ request: R) throws(ICDError) -> R.Reply {
        sequence &+= 1
        let sent = sequence
        do {
            try channel.send(FrameHeader(length: 0, call: R.call.rawValue, sequence: sent), payload: request.encoded)
            let (header, payload) = try channel.receive()
            guard header.sequence == sent, header.call == R.call.rawValue else {
                throw ICDError.lost("reply \(header.sequence) to call \(header.call) does not answer \(sent) (\(R.call))")
            }
            let status = cl_int(bitPattern: header.status)
            guard status == CL_SUCCESS else { throw ICDError(status) }
            return try R.Reply(decoding: payload)
        } catch let error as ICDError {
            throw error
        } catch {
            throw ICDError.lost("connection to the server lost: \(error)")
        }
    }

    /// Sends `request` fire-and-forget: no reply; a failure comes back with the next reply.
    func post<R: CallRequest>(_ request: R) throws(ICDError) {
        sequence &+= 1
        do {
            try channel.send(FrameHeader(length: 0, call: R.call.rawValue, flags: .noReply, sequence: sequence), payload: request.encoded)
        } catch {
            throw ICDError.lost("connection to the server lost: \(error)")
        }
    }

    static func environment(_ name: String) -> String {
        getenv(name).map { String(cString: $0) } ?? ""
    }

    /// `XPU_TOKEN`, or else the first line of the file `XPU_TOKEN_FILE` names; nil when that
    /// file cannot be read.
    static func tenantToken() -> String? {
        let direct = environment("XPU_TOKEN")
        let path = environment("XPU_TOKEN_FILE")
        guard direct.isEmpty, !path.isEmpty else { return direct }
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var buffer = [UInt8](repeating: 0, count: 4097)
        let count = fread(&buffer, 1, buffer.count, file)
        guard count < buffer.count else { return nil }
        return String(decoding: buffer[..<count].prefix { $0 != 10 && $0 != 13 }, as: UTF8.self)
    }

    static func processName() -> String {
        guard let file = fopen("/proc/self/comm", "r") else { return "?" }
        defer { fclose(file) }
        var buffer = [CChar](repeating: 0, count: 64)
        guard fgets(&buffer, Int32(buffer.count), file) != nil else { return "?" }
        return String(decoding: buffer.prefix { $0 != 0 && $0 != 10 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// Why a call failed: the cl_int it returns. A lost connection fails every later call with
/// CL_OUT_OF_RESOURCES (the session is gone, with everything it held).
struct ICDError: Error {
    var status: cl_int
    var lostReason: String?

    init(_ status: cl_int) {
        self.status = status
    }

    static func lost(_ reason: String) -> ICDError {
        var error = ICDError(CL_OUT_OF_RESOURCES)
        error.lostReason = reason
        return error
    }
}
