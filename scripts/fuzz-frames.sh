#!/usr/bin/env bash
# Fuzzes the server's frame and call decoder with libFuzzer for a bounded time.
#   scripts/fuzz-frames.sh [seconds]          default 60 seconds
# Builds .build-fuzz-frames/fuzz-frames from Sources/XPUProtocol, the framing of
# Sources/XPUTransport and Tests/Fuzz/FrameDecoder (its request-decoder switch is generated from
# Sources/XPUProtocol/Generated/Calls.swift, so every call id is covered). First replays every
# input in Tests/Fuzz/FrameDecoder/regressions/ (crash-* inputs found earlier), then fuzzes from seeds made
# of the golden vectors in proto/vectors/. Stops at the first crash, leak, hang (-timeout) or memory
# blow-up (-rss_limit_mb); a crash input is left in .build-fuzz-frames/crashes/ - copy it, named crash-*, into
# Tests/Fuzz/FrameDecoder/regressions/ once fixed. Prints the number of executions.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_TO_RUN="${1:-60}"
OUT=.build-fuzz-frames
SWIFTC="${SWIFTC:-$(command -v swiftc || echo /opt/swift/usr/bin/swiftc)}"
mkdir -p "$OUT/corpus" "$OUT/crashes" "$OUT/seeds"

python3 Tests/Fuzz/FrameDecoder/generate-decoders.py Sources/XPUProtocol/Generated/Calls.swift "$OUT/RequestDecoders.swift"
"$SWIFTC" -sanitize=fuzzer,address -parse-as-library -O -g -module-name XPUProtocol \
    $(find Sources/XPUProtocol -name '*.swift') Sources/XPUTransport/FrameChannel.swift Sources/XPUTransport/Transport.swift Sources/XPUTransport/BusyPoll.swift \
    "$OUT/RequestDecoders.swift" Tests/Fuzz/FrameDecoder/main.swift -o "$OUT/fuzz-frames"

# Seeds: the golden frames (requests and replies), one frame each and all of them back to back.
python3 - "$OUT/seeds" <<'PY'
import glob, os, sys
frames = []
for path in sorted(glob.glob("proto/vectors/*.hex")):
    text = "".join(l.split("#")[0] for l in open(path))
    data = bytes.fromhex("".join(text.split()))
    frames.append(data)
    open(os.path.join(sys.argv[1], os.path.basename(path)[:-4]), "wb").write(data)
open(os.path.join(sys.argv[1], "all-frames"), "wb").write(b"".join(frames))
PY

. scripts/lib/fuzz.sh
fuzz_run fuzz-frames "$OUT/fuzz-frames" "$OUT" Tests/Fuzz/FrameDecoder/regressions "$SECONDS_TO_RUN"
