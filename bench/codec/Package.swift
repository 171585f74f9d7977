// swift-tools-version:6.1
import PackageDescription

// Micro-benchmarks of the wire codec (XPUProtocol): time and heap allocations per encode+decode of
// the messages on the hot path, allocation counts locked by thresholds (Thresholds/).
// A separate package so that the benchmark framework and its malloc interposer never become
// dependencies of xpu-remote itself. Run: `cd bench/codec && swift package benchmark`.
let package = Package(
    name: "xpu-codec-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "xpu-remote", path: "../.."),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "CodecBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "XPUProtocol", package: "xpu-remote"),
            ],
            path: "Benchmarks/CodecBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        )
    ]
)
