#!/usr/bin/env python3
"""Extract the driver API's exported function names from the CUDA 13 cuda.h.

Writes two files under proto/:

  cuda-exports.txt        every function cuda.h declares under any configuration: the normal
                          names, the per-thread (_ptds/_ptsz) variants, and the older unversioned
                          entry points declared only under __CUDA_API_VERSION_INTERNAL; plus the
                          functions of cudaProfiler.h (cuProfiler*), read from the PFN_ typedefs
                          of cudaProfilerTypedefs.h. These are the names a real libcuda.so.1
                          exports and the shim must export too.
  cuda-proc-versions.txt  for cuGetProcAddress: each base name that cuda.h remaps with a #define,
                          the versioned symbol it maps to, and its per-thread variant if any.

cuda.h is run through the C preprocessor (${CC:-cc} -E) once per configuration, so conditional
sections and the __CUDA_API_PTDS/__CUDA_API_PTSZ macros are resolved by the compiler, not by us.

Usage:
  scripts/extract-cuda-exports.py            regenerate both files
  scripts/extract-cuda-exports.py --check    exit 1 if either file differs from what cuda.h gives
  scripts/extract-cuda-exports.py --locate   print the path of cuda.h and exit
Options: --cuda-h PATH (or $XPU_CUDA_H) to use a given cuda.h; --out-dir DIR (default: proto).

Python 3 standard library only.
"""

import argparse
import glob
import os
import re
import shlex
import subprocess
import sys
import sysconfig

# Preprocessor configurations whose union declares every exported symbol under its real name.
CONFIGURATIONS = [
    ("default", []),
    ("per-thread default stream", ["-DCUDA_API_PER_THREAD_DEFAULT_STREAM"]),
    ("internal (all versions)", ["-D__CUDA_API_VERSION_INTERNAL"]),
]

# Names that must come out of any sane cuda.h; a parse that misses one is a bug in this script.
EXPECTED = [
    "cuInit", "cuCtxCreate", "cuCtxCreate_v2", "cuCtxCreate_v4", "cuMemAlloc", "cuMemAlloc_v2",
    "cuMemcpyHtoD", "cuMemcpyHtoD_v2", "cuMemcpyHtoD_v2_ptds", "cuLaunchKernel",
    "cuLaunchKernel_ptsz", "cuGetProcAddress", "cuGetProcAddress_v2",
]


def locate_cuda_h(explicit=None):
    """Finds cuda.h: an explicit path, $XPU_CUDA_H, the nvidia.cu13 package, or site-packages."""
    candidates = []
    for path in (explicit, os.environ.get("XPU_CUDA_H")):
        if path:
            return path if os.path.isfile(path) else None
    try:
        import nvidia.cu13 as cu13  # a namespace package: no __file__, but a __path__

        candidates += [os.path.join(p, "include", "cuda.h") for p in cu13.__path__]
    except ImportError:
        pass
    roots = {sysconfig.get_paths().get(key) for key in ("purelib", "platlib")}
    roots |= {p for p in sys.path if p.endswith("site-packages")}
    for root in sorted(r for r in roots if r):
        candidates += sorted(glob.glob(os.path.join(root, "nvidia", "cu13", "include", "cuda.h")))
        candidates += sorted(glob.glob(os.path.join(root, "nvidia", "cuda_runtime", "include", "cuda.h")))
    for path in candidates:
        if os.path.isfile(path):
            return path
    return None


def preprocess(cuda_h, defines):
    cc = shlex.split(os.environ.get("CC", "cc"))
    cmd = cc + ["-E", "-P", "-x", "c", *defines, cuda_h]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"extract-cuda-exports: preprocessing failed: {' '.join(cmd)}\n{result.stderr}")
    return result.stdout


def strip_bodies(text):
    """Replaces every balanced {...} with {} so that only top-level declarations remain."""
    out, depth = [], 0
    for ch in text:
        if ch == "{":
            if depth == 0:
                out.append("{}")
            depth += 1
        elif ch == "}":
            depth -= 1
        elif depth == 0:
            out.append(ch)
    return "".join(out)


