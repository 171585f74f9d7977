#!/usr/bin/env bash
# Tests/ABI/check-nvml-abi.sh: proves that our CXPUNVML.h agrees with NVIDIA's nvml.h (from the
# PyPI wheel nvidia-nvml-dev). Fails with a message naming each disagreement.
#
#   Tests/ABI/check-nvml-abi.sh                 check Sources/CXPUNVML/include/CXPUNVML.h
#   Tests/ABI/check-nvml-abi.sh --header FILE   check another copy of the header
#   Tests/ABI/check-nvml-abi.sh --self-test     also break copies of the header on purpose and make
#                                               sure each break is caught
#
# Environment: CC (default cc), XPU_NVML_H (path of nvml.h; default: found in site-packages),
# XPU_ABI_KEEP=1 (keep the generated C files and print where they are).
#
# What is checked (as Tests/ABI/check-abi.sh does for cuda.h):
#   1. Prototypes. nvml.h is included, every name we declare is #undef'd (nvml.h #defines the old
#      names onto versioned ones), then our header with -DXPU_ABI_CHECK (our type section off), so
#      each of our prototypes is compared with nvml.h's declaration of that exact symbol. Two
#      configurations: the default, and NVML_NO_UNVERSIONED_FUNC_DEFS, where nvml.h declares the
#      old names (nvmlInit, nvmlDeviceGetCount, nvmlDeviceGetComputeRunningProcesses, ...).
#   2. Counterparts. Each of our prototypes names a function nvml.h declares in one configuration,
#      and is listed in proto/nvml-exports.txt.
#   3. Types and constants. A probe built from our header alone prints every enumerator, #define,
#      enum size, struct size, alignment and field offset of ours; those become _Static_asserts
#      compiled against nvml.h, with a type-compatibility assert per typedef, and a switch over
#      nvmlReturn_t built with -Werror=switch-enum so a return code nvml.h has and we lack fails.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HEADER="$ROOT/Sources/CXPUNVML/include/CXPUNVML.h"
SELF_TEST=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --header) HEADER=$(cd "$(dirname "$2")" && pwd)/$(basename "$2"); shift 2 ;;
        --self-test) SELF_TEST=1; shift ;;
        -h|--help) sed -n '2,24p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "check-nvml-abi: unknown argument $1" >&2; exit 2 ;;
    esac
done

CC=${CC:-cc}
EXPORTS="$ROOT/proto/nvml-exports.txt"
NVML_H=${XPU_NVML_H:-$(python3 "$ROOT/scripts/extract-nvml-exports.py" --locate)} || {
    echo "check-nvml-abi: FAIL: nvml.h not found (pip install nvidia-nvml-dev, or set XPU_NVML_H)" >&2
    exit 1
}
[[ -f "$NVML_H" ]] || { echo "check-nvml-abi: FAIL: nvml.h not found at $NVML_H" >&2; exit 1; }
NVML_INCLUDE=$(dirname "$NVML_H")

WORK=$(mktemp -d "${TMPDIR:-/tmp}/xpu-nvml-abi.XXXXXX")
if [[ -n "${XPU_ABI_KEEP:-}" ]]; then
    echo "check-nvml-abi: keeping generated files in $WORK"
else
    trap 'rm -rf "$WORK"' EXIT
fi

CONFIG_LABELS=("default" "no-unversioned-defs")
CONFIG_DEFINES=("" "-DNVML_NO_UNVERSIONED_FUNC_DEFS")

# Reads our header; writes prototypes.txt, probe.c, typedefs.c and results.txt.
generate() {
    python3 "$ROOT/Tests/ABI/generate-probe.py" "$1" "$2" CXPUNVML.h nvmlReturn_t '\b(nvml\w+)\s*\(' check-nvml-abi
}

