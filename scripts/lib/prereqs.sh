# What scripts/demo.sh and scripts/test.sh need besides Swift, installed when missing.
#
#   . scripts/lib/prereqs.sh && xpu_prereqs    (or run scripts/lib/prereqs.sh on its own)
#
# Debian packages come from apt-get (as root, or through sudo); the Python wheels go into the
# project's own virtual environment, .venv/, which xpu_prereqs puts first on PATH, so the system's
# Python is never changed. Where a wheel set is already importable by python3, nothing is made.
# Prints one line per thing it installs and nothing otherwise. Where it cannot install (not root
# and no sudo, no network), it stops with one line naming what is missing.
#
# To add a prerequisite: one line in the list it belongs to, with why the project needs it.

XPU_APT_PACKAGES=(
    gcc            # C compiler: test programs, the ABI checks, the demo, libnvidia-ml.so.1's filter
    g++            # C++ compiler: nvcc's host compiler for the CUDA runtime programs (Tests/runtime)
    libc6-dev      # C library headers and start files for those programs
    binutils       # nm, readelf: scripts/check-shim-symbols.sh
    openssl        # throwaway certificates for the TLS tests and xpu-bench transports
    libzstd1       # the simulated device decompresses CUDA 13's zstd fatbinaries (dlopen)
    liblz4-dev     # LZ4 for bulk data (the shim and server dlopen liblz4.so.1)
    libssl-dev     # OpenSSL 3 headers for the TLS transport (CXPUTLS)
    librdmacm-dev  # rdma/rdma_cma.h for the RDMA transport (CXPUVerbs)
    libibverbs-dev # infiniband/verbs.h for the RDMA transport (CXPUVerbs)
    python3        # the wheels below; export-list, ABI and fuzz-seed scripts
    python3-venv   # .venv/ for the wheels where the system's Python is externally managed
    iproute2       # ip netns and veth: the network-fault tests put client and server in two namespaces
    nftables       # nft: loss and partitions inside those namespaces (network-fault tests)
    ocl-icd-libopencl1 # the OpenCL ICD loader (libOpenCL.so.1): the server's OpenCL backend and the OpenCL tests
    pocl-opencl-icd    # PoCL, an OpenCL platform on the CPU: what --device opencl serves in the tests
    opencl-c-headers   # Khronos' CL/*.h: Tests/ABI/check-opencl-abi.sh and the OpenCL test programs
    clinfo             # an OpenCL client nobody here wrote, run through the ICD
    spin           # model-checks the compute scheduler's wait/notify protocol (scripts/check-models.sh)
)

# Versions are pinned: proto/cuda-exports.txt and proto/nvml-exports.txt were extracted from these
# headers, and CI checks they still agree.
XPU_PIP_PACKAGES=(
    nvidia-cuda-runtime==13.5.37 # cuda.h: the ABI check, the demo's and the tests' C programs
    nvidia-cuda-nvcc==13.5.37    # nvcc: the test kernels (Tests/kernels) to PTX, the runtime programs (Tests/runtime)
    nvidia-nvml-dev==13.5.37     # nvml.h: the NVML ABI check and the NVML test client
    nvidia-ml-py==13.615.71      # pynvml: the NVML tests run it through the shim
    gpustat==1.1.1               # gpustat: the NVML tests run it through the shim
    kubernetes-validate==1.37.0  # scripts/check-deploy.sh: deploy/ against the Kubernetes 1.36 API
    jsonschema==4.26.0           # scripts/check-cdi-specs.py: the plugin's CDI specs against proto/cdi/spec.schema.json
    pyopencl==2026.1.4           # scripts/opencl-suite.sh runs pyopencl's own test suite (its sdist, same version) on it
    mako==1.4.3                  # pyopencl's templated kernels (pyopencl.algorithm, scan, reductions) for that suite
    pytest==9.0.3                # runs that suite
)

xpu_prereqs_fail() {
    echo "prereqs: $*" >&2
    return 1
}

# Debian packages in XPU_APT_PACKAGES that are not installed (none on a system without dpkg).
xpu_prereqs_missing_apt() {
    command -v dpkg-query >/dev/null || return 0
    local package
    for package in "${XPU_APT_PACKAGES[@]}"; do
        [ "$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null)" = "install ok installed" ] || echo "$package"
    done
}

# Wheels in XPU_PIP_PACKAGES that python3 lacks at the pinned version.
xpu_prereqs_missing_pip() {
    python3 - "${XPU_PIP_PACKAGES[@]}" <<'PY'
import sys
from importlib import metadata
for spec in sys.argv[1:]:
    name, version = spec.split("==")
    try:
        if metadata.version(name) != version:
            print(spec)
    except metadata.PackageNotFoundError:
        print(spec)
PY
}

xpu_prereqs_apt() {
    local missing
    missing=$(xpu_prereqs_missing_apt | tr '\n' ' ')
    missing=${missing% }
    [ -n "$missing" ] || return 0
    local as_root=()
    if [ "$(id -u)" != 0 ]; then
        if command -v sudo >/dev/null && { sudo -n true 2>/dev/null || [ -t 0 ]; }; then
            as_root=(sudo)
        else
            xpu_prereqs_fail "missing Debian packages: $missing (as root: apt-get install $missing)"
            return 1
        fi
    fi
    echo "prereqs: installing Debian packages: $missing"
    local log
    log=$(mktemp)
    # shellcheck disable=SC2086 # $missing is a list of package names
    if ! { "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -qq -o DPkg::Lock::Timeout=300 update \
        && "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -qq -o DPkg::Lock::Timeout=300 \
            install -y --no-install-recommends $missing; } >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        xpu_prereqs_fail "apt-get could not install: $missing"
        return 1
    fi
    rm -f "$log"
}

xpu_prereqs_pip() {
    local venv=$XPU_PREREQS_ROOT/.venv
    [ -x "$venv/bin/python3" ] && export PATH="$venv/bin:$PATH"
    local missing
    missing=$(xpu_prereqs_missing_pip | tr '\n' ' ')
    missing=${missing% }
    [ -n "$missing" ] || return 0
    if [ ! -x "$venv/bin/python3" ]; then
        python3 -m venv "$venv" >/dev/null 2>&1 || {
            rm -rf "$venv"
            xpu_prereqs_fail "python3 -m venv failed (install python3-venv) and python3 lacks: $missing"
            return 1
        }
        export PATH="$venv/bin:$PATH"
        missing=$(xpu_prereqs_missing_pip | tr '\n' ' ')
        missing=${missing% }
    fi
    echo "prereqs: installing Python wheels into .venv/: $missing"
    local log
    log=$(mktemp)
    # shellcheck disable=SC2086 # $missing is a list of requirement specifiers
    if ! python3 -m pip install --quiet --disable-pip-version-check $missing >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        xpu_prereqs_fail "pip could not install into .venv/: $missing"
        return 1
    fi
    rm -f "$log"
}

# Checks and installs everything; on return python3 on PATH imports the wheels.
xpu_prereqs() {
    command -v swift >/dev/null || { xpu_prereqs_fail "swift is not on PATH: install Swift 6.3 (https://swift.org/install)"; return 1; }
    xpu_prereqs_apt || return 1
    command -v python3 >/dev/null || { xpu_prereqs_fail "python3 is not on PATH"; return 1; }
    xpu_prereqs_pip
}

XPU_PREREQS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    xpu_prereqs
    [ ! -d "$XPU_PREREQS_ROOT/.venv" ] || echo "prereqs: the wheels are in .venv/; for swift test by hand: export PATH=\"$XPU_PREREQS_ROOT/.venv/bin:\$PATH\""
fi