ATTRIBUTE = re.compile(r"__attribute__\s*\(\((?:[^()]|\([^()]*\))*\)\)")
DECLARATOR = re.compile(r"\b(cu[A-Za-z0-9_]*)\s*$")


def declared_functions(preprocessed):
    """Names of the cu* functions declared (not defined inline, not typedef'd) at file scope."""
    text = "\n".join(line for line in preprocessed.splitlines() if not line.lstrip().startswith("#"))
    text = ATTRIBUTE.sub(" ", strip_bodies(text))
    names = set()
    for statement in re.split(r";|\{\}", text):
        statement = " ".join(statement.split())
        if not statement or "(" not in statement:
            continue
        words = statement.split("(", 1)[0].split()
        if {"typedef", "static", "inline"} & set(words):
            continue
        match = DECLARATOR.search(statement.split("(", 1)[0])
        if match and len(words) >= 2:  # a return type, then the name
            names.add(match.group(1))
    return names


DEFINE = re.compile(r"^\s*#\s*define\s+(cu[A-Za-z0-9_]*)\s+(.+?)\s*$")
PER_THREAD = re.compile(r"^__CUDA_API_(PTDS|PTSZ)\(\s*(cu[A-Za-z0-9_]*)\s*\)$")
IDENTIFIER = re.compile(r"^cu[A-Za-z0-9_]*$")


def proc_versions(cuda_h_text):
    """base -> (versioned, per-thread variant or None), from cuda.h's versioning #defines.

    The #defines sit before the types (before `#define CUDA_VERSION`); the ones inside the
    per-thread block map a name to its own _ptsz/_ptds form only under per-thread default stream.
    """
    mapping = {}
    for line in cuda_h_text.splitlines():
        if re.match(r"^\s*#\s*define\s+CUDA_VERSION\b", line):
            break
        match = DEFINE.match(line)
        if not match:
            continue
        base, target = match.groups()
        per_thread = PER_THREAD.match(target)
        if per_thread:
            kind, versioned = per_thread.groups()
            entry = (versioned, f"{versioned}_{kind.lower()}")
        elif IDENTIFIER.match(target):
            entry = (target, None)
        else:
            sys.exit(f"extract-cuda-exports: cannot read the mapping of {base}: {target!r}")
        if mapping.get(base, entry) != entry:
            sys.exit(f"extract-cuda-exports: {base} is mapped twice: {mapping[base]} and {entry}")
        mapping[base] = entry
    return mapping


def cuda_version(cuda_h_text):
    match = re.search(r"^\s*#\s*define\s+CUDA_VERSION\s+(\d+)", cuda_h_text, re.M)
    return int(match.group(1)) if match else None


# Headers next to cuda.h that declare more functions libcuda.so.1 exports. The wheel ships
# cudaProfilerTypedefs.h (one PFN_<name>_v<version> typedef per function of cudaProfiler.h)
# without cudaProfiler.h itself, so these names come from the typedefs.
TYPEDEF_HEADERS = ["cudaProfilerTypedefs.h"]
PFN = re.compile(r"\bPFN_(cu[A-Za-z0-9]+)_v\d+\b")


def typedef_functions(cuda_h):
    """Names of the functions the TYPEDEF_HEADERS next to cuda.h give a PFN_ typedef for."""
    names = set()
    for header in TYPEDEF_HEADERS:
        path = os.path.join(os.path.dirname(cuda_h), header)
        if not os.path.isfile(path):
            sys.exit(f"extract-cuda-exports: {path} is missing (it ships with cuda.h in the wheel)")
        with open(path) as f:
            names |= set(PFN.findall(f.read()))
    if not names:
        sys.exit("extract-cuda-exports: no PFN_ typedefs found; fix this script")
    return names


