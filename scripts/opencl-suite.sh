#!/usr/bin/env bash
# pyopencl's own test suite (from its source distribution) run twice in one job: directly on PoCL,
# and through our OpenCL ICD (dist/lib/libxpu-opencl.so) against a local
# `xpu-remote-server --device opencl:pocl` that replays the calls on the same PoCL. Every test
# that passes directly must pass remotely, except the ones Tests/opencl/pyopencl-expected-failures.txt
# lists with a reason.
#
#   scripts/opencl-suite.sh [--quick] [--direct-only | --remote-only [--baseline FILE]] [--out DIR]
#
#   --quick        a representative part (QUICK_TESTS below: wrapper calls, events, copies, random
#                  numbers, arrays, reductions) instead of the whole suite; scripts/test.sh runs this one
#   --direct-only  the direct run only (no ICD needed)
#   --remote-only  the remote run only, compared with the direct results in --baseline FILE
#                  (default bench/opencl/pyopencl-direct.json, the whole suite's direct run; the
#                  comparison is over the tests both runs have)
#   --out DIR      where results go (default .build/opencl-suite/results): direct.json,
#                  remote.json (outcome per test, counts, seconds), the JUnit XML and pytest logs
#
#   XPU_OPENCL_SUITE_TIMEOUT  seconds each pytest run may take (default 1200 with --quick, else 14400)
#   XPU_DIST                  the dist/ folder the remote run takes the ICD and server from
#
# The suite's sources are fetched from PyPI on first use (pip download of the sdist of the
# installed pyopencl version) into .build/opencl-suite/; they are not part of this repository.
# Needs dist/ (scripts/build.sh; XPU_DIST names another) for the remote run; scripts/lib/prereqs.sh installs the rest.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

quick=0
direct_only=0
remote_only=0
baseline=""
out=$root/.build/opencl-suite/results
while [ $# -gt 0 ]; do
    case $1 in
    --quick) quick=1 ;;
    --direct-only) direct_only=1 ;;
    --remote-only) remote_only=1 ;;
    --baseline) baseline=$2; shift ;;
    --out) out=$2; shift ;;
    *) echo "usage: scripts/opencl-suite.sh [--quick] [--direct-only | --remote-only [--baseline FILE]] [--out DIR]" >&2; exit 2 ;;
    esac
    shift
done

# The representative part: every wrapper-level test (platforms, contexts, buffers, events, kernels,
# programs, copies), the random number generators, and a sample of the array and algorithm tests
# that build and run many kernels each (bench/opencl/README.md has how long each part takes).
QUICK_TESTS=(
    test_wrapper.py
    test_enqueue_copy.py
    test_clrandom.py
    "test_array.py::test_basic_complex"
    "test_array.py::test_copy"
    "test_array.py::test_event_management"
    "test_array.py::test_get_async"
    "test_algorithm.py::test_elwise_kernel"
    "test_algorithm.py::test_take"
    "test_algorithm.py::test_sum"
)

. scripts/lib/prereqs.sh
xpu_prereqs || exit 1

version=$(python3 -c 'from importlib import metadata; print(metadata.version("pyopencl"))')
cache=$root/.build/opencl-suite
suite=$cache/pyopencl-$version/test
if [ ! -d "$suite" ]; then
    echo "opencl-suite: fetching the pyopencl $version source distribution from PyPI for its tests"
    mkdir -p "$cache"
    # --no-binary for pyopencl only: its build requirements come as wheels (pip prepares the
    # sdist's metadata with them), not built from source.
    python3 -m pip download --quiet --disable-pip-version-check --no-deps --no-binary pyopencl \
        "pyopencl==$version" -d "$cache" >/dev/null
    tar -xzf "$cache/pyopencl-$version.tar.gz" -C "$cache" "pyopencl-$version/test"
fi

