#!/usr/bin/env bash
# scripts/check-shim-symbols.sh DIST_DIR: checks the shim that scripts/build.sh put in DIST_DIR.
#
#   1. DIST_DIR/lib/libxpushim.so exports (nm -D --defined-only) only symbols matching
#      ALLOWED_EXPORTS below, plus the version-node names the version script defines (absolute
#      symbols that `readelf -V` lists as version definitions). Anything else fails: a leaked
#      Swift runtime or C helper symbol would override the host program's own.
#   2. ldd shows no dependency on the Swift runtime (libswift*, libFoundation*, libdispatch,
#      libBlocksRuntime): the shim must load on hosts without a Swift toolchain.
#   3. Every name in proto/cuda-exports.txt is exported (an application may look any of them up).
#   4. The names programs link against are NVIDIA's: DIST_DIR/lib/libcuda.so.1 is the shim with
#      SONAME libcuda.so.1; DIST_DIR/lib/libnvidia-ml.so.1 has SONAME libnvidia-ml.so.1, is a
#      filter (DT_FILTER) on libcuda.so.1, and defines exactly the names of
#      proto/nvml-exports.txt, every one of which the shim defines (the filter's symbols resolve
#      there at run time).
#   5. Nothing of the server's libraries is in it: no name of swift-nio's, swift-nio-ssl's or
#      swift-crypto's modules (BoringSSL included) anywhere in the file, symbols or metadata.
#
# Prints a summary and exits 1 on any failure, 2 on a usage error.
set -euo pipefail

# The driver and management APIs, and the one xpu_* entry point of the shim (xpu-bench looks
# it up); every other xpu_* helper must stay local (proto/exports.map).
ALLOWED_EXPORTS='^(cu|nvml)|^xpu_shim_set_compression$'
SERVER_LIBRARIES='NIOCore|NIOPosix|NIOHTTP1|NIOSSL|BoringSSL'
FORBIDDEN_DEPENDENCIES='lib(swift[A-Za-z0-9_]*|Foundation[A-Za-z0-9_]*|dispatch|BlocksRuntime)\.so'

