# The Python environment numba-cuda's suite runs in (scripts/numba-suite.sh), made when missing:
#
#   . scripts/lib/numba-env.sh && python=$(xpu_numba_env)
#
# A virtual environment of its own, .build-numba/venv, with pinned wheels: numba-cuda, the CUDA
# components it compiles with (NVVM, the runtime headers, NVRTC, CCCL), what its tests import, and
# no nvJitLink, so that cuda.core's Linker uses the driver's linker (cuLink*), the path this suite
# checks. Prints the environment's python on standard output; what it installs goes to standard
# error.

XPU_NUMBA_PIP_PACKAGES=(
    numba-cuda==0.30.4          # the client under test (pulls numba, llvmlite, cuda-bindings, cuda-core)
    nvidia-nvvm==13.5.37        # libNVVM: numba-cuda compiles Python kernels to PTX with it
    nvidia-cuda-runtime==13.5.37 # CUDA headers that numba-cuda's C++ interop tests compile against
    nvidia-cuda-nvrtc==13.5.37  # NVRTC: the tests that link CUDA C++ sources
    nvidia-cuda-cccl==13.3.5.0.6 # libcu++ headers (cuda/atomic): numba's runtime (NRT) compiled by NVRTC
    pytest==9.2.0               # numba.cuda.testing imports it; test modules skip themselves with it
    cffi==2.1.1                 # the tests of calling C functions from kernels
    filecheck==1.0.6            # the tests that check generated PTX and LLVM IR
    ml-dtypes==0.6.0            # the bfloat16 and float8 tests
)

xpu_numba_env() {
    local venv=.build-numba/venv
    if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" - "${XPU_NUMBA_PIP_PACKAGES[@]}" <<'PY' >/dev/null 2>&1
import sys
from importlib import metadata
for spec in sys.argv[1:]:
    name, version = spec.split("==")
    if metadata.version(name) != version:
        sys.exit(1)
PY
    then
        echo "numba-env: installing ${XPU_NUMBA_PIP_PACKAGES[*]} into $venv" >&2
        python3 -m venv "$venv" >&2 || return 1
        "$venv/bin/pip" install --quiet --disable-pip-version-check "${XPU_NUMBA_PIP_PACKAGES[@]}" >&2 || return 1
    fi
    if "$venv/bin/python" -c "import importlib.metadata as m; m.version('nvidia-nvjitlink')" >/dev/null 2>&1; then
        echo "numba-env: nvidia-nvjitlink is installed in $venv: numba-cuda would not use the driver's linker" >&2
        return 1
    fi
    echo "$(pwd)/$venv/bin/python"
}
