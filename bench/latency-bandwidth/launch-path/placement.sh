#!/usr/bin/env bash
# Launches through the shim with the three busy threads placed by hand: the application, the
# server's connection thread and the simulated device's stream worker, each pinned to a CPU list
# (taskset syntax; "0-1" leaves it to the scheduler). Prints the seven rounds' time per launch
# with the synchronize, and each thread's CPU time, run-queue wait and times scheduled per launch
# over the rounds (from /proc/<pid>/task/<tid>/schedstat).
# Usage: bench/latency-bandwidth/launch-path/placement.sh APP CONNECTION WORKER [dist] [launches]
#   e.g. placement.sh 0 0 1    (application and connection thread share CPU 0, worker on CPU 1)
set -euo pipefail
root=$(cd "$(dirname "$0")/../../.." && pwd)
app=$1 connection=$2 worker=$3
dist=$(cd "${4:-$root/dist}" && pwd)
n=${5:-10000}
work=$(mktemp -d)
trap 'kill $server 2>/dev/null || true; rm -rf "$work"' EXIT
include=$(python3 -c 'import nvidia.cu13, os; print(os.path.join(nvidia.cu13.__path__[0], "include"))' 2>/dev/null ||
    python3 -c 'import nvidia.cuda_runtime, os; print(os.path.join(nvidia.cuda_runtime.__path__[0], "include"))')
cc -O1 -I "$root/Tests/programs" -I "$include" "$(dirname "$0")/launch_loop.c" -o "$work/shim" -L "$dist/lib" -l:libcuda.so.1
port=$((20000 + RANDOM % 20000))
"$dist/bin/xpu-remote-server" --listen 127.0.0.1:$port --device sim --log-level warning >/dev/null 2>&1 &
server=$!
for _ in $(seq 100); do (echo >/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
: >"$work/out"
XPU_SERVER=127.0.0.1:$port XPU_LOOP_READY=300 XPU_LOOP_PAUSE=300 LD_LIBRARY_PATH="$dist/lib" \
    taskset -c "$app" "$work/shim" "$n" >"$work/out" &
client=$!
until grep -q ready "$work/out"; do sleep 0.01; done
# The session's threads, by the names the server and the simulated device give them.
thread() { for t in /proc/$server/task/*; do if grep -q "^$1" "$t/comm"; then basename "$t"; fi; done | sort -n | tail -1; }
conn_tid=$(thread xpu-session)
worker_tid=$(thread xpusim-stream)
taskset -p -c "$connection" "$conn_tid" >/dev/null
taskset -p -c "$worker" "$worker_tid" >/dev/null
snapshot() { cat /proc/$client/task/$client/schedstat /proc/$server/task/$conn_tid/schedstat /proc/$server/task/$worker_tid/schedstat; }
before=$(snapshot)
until grep -q done "$work/out"; do sleep 0.01; done
after=$(snapshot)
wait $client
echo "rounds (us/launch with sync): $(grep calls "$work/out" | sed 's/.*with sync \([0-9.]*\).*/\1/' | tr '\n' ' ')"
paste <(echo "$before") <(echo "$after") | awk -v n=$((n * 7)) 'BEGIN { split("application connection worker", name) }
    { printf "%-12s cpu %.3f us  run-queue wait %.3f us  scheduled %d times\n", name[NR], ($4 - $1) / n / 1000, ($5 - $2) / n / 1000, $6 - $3 }'