# PoCL's ICD file, so that the direct run sees PoCL alone whatever else /etc/OpenCL/vendors holds.
pocl_icd=${XPU_POCL_ICD:-/etc/OpenCL/vendors/pocl.icd}
[ -f "$pocl_icd" ] || { echo "opencl-suite: $pocl_icd not found (apt-get install pocl-opencl-icd, or set XPU_POCL_ICD)" >&2; exit 1; }

mkdir -p "$out"
work=$(mktemp -d)
server_pid=""
cleanup() {
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

selection=()
limit=${XPU_OPENCL_SUITE_TIMEOUT:-14400}
if [ "$quick" = 1 ]; then
    selection=("${QUICK_TESTS[@]}")
    limit=${XPU_OPENCL_SUITE_TIMEOUT:-1200}
fi

# run NAME ENV...: pytest over the selection with ENV set; writes NAME.xml, NAME.log, NAME.json.
run() {
    local name=$1
    shift
    local start=$SECONDS
    echo "opencl-suite: $name run of pyopencl $version's tests$([ "$quick" = 1 ] && echo " (quick part)")"
    # pytest's exit status says some test failed; the comparison below judges that. A run past
    # the limit gets SIGINT (pytest then writes what it has), SIGKILL 30 s later (a call blocked
    # in the OpenCL library never returns to Python: no results, the script fails).
    (cd "$suite" && env "$@" timeout -s INT -k 30 "$limit" python3 -m pytest -q -p no:cacheprovider --rootdir "$suite" -o junit_family=xunit2 \
        --junitxml="$out/$name.xml" "${selection[@]}" >"$out/$name.log" 2>&1) || true
    [ -s "$out/$name.xml" ] || { echo "opencl-suite: pytest wrote no results; its output:" >&2; tail -50 "$out/$name.log" >&2; exit 1; }
    python3 scripts/opencl-suite-results.py results "$out/$name.xml" "$out/$name.json"
    echo "opencl-suite: $name run took $((SECONDS - start)) s"
}

direct=$out/direct.json
if [ "$remote_only" = 1 ]; then
    direct=${baseline:-$root/bench/opencl/pyopencl-direct.json}
    [ -f "$direct" ] || { echo "opencl-suite: no direct results at $direct" >&2; exit 1; }
else
    run direct OCL_ICD_VENDORS="$pocl_icd"
fi

[ "$direct_only" = 0 ] || exit 0

dist=${XPU_DIST:-$root/dist}
icd=$dist/lib/libxpu-opencl.so
server=$dist/bin/xpu-remote-server
[ -e "$icd" ] && [ -x "$server" ] || { echo "opencl-suite: $icd or $server missing: run scripts/build.sh (or pass --direct-only)" >&2; exit 1; }

# The server loads PoCL through the system's ICD loader; the client sees our platform alone.
OCL_ICD_VENDORS="$pocl_icd" "$server" --listen 127.0.0.1:0 --device opencl:pocl \
    >"$work/server.out" 2>"$out/server.log" &
server_pid=$!
address=""
for _ in $(seq 600); do
    address=$(sed -n 's/^xpu-remote-server listening on //p' "$work/server.out")
    [ -z "$address" ] && kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
done
[ -n "$address" ] || { echo "opencl-suite: the server did not start:" >&2; cat "$out/server.log" >&2; exit 1; }
echo "$icd" >"$work/xpu.icd"

run remote OCL_ICD_VENDORS="$work/xpu.icd" XPU_SERVER="$address"

kill "$server_pid"
wait "$server_pid" 2>/dev/null || true
server_pid=""
# A quick remote run against a stored whole direct run compares the tests it ran.
ran_only=()
[ "$remote_only" = 1 ] && [ "$quick" = 1 ] && ran_only=(--ran-only)
python3 scripts/opencl-suite-results.py compare "$direct" "$out/remote.json" \
    Tests/opencl/pyopencl-expected-failures.txt "${ran_only[@]}"
