#!/usr/bin/env bash
# Instructions per launch on each step of the launch path, counted with callgrind (exact and
# repeatable where times on this machine vary by 10-20% between runs):
#   shim            cuLaunchKernel in the shim (the application's thread, sends included)
#   direct          cuLaunchKernel in libxpusim.so called directly
#   connection      the server's connection thread (reading, checking, and the device's launch call)
#   worker          the simulated device's stream worker (running the kernel)
# Usage: bench/latency-bandwidth/launch-path/instructions.sh [dist] [params]
#   dist    a dist/ folder from scripts/build.sh (default: dist)
#   params  any second argument: the kernel with three pointer parameters
# Needs valgrind (apt-get install valgrind) and cuda.h (pip install nvidia-cuda-runtime).
set -euo pipefail
root=$(cd "$(dirname "$0")/../../.." && pwd)
dist=$(cd "${1:-$root/dist}" && pwd)
three=${2:+1}
work=$(mktemp -d)
trap 'kill $server 2>/dev/null || true; rm -rf "$work"' EXIT
include=$(python3 -c 'import nvidia.cu13, os; print(os.path.join(nvidia.cu13.__path__[0], "include"))' 2>/dev/null ||
    python3 -c 'import nvidia.cuda_runtime, os; print(os.path.join(nvidia.cuda_runtime.__path__[0], "include"))')
# valgrind cannot read the Swift debug information: count on stripped copies.
cp -r "$dist" "$work/dist"
for f in "$work"/dist/lib/*.so* "$work/dist/bin/xpu-remote-server"; do [ -L "$f" ] || strip --strip-debug "$f"; done
here=$(dirname "$0")
cc -O1 -I "$root/Tests/programs" -I "$include" "$here/launch_loop.c" -o "$work/direct" -L "$work/dist/lib" -l:libxpusim.so
cc -O1 -I "$root/Tests/programs" -I "$include" "$here/launch_loop.c" -o "$work/shim" -L "$work/dist/lib" -l:libcuda.so.1
n=2000
launches=$((n * 7 + 1))
total() { grep -E '^(summary|totals):' "$1" | head -1 | awk '{print $2}'; }
port=$((20000 + RANDOM % 20000))
valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$work/server.out" \
    --toggle-collect='*ConnectionC5serve*' --toggle-collect='*workerLoop*' \
    "$work/dist/bin/xpu-remote-server" --listen 127.0.0.1:$port --device sim --log-level warning >/dev/null 2>&1 &
server=$!
for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.2; done
XPU_SERVER=127.0.0.1:$port XPU_LOOP_READY=1 LD_LIBRARY_PATH="$work/dist/lib" valgrind --tool=callgrind \
    --callgrind-out-file="$work/shim.out" --toggle-collect=cuLaunchKernel "$work/shim" $n $three >/dev/null 2>&1
sleep 1
kill -INT $server; wait $server 2>/dev/null || true
LD_LIBRARY_PATH="$work/dist/lib" valgrind --tool=callgrind --callgrind-out-file="$work/direct.out" \
    --toggle-collect=cuLaunchKernel "$work/direct" $n $three >/dev/null 2>&1
echo "shim        $(( $(total "$work/shim.out") / launches ))"
echo "direct      $(( $(total "$work/direct.out") / launches ))"
# The two server threads that ran launches: the connection thread costs less than the worker.
threads=$(for f in "$work"/server.out-*; do
    t=$(total "$f")
    if [ -n "$t" ] && [ "$t" -gt $((launches * 100)) ]; then echo $((t / launches)); fi
done | sort -n)
echo "connection  $(echo "$threads" | head -1)"
echo "worker      $(echo "$threads" | tail -1)"
