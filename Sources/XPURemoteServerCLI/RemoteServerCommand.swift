import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import XPUAdmission
import XPUProtocol
import XPUServer
import XPUTransport

/// `xpu-remote-server`: serves the CUDA driver API to remote clients on this node's device.
public struct RemoteServerCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "xpu-remote-server",
        abstract: "Serve this node's accelerator (or a simulated one) to xpu-remote clients.",
        discussion: """
            Clients connect with the xpu-remote shim (XPU_SERVER=host:port, or xpu-run --server). \
            Each client gets a session with its own contexts; everything a session holds is freed \
            when it ends or its peer disappears. SIGTERM or SIGINT shut the server down gracefully.
            """)

    @Option(
        help:
            "Address to listen on: HOST:PORT (port 0 picks a free port, printed at start), unix:/path, or rdma://HOST:PORT (RDMA; no TLS, untested on hardware)."
    )
    var listen: String = "127.0.0.1:7070"

    @Option(help: "TLS 1.3: the server's PEM certificate chain (clients connect with tls://HOST:PORT).")
    var tlsCert: String?

    @Option(help: "TLS: the PEM private key of --tls-cert.")
    var tlsKey: String?

    @Option(help: "TLS: a PEM CA bundle; clients are asked for a certificate that chains to it (mutual TLS).")
    var tlsClientCa: String?

    @Flag(help: "TLS: refuse clients without a certificate from --tls-client-ca.")
    var requireClientCert = false

    @Option(help: "Authentication policy (JSON; see proto/SECURITY.md): every client must present a token or client certificate it lists.")
    var policy: String?

    @Flag(help: "Allow listening on a non-loopback address without TLS and authentication (logged loudly).")
    var insecure = false

    @Option(
        help:
            "The device to serve: cuda (the real driver, libcuda.so.1), sim (libxpusim.so), or opencl[:PLATFORM] (a platform of the system's OpenCL, libOpenCL.so.1: its index or part of its name; docs/opencl.md)."
    )
    var device = DeviceChoice(kind: .cuda)

    @Option(help: "Driver library to load instead of the default for --device.")
    var driver: String?

    @Option(help: "Memory of the simulated device, e.g. 16GiB, 512MiB (sim only; default 16GiB).")
    var simMemory: String?

    @Option(help: "Streaming multiprocessors of the simulated device (sim only; default 8).")
    var simSms: Int?

    @Flag(help: "Never compress bulk data (by default sessions whose client offers it use LZ4 where it pays).")
    var noCompression = false

    @Option(
        help: """
            Microseconds a session's thread spins on its socket for the client's next frame before it blocks (0, the default: never). \
            Spares a synchronous call the wake-up of a sleeping CPU on an idle machine; adapts, so long pauses cost no spinning.
            """)
    var busyPollUs = BusyPoll.Settings.defaultMicroseconds

    public func validate() throws {
        guard (0...1_000_000).contains(busyPollUs) else {
            throw ValidationError("--busy-poll-us must be 0 to 1000000 microseconds, not \(busyPollUs)")
        }
    }

    @Flag(
        help:
            "Copy bulk data through a staging buffer even where the driver lets the server read and write device memory in place (the simulated device); for comparison: real drivers always stage."
    )
    var stagedCopies = false

    @Option(help: "Register with the pool directory at HOST:PORT and heartbeat every second (repeat or comma-separate for several).")
    var pool: [String] = []

    @Option(help: "The address clients should use, as announced to --pool (default: the listen address).")
    var advertise: String?

    @Option(help: "A label announced to --pool, e.g. zone=a (repeatable). The API family, api=cuda or api=opencl, is announced from --device.")
    var label: [String] = []

    @Option(
        help:
            "Serve Prometheus metrics at http://HOST:PORT/metrics (per-session usage, per-device granted and busy fractions; docs/metrics.md). Off by default; port 0 picks a free port, printed at start."
    )
    var metrics: String?

    @Option(
        help:
            "With --metrics: a file holding a token that every scrape must send as 'Authorization: Bearer <token>' (Prometheus: authorization.credentials_file). Without it /metrics is open to whoever reaches the address."
    )
    var metricsTokenFile: String?

    @Option(
        help:
            "With --metrics: serve /metrics over TLS (https://) with this certificate chain (PEM); needs --metrics-tls-key."
    )
    var metricsTLSCert: String?

    @Option(help: "With --metrics-tls-cert: the certificate's private key (PEM).")
    var metricsTLSKey: String?

    @Option(help: "Sessions one device may serve at once; a session without a slice counts on every device (default: no limit).")
    var maxTenantsPerDevice: Int?

    @Option(help: "Smallest slice memory a session may ask for (mem=), e.g. 256MiB; sessions must then ask for mem=.")
    var sliceMinMemory: String?

    @Option(help: "Largest slice memory a session may ask for (mem=), e.g. 8GiB; sessions must then ask for mem=.")
    var sliceMaxMemory: String?

    @Option(help: "Smallest compute share in percent a session may ask for (compute=); sessions must then ask for compute=.")
    var sliceMinCompute: Double?

    @Option(help: "Largest compute share in percent a session may ask for (compute=); sessions must then ask for compute=.")
    var sliceMaxCompute: Double?

    @Option(help: "Compute shares must be multiples of this many percent, e.g. 10; sessions must then ask for compute=.")
    var sliceComputeStep: Double?

    @Option(help: "Slice priorities sessions may ask for, comma-separated from low,normal,high (default: all).")
    var slicePriorities: String?

    @Option(help: "Slice modes sessions may ask for, comma-separated from guaranteed,capped (default: both).")
    var sliceModes: String?

    @Flag(
        help: """
            Serve each session in a process of its own, so that a tenant's crash, illegal address or kill -9 ends only \
            that tenant (admission, compute shares and /metrics stay global in this process). TCP with or without TLS, \
            and unix: (shared memory); not rdma:// (docs/architecture.md, "Process model").
            """)
    var tenantProcesses = false

    @Option(
        help:
            "Seconds a connection has from accept to its Hello, TLS handshake included; then it is closed (default 5). Until its first bytes arrive a connection holds no thread."
    )
    var handshakeTimeout: Double = 5

    @Option(help: "Connections waiting for their Hello, in all; more are closed at once (default 1024).")
    var maxPendingConnections: Int = 1024

    @Option(help: "Connections waiting for their Hello from one source address; more are closed at once (default 32).")
    var maxPendingPerSource: Int = 32

    @Option(
        help:
            "Seconds a session's TCP peer may stay silent (no answer to keepalive probes, or to sent data) before the session ends and frees what it held (default 60; 0: no keepalive). Clients set theirs with XPU_PEER_TIMEOUT."
    )
    var peerTimeout: Int = 60

    /// Set on the processes `--tenant-processes` starts (TenantWorker); not for use by hand.
    @Flag(help: .hidden)
    var serveSession = false

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .info

    public init() {}

    /// Whether this is a session process `--tenant-processes` started (`serveSessionProcess`).
    public var isSessionProcess: Bool { serveSession }

    /// A session process's whole life, on the calling thread; its exit status. It runs no Swift
    /// concurrency, so libdispatch never starts its worker pool there, nor the pool's monitor,
    /// a timer that would wake the idle process every second.
    public func serveSessionProcess() -> Int32 {
        bootstrapStandardErrorLogging(level: logLevel)
        return TenantWorker.run(driverPath: driver ?? Self.defaultDriverPath(for: device.kind), logger: Logger(label: "xpu-remote-server"))
    }

    public func run() async throws {
        if serveSession { Foundation.exit(serveSessionProcess()) }
        bootstrapStandardErrorLogging(level: logLevel)
        let logger = Logger(label: "xpu-remote-server")
        let unixPath = listen.hasPrefix("unix:") ? String(listen.dropFirst("unix:".count)) : nil
        let rdma = listen.hasPrefix("rdma://")
        let endpoint: Endpoint? =
            unixPath != nil
            ? Endpoint(host: "127.0.0.1", port: 0) : Endpoint(parsing: rdma ? String(listen.dropFirst("rdma://".count)) : listen)
        guard let endpoint, unixPath?.isEmpty != true else {
            throw ValidationError("--listen must be HOST:PORT, unix:/path or rdma://HOST:PORT, got '\(listen)'")
        }
        var directories: [Endpoint] = []
        for entry in pool.flatMap({ $0.split(separator: ",") }) {
            guard let directory = Endpoint(parsing: String(entry)) else {
                throw ValidationError("--pool must be HOST:PORT[,HOST:PORT...], got '\(entry)'")
            }
            directories.append(directory)
        }
        if advertise != nil && directories.isEmpty { throw ValidationError("--advertise applies with --pool only") }
        let family = device.kind.apiFamily
        if let named = label.first(where: { $0.hasPrefix(APIFamily.labelKey + "=") }), named != family.label {
            throw ValidationError("--label \(named) contradicts --device \(device.kind.rawValue), which serves \(family.label) (the server announces its API family itself)")
        }
        if tenantProcesses, let refusal = Self.tenantProcessRefusal(rdma: rdma) {
            logger.critical("\(refusal)")
            throw ExitCode(2)
        }
        let security: ServerSecurity
        do {
            security = try securitySettings(unixPath: unixPath, rdma: rdma, endpoint: endpoint, logger: logger)
        } catch {
            logger.critical("\(error)")
            throw ExitCode(2)
        }
        let limits = try serverLimits(policy: security.authenticator?.policy)
        let admission = try admissionLimits()
        Self.raiseDescriptorLimit(logger: logger)
        var metricsEndpoint: Endpoint?
        if let metrics {
            guard let parsed = Endpoint(parsing: metrics) else { throw ValidationError("--metrics must be HOST:PORT, got '\(metrics)'") }
            metricsEndpoint = parsed
        }
        var metricsToken: String?
        if let metricsTokenFile {
            guard metrics != nil else { throw ValidationError("--metrics-token-file needs --metrics") }
            guard let text = try? String(contentsOfFile: metricsTokenFile, encoding: .utf8) else {
                throw ValidationError("cannot read --metrics-token-file \(metricsTokenFile)")
            }
            let token = text.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !token.isEmpty, !token.contains(where: \.isWhitespace) else {
                throw ValidationError("--metrics-token-file \(metricsTokenFile) must hold one token (no spaces)")
            }
            metricsToken = token
        }
        var metricsTLS: MetricsEndpoint.TLSFiles?
        if metricsTLSCert != nil || metricsTLSKey != nil {
            guard metrics != nil else { throw ValidationError("--metrics-tls-cert and --metrics-tls-key need --metrics") }
            guard let metricsTLSCert, let metricsTLSKey else {
                throw ValidationError("--metrics-tls-cert and --metrics-tls-key go together")
            }
            metricsTLS = MetricsEndpoint.TLSFiles(certificateFile: metricsTLSCert, keyFile: metricsTLSKey)
        }
        if device.kind == .sim {
            if let simMemory { setenv("XPU_SIM_MEMORY", simMemory, 1) }
            if let simSms { setenv("XPU_SIM_SMS", String(simSms), 1) }
            // Simulated devices of different servers get different UUIDs (clients of several
            // servers, and NVML tools, tell devices apart by them), stable across restarts of a
            // server on a fixed address; a port chosen by the system (0) adds the process id.
            if getenv("XPU_SIM_NODE") == nil {
                let host = ProcessInfo.processInfo.hostName
                let node = endpoint.port == 0 && unixPath == nil ? "\(host) \(listen) \(getpid())" : "\(host) \(listen)"
                setenv("XPU_SIM_NODE", node, 1)
            }
        } else if simMemory != nil || simSms != nil {
            throw ValidationError("--sim-memory and --sim-sms apply to --device sim only")
        }
        let path = driver ?? Self.defaultDriverPath(for: device.kind)
        if device.kind == .opencl && tenantProcesses {
            throw ValidationError(
                "--tenant-processes serves CUDA sessions only (a session process loads the CUDA driver and replays CUDA calls); OpenCL sessions run as threads of the server: drop --tenant-processes for --device opencl"
            )
        }
        let loaded: Driver
        do {
            if device.kind == .opencl {
                let platform = try OpenCLPlatform(path: path, selector: device.platform)
                logger.info("serving OpenCL", metadata: ["platform": "\(platform.name)", "devices": "\(platform.deviceMemory.count)"])
                loaded = Driver(openCL: platform, path: path)
            } else {
                loaded = try Driver(path: path, directCopies: !stagedCopies)
            }
        } catch {
            logger.critical("cannot use the driver: \(error)")
            throw ExitCode(2)
        }
        // A server in a pool measures device time too: its heartbeats report how busy it is.
        let devices = ServerDevices()
        let serverMetrics = metricsEndpoint != nil || !directories.isEmpty ? ServerMetrics(driver: loaded, devices: devices) : nil
        let server: RemoteServer
        let metricsService: MetricsEndpoint?
        do {
            server = try RemoteServer(
                configuration: ServerConfiguration(
                    listen: endpoint, device: device.kind, driverPath: path, compression: !noCompression, limits: limits,
                    tenantProcesses: tenantProcesses, admission: admission, busyPoll: BusyPoll.Settings(microseconds: busyPollUs)),
                driver: loaded,
                logger: logger, security: security, devices: devices, metrics: serverMetrics)
            if let metricsEndpoint, let serverMetrics {
                metricsService = try MetricsEndpoint(
                    binding: metricsEndpoint, metrics: serverMetrics, bearerToken: metricsToken, tls: metricsTLS, logger: logger)
            } else {
                metricsService = nil
            }
        } catch {
            logger.critical("cannot listen: \(error)")
            throw ExitCode(2)
        }
        logger.info(
            "serving",
            metadata: [
                "driver": "\(path)", "driverVersion": "\(loaded.version)", "sessions": "\(tenantProcesses ? "processes" : "threads")",
            ])
        if limits != ServerLimits() { logger.info("limits", metadata: ["limits": "\(limits.summary)"]) }
        if let metricsService {
            if !metricsService.endpoint.isLoopback {
                // Metrics carry tenant names and usage, never data or tokens; still, say who can read them.
                if !metricsService.usesTLS || metricsToken == nil {
                    let access =
                        switch (metricsService.usesTLS, metricsToken != nil) {
                        case (false, false): "without TLS or authentication"
                        case (false, true): "without TLS (a bearer token is required)"
                        default: "over TLS without authentication"
                        }
                    logger.warning("/metrics on \(metricsService.endpoint) is served \(access)")
                }
            }
            FileHandle.standardOutput.write(Data("xpu-remote-server metrics on \(metricsService.url)\n".utf8))
        }
        // Scripts and tests wait for this line; with --listen HOST:0 it tells the real port.
        FileHandle.standardOutput.write(Data("xpu-remote-server listening on \(server.address)\n".utf8))
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: server)]
        if let metricsService { services.append(.init(service: metricsService)) }
        if !directories.isEmpty {
            let announcer = PoolAnnouncer(
                directories: directories, advertise: advertise ?? server.address, labels: Self.poolLabels(label, device: device.kind),
                driver: loaded, server: server, logger: logger)
            services.append(.init(service: announcer))
        }
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }

    /// Why `--tenant-processes` cannot serve this listener, or nil. A session moves to its
    /// process after the handshake as a connected socket (a TLS session's plaintext relayed by
    /// this server through a socket pair; a shared-memory session's Unix socket with the rings'
    /// memfd); an RDMA queue pair is bound to this process and is not handed over (yet).
    static func tenantProcessRefusal(rdma: Bool) -> String? {
        guard rdma else { return nil }
        return """
            --tenant-processes does not support rdma:// listeners yet: a session moves to its process as a connected \
            socket, and an RDMA queue pair cannot follow it. Use a TCP listener (with TLS, or on a loopback \
            address) or unix:/path, or drop --tenant-processes.
            """
    }

    /// `libcuda.so.1` from the system for cuda; for sim, the `libxpusim.so` installed beside this
    /// program (`../lib/` in a dist layout), else found on the library path.
    /// The labels announced to the pool: `--label`s and the API family of `--device`.
    static func poolLabels(_ labels: [String], device: ServerConfiguration.DeviceKind) -> [String] {
        let family = device.apiFamily.label
        return labels.contains(family) ? labels : labels + [family]
    }

    static func defaultDriverPath(for device: ServerConfiguration.DeviceKind) -> String {
        switch device {
        case .cuda:
            return "libcuda.so.1"
        case .opencl:
            return "libOpenCL.so.1"
        case .sim:
            let executable = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
            let directory = executable.deletingLastPathComponent()
            for candidate in ["../lib/libxpusim.so", "libxpusim.so"] {
                let url = directory.appendingPathComponent(candidate).standardizedFileURL
                if FileManager.default.fileExists(atPath: url.path) { return url.path }
            }
            return "libxpusim.so"
        }
    }
}

/// `--device`: the kind of device, and for OpenCL which platform (`opencl:pocl`, `opencl:1`).
struct DeviceChoice: ExpressibleByArgument, CustomStringConvertible {
    var kind: ServerConfiguration.DeviceKind
    /// An index or part of a platform's name or vendor; empty for the first platform.
    var platform = ""

    init(kind: ServerConfiguration.DeviceKind) {
        self.kind = kind
    }

    init?(argument: String) {
        let parts = argument.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        guard let kind = ServerConfiguration.DeviceKind(rawValue: String(parts[0])) else { return nil }
        guard parts.count == 1 || (kind == .opencl && !parts[1].isEmpty) else { return nil }
        self.kind = kind
        platform = parts.count == 2 ? String(parts[1]) : ""
    }

    var description: String { platform.isEmpty ? kind.rawValue : "\(kind.rawValue):\(platform)" }

    static var allValueStrings: [String] { ["cuda", "sim", "opencl", "opencl:PLATFORM"] }
}
extension Logger.Level: @retroactive ExpressibleByArgument {}

