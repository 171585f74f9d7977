#!/usr/bin/env bash
# numba-cuda's own test suites through the shim, against a simulated-device server from dist/.
#
#   scripts/numba-suite.sh [--quick | --only IDS.txt] [--jobs N] [--test-timeout S] [--out DIR] [--dist DIR] [MODULE...]
#
# numba-cuda links with the driver's linker (cuLink*): the environment it runs in has no
# nvJitLink, so cuda.core's Linker falls back to the driver (scripts/lib/numba-env.sh makes that
# environment, .build-numba/venv, with pinned wheels). Every test of numba.cuda.tests.cudadrv and
# numba.cuda.tests.cudapy (or of the MODULEs named) runs (with --quick: the tests listed in Tests/numba/quick-tests.txt;
# with --only: those listed in IDS.txt, one id a line),
# each worker process a client of one server (Tests/numba/run_suite.py).
#
# Writes DIR/results.tsv (one line per test: id, outcome, reason), DIR/counts.txt (counts per
# suite) and DIR/tests.log (the tests' own output); DIR defaults to .build-numba/full or
# .build-numba/quick. Fails when a test fails, errors, times out or crashes that
# Tests/numba/expected-failures.txt does not list, and names each such test; a listed test that
# passes is reported (and the list should lose it) but does not fail the run.
# --dist DIR runs another build's dist/ (a copy, so that a long run survives a rebuild).
# Needs dist/ (scripts/build.sh) and network access to PyPI the first time (the wheels).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

quick=0
only_file=""
modules=()
dist=$root/dist
jobs=2
test_timeout=600
out=""
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) quick=1; shift ;;
        --only) only_file=$(realpath "$2"); shift 2 ;;
        --jobs) jobs=$2; shift 2 ;;
        --test-timeout) test_timeout=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --dist) dist=$(realpath "$2"); shift 2 ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        -*) echo "numba-suite: unknown argument $1" >&2; exit 2 ;;
        *) modules+=("$1"); shift ;;
    esac
done
[ -n "$out" ] || out=.build-numba/$([ $quick = 1 ] && echo quick || echo full)
for f in "$dist"/bin/xpu-remote-server "$dist"/bin/xpu-run "$dist"/lib/libcuda.so.1 "$dist"/lib/libxpusim.so; do
    [ -e "$f" ] || { echo "numba-suite: $f missing: run scripts/build.sh first" >&2; exit 1; }
done

. scripts/lib/numba-env.sh
python=$(xpu_numba_env)

mkdir -p "$out"
rm -f "$out/results.tsv" "$out/counts.txt"
socket_dir=$(mktemp -d)
server_pid=""
cleanup() {
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
    rm -rf "$socket_dir"
}
trap cleanup EXIT
"$dist"/bin/xpu-remote-server --device sim --driver "$dist/lib/libxpusim.so" --listen "unix:$socket_dir/server" \
    >"$out/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
    [ -S "$socket_dir/server" ] && break
    kill -0 "$server_pid" 2>/dev/null || { echo "numba-suite: the server did not start:" >&2; cat "$out/server.log" >&2; exit 1; }
    sleep 0.1
done

[ ${#modules[@]} -gt 0 ] || modules=(numba.cuda.tests.cudadrv numba.cuda.tests.cudapy)
only=()
[ $quick = 1 ] && only=(--only "$root/Tests/numba/quick-tests.txt")
[ -n "$only_file" ] && only=(--only "$only_file")
start=$(date +%s)
# The tests' working directory is a scratch folder: some write files (caching tests).
(cd "$out" && "$dist/bin/xpu-run" --server "unix:$socket_dir/server" -- \
    "$python" "$root/Tests/numba/run_suite.py" --results results.tsv --jobs "$jobs" --test-timeout "$test_timeout" \
    --log tests.log "${only[@]}" "${modules[@]}")
elapsed=$(( $(date +%s) - start ))

python3 "$root/Tests/numba/compare.py" "$out/results.tsv" "$root/Tests/numba/expected-failures.txt" \
    --counts "$out/counts.txt" --seconds "$elapsed" --jobs "$jobs"
