#!/usr/bin/env bash
# scripts/gpu-check.sh [--sim] [--out DIR] [--skip-build] [--skip-bench]
#
# Runs xpu-remote against a real GPU, on a machine with an NVIDIA driver, and writes what it saw
# to a results folder:
#
#   1. the driver-API differential suite (Tests/programs, the programs of EndToEndTests), each run
#      directly on the driver and through xpu-run against `xpu-remote-server --device cuda`;
#   2. the CUDA runtime programs (Tests/runtime, RuntimeProgramTests' list and nvcc flags, plus
#      SASS for the GPU's own architecture), the same two ways;
#   3. the Python clients, where a suite script exists (scripts/clients/*.sh, run with the
#      server's address in XPU_SERVER) and their Python packages import;
#   4. `xpu-bench all --server ADDRESS --json` against that server.
#
# A pair whose output or exit status differs, or a program that fails either way, is a FAIL line
# in summary.txt (the script's exit status is 1 then). Nothing is judged by timing.
#
# Requirements: libcuda.so.1 (the NVIDIA driver) and nvidia-smi, or --sim; cc; nvcc and cuda.h
# from the PyPI wheels (scripts/lib/prereqs.sh installs them); dist/ from scripts/build.sh (built
# here when missing, unless --skip-build).
#
#   --sim          no GPU needed: the simulated device plays the driver (dist/lib/libxpusim.so as
#                  libcuda.so.1 for direct runs, --device sim for the server); checks the script
#                  itself on any machine
#   --out DIR      results folder (default: bench/gpu-check/results/<UTC time>)
#   --skip-build   use dist/ as it is (fails when it is missing)
#   --skip-bench   leave out xpu-bench
#
# Environment: XPU_NVCC (nvcc to use), CC (default cc), XPU_GPU_CHECK_TIMEOUT (seconds per
# program run, default 300).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

sim=0
skip_build=0
skip_bench=0
out=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --sim) sim=1; shift ;;
        --out) out="$2"; shift 2 ;;
        --skip-build) skip_build=1; shift ;;
        --skip-bench) skip_bench=1; shift ;;
        -h|--help) sed -n '2,32p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "gpu-check: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done

timeout_s=${XPU_GPU_CHECK_TIMEOUT:-300}
cc=${CC:-cc}

# --- The machine -----------------------------------------------------------------------------
driver_lib=""
if [[ $sim == 0 ]]; then
    driver_lib=$(ldconfig -p 2>/dev/null | awk '/libcuda\.so\.1 / { print $NF; exit }' || true)
    for candidate in /usr/lib/x86_64-linux-gnu/libcuda.so.1 /usr/lib64/libcuda.so.1 /usr/local/nvidia/lib64/libcuda.so.1; do
        [[ -n "$driver_lib" ]] && break
        [[ -e "$candidate" ]] && driver_lib=$candidate
    done
    if [[ -z "$driver_lib" ]] || ! command -v nvidia-smi > /dev/null; then
        echo "gpu-check: no NVIDIA driver here (libcuda.so.1: ${driver_lib:-not found}; nvidia-smi: $(command -v nvidia-smi || echo 'not found'))." >&2
        echo "gpu-check: run it on a machine with a GPU, or pass --sim to check the script against the simulated device." >&2
        exit 3
    fi
    if ! nvidia-smi -L > /dev/null 2>&1; then
        echo "gpu-check: nvidia-smi finds no usable GPU:" >&2
        nvidia-smi -L >&2 || true
        exit 3
    fi
fi

