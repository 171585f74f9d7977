# Writes the probe of Tests/ABI/check-abi.sh and check-nvml-abi.sh for one of our headers: the
# exported prototypes, a C program printing every layout, enumerator and define of the header's
# type section (`#ifndef XPU_ABI_CHECK ... #endif`) as static assertions, the typedef identities,
# and the result codes.
#   generate-probe.py HEADER OUT OUR_HEADER_NAME RESULT_TYPE PROTOTYPE_REGEX TOOL
import os, re, sys

header, out, ours, result_type, prototype_pattern, tool = sys.argv[1:7]
text = open(header, encoding="utf-8").read()
text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
text = re.sub(r"//[^\n]*", " ", text)

start = re.search(r"#\s*ifndef\s+XPU_ABI_CHECK\b", text)
end = re.search(r"#\s*endif\b", text[start.end():]) if start else None
if not start or not end:
    sys.exit(f"{tool}: FAIL: the header has no `#ifndef XPU_ABI_CHECK ... #endif` type section")
types = text[start.end():start.end() + end.start()]
rest = text[start.end() + end.end():]
if "#if" in types:
    sys.exit(f"{tool}: FAIL: nested #if in the type section; teach Tests/ABI/generate-probe.py about it")

prototypes = sorted(set(re.findall(prototype_pattern, rest)))
if not prototypes:
    sys.exit(f"{tool}: FAIL: no prototypes found after the type section")

defines = re.findall(r"^\s*#\s*define\s+(\w+)\s+\S", types, re.M)
types_no_pp = re.sub(r"^\s*#.*$", " ", types, flags=re.M)

probe = ['#include <stdio.h>', '#include <stddef.h>', '#include <stdint.h>', '#include "' + ours + '"',
         'int main(void) {']
def emit(expr, fmt, cast, what):
    probe.append(f'    printf("_Static_assert(%s == {fmt}, \\"%s\\");\\n", "{cast}({expr})", ({cast.strip("()") or "long long"})({expr}), "{what}");')

typedef_asserts, results = [], []
for match in re.finditer(r"typedef\s+(struct|enum)\s+(\w+)\s*\{(.*?)\}\s*(\w+)\s*;", types_no_pp, re.S):
    kind, tag, body, name = match.groups()
    typedef_asserts.append(f"_Static_assert(__builtin_types_compatible_p({name}, {kind} {tag}), \"{name} is {kind} {tag}\");")
    emit(f"sizeof({name})", "%lluULL", "(unsigned long long)", f"sizeof({name})")
    if kind == "enum":
        for enumerator in re.findall(r"(\w+)\s*(?:=[^,]*)?(?:,|$)", body.strip()):
            emit(enumerator, "%lldLL", "(long long)", enumerator)
            if name == result_type:
                results.append(enumerator)
    else:
        emit(f"_Alignof({name})", "%lluULL", "(unsigned long long)", f"_Alignof({name})")
        for field in re.findall(r"(\w+)\s*(?:\[[^\]]*\])?\s*;", body):
            emit(f"offsetof({name}, {field})", "%lluULL", "(unsigned long long)", f"offsetof({name}, {field})")
            emit(f"sizeof((({name} *)0)->{field})", "%lluULL", "(unsigned long long)", f"sizeof({name}.{field})")
for_types = re.sub(r"typedef\s+(struct|enum)\s+\w+\s*\{.*?\}\s*\w+\s*;", " ", types_no_pp, flags=re.S)
for match in re.finditer(r"typedef\s+([^;{}]+?)\s*\b(\w+)\s*;", for_types):
    aliased, name = match.groups()
    typedef_asserts.append(f"_Static_assert(__builtin_types_compatible_p({name}, {aliased}), \"{name} is {' '.join(aliased.split())}\");")
for name in defines:
    emit(f"(uintptr_t)({name})", "%lluULL", "(unsigned long long)", name)
probe += ['    return 0;', '}']

open(os.path.join(out, "prototypes.txt"), "w").write("\n".join(prototypes) + "\n")
open(os.path.join(out, "probe.c"), "w").write("\n".join(probe) + "\n")
open(os.path.join(out, "typedefs.c"), "w").write("\n".join(typedef_asserts) + "\n")
open(os.path.join(out, "results.txt"), "w").write("\n".join(results) + "\n")
