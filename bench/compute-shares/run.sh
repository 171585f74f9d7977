#!/usr/bin/env bash
# bench/compute-shares/run.sh: how closely device time follows compute shares, and what
# low-priority load does to a high-priority tenant's latency, on the simulated device.
# Each scenario runs one Tests/programs/compute_share.c tenant per slice through one fresh
# server, all over a common window (identical ~2 ms kernels, 8 per batch, so that every tenant
# keeps the device saturated; a priority=high tenant launches one kernel at a time and reports
# its mean launch-to-completion latency). Device time per tenant is what the server measured and
# logged when the session was released (deviceNanoseconds).
#   bench/compute-shares/run.sh [WINDOW_MS]    (needs dist/ from scripts/build.sh, or XPU_DIST
#                                               naming another, and the nvidia-cuda-runtime
#                                               wheel for cuda.h)
#   bench/compute-shares/run.sh opencl [WINDOW_MS]
#       the same shares for OpenCL tenants (Tests/programs/opencl/compute_share.c through the
#       ICD) on xpu-remote-server --device opencl:pocl (needs pocl-opencl-icd, ocl-icd and
#       opencl-c-headers); device time is the kernels' event-profiled time the server charged.
# Prints one line per tenant: the scenario, the slice, the share of device time measured, and
# for latency runs the mean latency; then the priority ratio (latency under load / alone).
set -euo pipefail
cd "$(dirname "$0")/../.."
api=cuda
if [ "${1:-}" = opencl ]; then
    api=opencl
    shift
fi
window=${1:-5000}
dist=${XPU_DIST:-dist}
work=$(mktemp -d)
server=
trap '[ -n "$server" ] && kill $server 2>/dev/null; rm -rf "$work"' EXIT
if [ "$api" = opencl ]; then
    cc -O1 Tests/programs/opencl/compute_share.c -l:libOpenCL.so.1 -o "$work/compute_share"
    # The server loads PoCL alone; tenants load the ICD alone.
    pocl_icd=${POCL_ICD:-/etc/OpenCL/vendors/pocl.icd}
    mkdir -p "$work/vendors"
    echo "$(cd "$dist/lib" && pwd)/libxpu-opencl.so" > "$work/vendors/xpu.icd"
else
    include=$(python3 -c "import nvidia.cu13 as m, os; print(os.path.join(list(m.__path__)[0], 'include'))")
    cc -O1 -I"$include" Tests/programs/compute_share.c -L"$dist/lib" -l:libcuda.so.1 -ldl -o "$work/compute_share"
fi

# start_server NAME: starts a server logging to $work/NAME.log; sets $server and $address.
start_server() {
    local out=$work/$1.out
    if [ "$api" = opencl ]; then
        OCL_ICD_VENDORS=$pocl_icd "$dist/bin/xpu-remote-server" --listen 127.0.0.1:0 --device opencl:pocl > "$out" 2> "$work/$1.log" &
    else
        "$dist/bin/xpu-remote-server" --listen 127.0.0.1:0 --device sim --sim-memory 1GiB > "$out" 2> "$work/$1.log" &
    fi
    server=$!
    # Until the listening line is there whole (it ends with a newline).
    until [ -s "$out" ] && grep -q "listening on" "$out" && [ -z "$(tail -c 1 "$out")" ]; do sleep 0.1; done
    address=$(sed -n 's/.*listening on //p' "$out")
}

stop_server() {
    kill "$server"
    wait "$server" 2>/dev/null || true
    server=
}

# scenario NAME SLICE...: runs the tenants together; prints each one's device-time share.
scenario() {
    local name=$1
    shift
    start_server "$name"
    local start=$(( $(date +%s%3N) + 1500 )) pids=() index=0
    for slice in "$@"; do
        local batch=8
        [[ $slice == *priority=high* ]] && batch=1
        if [ "$api" = opencl ]; then
            # About 2 ms per kernel on PoCL (one work-item's chain of multiply-adds).
            OCL_ICD_VENDORS=$work/vendors XPU_SERVER=$address XPU_SLICE=$slice \
                "$work/compute_share" "$start" "$window" 400000 $batch > "$work/$name-tenant-$index.out" &
        else
            XPU_SLICE=$slice "$dist/bin/xpu-run" --server "$address" -- "$work/compute_share" "$start" "$window" 40000 $batch \
                > "$work/$name-tenant-$index.out" &
        fi
        pids+=($!)
        index=$((index + 1))
    done
    for ((i = 0; i < index; i++)); do
        wait "${pids[$i]}" || { echo "$name: tenant $i failed: $(cat "$work/$name-tenant-$i.out")" >&2; exit 1; }
    done
    stop_server
    # deviceNanoseconds of every released session with a share, in the order the log has them.
    awk -v name="$name" -v window="$window" '/session released/ {
        share = ""; ns = ""; mode = ""
        for (i = 1; i <= NF; i++) {
            if ($i ~ /^compute=/) share = substr($i, 9)
            if ($i ~ /^deviceNanoseconds=/) ns = substr($i, 19)
            if ($i ~ /^mode=/) mode = substr($i, 6)
        }
        if (share == "" || share == "none") next
        n++; shares[n] = share; times[n] = ns; modes[n] = mode; total += ns
    } END {
        for (i = 1; i <= n; i++)
            printf "%s\tcompute=%s mode=%s\tof all device time %.1f%%\tof the window %.1f%%\n",
                name, shares[i], modes[i], times[i] / total * 100, times[i] / (window * 1e4)
    }' "$work/$name.log"
    for ((i = 0; i < index; i++)); do
        latency=$(sed -n 's/^mean latency us //p' "$work/$name-tenant-$i.out")
        [ -n "$latency" ] && [ "$latency" != 0 ] && echo "$name	tenant $i mean latency ${latency} us"
    done
    true
}

if [ "$api" = opencl ]; then
    scenario opencl-shares-10-90 compute=10% compute=90%
    scenario opencl-shares-30-70 compute=30% compute=70%
    scenario opencl-shares-50-50 compute=50% compute=50%
    exit 0
fi
scenario shares-10-90 compute=10% compute=90%
scenario shares-30-70 compute=30% compute=70%
scenario shares-50-50 compute=50% compute=50%
scenario shares-20-30-50 compute=20% compute=30% compute=50%
scenario guaranteed-30-alone compute=30%
scenario capped-30-alone compute=30%,mode=capped
alone=$(scenario priority-alone priority=high,compute=10%)
echo "$alone"
loaded=$(scenario priority-loaded priority=low,compute=45% priority=low,compute=45% priority=high,compute=10%)
echo "$loaded"
alone=$(sed -n 's/.*mean latency \([0-9]*\) us/\1/p' <<< "$alone")
loaded=$(sed -n 's/.*mean latency \([0-9]*\) us/\1/p' <<< "$loaded")
awk -v a="$alone" -v l="$loaded" 'BEGIN { printf "priority\thigh-priority latency under low-priority load / alone: %.2fx (%s / %s us)\n", l / a, l, a }'
