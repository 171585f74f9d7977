# Virtual environments for the Python clients that the framework tests run through the shim,
# one function per client, each making its own environment under .venv-clients/<client>/ so the
# clients' wheels (several GiB for PyTorch) never meet the project's .venv/ or each other:
#
#   . scripts/lib/python-clients.sh && xpu_client_cupy     (prints the environment's python)
#
# Each function installs the pinned wheels when the environment lacks them, prints one line per
# thing it installs to stderr, and prints the environment's python3 path on stdout. Versions are
# pinned so a CI run installs what the tests were written against.

XPU_CLIENTS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/.venv-clients

# Makes .venv-clients/<name> holding the given requirement specifiers; prints its python3.
xpu_client_venv() {
    local name=$1
    shift
    local venv=$XPU_CLIENTS_ROOT/$name
    local python=$venv/bin/python3
    if [ ! -x "$python" ]; then
        mkdir -p "$XPU_CLIENTS_ROOT"
        python3 -m venv "$venv" >/dev/null 2>&1 || {
            rm -rf "$venv"
            echo "python-clients: python3 -m venv failed (install python3-venv)" >&2
            return 1
        }
    fi
    local missing
    missing=$("$python" - "$@" <<'PY'
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
    ) || return 1
    missing=$(echo "$missing" | tr '\n' ' ')
    missing=${missing% }
    if [ -n "$missing" ]; then
        echo "python-clients: installing into .venv-clients/$name: $missing" >&2
        local log
        log=$(mktemp)
        # shellcheck disable=SC2086 # $missing is a list of requirement specifiers
        if ! "$python" -m pip install --quiet --disable-pip-version-check $missing >"$log" 2>&1; then
            cat "$log" >&2
            rm -f "$log"
            echo "python-clients: pip could not install into .venv-clients/$name: $missing" >&2
            return 1
        fi
        rm -f "$log"
    fi
    echo "$python"
}

# CuPy for CUDA 13 with NVRTC (CuPy compiles kernels on the client; CUPY_COMPILE_WITH_PTX=1
# makes it hand PTX to cuModuleLoadData, which the simulated device can run).
xpu_client_cupy() {
    xpu_client_venv cupy \
        cupy-cuda13x==14.2.0 \
        nvidia-cuda-nvrtc==13.5.37 \
        nvidia-cuda-runtime==13.5.37
}

# cuda.core (Program -> PTX -> ObjectCode -> launch) with its bindings and NVRTC.
xpu_client_cuda_core() {
    xpu_client_venv cuda-core \
        cuda-core==1.2.2 \
        cuda-bindings==13.5.0 \
        cuda-pathfinder==1.9.0 \
        nvidia-cuda-nvrtc==13.5.37
}

# PyTorch from PyPI (CUDA 13 wheels; several GiB with its NVIDIA libraries).
xpu_client_torch() {
    xpu_client_venv torch \
        torch==2.15.0
}
