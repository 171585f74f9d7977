#!/usr/bin/env bash
# bench/module-cache/run.sh: cold and warm module loads through a simulated-device server.
# Builds one fatbinary (the kernel of Tests/runtime/matmul_shared.cu: compute_75 PTX + sm_75 and
# sm_86 SASS, compressed as nvcc writes them by default), then loads it in RUNS fresh client processes against one fresh
# server: the first load sends the image (cold), the later ones name it by digest (warm). Prints
# each load's time and the bytes the server received in that session.
#   bench/module-cache/run.sh [RUNS]      (needs dist/ from scripts/build.sh and the nvcc wheel)
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-5}
work=$(mktemp -d)
trap 'kill $server 2>/dev/null || true; rm -rf "$work"' EXIT
include=$(python3 -c "import nvidia.cu13 as m, os; print(os.path.join(list(m.__path__)[0], 'include'))")
nvcc=$(python3 -c "import nvidia.cu13 as m, os; print(os.path.join(list(m.__path__)[0], 'bin', 'nvcc'))")
"$nvcc" -fatbin --generate-code=arch=compute_75,code='[compute_75,sm_75]' --generate-code=arch=compute_86,code=sm_86 \
    -o "$work/image.fatbin" Tests/runtime/matmul_shared.cu
cc -O1 -I"$include" bench/module-cache/load_module.c -Ldist/lib -l:libcuda.so.1 -o "$work/load_module"
dist/bin/xpu-remote-server --listen 127.0.0.1:0 --device sim --sim-memory 1GiB > "$work/server.out" 2> "$work/server.log" &
server=$!
until grep -q "listening on" "$work/server.out"; do sleep 0.1; done
address=$(sed -n 's/.*listening on //p' "$work/server.out")
for run in $(seq 1 "$runs"); do
    line=$(dist/bin/xpu-run --server "$address" -- "$work/load_module" "$work/image.fatbin")
    until [ "$(grep -c 'session released' "$work/server.log")" -ge "$run" ]; do sleep 0.1; done
    received=$(grep 'session released' "$work/server.log" | tail -1 | sed 's/.*bytesReceived=\([0-9]*\).*/\1/')
    echo "run $run: $line session_bytes_received=$received"
done
