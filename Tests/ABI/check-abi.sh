#!/usr/bin/env bash
# Tests/ABI/check-abi.sh: proves that our CXPUDriver.h agrees with NVIDIA's cuda.h (CUDA 13,
# from the PyPI wheel nvidia-cuda-runtime). Fails with a message naming each disagreement.
#
#   Tests/ABI/check-abi.sh                  check Sources/CXPUDriver/include/CXPUDriver.h
#   Tests/ABI/check-abi.sh --header FILE    check another copy of the header
#   Tests/ABI/check-abi.sh --self-test      also break copies of the header on purpose and make
#                                           sure each break is caught
#
# Environment: CC (default cc), XPU_CUDA_H (path of cuda.h; default: found in site-packages),
# XPU_ABI_KEEP=1 (keep the generated C files and print where they are).
#
# What is checked:
#   1. Prototypes. cuda.h is included, then our header with -DXPU_ABI_CHECK (which skips our type
#      section, so only our prototypes are declared again). cuda.h #defines many names onto
#      versioned ones, so every name we declare is #undef'd first: each of our prototypes is
#      compared with cuda.h's declaration of that exact symbol. A conflicting prototype is a
#      compile error. This runs in three configurations, because cuda.h declares the plain
#      versioned names by default, the _ptds/_ptsz names with per-thread default stream, and the
#      old unversioned names (cuGetProcAddress with four arguments, ...) only under
#      __CUDA_API_VERSION_INTERNAL.
#   2. Counterparts. Each of our prototypes must name a function that cuda.h declares in at least
#      one of those configurations (a reference to it must compile), and must be listed in
#      proto/cuda-exports.txt. A name cuda.h does not declare fails.
#   3. Types and constants. A probe built from our header alone (its type section on) prints our
#      values: every enumerator, every #define constant, the size of each enum, the size,
#      alignment and field offsets of each struct. Those become _Static_asserts compiled against
#      cuda.h, with a type-compatibility assert for every typedef of ours, and a switch over
#      CUresult built with -Werror=switch-enum so that a result code cuda.h has and we lack fails.
#   4. Our result table (results.c) names every CUresult our header declares (-Wswitch-enum).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HEADER="$ROOT/Sources/CXPUDriver/include/CXPUDriver.h"
SELF_TEST=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --header) HEADER=$(cd "$(dirname "$2")" && pwd)/$(basename "$2"); shift 2 ;;
        --self-test) SELF_TEST=1; shift ;;
        -h|--help) sed -n '2,30p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "check-abi: unknown argument $1" >&2; exit 2 ;;
    esac
done

CC=${CC:-cc}
EXPORTS="$ROOT/proto/cuda-exports.txt"
RESULTS_C="$ROOT/Sources/CXPUDriver/results.c"

locate_cuda_h() {
    if [[ -n "${XPU_CUDA_H:-}" ]]; then
        echo "$XPU_CUDA_H"
    else
        python3 "$ROOT/scripts/extract-cuda-exports.py" --locate
    fi
}

CUDA_H=$(locate_cuda_h) || { echo "check-abi: FAIL: cuda.h not found (pip install nvidia-cuda-runtime, or set XPU_CUDA_H)" >&2; exit 1; }
[[ -f "$CUDA_H" ]] || { echo "check-abi: FAIL: cuda.h not found at $CUDA_H" >&2; exit 1; }
CUDA_INCLUDE=$(dirname "$CUDA_H")

WORK=$(mktemp -d "${TMPDIR:-/tmp}/xpu-abi.XXXXXX")
if [[ -n "${XPU_ABI_KEEP:-}" ]]; then
    echo "check-abi: keeping generated files in $WORK"
else
    trap 'rm -rf "$WORK"' EXIT
fi

# The configurations cuda.h is read in: label and defines.
CONFIG_LABELS=("default" "per-thread-default-stream" "version-internal")
CONFIG_DEFINES=("" "-DCUDA_API_PER_THREAD_DEFAULT_STREAM" "-D__CUDA_API_VERSION_INTERNAL")

# Reads our header and writes: prototypes.txt (our cu* function names), probe.c (prints our
# values as C assertions), typedefs.c (type-compatibility assertions), results.txt (CUresult
# enumerators).
generate() {
    python3 "$ROOT/Tests/ABI/generate-probe.py" "$1" "$2" CXPUDriver.h CUresult '\bCUresult\s+(cu\w+)\s*\(' check-abi
}