if [[ $# -ne 1 ]]; then
    echo "usage: $0 DIST_DIR   (checks DIST_DIR/lib/libxpushim.so)" >&2
    exit 2
fi
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LIB="$1/lib/libxpushim.so"
EXPORT_LIST="${XPU_EXPORT_LIST:-$ROOT/proto/cuda-exports.txt}"
NVML_EXPORT_LIST="$ROOT/proto/nvml-exports.txt"
CUDA_LIB="$1/lib/libcuda.so.1"
NVML_LIB="$1/lib/libnvidia-ml.so.1"

if [[ ! -f "$LIB" ]]; then
    echo "check-shim-symbols: FAIL: $LIB does not exist (run scripts/build.sh first)" >&2
    exit 1
fi
for tool in nm readelf ldd; do
    command -v "$tool" > /dev/null || { echo "check-shim-symbols: FAIL: $tool is not installed" >&2; exit 1; }
done

failures=0
fail() {
    echo "check-shim-symbols: FAIL: $*"
    failures=$((failures + 1))
}

# Defined dynamic symbols, without @VERSION suffixes: "TYPE NAME" per line.
# Only global and weak symbols are exported: entries the linker demoted to local (lowercase types,
# the statically linked Swift runtime's metadata for one) stay in .dynsym but resolve nothing.
symbols=$(nm -D --defined-only "$LIB" | awk '{ name = $NF; sub(/@.*/, "", name); type = $(NF - 1); if (type ~ /^[A-Zuvw]$/) print type, name }' | sort -u)
# Version definitions of the library (names of the version nodes; index 1 is the file itself).
version_nodes=$(readelf -V --wide "$LIB" 2> /dev/null \
    | awk '/Version definition section/ { d = 1; next } /Version needs section|Version symbols section/ { d = 0 } d && /Name:/ { for (i = 1; i <= NF; i++) if ($i == "Name:") print $(i + 1) }' \
    | sort -u)

exported=$(awk '{ print $2 }' <<< "$symbols" | sort -u)
unexpected=()
while read -r type name; do
    [[ -z "$name" ]] && continue
    if [[ "$name" =~ $ALLOWED_EXPORTS ]]; then
        continue
    fi
    if [[ "$type" == "A" ]] && grep -qxF -- "$name" <<< "$version_nodes"; then
        continue  # a version node the linker defines, e.g. the version script's node name
    fi
    unexpected+=("$name ($type)")
done <<< "$symbols"
if [[ ${#unexpected[@]} -gt 0 ]]; then
    fail "${#unexpected[@]} exported symbols outside ${ALLOWED_EXPORTS}:"
    printf '    %s\n' "${unexpected[@]:0:40}"
    [[ ${#unexpected[@]} -le 40 ]] || echo "    ... and $((${#unexpected[@]} - 40)) more"
fi

forbidden=$(ldd "$LIB" 2>&1 | grep -E "$FORBIDDEN_DEPENDENCIES" || true)
if [[ -n "$forbidden" ]]; then
    fail "links the Swift runtime dynamically:"
    sed 's/^[[:space:]]*/    /' <<< "$forbidden"
fi

server_code=$(grep -aoE "$SERVER_LIBRARIES" "$LIB" | sort | uniq -c || true)
if [[ -n "$server_code" ]]; then
    fail "holds code of the server's libraries (names found, with counts):"
    sed 's/^[[:space:]]*/    /' <<< "$server_code"
fi

cu_count=$(grep -c '^cu' <<< "$exported" || true)
missing=()
expected_count=0
if [[ -f "$EXPORT_LIST" ]]; then
    mapfile -t expected < <(grep -vE '^[[:space:]]*(#|$)' "$EXPORT_LIST" | awk '{ print $1 }' | sort -u)
    expected_count=${#expected[@]}
    mapfile -t missing < <(comm -23 <(printf '%s\n' "${expected[@]}") <(printf '%s\n' "$exported"))
    if [[ ${#missing[@]} -gt 0 ]]; then
        fail "${#missing[@]} of $expected_count driver entry points in ${EXPORT_LIST#"$ROOT"/} are not exported:"
        printf '    %s\n' "${missing[@]:0:40}"
        [[ ${#missing[@]} -le 40 ]] || echo "    ... and $((${#missing[@]} - 40)) more"
    fi
else
    fail "export list $EXPORT_LIST not found"
fi

# The dynamic section entry TAG of FILE, e.g. "libcuda.so.1" for SONAME (empty when absent).
dynamic_entry() {
    readelf -d "$1" 2> /dev/null | awk -v tag="($2)" '$2 == tag { value = $NF; gsub(/^\[|\]$/, "", value); print value }'
}
nvml_names() {
    grep -vE '^[[:space:]]*(#|$)' "$NVML_EXPORT_LIST" | awk '{ print $1 }' | sort -u
}
if ! cmp -s "$LIB" "$CUDA_LIB"; then
    fail "$CUDA_LIB is missing or differs from $LIB"
fi
[[ "$(dynamic_entry "$LIB" SONAME)" == "libcuda.so.1" ]] \
    || fail "$LIB has SONAME '$(dynamic_entry "$LIB" SONAME)', not libcuda.so.1"
if [[ ! -f "$NVML_LIB" || -L "$NVML_LIB" ]]; then
    fail "$NVML_LIB is missing or a symbolic link (it must be the filter library)"
else
    [[ "$(dynamic_entry "$NVML_LIB" SONAME)" == "libnvidia-ml.so.1" ]] \
        || fail "$NVML_LIB has SONAME '$(dynamic_entry "$NVML_LIB" SONAME)', not libnvidia-ml.so.1"
    [[ "$(dynamic_entry "$NVML_LIB" FILTER)" == "libcuda.so.1" ]] \
        || fail "$NVML_LIB is not a filter on libcuda.so.1 (DT_FILTER '$(dynamic_entry "$NVML_LIB" FILTER)')"
    filter_names=$(nm -D --defined-only "$NVML_LIB" | awk '$(NF - 1) ~ /^[TWi]$/ { print $NF }' | sort -u)
    if [[ "$filter_names" != "$(nvml_names)" ]]; then
        fail "$NVML_LIB does not define exactly the names of ${NVML_EXPORT_LIST#"$ROOT"/}:"
        diff <(nvml_names) <(printf '%s\n' "$filter_names") | grep '^[<>]' | head -20 | sed 's/^/    /'
    fi
fi
mapfile -t nvml_missing < <(comm -23 <(nvml_names) <(printf '%s\n' "$exported"))
if [[ ${#nvml_missing[@]} -gt 0 ]]; then
    fail "${#nvml_missing[@]} NVML entry points the filter forwards are not defined by the shim:"
    printf '    %s\n' "${nvml_missing[@]:0:40}"
fi

# The OpenCL library: only cl* exported (the served calls and clIcdGetPlatformIDsKHR), no Swift
# runtime linked, and bound to its own functions (-Bsymbolic), as under the ICD loader it must be.
OPENCL_LIB="$1/lib/libxpu-opencl.so"
opencl_exported=""
if [[ ! -f "$OPENCL_LIB" ]]; then
    fail "$OPENCL_LIB does not exist"
else
    # Global and weak definitions only: the static Swift runtime's protected data lands in .dynsym
    # as LOCAL entries (lowercase in nm), which no other object can bind to.
    opencl_exported=$(nm -D --defined-only "$OPENCL_LIB" | awk '$2 ~ /^[A-Zuvw]$/ && $2 != "A" { print $3 }' | sed 's/@.*//' | sort -u)
    opencl_unexpected=$(grep -vE '^cl' <<< "$opencl_exported" || true)
    [[ -z "$opencl_unexpected" ]] || { fail "$OPENCL_LIB exports symbols outside cl*:"; head -20 <<< "$opencl_unexpected" | sed 's/^/    /'; }
    grep -qx clIcdGetPlatformIDsKHR <<< "$opencl_exported" || fail "$OPENCL_LIB does not export clIcdGetPlatformIDsKHR"
    ! ldd "$OPENCL_LIB" 2>&1 | grep -qE "$FORBIDDEN_DEPENDENCIES" || fail "$OPENCL_LIB links the Swift runtime dynamically"
    readelf -d "$OPENCL_LIB" | grep -qE 'SYMBOLIC' || fail "$OPENCL_LIB is not linked with -Bsymbolic"
    cmp -s "$OPENCL_LIB" "$1/lib/libOpenCL.so.1" || fail "$1/lib/libOpenCL.so.1 is missing or differs from $OPENCL_LIB"
fi

dependencies=$(ldd "$LIB" 2>&1 | awk '$2 == "=>" { printf "%s ", $1 }' || true)
echo "check-shim-symbols: $OPENCL_LIB: $(grep -c . <<< "$opencl_exported" || true) cl* symbols exported"
echo "check-shim-symbols: $LIB"
echo "    exported: $(wc -l <<< "$exported" | tr -d ' ') symbols, $cu_count cu*, $(grep -c '^xpu_' <<< "$exported" || true) xpu_*"
echo "    driver entry points: $((expected_count - ${#missing[@]})) of $expected_count from the export list"
echo "    depends on: ${dependencies:-nothing}"
echo "    SONAMEs: $(dynamic_entry "$LIB" SONAME), $(dynamic_entry "$NVML_LIB" SONAME) (filter on $(dynamic_entry "$NVML_LIB" FILTER))"
if [[ $failures -gt 0 ]]; then
    echo "check-shim-symbols: FAILED ($failures problems)"
    exit 1
fi
echo "check-shim-symbols: OK"
