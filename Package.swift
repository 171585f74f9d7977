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
        .executable(name: "xpu-remote-server", targets: ["xpu-remote-server"]),
        .executable(name: "xpu-run", targets: ["xpu-run"]),
        .executable(name: "xpu-codegen", targets: ["xpu-codegen"]),
        .executable(name: "xpu-bench", targets: ["xpu-bench"]),
        .executable(name: "xpu-pool", targets: ["xpu-pool"]),
        // For bench/codec (a separate package of ordo-one benchmarks over the codec).
        .library(name: "XPUProtocol", targets: ["XPUProtocol"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // Our own declaration of the CUDA driver API subset, plus result-code tables in C.
        .target(name: "CXPUDriver"),
        // Our own declaration of the NVML subset the shim serves (libnvidia-ml.so.1).
        .target(name: "CXPUNVML"),
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
            name: "XPUTransport", dependencies: ["XPUProtocol", "CXPUClock", "CXPUTLS", "CXPUShm", "CXPUVerbs"],
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
        // The server: sessions, handle tables, dispatch onto a dlopen'ed driver, and /metrics
        // (Prometheus text format; the shim never links this target).
        .target(
            name: "XPUServer",
            dependencies: [
                "CXPUDriver", "XPUProtocol", "XPUTransport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: launchPathSettings
        ),
        .target(
            name: "XPURemoteServerCLI",
            dependencies: [
                "XPUServer",
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
                "CXPUDriver", "XPUPlacement", "XPUProtocol", "XPUTransport", "XPUServer",
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
        .executableTarget(
            name: "xpu-bench",
            dependencies: ["XPUBenchCLI", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .testTarget(name: "XPUProtocolTests", dependencies: ["XPUProtocol", "XPUTransport", "XPUCodegen"]),
        .testTarget(name: "XPUPTXTests", dependencies: ["XPUPTX"]),
        .testTarget(name: "XPUSimTests", dependencies: ["XPUSim", "CXPUDriver", "CXPURuntimeSupport"]),
        .testTarget(name: "XPUEndToEndTests", dependencies: ["CXPUDriver", "XPUProtocol", "XPUTransport"]),
        .testTarget(name: "XPUPlacementTests", dependencies: ["XPUPlacement"]),
        .testTarget(
            name: "XPUPoolTests",
            dependencies: ["XPUPool", "XPUProtocol", "XPUServer", "CXPUDriver", .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "XPUServerTests", dependencies: ["XPUServer", "CXPUDriver"]),
        .testTarget(
            name: "XPUTransportTests",
            dependencies: ["XPUProtocol", "XPUTransport", "XPUServer", "CXPUShm", .product(name: "Logging", package: "swift-log")]),
    ]
)
