#!/usr/bin/env bash
# Fuzzes the PTX parser (and the fatbinary reader) with libFuzzer for a bounded time.
#   scripts/fuzz-ptx.sh [seconds]          default 60 seconds
# Builds .build-fuzz/fuzz-ptx from Sources/XPUPTX + Tests/Fuzz/PTXParser/main.swift, seeds the
# corpus with the test PTX (the Tests/kernels .cu compiled by nvcc when it is installed, the
# benchmark PTX, and the hand-written PTX of the tests), and stops at the first crash, leak, hang
# (-timeout) or memory blow-up (-rss_limit_mb), after replaying Tests/Fuzz/PTXParser/regressions/.
# A crash input is left in .build-fuzz/crashes/: once fixed, copy it into regressions/ and turn it
# into a test in Tests/XPUPTXTests/ParserRobustnessTests.swift. XPU_FUZZ_SEED: see scripts/lib/fuzz.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_TO_RUN="${1:-60}"
OUT=.build-fuzz
SWIFTC="${SWIFTC:-$(command -v swiftc || echo /opt/swift/usr/bin/swiftc)}"
mkdir -p "$OUT/corpus" "$OUT/crashes" "$OUT/seeds"

# XPUPTX reads the clock through the C target CXPUClock: a module map for its header stands in
# for the one SwiftPM generates.
mkdir -p "$OUT/CXPUClock"
printf 'module CXPUClock {\n    header "%s"\n    export *\n}\n' "$(pwd)/Sources/CXPUClock/include/CXPUClock.h" \
    > "$OUT/CXPUClock/module.modulemap"
"$SWIFTC" -sanitize=fuzzer,address -parse-as-library -O -g -module-name XPUPTX -I "$OUT/CXPUClock" \
    Sources/XPUPTX/*.swift Tests/Fuzz/PTXParser/main.swift -o "$OUT/fuzz-ptx"

# Seeds: compiled kernels (if nvcc is around), the benchmark PTX, and PTX literals from the tests.
NVCC="${XPU_NVCC:-$(python3 -c 'import nvidia.cu13 as m, os; print(os.path.join(list(m.__path__)[0], "bin", "nvcc"))' 2>/dev/null || true)}"
if [ -n "$NVCC" ] && [ -x "$NVCC" ]; then
    for cu in Tests/kernels/*.cu; do
        "$NVCC" -ptx -arch=sm_75 "$cu" -o "$OUT/seeds/$(basename "${cu%.cu}").ptx" || true
    done
    "$NVCC" -fatbin -gencode arch=compute_75,code=compute_75 -compress-mode=speed Tests/kernels/vector_add.cu \
        -o "$OUT/seeds/vector_add.lz4.fatbin" || true
fi
cp bench/interpreter/*.ptx "$OUT/seeds/"
python3 - "$OUT/seeds" <<'PY'
import glob, re, sys, os
for path in glob.glob("Tests/XPUPTXTests/*.swift") + glob.glob("Tests/XPUSimTests/*.swift"):
    text = open(path).read()
    for i, block in enumerate(re.findall(r'"""\n(.*?)"""', text, re.S)):
        if ".version" in block:
            name = os.path.basename(path).replace(".swift", "")
            open(os.path.join(sys.argv[1], f"{name}-{i}.ptx"), "w").write(block)
PY

. scripts/lib/fuzz.sh
fuzz_run fuzz-ptx "$OUT/fuzz-ptx" "$OUT" Tests/Fuzz/PTXParser/regressions "$SECONDS_TO_RUN"