check_header() {
    local header="$1" work="$2" failures=0 include_dir i
    include_dir=$(dirname "$header")
    mkdir -p "$work"
    generate "$header" "$work" || return 1
    mapfile -t names < "$work/prototypes.txt"

    # 1. Prototypes, in both configurations.
    for i in "${!CONFIG_LABELS[@]}"; do
        {
            echo '#include <nvml.h>'
            printf '#undef %s\n' "${names[@]}"
            echo '#include "CXPUNVML.h"'
        } > "$work/prototypes-$i.c"
        # shellcheck disable=SC2086
        if ! "$CC" -std=c11 -fsyntax-only -Werror -Wno-deprecated-declarations -DXPU_ABI_CHECK ${CONFIG_DEFINES[$i]} \
            -I"$NVML_INCLUDE" -I"$include_dir" "$work/prototypes-$i.c" 2> "$work/prototypes-$i.log"; then
            echo "check-nvml-abi: FAIL: prototypes disagree with nvml.h (configuration ${CONFIG_LABELS[$i]}):"
            grep -E "error|note: previous" "$work/prototypes-$i.log" | sed 's/^/    /' | head -40
            failures=$((failures + 1))
        fi
    done

    # 2. Counterparts.
    local name found missing=()
    for name in "${names[@]}"; do
        found=0
        for i in "${!CONFIG_LABELS[@]}"; do
            printf '#include <nvml.h>\n#undef %s\nvoid *xpu_abi_probe(void) { return (void *)&%s; }\n' \
                "$name" "$name" > "$work/counterpart.c"
            # shellcheck disable=SC2086
            if "$CC" -std=gnu11 -fsyntax-only -Wno-deprecated-declarations ${CONFIG_DEFINES[$i]} -I"$NVML_INCLUDE" \
                "$work/counterpart.c" 2> /dev/null; then
                found=1
                break
            fi
        done
        [[ $found == 1 ]] || missing+=("$name")
    done
    if [[ ${#missing[@]} -gt 0 ]]; then
        echo "check-nvml-abi: FAIL: nvml.h declares no function named: ${missing[*]}"
        failures=$((failures + 1))
    fi
    local unlisted
    unlisted=$(grep -v '^#' "$EXPORTS" | grep -v '^$' | sort | comm -13 - <(sort "$work/prototypes.txt") | tr '\n' ' ')
    if [[ -n "$unlisted" ]]; then
        echo "check-nvml-abi: FAIL: not in proto/nvml-exports.txt: $unlisted"
        failures=$((failures + 1))
    fi

    # 3. Types and constants.
    if ! "$CC" -std=c11 -I"$include_dir" "$work/probe.c" -o "$work/probe" 2> "$work/probe.log"; then
        echo "check-nvml-abi: FAIL: our header does not compile on its own:"
        sed 's/^/    /' "$work/probe.log" | head -20
        return 1
    fi
    {
        echo '#include <stddef.h>'
        echo '#include <stdint.h>'
        echo '#include <nvml.h>'
        "$work/probe"
        cat "$work/typedefs.c"
        echo 'int xpu_abi_result_coverage(nvmlReturn_t result);'
        echo 'int xpu_abi_result_coverage(nvmlReturn_t result) {'
        echo '    switch (result) {'
        sed 's/.*/    case &:/' "$work/results.txt"
        echo '        return 1;'
        echo '    default:'
        echo '        return 0;'
        echo '    }'
        echo '}'
    } > "$work/constants.c"
    if ! "$CC" -std=gnu11 -fsyntax-only -Werror=switch-enum -Wswitch-enum -I"$NVML_INCLUDE" \
        "$work/constants.c" 2> "$work/constants.log"; then
        echo "check-nvml-abi: FAIL: types or constants disagree with nvml.h:"
        grep -E "error" "$work/constants.log" | sed 's/^/    /' | head -40
        failures=$((failures + 1))
    fi

    local constants asserts
    constants=$(grep -c '^_Static_assert' "$work/constants.c" || true)
    asserts=$(wc -l < "$work/typedefs.c")
    if [[ $failures -eq 0 ]]; then
        echo "check-nvml-abi: OK: ${#names[@]} prototypes (2 configurations), $((constants - asserts)) constants/layouts, $asserts typedefs agree with $NVML_H"
    fi
    return "$failures"
}

status=0
check_header "$HEADER" "$WORK/main" || status=1

if [[ $SELF_TEST == 1 ]]; then
    mutations=(
        's/NVML_ERROR_NOT_SUPPORTED = 3,/NVML_ERROR_NOT_SUPPORTED = 4,/'
        's/^nvmlReturn_t nvmlDeviceGetCount(unsigned int \*deviceCount);/nvmlReturn_t nvmlDeviceGetCount(int *deviceCount);/'
        's/^nvmlReturn_t nvmlShutdown(void);/nvmlReturn_t nvmlShutdown(void);\nnvmlReturn_t nvmlNoSuchFunction(void);/'
        's/^    unsigned long long usedGpuMemory;/    unsigned int usedGpuMemory;/'
        's/^    unsigned long long reserved;//'
        's/#define NVML_DEVICE_UUID_BUFFER_SIZE 80/#define NVML_DEVICE_UUID_BUFFER_SIZE 64/'
        's/(2 << 24U)/(3 << 24U)/'
        's/^    NVML_ERROR_RESET_TYPE_NOT_SUPPORTED = 30,//'
        's/^typedef nvmlProcessInfo_v2_t nvmlProcessInfo_t;/typedef nvmlProcessInfo_v1_t nvmlProcessInfo_t;/'
    )
    n=0
    for mutation in "${mutations[@]}"; do
        n=$((n + 1))
        dir="$WORK/mutant-$n"
        mkdir -p "$dir"
        sed "$mutation" "$HEADER" > "$dir/CXPUNVML.h"
        if cmp -s "$HEADER" "$dir/CXPUNVML.h"; then
            echo "check-nvml-abi: self-test: FAIL: mutation $n did not apply: $mutation"
            status=1
        elif check_header "$dir/CXPUNVML.h" "$dir/work" > "$dir/log" 2>&1; then
            echo "check-nvml-abi: self-test: FAIL: mutation $n was not caught: $mutation"
            status=1
        else
            echo "check-nvml-abi: self-test: caught mutation $n: $(grep -m1 FAIL "$dir/log" | cut -c1-150)"
        fi
    done
fi

exit "$status"
