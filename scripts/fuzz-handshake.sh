#!/usr/bin/env bash
# Fuzzes the server's handshake decoder (Hello, Welcome, the requested slice) with libFuzzer for a bounded time.
#   scripts/fuzz-handshake.sh [seconds]          default 60 seconds
# Builds .build-fuzz-handshake/fuzz-handshake from Sources/XPUProtocol, the framing of
# Sources/XPUTransport, the slice parser of Sources/XPUAdmission and Tests/Fuzz/Handshake. First
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
    $(find Sources/XPUProtocol -name '*.swift') Sources/XPUTransport/FrameChannel.swift Sources/XPUTransport/Transport.swift Sources/XPUTransport/BusyPoll.swift \
    Sources/XPUAdmission/SliceRequest.swift Tests/Fuzz/Handshake/main.swift -o "$OUT/fuzz-handshake"

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

. scripts/lib/fuzz.sh
fuzz_run fuzz-handshake "$OUT/fuzz-handshake" "$OUT" Tests/Fuzz/Handshake/regressions "$SECONDS_TO_RUN"
