/// What a container that uses a slice is given, the same whether a DRA claim (CDI spec) or the
/// admission webhook (JSON patch) gives it: the shim mounted as `libcuda.so.1` and
/// `libnvidia-ml.so.1` in a directory of its own that `LD_LIBRARY_PATH` names first, and the
/// `XPU_*` variables that say where the slice comes from. No `ld.so.preload`: the dynamic loader
/// finds the shim where a CUDA program looks for the driver, under gVisor and in nested containers
/// too. The tenant's token is a file (`XPU_TOKEN_FILE`), never a variable, so it is not in the
/// container's environment, `/proc/<pid>/environ`, the CDI spec or the pod object. Pure.
public struct SliceInjection: Hashable, Sendable {
    /// Where the slice is placed.
    public enum Target: Hashable, Sendable {
        /// The pool directory places it when the program calls `cuInit` (`XPU_POOL`): its policy,
        /// queue and preemption stay in charge.
        case pool(String)
        /// A device of one server, chosen by the Kubernetes scheduler (`XPU_SERVER`, `device=`).
        case server(String, device: Int32)
    }

    public struct Variable: Hashable, Sendable {
        public var name: String
        public var value: String
        public init(_ name: String, _ value: String) {
            self.name = name
            self.value = value
        }
    }

    /// A file or directory of the node made visible in the container, read-only.
    public struct Mount: Hashable, Sendable {
        public var hostPath: String
        public var containerPath: String
        public init(hostPath: String, containerPath: String) {
            self.hostPath = hostPath
            self.containerPath = containerPath
        }
    }

    /// The container's paths (fixed, so a program or a support engineer knows where to look).
    public enum ContainerPath {
        /// The shim's directory, first on `LD_LIBRARY_PATH`.
        public static let library = "/usr/local/xpu/lib"
        /// The tenant's token and the servers' CA, read-only.
        public static let secrets = "/var/run/xpu-remote"
        public static let token = secrets + "/token"
        public static let certificateAuthority = secrets + "/ca.crt"
        /// The library path: ours, then what NVIDIA's CUDA images set, so their other libraries
        /// are still found. (A variable of the image is replaced, not extended: CDI and the pod
        /// spec can only set a value.)
        public static let libraryPath = library + ":/usr/local/nvidia/lib:/usr/local/nvidia/lib64"
    }

    public var target: Target
    public var shape: SliceShape
    /// How many slices of `shape` (`XPU_DEVICES`, pool only).
    public var count: Int
    /// How long the pool may queue the request (`XPU_POOL_WAIT`, e.g. `30s`); nil: fail at once.
    public var poolWait: String?
    /// Whether a token file is mounted at `ContainerPath.token`.
    public var hasToken: Bool
    /// Whether the servers' CA is mounted at `ContainerPath.certificateAuthority`.
    public var hasCertificateAuthority: Bool

    public init(
        target: Target, shape: SliceShape, count: Int = 1, poolWait: String? = nil, hasToken: Bool = false,
        hasCertificateAuthority: Bool = false
    ) {
        self.target = target
        self.shape = shape
        self.count = count
        self.poolWait = poolWait
        self.hasToken = hasToken
        self.hasCertificateAuthority = hasCertificateAuthority
    }

    /// The container's environment, in a fixed order.
    public var variables: [Variable] {
        var result: [Variable] = []
        switch target {
        case .pool(let address):
            result.append(Variable("XPU_POOL", address))
            result.append(Variable("XPU_SLICE", shape.xpuSlice()))
            if count > 1 { result.append(Variable("XPU_DEVICES", "\(count)")) }
            if let poolWait { result.append(Variable("XPU_POOL_WAIT", poolWait)) }
        case .server(let address, let device):
            result.append(Variable("XPU_SERVER", address))
            result.append(Variable("XPU_SLICE", shape.xpuSlice(device: device)))
        }
        if hasToken { result.append(Variable("XPU_TOKEN_FILE", ContainerPath.token)) }
        if hasCertificateAuthority { result.append(Variable("XPU_TLS_CA", ContainerPath.certificateAuthority)) }
        result.append(Variable("LD_LIBRARY_PATH", ContainerPath.libraryPath))
        return result
    }

    /// The shim's mounts, from the node's copy in `shimDirectory` (dist/lib's `libcuda.so.1` and
    /// `libnvidia-ml.so.1`). `libnvidia-ml.so.1` is a filter whose symbols resolve in the
    /// `libcuda.so.1` the loader finds on `LD_LIBRARY_PATH`, so CUDA and NVML share one shim and
    /// one session.
    public static func shimMounts(shimDirectory: String) -> [Mount] {
        ["libcuda.so.1", "libnvidia-ml.so.1"].map {
            Mount(hostPath: shimDirectory + "/" + $0, containerPath: ContainerPath.library + "/" + $0)
        }
    }
}
