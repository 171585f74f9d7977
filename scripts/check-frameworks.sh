#!/usr/bin/env bash
# Runs Python frameworks, unmodified, on the simulated device twice: directly on libxpusim.so
# (as libcuda.so.1) and through xpu-run against a simulated-device server, and compares.
#
#   scripts/check-frameworks.sh                 cupy and cuda-core (what scripts/test.sh runs)
#   scripts/check-frameworks.sh torch           PyTorch (a multi-GiB install; not run by CI)
#   scripts/check-frameworks.sh cupy cuda-core torch
#
# cupy       Tests/frameworks/cupy_sim.py with CUPY_COMPILE_WITH_PTX=1 (CuPy compiles with NVRTC
#            on the client and loads PTX) and CUPY_ACCELERATORS empty: CuPy's prebuilt CUB kernels
#            carry PTX only for compute_120, which the simulated device (compute capability 9.0)
#            cannot load, and CUB does not report the failed launch.
# cuda-core  Tests/frameworks/cuda_core_sim.py: Program -> PTX -> cuLibraryLoadData -> launch.
# torch      Tests/frameworks/torch_sim.py: start-up, allocation, copies, streams and events, and
#            a kernel launch that must fail with PyTorch's "no kernel image is available".
#
# Each client gets its virtual environment from scripts/lib/python-clients.sh. Needs dist/
# (scripts/build.sh). Both runs of a client must exit 0 and print the same lines (the shim's and
# the simulated device's log lines on stderr are not compared). Ends with "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
. scripts/lib/python-clients.sh

clients=("$@")
[ ${#clients[@]} -gt 0 ] || clients=(cupy cuda-core)
dist=${XPU_DIST:-$root/dist}
for binary in "$dist/bin/xpu-remote-server" "$dist/bin/xpu-run" "$dist/lib/libxpusim.so"; do
    [ -x "$binary" ] || [ -f "$binary" ] || { echo "check-frameworks: $binary missing (run scripts/build.sh)" >&2; exit 1; }
done

work=$(mktemp -d)
server_pid=
cleanup() {
    [ -z "$server_pid" ] || kill "$server_pid" 2>/dev/null || true
    [ -z "$server_pid" ] || wait "$server_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# The direct runs load libxpusim.so under the driver's name.
mkdir -p "$work/direct"
ln -s "$dist/lib/libxpusim.so" "$work/direct/libcuda.so.1"
# The direct runs get a 1 GiB device; the server a 2 GiB one, of which each remote run asks for a
# 1 GiB slice: what a client sees must be its slice (PyTorch's mem_get_info is checked against it).
memory=1GiB
memory_bytes=$((1 << 30))
server_memory=2GiB
# One node name for both runs, so the device's UUID (and anything printed from it) agrees.
export XPU_SIM_NODE="xpu-remote check-frameworks"

: >"$work/server.out"
"$dist/bin/xpu-remote-server" --listen 127.0.0.1:0 --device sim --sim-memory "$server_memory" >"$work/server.out" 2>"$work/server.err" &
server_pid=$!
address=
for _ in $(seq 1 200); do
    address=$(sed -n 's/^xpu-remote-server listening on //p' "$work/server.out")
    [ -n "$address" ] && break
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.err" >&2; echo "check-frameworks: the server exited" >&2; exit 1; }
    sleep 0.05
done
[ -n "$address" ] || { echo "check-frameworks: the server did not start" >&2; exit 1; }

passed=0
failed=0
# run_client NAME PYTHON SCRIPT [VAR=VALUE...]: both runs, compared.
run_client() {
    local name=$1 python=$2 script=$3
    shift 3
    local start=$SECONDS
    local direct_status=0 remote_status=0
    # Each run compiles for itself: CuPy's kernel cache is per run.
    env "$@" CUPY_CACHE_DIR="$work/$name.direct.cache" LD_LIBRARY_PATH="$work/direct${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
        XPU_SIM_MEMORY="$memory" timeout 600 "$python" "$script" >"$work/$name.direct" 2>"$work/$name.direct.err" \
        || direct_status=$?
    env "$@" CUPY_CACHE_DIR="$work/$name.remote.cache" timeout 600 "$dist/bin/xpu-run" --server "$address" --slice "mem=$memory" -- "$python" "$script" \
        >"$work/$name.remote" 2>"$work/$name.remote.err" || remote_status=$?
    local verdict=ok
    if [ "$direct_status" != 0 ]; then
        verdict="FAILED (direct run exited $direct_status)"
    elif [ "$remote_status" != 0 ]; then
        verdict="FAILED (remote run exited $remote_status)"
    elif ! diff -u "$work/$name.direct" "$work/$name.remote" >"$work/$name.diff"; then
        verdict="FAILED (outputs differ)"
    fi
    echo "==> $name: $verdict ($((SECONDS - start)) s)"
    if [ "$verdict" = ok ]; then
        passed=$((passed + 1))
        sed 's/^/    /' "$work/$name.remote"
    else
        failed=$((failed + 1))
        for part in direct direct.err remote remote.err diff; do
            [ -s "$work/$name.$part" ] || continue
            echo "  --- $name.$part"
            tail -n 40 "$work/$name.$part" | sed 's/^/    /'
        done
    fi
}

for client in "${clients[@]}"; do
    case "$client" in
    cupy)
        python=$(xpu_client_cupy)
        run_client cupy "$python" Tests/frameworks/cupy_sim.py CUPY_COMPILE_WITH_PTX=1 CUPY_ACCELERATORS=
        ;;
    cuda-core)
        python=$(xpu_client_cuda_core)
        run_client cuda-core "$python" Tests/frameworks/cuda_core_sim.py
        ;;
    torch)
        python=$(xpu_client_torch)
        run_client torch "$python" Tests/frameworks/torch_sim.py TORCH_SIM_EXPECT_TOTAL="$memory_bytes"
        ;;
    *)
        echo "check-frameworks: unknown client $client (cupy, cuda-core, torch)" >&2
        exit 2
        ;;
    esac
done

echo "check-frameworks: $passed passed, $failed failed"
[ "$failed" = 0 ]
