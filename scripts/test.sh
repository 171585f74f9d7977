#!/usr/bin/env bash
# The project's test command (README): every check CI runs, in order, failing on the first error.
#   1. generated code matches proto/ (codegen drift), the export list matches the wheel's cuda.h
#   2. our C header agrees with NVIDIA's cuda.h (ABI check); spin model-checks the compute
#      scheduler's wait/notify protocol (Tests/Models)
#   3. release build into dist/; the shim exports only API symbols, links no Swift runtime and
#      carries NVIDIA's library names (SONAMEs, the NVML filter); the Kubernetes manifests are
#      valid (scripts/check-deploy.sh)
#   4. the Swift test suites: codecs, codegen, PTX interpreter, simulated device, placement, and
#      the end-to-end suites (C programs direct on libxpusim.so vs through shim -> TCP -> server)
#   5. CuPy and cuda.core, unmodified, directly on libxpusim.so and through xpu-run, compared
#      (scripts/check-frameworks.sh; their virtual environments come from scripts/lib/python-clients.sh)
#   6. numba-cuda's own tests, a representative part, through the shim (scripts/numba-suite.sh
#      --quick; the whole suite is scripts/numba-suite.sh, run on its own: it takes long)
#   7. pyopencl's own tests, a representative part, directly on PoCL and through the OpenCL ICD,
#      compared (scripts/opencl-suite.sh --quick; the whole suite is scripts/opencl-suite.sh)
#   8. bounded fuzzing runs, when their scripts exist (XPU_FUZZ_SECONDS, default 30; 0 skips)
# Needs Swift 6.3; scripts/lib/prereqs.sh installs the rest (Debian packages, Python wheels)
# when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

. scripts/lib/prereqs.sh
xpu_prereqs || exit 1

step "generated code is up to date (scripts/codegen.sh --check)"
scripts/codegen.sh --check
scripts/codegen-kubelet.sh --check
python3 scripts/extract-cuda-exports.py --check
python3 scripts/extract-nvml-exports.py --check

step "our header agrees with cuda.h (Tests/ABI/check-abi.sh)"
Tests/ABI/check-abi.sh
Tests/ABI/check-nvml-abi.sh
Tests/ABI/check-opencl-abi.sh --self-test

step "the compute scheduler's wait/notify model has no lost wake-up (scripts/check-models.sh)"
scripts/check-models.sh

step "release build into dist/ (scripts/build.sh)"
scripts/build.sh

step "the shim exports only the API, links no Swift runtime and carries NVIDIA's library names"
scripts/check-shim-symbols.sh dist

step "Kubernetes manifests and the controller's ResourceSlices are valid for 1.36 (scripts/check-deploy.sh)"
scripts/check-deploy.sh

step "debug build of every target and test: no warnings in our code"
mkdir -p .build
swift build --build-tests 2>&1 | tee .build/build-output.txt
if grep -E "^/.*(Sources|Tests)/.*: warning:" .build/build-output.txt | grep -v "/.build/" >/dev/null; then
    echo "test.sh: the build printed warnings in Sources/ or Tests/ (warnings are errors here):" >&2
    grep -E "^/.*(Sources|Tests)/.*: warning:" .build/build-output.txt | grep -v "/.build/" | sort -u >&2
    exit 1
fi

step "swift test"
swift test --parallel --num-workers 2 --skip XPUKubeTests 2>&1 | tee .build/test-output.txt
# --parallel prints XCTest's summary; Swift Testing's closing line is what CI reads.
grep -E "^✔ Test run with [0-9]+ tests" .build/test-output.txt >/dev/null

# The Kubernetes suites run on their own: their plugin, controller and fake API server live on
# Swift concurrency's pool (one thread per core), which the blocking end-to-end suites above can
# hold for longer than an HTTP request's timeout on two cores.
step "swift test: the Kubernetes suites"
swift test --filter XPUKubeTests 2>&1 | tee .build/test-output-kube.txt
grep -E "^✔ Test run with [0-9]+ tests" .build/test-output-kube.txt >/dev/null

step "CuPy and cuda.core direct vs through the server (scripts/check-frameworks.sh)"
scripts/check-frameworks.sh cupy cuda-core

step "numba-cuda through the shim on the driver linker, the quick part (scripts/numba-suite.sh --quick)"
scripts/numba-suite.sh --quick

step "pyopencl's own tests directly on PoCL and through the OpenCL ICD, the quick part (scripts/opencl-suite.sh --quick)"
scripts/opencl-suite.sh --quick

fuzz_seconds=${XPU_FUZZ_SECONDS:-30}
if [ "$fuzz_seconds" != 0 ]; then
    for fuzz in scripts/fuzz-*.sh; do
        [ -e "$fuzz" ] || continue
        step "bounded fuzzing: $fuzz ($fuzz_seconds s)"
        "$fuzz" "$fuzz_seconds"
    done
fi

step "all checks passed"
