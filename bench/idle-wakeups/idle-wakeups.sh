#!/usr/bin/env bash
# What an idle deployment does while nothing happens: `strace -f -c` over SECONDS (10) of
#   server        xpu-remote-server --device sim with one idle session (a client that opened a
#                 context, allocated, and waits), its process and the client's (the shim's);
#   tenant        the same with --tenant-processes: the server and the session's process;
#   pool          xpu-pool with one registered server (its 1 s heartbeat is the registration),
#                 the pool and the server;
#   pool-queued   the same with one request waiting in the pool's queue (XPU_POOL_WAIT) for a
#                 slice that does not fit, the pool and the waiting client.
# For each process: the syscalls made and the calls of the ones that sleep or wake
# (futex, epoll_wait, poll, nanosleep, clock_nanosleep, read), as JSON on stdout.
#
#   bench/idle-wakeups/idle-wakeups.sh DIST > results.json      (DIST: a dist/ of scripts/build.sh)
#
# Needs strace and python3; run as a user that may ptrace the processes (root here).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dist=$(cd "${1:?usage: idle-wakeups.sh DIST}" && pwd)
seconds=${SECONDS_TRACED:-10}
work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# Starts "$@" in the background with stdout to $work/$name.out; sets $started to its pid.
start() {
    local name=$1
    shift
    "$@" > "$work/$name.out" 2> "$work/$name.err" &
    started=$!
    pids+=("$started")
}

# Waits until $work/$1.out has a line matching $2; prints the line.
wait_line() {
    for _ in $(seq 1 600); do
        if line=$(grep -m1 -E "$2" "$work/$1.out" 2>/dev/null); then
            echo "$line"
            return 0
        fi
        sleep 0.1
    done
    echo "no '$2' from $1:" >&2
    cat "$work/$1.out" "$work/$1.err" >&2
    return 1
}

# strace -f -c of each pid given, all at once, for $seconds; one summary file per pid.
trace() {
    local label=$1
    shift
    local tracers=()
    for pid in "$@"; do
        timeout -s INT "$seconds" strace -f -c -q -o "$work/trace-$label-$pid.txt" -p "$pid" &
        tracers+=($!)
    done
    wait "${tracers[@]}" || true
}

server() {
    start "server-$1" "$dist/bin/xpu-remote-server" --device sim --listen 127.0.0.1:0 --log-level warning "${@:2}"
    local pid=$started
    address=$(wait_line "server-$1" "listening on" | sed 's/.*listening on //')
    server_pid=$pid
}

client() {
    start "client-$1" env "${@:3}" python3 "$here/idle-client.py" "$dist/lib/libcuda.so.1"
    client_pid=$started
    [ "$2" = wait ] || wait_line "client-$1" "^idle" > /dev/null
}

# Each configuration: start, let it settle, trace, stop.
configurations=()

server plain
client plain open XPU_SERVER="$address"
sleep 2
trace server "$server_pid" "$client_pid"
configurations+=("server:$server_pid:server:$client_pid:client")
kill "$client_pid" "$server_pid"

server tenant --tenant-processes
client tenant open XPU_SERVER="$address"
sleep 2
tenant_pid=$(pgrep -P "$server_pid" | head -1)
trace tenant "$server_pid" "$tenant_pid" "$client_pid"
configurations+=("tenant:$server_pid:server:$tenant_pid:session-process:$client_pid:client")
kill "$client_pid" "$server_pid"

start pool "$dist/bin/xpu-pool" --listen 127.0.0.1:0 --log-level warning
pool_pid=$started
pool=$(wait_line pool "listening on" | sed 's/.*listening on //')
server pooled --pool "$pool"
sleep 3
trace pool "$pool_pid" "$server_pid"
configurations+=("pool:$pool_pid:pool:$server_pid:server")

client queued wait XPU_POOL="$pool" XPU_SLICE=mem=1TiB XPU_POOL_WAIT=10m
sleep 3
trace pool-queued "$pool_pid" "$client_pid"
configurations+=("pool-queued:$pool_pid:pool:$client_pid:waiting-client")

python3 - "$work" "$seconds" "${configurations[@]}" <<'PY'
import json, os, re, sys
work, seconds, configurations = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
sleepers = {"futex", "epoll_wait", "epoll_pwait", "poll", "ppoll", "nanosleep", "clock_nanosleep", "read", "recvfrom", "select", "pselect6"}
results = {"seconds": seconds, "machine": f"{os.cpu_count()} cores, load average {open('/proc/loadavg').read().split()[:3]}", "configurations": {}}
for configuration in configurations:
    label, *rest = configuration.split(":")
    processes = {}
    for pid, role in zip(rest[0::2], rest[1::2]):
        calls = {}
        path = os.path.join(work, f"trace-{label}-{pid}.txt")
        for line in open(path) if os.path.exists(path) else []:
            fields = line.split()
            # % time, seconds, usecs/call, calls, [errors], syscall
            if len(fields) >= 5 and re.fullmatch(r"[\d.]+", fields[0]) and fields[-1] != "total":
                calls[fields[-1]] = int(fields[3])
        processes[role] = {"syscalls": sum(calls.values()), "sleepingCalls": {k: v for k, v in sorted(calls.items()) if k in sleepers},
                           "all": dict(sorted(calls.items(), key=lambda item: -item[1]))}
    results["configurations"][label] = processes
json.dump(results, sys.stdout, indent=1)
print()
PY