def render(cuda_h, cuda_h_text):
    exports = set()
    for _, defines in CONFIGURATIONS:
        exports |= declared_functions(preprocess(cuda_h, defines))
    outside = typedef_functions(cuda_h) - exports
    exports |= outside
    missing = [name for name in EXPECTED if name not in exports]
    if missing:
        sys.exit(f"extract-cuda-exports: the parse missed {', '.join(missing)}; fix this script")

    mapping = proc_versions(cuda_h_text)
    for base, (versioned, per_thread) in sorted(mapping.items()):
        for name in (versioned, per_thread):
            if name and name not in exports:
                sys.exit(f"extract-cuda-exports: {base} maps to {name}, which cuda.h never declares")

    version = cuda_version(cuda_h_text)
    version_text = f"{version // 1000}.{version % 1000 // 10} (CUDA_VERSION {version})" if version else "unknown"
    configs = "; ".join(f"{label}: {' '.join(d) or '(no defines)'}" for label, d in CONFIGURATIONS)
    source = "cuda.h from the PyPI wheel nvidia-cuda-runtime"

    exports_lines = [
        "# Function symbols a real libcuda.so.1 exports, as far as cuda.h and its companion headers declare them.",
        f"# Source: {source}, CUDA {version_text}.",
        "# Produced by scripts/extract-cuda-exports.py: the union of the functions cuda.h declares",
        f"# when preprocessed in each configuration ({configs}),",
        f"# and of those declared outside cuda.h that {', '.join(TYPEDEF_HEADERS)} types ({', '.join(sorted(outside))}).",
        "# Regenerate with scripts/extract-cuda-exports.py; CI runs it with --check.",
        f"# {len(exports)} names, one per line, sorted.",
    ] + sorted(exports)

    proc_lines = [
        "# cuGetProcAddress name mapping: base versioned [perThreadVariant]",
        f"# Source: the versioning #defines at the top of {source}, CUDA {version_text}.",
        "# `versioned` is the symbol a base name means for this CUDA version; `perThreadVariant` is",
        "# the symbol it means with CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM (the",
        "# __CUDA_API_PTDS/__CUDA_API_PTSZ forms). Names not listed here map to themselves and",
        "# have no per-thread variant. Produced by scripts/extract-cuda-exports.py.",
    ] + [
        " ".join(filter(None, (base, versioned, per_thread)))
        for base, (versioned, per_thread) in sorted(mapping.items())
    ]
    return {
        "cuda-exports.txt": "\n".join(exports_lines) + "\n",
        "cuda-proc-versions.txt": "\n".join(proc_lines) + "\n",
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cuda-h", help="path of cuda.h (default: $XPU_CUDA_H or the installed wheel)")
    parser.add_argument("--out-dir", default=os.path.join(os.path.dirname(__file__), "..", "proto"))
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    parser.add_argument("--locate", action="store_true", help="print the path of cuda.h and exit")
    args = parser.parse_args()

    cuda_h = locate_cuda_h(args.cuda_h)
    if not cuda_h:
        sys.exit("extract-cuda-exports: cuda.h not found; `pip install nvidia-cuda-runtime` "
                 "or set XPU_CUDA_H=/path/to/cuda.h")
    if args.locate:
        print(os.path.abspath(cuda_h))
        return 0
    with open(cuda_h, encoding="utf-8", errors="replace") as handle:
        cuda_h_text = handle.read()

    stale = []
    for name, content in render(cuda_h, cuda_h_text).items():
        path = os.path.normpath(os.path.join(args.out_dir, name))
        if args.check:
            try:
                with open(path, encoding="utf-8") as handle:
                    current = handle.read()
            except FileNotFoundError:
                current = None
            if current != content:
                stale.append(path)
        else:
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(content)
            print(f"wrote {path} ({content.count(chr(10))} lines)")
    if stale:
        print("extract-cuda-exports: out of date with " + cuda_h + ": " + ", ".join(stale), file=sys.stderr)
        print("run scripts/extract-cuda-exports.py and commit the result", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