# Runs every check against one header; prints FAIL lines and returns non-zero on any failure.
check_header() {
    local header="$1" work="$2" failures=0
    local include_dir
    include_dir=$(dirname "$header")
    mkdir -p "$work"
    generate "$header" "$work" || return 1
    mapfile -t names < "$work/prototypes.txt"

    # 1. Prototypes, in every configuration.
    local i
    for i in "${!CONFIG_LABELS[@]}"; do
        {
            echo '#include <cuda.h>'
            printf '#undef %s\n' "${names[@]}"
            echo '#include "CXPUDriver.h"'
        } > "$work/prototypes-$i.c"
        # shellcheck disable=SC2086
        if ! "$CC" -std=c11 -fsyntax-only -Werror -DXPU_ABI_CHECK ${CONFIG_DEFINES[$i]} \
            -I"$CUDA_INCLUDE" -I"$include_dir" "$work/prototypes-$i.c" 2> "$work/prototypes-$i.log"; then
            echo "check-abi: FAIL: prototypes disagree with cuda.h (configuration ${CONFIG_LABELS[$i]}):"
            grep -E "error|note: previous" "$work/prototypes-$i.log" | sed 's/^/    /' | head -40
            failures=$((failures + 1))
        fi
    done

    # 2. Counterparts: cuda.h must declare each name in some configuration.
    local name found missing=()
    for name in "${names[@]}"; do
        found=0
        for i in "${!CONFIG_LABELS[@]}"; do
            printf '#include <cuda.h>\n#undef %s\nvoid *xpu_abi_probe(void) { return (void *)&%s; }\n' \
                "$name" "$name" > "$work/counterpart.c"
            # shellcheck disable=SC2086
            if "$CC" -std=gnu11 -fsyntax-only ${CONFIG_DEFINES[$i]} -I"$CUDA_INCLUDE" \
                "$work/counterpart.c" 2> /dev/null; then
                found=1
                break
            fi
        done
        [[ $found == 1 ]] || missing+=("$name")
    done
    if [[ ${#missing[@]} -gt 0 ]]; then
        echo "check-abi: FAIL: cuda.h declares no function named: ${missing[*]}"
        failures=$((failures + 1))
    fi
    if [[ -f "$EXPORTS" ]]; then
        local unlisted
        unlisted=$(grep -v '^#' "$EXPORTS" | grep -v '^$' | sort | comm -13 - <(sort "$work/prototypes.txt") | tr '\n' ' ')
        if [[ -n "$unlisted" ]]; then
            echo "check-abi: FAIL: not in proto/cuda-exports.txt: $unlisted"
            failures=$((failures + 1))
        fi
    fi

    # 3. Types and constants: our values, printed by a probe, asserted against cuda.h.
    if ! "$CC" -std=c11 -I"$include_dir" "$work/probe.c" -o "$work/probe" 2> "$work/probe.log"; then
        echo "check-abi: FAIL: our header does not compile on its own:"
        sed 's/^/    /' "$work/probe.log" | head -20
        return 1
    fi
    {
        echo '#include <stddef.h>'
        echo '#include <stdint.h>'
        echo '#include <cuda.h>'
        "$work/probe"
        cat "$work/typedefs.c"
        echo 'int xpu_abi_result_coverage(CUresult result);'
        echo 'int xpu_abi_result_coverage(CUresult result) {'
        echo '    switch (result) {'
        sed 's/.*/    case &:/' "$work/results.txt"
        echo '        return 1;'
        echo '    default:'
        echo '        return 0;'
        echo '    }'
        echo '}'
    } > "$work/constants.c"
    if ! "$CC" -std=gnu11 -fsyntax-only -Werror=switch-enum -Wswitch-enum -I"$CUDA_INCLUDE" \
        "$work/constants.c" 2> "$work/constants.log"; then
        echo "check-abi: FAIL: types or constants disagree with cuda.h:"
        grep -E "error" "$work/constants.log" | sed 's/^/    /' | head -40
        failures=$((failures + 1))
    fi

    # 4. Our result table covers every CUresult our header declares.
    if [[ -f "$RESULTS_C" ]] && ! "$CC" -std=c11 -fsyntax-only -Wswitch-enum -Werror=switch-enum \
        -I"$include_dir" "$RESULTS_C" 2> "$work/results.log"; then
        echo "check-abi: FAIL: Sources/CXPUDriver/results.c misses result codes:"
        grep -E "error" "$work/results.log" | sed 's/^/    /' | head -20
        failures=$((failures + 1))
    fi

    local constants asserts
    constants=$(grep -c '^_Static_assert' "$work/constants.c" || true)
    asserts=$(wc -l < "$work/typedefs.c")
    if [[ $failures -eq 0 ]]; then
        echo "check-abi: OK: ${#names[@]} prototypes (3 configurations), $((constants - asserts)) constants/layouts, $asserts typedefs agree with $CUDA_H"
    fi
    return "$failures"
}

status=0
check_header "$HEADER" "$WORK/main" || status=1

if [[ $SELF_TEST == 1 ]]; then
    # Each mutation of a copy of the header must make the check fail.
    mutations=(
        's/CUDA_ERROR_INVALID_VALUE = 1,/CUDA_ERROR_INVALID_VALUE = 7,/'
        's/^CUresult cuMemAlloc_v2(CUdeviceptr \*dptr, size_t bytesize);/CUresult cuMemAlloc_v2(CUdeviceptr *dptr, unsigned int bytesize);/'
        's/^CUresult cuInit(unsigned int Flags);/CUresult cuInit(unsigned int Flags);\nCUresult cuNoSuchFunction(void);/'
        's/^CUresult cuGetProcAddress(const char \*symbol, void \*\*pfn, int cudaVersion, cuuint64_t flags);/CUresult cuGetProcAddress(const char *symbol, void **pfn, int cudaVersion, cuuint32_t flags);/'
        's/^typedef int CUdevice_v1;/typedef long CUdevice_v1;/'
        's/    int numExecAffinityParams;/    long numExecAffinityParams;/'
        's/#define CU_STREAM_PER_THREAD ((CUstream)0x2)/#define CU_STREAM_PER_THREAD ((CUstream)0x3)/'
        's/^    CUDA_ERROR_FABRIC_NOT_READY = 919,//'
    )
    n=0
    for mutation in "${mutations[@]}"; do
        n=$((n + 1))
        dir="$WORK/mutant-$n"
        mkdir -p "$dir"
        sed "$mutation" "$HEADER" > "$dir/CXPUDriver.h"
        if cmp -s "$HEADER" "$dir/CXPUDriver.h"; then
            echo "check-abi: self-test: FAIL: mutation $n did not apply: $mutation"
            status=1
        elif check_header "$dir/CXPUDriver.h" "$dir/work" > "$dir/log" 2>&1; then
            echo "check-abi: self-test: FAIL: mutation $n was not caught: $mutation"
            status=1
        else
            echo "check-abi: self-test: caught mutation $n: $(grep -m1 FAIL "$dir/log" | cut -c1-150)"
        fi
    done
fi

exit "$status"
