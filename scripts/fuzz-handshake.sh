#!/usr/bin/env bash
# Fuzzes the server's handshake decoder (Hello, Welcome, the requested slice) with libFuzzer for a bounded time.
#   scripts/fuzz-handshake.sh [seconds]          default 60 seconds
# Builds .build-fuzz-handshake/fuzz-handshake from Sources/XPUProtocol, the framing of
# Sources/XPUTransport, the slice parser of Sources/XPUServer and Tests/Fuzz/Handshake. First
# replays every input in Tests/Fuzz/Handshake/regressions/ (crash-* inputs found earlier), then fuzzes
# from seeds made of the handshake golden vectors in proto/vectors/ and a few slice requests. Stops at the first crash, leak, hang (-timeout) or memory
# blow-up (-rss_limit_mb); a crash input is left in .build-fuzz-handshake/crashes/ - copy it, named crash-*, into
# Tests/Fuzz/Handshake/regressions/ once fixed. Prints the number of executions.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_TO_RUN="${1:-60}"
OUT=.build-fuzz-handshake
SWIFTC="${SWIFTC:-$(command -v swiftc || echo /opt/swift/usr/bin/swiftc)}"
mkdir -p "$OUT/corpus" "$OUT/crashes" "$OUT/seeds"

"$SWIFTC" -sanitize=fuzzer,address -parse-as-library -O -g -module-name XPUProtocol \
    $(find Sources/XPUProtocol -name '*.swift') Sources/XPUTransport/FrameChannel.swift Sources/XPUTransport/Transport.swift \
    Sources/XPUServer/PolicySliceRequest.swift Tests/Fuzz/Handshake/main.swift -o "$OUT/fuzz-handshake"

# Seeds: the golden frames (requests and replies), one frame each and all of them back to back.
python3 - "$OUT/seeds" <<'PY'
import glob, os, sys
frames = []
for path in sorted(glob.glob("proto/vectors/handshake-*.hex")):
    text = "".join(l.split("#")[0] for l in open(path))
    data = bytes.fromhex("".join(text.split()))
    frames.append(data)
    open(os.path.join(sys.argv[1], os.path.basename(path)[:-4]), "wb").write(data)
for i, slice in enumerate([b"mem=8GiB,compute=30%,priority=high,device=0", b"mem=1G", b"compute=100"]):
    open(os.path.join(sys.argv[1], f"slice-{i}"), "wb").write(slice)
PY

regressions=(Tests/Fuzz/Handshake/regressions/crash-*)
if [ -e "${regressions[0]}" ]; then
    echo "fuzz-handshake: replaying ${#regressions[@]} regression input(s)"
    "$OUT/fuzz-handshake" "${regressions[@]}"
fi
status=0
"$OUT/fuzz-handshake" "$OUT/corpus" "$OUT/seeds" \
    -max_total_time="$SECONDS_TO_RUN" -timeout=5 -rss_limit_mb=2048 -max_len=65536 \
    -artifact_prefix="$OUT/crashes/" -print_final_stats=1 >"$OUT/last-run.txt" 2>&1 || status=$?
sed "/Recommended dictionary/,/End of recommended dictionary/d" "$OUT/last-run.txt" | grep -v "^#[0-9].*\(NEW\|REDUCE\|pulse\)" | tail -60
if [ "$status" != 0 ]; then
    echo "fuzz-handshake: the fuzzer failed (exit $status); the input is in $OUT/crashes/" >&2
    exit 1
fi
echo "fuzz-handshake: $(grep '^stat::number_of_executed_units' "$OUT/last-run.txt" | awk '{print $2}') executions in ${SECONDS_TO_RUN}s, no crash"
