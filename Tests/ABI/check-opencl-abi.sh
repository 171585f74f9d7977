#!/usr/bin/env bash
# Tests/ABI/check-opencl-abi.sh: proves that our CXPUOpenCL.h and the ICD's dispatch-table slots
# (Sources/CXPUOpenCLICD/xpu_cl_slots.def) agree with Khronos' OpenCL headers (Debian
# opencl-c-headers: CL/cl.h, CL/cl_ext.h, CL/cl_icd.h). Fails with a message naming each
# disagreement.
#
#   Tests/ABI/check-opencl-abi.sh                  check Sources/CXPUOpenCL/include/CXPUOpenCL.h
#   Tests/ABI/check-opencl-abi.sh --header FILE    check another copy of the header
#   Tests/ABI/check-opencl-abi.sh --self-test      also break copies of the header and the slot
#                                                  list on purpose and make sure each is caught
#
# Environment: CC (default cc), XPU_OPENCL_INCLUDE (the directory holding CL/; default
# /usr/include).
#
# What is checked, in one translation unit compiled with -Werror after Khronos' headers:
#   1. Types, constants and prototypes: our header, type section included. A typedef of another
#      type, a #define with another value (a macro redefined differently is an error under
#      -Werror) and a prototype that differs from Khronos' declaration of the same name all fail.
#   2. The dispatch table: a struct built from our slot list must have exactly the size of
#      Khronos' cl_icd_dispatch, and each slot the offset of Khronos' slot of that name.
#   3. Each OBJECT slot's parameter count, whose last parameter must be Khronos' errcode_ret
#      (the stub sets it).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HEADER="$ROOT/Sources/CXPUOpenCL/include/CXPUOpenCL.h"
SLOTS="$ROOT/Sources/CXPUOpenCLICD/xpu_cl_slots.def"
SELF_TEST=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --header) HEADER=$(cd "$(dirname "$2")" && pwd)/$(basename "$2"); shift 2 ;;
        --self-test) SELF_TEST=1; shift ;;
        -h|--help) sed -n '2,22p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "check-opencl-abi: unknown argument $1" >&2; exit 2 ;;
    esac
done

CC=${CC:-cc}
INCLUDE=${XPU_OPENCL_INCLUDE:-/usr/include}
[[ -f "$INCLUDE/CL/cl_icd.h" ]] || {
    echo "check-opencl-abi: FAIL: $INCLUDE/CL/cl_icd.h not found (apt-get install opencl-c-headers, or set XPU_OPENCL_INCLUDE)" >&2
    exit 1
}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/xpu-opencl-abi.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# Checks one header and one slot list; prints FAIL lines and returns non-zero on a disagreement.
check() {
    local header="$1" slots="$2" work="$3"
    mkdir -p "$work"
    cp "$header" "$work/CXPUOpenCL.h"
    cp "$(dirname "$header")/CXPUOpenCLLibrary.h" "$work/" 2>/dev/null || true
    cp "$slots" "$work/xpu_cl_slots.def"
    {
        echo '#define CL_TARGET_OPENCL_VERSION 300'
        echo '#define CL_USE_DEPRECATED_OPENCL_1_0_APIS'
        echo '#define CL_USE_DEPRECATED_OPENCL_1_1_APIS'
        echo '#define CL_USE_DEPRECATED_OPENCL_1_2_APIS'
        echo '#define CL_USE_DEPRECATED_OPENCL_2_0_APIS'
        echo '#include <stddef.h>'
        echo '#include <CL/cl.h>'
        echo '#include <CL/cl_ext.h>'
        echo '#include <CL/cl_icd.h>'
        echo '#include "CXPUOpenCL.h"'
        echo 'struct xpu_cl_dispatch {'
        echo '#define SERVED(name) void *name;'
        echo '#define STATUS(name) void *name;'
        echo '#define OBJECT(name, parameters) void *name;'
        echo '#define NOTHING(name) void *name;'
        echo '#include "xpu_cl_slots.def"'
        echo '#undef SERVED'
        echo '#undef STATUS'
        echo '#undef OBJECT'
        echo '#undef NOTHING'
        echo '};'
        echo '_Static_assert(sizeof(struct xpu_cl_dispatch) == sizeof(cl_icd_dispatch), "dispatch table: slot count differs from cl_icd_dispatch");'
        echo '#define SLOT(name) _Static_assert(offsetof(struct xpu_cl_dispatch, name) == offsetof(cl_icd_dispatch, name), "dispatch slot " #name " is out of place");'
        echo '#define SERVED(name) SLOT(name)'
        echo '#define STATUS(name) SLOT(name)'
        echo '#define OBJECT(name, parameters) SLOT(name)'
        echo '#define NOTHING(name) SLOT(name)'
        echo '#include "xpu_cl_slots.def"'
        # 3. An OBJECT stub's parameter count, errcode_ret last: a call with that many arguments,
        #    the last a cl_int *, must compile against Khronos' prototype (in sizeof: never made).
        #    The Direct3D and DX9 calls have no prototype outside Windows' headers.
        sed -n 's/^OBJECT(\([A-Za-z0-9_]*\), \([0-9]*\))$/\1 \2/p' "$slots" | grep -vE 'D3D|DX9' |
            while read -r name parameters; do
                [[ $parameters == 0 ]] && continue
                arguments=$(printf '0, %.0s' $(seq 2 "$parameters"))
                echo "_Static_assert(sizeof($name(${arguments}(cl_int *)0)) > 0, \"$name: errcode_ret is not parameter $parameters of $parameters\");"
            done
    } > "$work/check.c"
    if ! "$CC" -std=c11 -fsyntax-only -Werror -Wno-deprecated-declarations -I"$INCLUDE" -I"$work" "$work/check.c" 2> "$work/check.log"; then
        echo "check-opencl-abi: FAIL: $(basename "$header") or the dispatch slots disagree with Khronos' headers:"
        grep -E "error|note: previous" "$work/check.log" | sed 's/^/    /' | head -40
        return 1
    fi
}

