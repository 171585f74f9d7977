#!/usr/bin/env bash
# Builds a release and lays out dist/:
#   dist/bin/xpu-remote-server, dist/bin/xpu-run, dist/bin/xpu-pool
#   dist/lib/libxpushim.so, dist/lib/libcuda.so.1 (the shim under the driver's name), dist/lib/libxpusim.so
# The two libraries link the Swift runtime statically and export only the API (proto/exports.map),
# so they load into any program; the executables link it statically too, so dist/ can be copied
# to a machine without Swift.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
jobs=${XPU_BUILD_JOBS:-$(nproc)}

echo "==> building executables (release)"
swift build -c release -j "$jobs" --static-swift-stdlib --product xpu-remote-server
swift build -c release -j "$jobs" --static-swift-stdlib --product xpu-run
swift build -c release -j "$jobs" --static-swift-stdlib --product xpu-pool
bin=$(swift build -c release --static-swift-stdlib --show-bin-path)

# -static-stdlib in Package.swift would break `swift test`, so the libraries get their own build
# folder and flags (see ../shared/STYLE.md, "The C-ABI shim recipe").
echo "==> building libxpushim.so and libxpusim.so (release, static Swift runtime)"
library_flags=(-c release -j "$jobs" --scratch-path .build-dist-lib
  -Xswiftc -static-stdlib -Xlinker "--version-script=$root/proto/exports.map")
swift build "${library_flags[@]}" --product xpushim
swift build "${library_flags[@]}" --product xpusim
lib=$(swift build "${library_flags[@]}" --show-bin-path)

rm -rf dist
mkdir -p dist/bin dist/lib
cp "$bin/xpu-remote-server" "$bin/xpu-run" "$bin/xpu-pool" dist/bin/
cp "$lib/libxpushim.so" "$lib/libxpusim.so" dist/lib/
cp dist/lib/libxpushim.so dist/lib/libcuda.so.1
ln -s libcuda.so.1 dist/lib/libnvidia-ml.so.1  # the same file: one shim instance (one session) for CUDA and NVML
echo "==> dist/ ready:"
ls -l dist/bin dist/lib
