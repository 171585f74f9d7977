#!/usr/bin/env bash
# Builds a release and lays out dist/, what a user copies to a machine:
#   dist/bin/xpu-remote-server, xpu-run, xpu-pool, xpu-bench, xpu-kube (docs/kubernetes.md)
#   dist/lib/libcuda.so.1        the shim under the driver's name (SONAME libcuda.so.1)
#   dist/lib/libnvidia-ml.so.1   NVML's name (SONAME libnvidia-ml.so.1): a filter whose symbols
#                                resolve in libcuda.so.1, so CUDA and NVML share one shim instance
#   dist/lib/libxpushim.so       the shim under its own name (xpu-run --preload, xpu-bench)
#   dist/lib/libxpusim.so        the simulated device
#   dist/lib/libxpu-opencl.so    the OpenCL ICD (docs/opencl.md), and a copy named libOpenCL.so.1
#                                for programs that load it directly
# The libraries link the Swift runtime statically and export only the API (proto/exports.map), so
# they load into any program; the executables link it statically too, so dist/ runs on a machine
# without Swift.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
jobs=${XPU_BUILD_JOBS:-$(nproc)}
executables=(xpu-remote-server xpu-run xpu-pool xpu-bench xpu-kube)

echo "==> building executables (release)"
for product in "${executables[@]}"; do
    swift build -c release -j "$jobs" --static-swift-stdlib --product "$product"
done
bin=$(swift build -c release --static-swift-stdlib --show-bin-path)

# -static-stdlib in Package.swift would break `swift test`, so the libraries get their own build
# folder and flags (see ../shared/STYLE.md, "The C-ABI shim recipe"). The shim records the
# driver's SONAME: a program linked against dist/lib then names libcuda.so.1, as it would when
# linked against NVIDIA's driver, and a preloaded libxpushim.so answers for libcuda.so.1.
echo "==> building libxpushim.so and libxpusim.so (release, static Swift runtime)"
library_flags=(-c release -j "$jobs" --scratch-path .build-dist-lib
  -Xswiftc -static-stdlib -Xlinker "--version-script=$root/proto/exports.map")
swift build "${library_flags[@]}" --product xpusim
swift build "${library_flags[@]}" -Xlinker -soname=libcuda.so.1 --product xpushim
lib=$(swift build "${library_flags[@]}" --show-bin-path)

echo "==> building libxpu-opencl.so (release, static Swift runtime)"
# Its own export list, cl* only (Package.swift links it -Bsymbolic).
swift build -c release -j "$jobs" --scratch-path .build-dist-lib -Xswiftc -static-stdlib \
    -Xlinker "--version-script=$root/proto/opencl-exports.map" --product xpu-opencl

rm -rf dist
mkdir -p dist/bin dist/lib
for product in "${executables[@]}"; do cp "$bin/$product" dist/bin/; done
cp "$lib/libxpushim.so" "$lib/libxpusim.so" dist/lib/
cp dist/lib/libxpushim.so dist/lib/libcuda.so.1
cp "$lib/libxpu-opencl.so" dist/lib/
cp dist/lib/libxpu-opencl.so dist/lib/libOpenCL.so.1

# libnvidia-ml.so.1 defines every name of proto/nvml-exports.txt (so programs link with
# -lnvidia-ml and record libnvidia-ml.so.1) and is a DT_FILTER on libcuda.so.1: the dynamic
# loader resolves each of its symbols in libcuda.so.1, the one shim instance (one session per
# process) that serves CUDA and NVML. The definitions here are never called.
echo "==> building libnvidia-ml.so.1 (a filter on libcuda.so.1)"
filter_source=.build-dist-lib/nvml-filter.c
awk '!/^[[:space:]]*(#|$)/ { printf "void %s(void) {}\n", $1 }' proto/nvml-exports.txt > "$filter_source"
${CC:-cc} -shared -fPIC -nostdlib -Wl,-soname,libnvidia-ml.so.1 -Wl,--filter,libcuda.so.1 \
    -o dist/lib/libnvidia-ml.so.1 "$filter_source"
echo "==> dist/ ready:"
ls -l dist/bin dist/lib