check "$HEADER" "$SLOTS" "$WORK/header"
echo "check-opencl-abi: $(basename "$HEADER") and $(grep -cE '^[A-Z]+\(' "$SLOTS") dispatch slots agree with Khronos' headers in $INCLUDE/CL"

if [[ $SELF_TEST == 1 ]]; then
    broken=0
    # Each break must be caught: a constant's value, a typedef, a prototype, a slot's order.
    sed 's/^#define CL_INVALID_KERNEL -48$/#define CL_INVALID_KERNEL -47/' "$HEADER" > "$WORK/constant.h"
    sed 's/^typedef uint32_t cl_uint;$/typedef uint16_t cl_uint;/' "$HEADER" > "$WORK/typedef.h"
    sed 's/^cl_int clFinish(cl_command_queue command_queue);$/cl_int clFinish(cl_command_queue command_queue, int extra);/' "$HEADER" > "$WORK/prototype.h"
    python3 - "$SLOTS" "$WORK/slots.def" <<'PY'
import sys
lines = open(sys.argv[1]).read().splitlines()
i = next(n for n, l in enumerate(lines) if l.startswith("SERVED(clGetPlatformInfo)"))
lines[i], lines[i + 1] = lines[i + 1], lines[i]
open(sys.argv[2], "w").write("\n".join(lines) + "\n")
PY
    sed 's/^OBJECT(clCreateImage2D, 8)$/OBJECT(clCreateImage2D, 7)/' "$SLOTS" > "$WORK/arity.def"
    for case in constant typedef prototype; do
        cmp -s "$HEADER" "$WORK/$case.h" && { echo "check-opencl-abi: self-test could not break the $case"; broken=1; continue; }
        cp "$(dirname "$HEADER")/CXPUOpenCLLibrary.h" "$WORK/" 2>/dev/null || true
        if check "$WORK/$case.h" "$SLOTS" "$WORK/self-$case" > /dev/null; then
            echo "check-opencl-abi: self-test FAIL: a broken $case was not caught"
            broken=1
        fi
    done
    if check "$HEADER" "$WORK/slots.def" "$WORK/self-slots" > /dev/null; then
        echo "check-opencl-abi: self-test FAIL: swapped dispatch slots were not caught"
        broken=1
    fi
    if cmp -s "$SLOTS" "$WORK/arity.def" || check "$HEADER" "$WORK/arity.def" "$WORK/self-arity" > /dev/null; then
        echo "check-opencl-abi: self-test FAIL: a wrong errcode_ret position was not caught"
        broken=1
    fi
    [[ $broken == 0 ]] || exit 1
    echo "check-opencl-abi: self-test: every broken copy was caught"
fi