out=${out:-bench/gpu-check/results/$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$out"/{programs,runtime,clients,logs}
out=$(cd "$out" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/xpu-gpu-check.XXXXXX")
server_pid=""
cleanup() {
    if [[ -n "$server_pid" ]]; then
        kill "$server_pid" 2> /dev/null || true
        wait "$server_pid" 2> /dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

summary="$out/summary.txt"
: > "$summary"
failures=0
note() { echo "$*" | tee -a "$summary"; }
fail() { note "FAIL $*"; failures=$((failures + 1)); }

{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "host: $(uname -a)"
    echo "commit: $(git -C "$root" rev-parse HEAD 2> /dev/null || echo unknown)"
    echo "mode: $([[ $sim == 1 ]] && echo 'simulated device (--sim)' || echo "real driver ($driver_lib)")"
} > "$out/machine.txt"
if [[ $sim == 0 ]]; then
    nvidia-smi > "$out/nvidia-smi.txt" 2>&1 || true
    nvidia-smi -q > "$out/nvidia-smi-q.txt" 2>&1 || true
    compute_cap=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2> /dev/null | head -1 | tr -d ' .')
    gpu_arch=${compute_cap:+sm_$compute_cap}
else
    gpu_arch=""
fi
note "gpu-check: results in $out ($([[ $sim == 1 ]] && echo 'simulated device' || echo "GPU ${gpu_arch:-of unknown architecture}"))"

# --- Build -------------------------------------------------------------------------------------
if [[ ! -x dist/bin/xpu-remote-server || ! -f dist/lib/libcuda.so.1 ]]; then
    if [[ $skip_build == 1 ]]; then
        echo "gpu-check: dist/ is missing and --skip-build was given" >&2
        exit 1
    fi
    note "gpu-check: building dist/ (scripts/build.sh)"
    scripts/build.sh > "$out/logs/build.log" 2>&1 || { echo "gpu-check: scripts/build.sh failed; see $out/logs/build.log" >&2; exit 1; }
fi

cuda_include=$(python3 -c 'import nvidia.cu13 as m; print(list(m.__path__)[0] + "/include")' 2> /dev/null || true)
nvcc=${XPU_NVCC:-$(python3 -c 'import nvidia.cu13 as m, os; print(os.path.join(list(m.__path__)[0], "bin", "nvcc"))' 2> /dev/null || true)}
if [[ -z "$cuda_include" || ! -f "$cuda_include/cuda.h" ]]; then
    echo "gpu-check: cuda.h not found (pip install nvidia-cuda-runtime; scripts/lib/prereqs.sh)" >&2
    exit 1
fi

# Direct runs: the real driver's directory first, or the simulated device as libcuda.so.1.
direct_lib="$work/direct-lib"
mkdir -p "$direct_lib"
if [[ $sim == 1 ]]; then
    ln -s "$root/dist/lib/libxpusim.so" "$direct_lib/libcuda.so.1"
else
    ln -s "$driver_lib" "$direct_lib/libcuda.so.1"
fi
# With --sim, the direct device and the server's are the same: memory and node name (the UUID).
export XPU_SIM_NODE="xpu-remote gpu-check"
run_direct() {
    env -u LD_PRELOAD -u XPU_SERVER LD_LIBRARY_PATH="$direct_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
        XPU_SIM_MEMORY=4GiB timeout "$timeout_s" "$@"
}

# --- The server --------------------------------------------------------------------------------
if [[ $sim == 1 ]]; then
    device_args=(--device sim --sim-memory 4GiB)
else
    device_args=(--device cuda --driver "$driver_lib")
fi
dist/bin/xpu-remote-server --listen 127.0.0.1:0 "${device_args[@]}" > "$work/server.out" 2> "$out/logs/server.log" &
server_pid=$!
address=""
for _ in $(seq 300); do
    address=$(sed -n 's/^xpu-remote-server listening on //p' "$work/server.out" 2> /dev/null)
    [[ -n "$address" ]] && break
    kill -0 "$server_pid" 2> /dev/null || break
    sleep 0.1
done
if [[ -z "$address" ]]; then
    echo "gpu-check: xpu-remote-server ${device_args[*]} did not start; its log:" >&2
    cat "$out/logs/server.log" >&2
    exit 1
fi
note "gpu-check: xpu-remote-server ${device_args[*]} listening on $address"
run_remote() {
    env -u LD_PRELOAD timeout "$timeout_s" dist/bin/xpu-run --server "$address" -- "$@"
}

# Runs one program both ways into DIR/NAME.{direct,remote}.{out,status} and judges the pair.
differential() {
    local dir="$1" name="$2"
    shift 2
    local status_direct=0 status_remote=0
    run_direct "$@" > "$dir/$name.direct.out" 2> "$dir/$name.direct.err" || status_direct=$?
    run_remote "$@" > "$dir/$name.remote.out" 2> "$dir/$name.remote.err" || status_remote=$?
    echo "$status_direct" > "$dir/$name.direct.status"
    echo "$status_remote" > "$dir/$name.remote.status"
    if [[ $status_direct != 0 ]]; then
        fail "$name: exits $status_direct directly ($dir/$name.direct.out)"
    elif [[ $status_remote != 0 ]]; then
        fail "$name: exits $status_remote through the server ($dir/$name.remote.out)"
    elif ! diff -u "$dir/$name.direct.out" "$dir/$name.remote.out" > "$dir/$name.diff"; then
        fail "$name: output differs directly and through the server ($dir/$name.diff)"
    else
        rm -f "$dir/$name.diff"
        note "ok   $name"
    fi
}

# --- 1. The driver-API differential suite ------------------------------------------------------
note "gpu-check: driver-API programs (Tests/programs)"
driver_programs=$(sed -n '/"Same output directly and through the server"/,/\])/p' Tests/XPUEndToEndTests/EndToEndTests.swift \
    | grep -o '"[a-z_]*"' | tr -d '"' | grep -v '^$')
for name in $driver_programs; do
    if ! "$cc" -O1 -I"$cuda_include" -I"Tests/programs" "Tests/programs/$name.c" -Ldist/lib -l:libcuda.so.1 -ldl -lpthread \
        -o "$work/$name" 2> "$out/programs/$name.build.log"; then
        fail "$name: does not compile ($out/programs/$name.build.log)"
        continue
    fi
    differential "$out/programs" "$name" "$work/$name"
done

# --- 2. The CUDA runtime programs --------------------------------------------------------------
if [[ -x "$nvcc" ]]; then
    runtime_programs=$(sed -n '/static let programs = \[/,/\]/p' Tests/XPUEndToEndTests/RuntimeProgramTests.swift \
        | grep -o '"[a-z_]*"' | tr -d '"')
    nvcc_flags=(-O2 "--generate-code=arch=compute_75,code=[compute_75,sm_75]" "--generate-code=arch=compute_86,code=sm_86")
    if [[ -n "$gpu_arch" ]]; then
        nvcc_flags+=("--generate-code=arch=compute_${gpu_arch#sm_},code=$gpu_arch")
    fi
    note "gpu-check: runtime programs (Tests/runtime; nvcc ${nvcc_flags[*]})"
    for name in $runtime_programs; do
        if ! "$nvcc" -ccbin "${CXX:-g++}" "${nvcc_flags[@]}" -o "$work/rt-$name" "Tests/runtime/$name.cu" \
            > "$out/runtime/$name.build.log" 2>&1; then
            fail "$name.cu: nvcc failed ($out/runtime/$name.build.log)"
            continue
        fi
        differential "$out/runtime" "$name" "$work/rt-$name"
    done
else
    note "skip runtime programs: nvcc not found (pip install nvidia-cuda-nvcc, or set XPU_NVCC)"
fi

# --- 3. Python clients -------------------------------------------------------------------------
clients_found=0
for script in scripts/clients/*.sh; do
    [[ -f "$script" ]] || continue
    clients_found=1
    name=$(basename "$script" .sh)
    status=0
    XPU_SERVER="$address" timeout $((timeout_s * 6)) "$script" > "$out/clients/$name.out" 2>&1 || status=$?
    if [[ $status == 0 ]]; then note "ok   client $name"; else fail "client $name: exit $status ($out/clients/$name.out)"; fi
done
[[ $clients_found == 1 ]] || note "skip Python clients: no scripts/clients/*.sh in this checkout"

# --- 4. xpu-bench all --------------------------------------------------------------------------
if [[ $skip_bench == 0 ]]; then
    note "gpu-check: xpu-bench all --server $address"
    if dist/bin/xpu-bench all --server "$address" --json --svg "$out/bandwidth.svg" > "$out/bench-all.json" 2> "$out/logs/bench.log"; then
        note "ok   xpu-bench all ($out/bench-all.json)"
    else
        fail "xpu-bench all ($out/logs/bench.log)"
    fi
fi

note "gpu-check: $failures failure(s); results in $out"
[[ $failures == 0 ]]
