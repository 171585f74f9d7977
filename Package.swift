// swift-tools-version:6.1
import PackageDescription

/// The targets on the path of every launch (shim, transports, server, simulated device) leave Swift's
/// run-time exclusivity checks out of release builds: each access to a class's stored property
/// pays a check through thread-local storage, a large share of a launch's CPU time on the shim's
/// side. Debug builds, and so the tests, keep them.
let launchPathSettings: [SwiftSetting] = [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]

// Targets follow DESIGN.md: C declarations, a pure protocol codec, transports, the shim, the
// simulated device (with its PTX interpreter), the server, and thin executables.
let package = Package(
    name: "xpu-remote",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "xpushim", type: .dynamic, targets: ["XPUShim"]),
        .library(name: "xpusim", type: .dynamic, targets: ["XPUSim"]),
        // libxpu-opencl.so: the OpenCL ICD (docs/opencl.md).
        .library(name: "xpu-opencl", type: .dynamic, targets: ["XPUOpenCL"]),
        .executable(name: "xpu-remote-server", targets: ["xpu-remote-server"]),
        .executable(name: "xpu-run", targets: ["xpu-run"]),
        .executable(name: "xpu-codegen", targets: ["xpu-codegen"]),
        .executable(name: "xpu-bench", targets: ["xpu-bench"]),
        .executable(name: "xpu-pool", targets: ["xpu-pool"]),
        .executable(name: "xpu-kube", targets: ["xpu-kube"]),
        // For bench/codec (a separate package of ordo-one benchmarks over the codec).
        .library(name: "XPUProtocol", targets: ["XPUProtocol"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        // The server's /metrics endpoint and its TLS, and SHA-256 for tokens and module images.
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        // Kubernetes integration only (xpu-kube; the shim and the server never link these).
        .package(url: "https://github.com/grpc/grpc-swift-2", from: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport", from: "2.9.2"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
    ],
    targets: [
        // Our own declaration of the CUDA driver API subset, plus result-code tables in C.
        .target(name: "CXPUDriver"),
        // Our own declaration of the NVML subset the shim serves (libnvidia-ml.so.1).
        .target(name: "CXPUNVML"),
        // Our own declaration of the OpenCL subset served, and the server's dlopen table for the
        // system's OpenCL.
        .target(name: "CXPUOpenCL"),
        // The OpenCL ICD's dispatch table and objects (linked into libxpu-opencl.so only).
        .target(name: "CXPUOpenCLICD", dependencies: ["CXPUOpenCL"]),
        // libxpu-opencl.so: the OpenCL API on the client, forwarding to a server.
        // Linked -Bsymbolic: under the ICD loader, which exports the same cl* names, the dispatch
        // table must still point at this library's own functions.
        .target(
            name: "XPUOpenCL", dependencies: ["CXPUOpenCL", "CXPUOpenCLICD", "XPUProtocol", "XPUTiming", "XPUTransport"],
            linkerSettings: [.unsafeFlags(["-Xlinker", "-Bsymbolic"])]
        ),
        // epoll and eventfd: the server's connection lobby (many idle sockets, one thread) and
        // the transports' hang-up watch.
        .target(name: "CXPUPoll"),
        // The monotonic clock, inline in C: one definition for every module and libxpusim.so.
        .target(name: "CXPUClock"),
        // Generated stubs for every driver entry point not served yet, and the shim's C helpers.
        .target(name: "CXPUShimSupport", dependencies: ["CXPUDriver"]),
        // What the CUDA runtime asks of a driver beyond cuda.h (export tables, libraries and
        // kernels), answered in terms of the served driver API; linked into the shim and the
        // simulated device alike.
        .target(name: "CXPURuntimeSupport", dependencies: ["CXPUDriver"]),
        // Wire format: frames, handshake, per-call codecs (generated). No IO.
        .target(name: "XPUProtocol", dependencies: ["CXPUDriver"]),
        // Byte-stream transports: TCP and an in-memory pair for tests.
        .target(
            name: "XPUTransport", dependencies: ["XPUProtocol", "CXPUClock", "CXPUPoll", "CXPUTLS", "CXPUShm", "CXPUVerbs"],
            swiftSettings: launchPathSettings
        ),
        // TLS 1.3 on OpenSSL 3, loaded with dlopen at first use (nothing links libssl).
        .target(name: "CXPUTLS"),
        // memfd, futex, atomics and descriptor passing for the shared-memory transport.
        .target(name: "CXPUShm"),
        // RDMA connections on libibverbs/librdmacm, loaded with dlopen at first use.
        .target(name: "CXPUVerbs"),
        // libxpushim.so: the driver API on the client, forwarding to a server.
        .target(
            name: "XPUShim",
            dependencies: ["CXPUDriver", "CXPUNVML", "CXPURuntimeSupport", "CXPUShimSupport", "XPUProtocol", "XPUTransport"],
            swiftSettings: launchPathSettings
        ),
        // PTX front end and interpreter. No IO.
        .target(name: "XPUPTX", dependencies: ["CXPUClock"]),
        // libxpusim.so: the driver API implemented on the CPU.
        .target(name: "XPUSim", dependencies: ["CXPUClock", "CXPUDriver", "CXPURuntimeSupport", "XPUPTX"], swiftSettings: launchPathSettings),
        // Admission: slice requests, server limits, the access policy and the ledger of what each
        // device granted. Shared by the server and the pool directory. No IO.
        .target(name: "XPUAdmission", dependencies: ["CXPUDriver", "XPUTiming"]),
        // Timed waits on the monotonic clock, shared by the server's scheduler and the pool directory.
        .target(name: "XPUTiming"),
        // A clock the tests move, for what waits on XPUTiming's conditions (tests only).
        .target(name: "XPUTimingTesting", dependencies: ["XPUTiming"]),
        // The server: sessions, handle tables, dispatch onto a dlopen'ed driver, and /metrics
        // (Prometheus text format over swift-nio, TLS from swift-nio-ssl; the shim never links
        // this target).
        .target(
            name: "XPUServer",
            dependencies: [
                "CXPUDriver", "CXPUOpenCL", "CXPUPoll", "XPUAdmission", "XPUProtocol", "XPUTiming", "XPUTransport",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: launchPathSettings
        ),
        .target(
            name: "XPURemoteServerCLI",
            dependencies: [
                "XPUAdmission", "XPUProtocol", "XPUServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "XPURunCLI",
            dependencies: [.product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        // Placement of slices on devices across servers (the pool's policies). No IO.
        .target(name: "XPUPlacement"),
        // The pool directory (`xpu-pool`): soft state from server heartbeats, placement by policy.
        .target(
            name: "XPUPool",
            dependencies: [
                "CXPUDriver", "XPUAdmission", "XPUPlacement", "XPUProtocol", "XPUTiming", "XPUTransport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // xpu-bench's subcommands, one per file.
        .target(
            name: "XPUBenchCLI",
            dependencies: [
                "CXPUDriver", "XPUPlacement", "XPUPTX", "XPUProtocol", "XPUTransport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // Reads proto/*.api and writes the generated codecs, shim exports and server dispatch.
        .target(name: "XPUCodegen"),
        .executableTarget(
            name: "xpu-remote-server",
            dependencies: ["XPURemoteServerCLI", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .executableTarget(name: "xpu-run", dependencies: ["XPURunCLI"]),
        .executableTarget(
            name: "xpu-pool",
            dependencies: ["XPUPool", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .executableTarget(name: "xpu-codegen", dependencies: ["XPUCodegen"]),
        // Kubernetes (docs/kubernetes.md). What a claim or a pod annotation becomes (slices, CDI
        // specs, JSON patches, ResourceSlices): pure values and codecs, no IO.
        .target(name: "XPUKube"),
        // The kubelet's gRPC APIs (pluginregistration/v1, dra/v1): generated from proto/kubelet/.
        .target(
            name: "XPUKubeletAPI",
            dependencies: [
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ]
        ),
        // The DRA driver (kubelet plugin and ResourceSlice controller), the admission webhook and
        // the Kubernetes API client they share.
        .target(
            name: "XPUKubeDriver",
            dependencies: [
                "XPUKube", "XPUKubeletAPI", "XPUProtocol", "XPUTransport", "CXPUDriver",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOCertificateReloading", package: "swift-nio-extras"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "XPUKubeCLI",
            dependencies: [
                "XPUKube", "XPUKubeDriver",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "xpu-kube",
            dependencies: ["XPUKubeCLI", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .executableTarget(
            name: "xpu-bench",
            dependencies: ["XPUBenchCLI", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .testTarget(name: "XPUProtocolTests", dependencies: ["XPUProtocol", "XPUTransport", "XPUCodegen"]),
        .testTarget(name: "XPUPTXTests", dependencies: ["XPUPTX"]),
        .testTarget(name: "XPUSimTests", dependencies: ["XPUSim", "CXPUDriver", "CXPURuntimeSupport"]),
        .testTarget(name: "XPUEndToEndTests", dependencies: ["CXPUDriver", "XPUProtocol", "XPUTiming", "XPUTransport", "XPUKube"]),
        .testTarget(name: "XPUPlacementTests", dependencies: ["XPUPlacement"]),
        .testTarget(
            name: "XPUPoolTests",
            dependencies: ["XPUPool", "XPUProtocol", "XPUTiming", "XPUTimingTesting", "CXPUDriver", .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "XPUServerTests", dependencies: ["XPUAdmission", "XPUServer", "XPUTiming", "XPUTimingTesting", "CXPUDriver"]),
        .testTarget(
            name: "XPUKubeTests",
            dependencies: [
                "XPUKube", "XPUKubeDriver", "XPUKubeletAPI", "XPUPool", "XPUProtocol", "XPUTiming", "XPUTransport",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2Posix", package: "grpc-swift-nio-transport"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .testTarget(
            name: "XPUTransportTests",
            dependencies: ["XPUAdmission", "XPUProtocol", "XPUTransport", "XPUServer", "CXPUShm", .product(name: "Logging", package: "swift-log")]),
    ]
)
