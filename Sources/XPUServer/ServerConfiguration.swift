import XPUAdmission
import XPUProtocol
import XPUTransport

/// How `xpu-remote-server` runs; filled from its command line.
public struct ServerConfiguration: Sendable {
    public enum DeviceKind: String, Sendable, CaseIterable {
        /// The real driver, `libcuda.so.1`.
        case cuda
        /// The simulated device, `libxpusim.so`.
        case sim
        /// An OpenCL platform of the system's OpenCL (`libOpenCL.so.1`); sessions speak OpenCL.
        case opencl

        /// The API family its sessions speak, announced to the pool as `api=` (APIFamily).
        public var apiFamily: APIFamily {
            switch self {
            case .cuda, .sim: .cuda
            case .opencl: .opencl
            }
        }
    }

    public var listen: Endpoint
    public var device: DeviceKind
    /// The driver library to load; nil for the default of `device`.
    public var driverPath: String?
    /// Whether sessions may negotiate LZ4 for bulk data.
    public var compression: Bool
    /// Tenants per device and the slices sessions may ask for (flags and the policy's `limits`).
    public var limits: ServerLimits
    /// Each session runs in a process of its own (`--tenant-processes`; `TenantProcesses`).
    public var tenantProcesses: Bool
    /// The handshake deadline, the caps on connections before their Hello, and keepalive.
    public var admission: AdmissionLimits
    /// How long a session's thread spins for the next frame before it blocks (`--busy-poll-us`;
    /// `BusyPoll`). TCP and TLS sessions served by threads; shared memory spins on its own.
    public var busyPoll = BusyPoll.Settings(microseconds: BusyPoll.Settings.defaultMicroseconds)

    public init(
        listen: Endpoint, device: DeviceKind, driverPath: String? = nil, compression: Bool = true, limits: ServerLimits = ServerLimits(),
        tenantProcesses: Bool = false, admission: AdmissionLimits = AdmissionLimits(), busyPoll: BusyPoll.Settings? = nil
    ) {
        self.admission = admission
        self.tenantProcesses = tenantProcesses
        if let busyPoll { self.busyPoll = busyPoll }
        self.listen = listen
        self.device = device
        self.driverPath = driverPath
        self.compression = compression
        self.limits = limits
    }
}
