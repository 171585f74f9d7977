#!/usr/bin/env bash
# The main job on the simulated device: start xpu-remote-server with --device sim, run sample
# driver-API programs through the shim (xpu-run), and show what happened on both sides.
# Installs what it needs when it is missing (scripts/lib/prereqs.sh), builds dist/ when it is not
# there, and needs nothing else but Swift 6.3.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
. scripts/lib/prereqs.sh
xpu_prereqs || exit 1

[ -x dist/bin/xpu-remote-server ] && [ -e dist/lib/libcuda.so.1 ] || scripts/build.sh
cuda_include=$(dirname "$(python3 scripts/extract-cuda-exports.py --locate 2>/dev/null)") && [ -f "$cuda_include/cuda.h" ] || {
    echo "demo.sh: cuda.h not found in the nvidia-cuda-runtime wheel (scripts/lib/prereqs.sh installs it)" >&2
    exit 1
}

work=$(mktemp -d)
server_pid=""
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

echo "==> compiling two unmodified driver-API programs against NVIDIA's cuda.h"
for program in device_query vector_add; do
    cc -O1 -I"$cuda_include" -I"$root/Tests/programs" "$root/Tests/programs/$program.c" \
        -L"$root/dist/lib" -l:libcuda.so.1 -ldl -o "$work/$program"
done

echo "==> starting xpu-remote-server on the simulated device (2 GiB)"
dist/bin/xpu-remote-server --listen 127.0.0.1:0 --device sim --sim-memory 2GiB \
    >"$work/server.out" 2>"$work/server.log" &
server_pid=$!
for _ in $(seq 100); do
    grep -q "listening on" "$work/server.out" 2>/dev/null && break
    sleep 0.1
done
address=$(sed -n 's/^xpu-remote-server listening on //p' "$work/server.out")
[ -n "$address" ] || { echo "the server did not start:"; cat "$work/server.log"; exit 1; }
echo "    listening on $address"

for program in device_query vector_add; do
    echo
    echo "==> xpu-run --server $address -- $program"
    dist/bin/xpu-run --server "$address" -- "$work/$program"
done

echo
echo "==> the server's log"
kill "$server_pid"
wait "$server_pid" 2>/dev/null || true
server_pid=""
cat "$work/server.log"
echo
echo "Both programs ran unmodified: their driver calls went through libcuda.so.1 (the shim) over"
echo "TCP to xpu-remote-server, which replayed them on the simulated device's PTX interpreter."
