#!/usr/bin/env python3
"""Validates CDI specs written by xpu-kube's plugin: against our JSON schema of the CDI spec
(proto/cdi/spec.schema.json, draft 2020-12, with python jsonschema) and against rules of our own
that the schema cannot state or that hold for our specs only. Before the specs, it checks that a
set of specs a runtime (or our rules) would refuse are refused, so that a schema or rule that
accepts everything fails this check too.

    check-cdi-specs.py SCHEMA SPEC.json...

Our rules (beyond the schema):
  - kind is xpu-remote.io/slice, with exactly one device carrying env and mounts;
  - cdiVersion is exactly the lowest version the spec's fields need: lower is refused by
    runtimes, higher is refused by runtimes that predate it;
  - no variable is set twice; exactly one of XPU_POOL and XPU_SERVER; XPU_SLICE is set;
    LD_LIBRARY_PATH starts with the shim's directory; no XPU_TOKEN (the token is a file);
  - every mount is a read-only bind of an absolute host path, no container path twice; the shim
    is mounted as libcuda.so.1 and libnvidia-ml.so.1 in LD_LIBRARY_PATH's first directory;
  - XPU_TOKEN_FILE and XPU_TLS_CA, when set, name a mounted file.
"""
import copy
import json
import sys

from jsonschema import Draft202012Validator

KIND = "xpu-remote.io/slice"
VERSIONS = ["0.3.0", "0.4.0", "0.5.0", "0.6.0", "0.7.0", "0.8.0", "1.0.0", "1.1.0"]


def all_edits(spec):
    edits = [spec.get("containerEdits") or {}]
    return edits + [d.get("containerEdits") or {} for d in spec.get("devices", [])]


def needed_version(spec):
    """The lowest cdiVersion whose fields the spec uses (SPEC.md, "Released versions")."""
    edits = all_edits(spec)
    if any(e.get("netDevices") for e in edits) or any(
        "schemata" in (e.get("intelRdt") or {}) or (e.get("intelRdt") or {}).get("enableMonitoring") for e in edits
    ):
        return "1.1.0"
    if any("intelRdt" in e or e.get("additionalGids") for e in edits):
        return "0.7.0"
    kind_class = spec.get("kind", "").partition("/")[2]
    if spec.get("annotations") or any(d.get("annotations") for d in spec.get("devices", [])) or "." in kind_class:
        return "0.6.0"
    if any(d.get("name", "")[:1].isdigit() for d in spec.get("devices", [])) or any(
        n.get("hostPath") for e in edits for n in e.get("deviceNodes", [])
    ):
        return "0.5.0"
    if any(m.get("type") for e in edits for m in e.get("mounts", [])):
        return "0.4.0"
    return "0.3.0"


def our_rules(spec):
    problems = []
    if spec.get("kind") != KIND:
        problems.append(f"kind {spec.get('kind')!r} is not {KIND}")
    if spec.get("cdiVersion") != needed_version(spec):
        problems.append(f"cdiVersion {spec.get('cdiVersion')} is not the lowest the fields need ({needed_version(spec)})")
    devices = spec.get("devices", [])
    if len(devices) != 1 or "containerEdits" in spec:
        return problems + ["not one device with all edits on it"]
    edits = devices[0].get("containerEdits", {})
    env = edits.get("env", [])
    names = [entry.partition("=")[0] for entry in env]
    values = {entry.partition("=")[0]: entry.partition("=")[2] for entry in env}
    if len(set(names)) != len(names):
        problems.append(f"a variable is set twice: {sorted(names)}")
    if ("XPU_POOL" in values) == ("XPU_SERVER" in values):
        problems.append("not exactly one of XPU_POOL and XPU_SERVER")
    if "XPU_SLICE" not in values:
        problems.append("XPU_SLICE is not set")
    if "XPU_TOKEN" in values:
        problems.append("the token is in the environment (XPU_TOKEN)")
    library_path = values.get("LD_LIBRARY_PATH", "").split(":")
    mounts = edits.get("mounts", [])
    targets = [m.get("containerPath") for m in mounts]
    if len(set(targets)) != len(targets):
        problems.append("a container path is mounted twice")
    for m in mounts:
        options = set(m.get("options", []))
        if not m.get("hostPath", "").startswith("/") or not {"ro", "bind"} <= options:
            problems.append(f"mount {m.get('containerPath')} is not a read-only bind of an absolute host path")
    for library in ("libcuda.so.1", "libnvidia-ml.so.1"):
        if f"{library_path[0]}/{library}" not in targets:
            problems.append(f"{library} is not mounted in LD_LIBRARY_PATH's first directory ({library_path[0]!r})")
    for variable in ("XPU_TOKEN_FILE", "XPU_TLS_CA"):
        if variable in values and values[variable] not in targets:
            problems.append(f"{variable}={values[variable]} names no mounted file")
    return problems


def schema_problems(validator, spec):
    return [f"schema: {e.message} at /{'/'.join(map(str, e.absolute_path))}" for e in validator.iter_errors(spec)]


def refused_cases(good):
    """(what, spec, by) triples that must fail, each derived from a good spec by one change: the
    first ones by the schema alone (what a runtime refuses), the last ones by our rules."""
    cases = []

    def changed(what, change):
        spec = copy.deepcopy(good)
        change(spec)
        return what, spec

    def edits(s):
        return s["devices"][0]["containerEdits"]

    by_schema = [
        changed("unknown top-level field", lambda s: s.update(devicez=[])),
        changed("unknown containerEdits field", lambda s: edits(s).update(envs=[])),
        changed("unknown mount field", lambda s: edits(s)["mounts"][0].update(readOnly=True)),
        changed("no devices", lambda s: s.update(devices=[])),
        changed("kind without vendor", lambda s: s.update(kind="slice")),
        changed("kind with two slashes", lambda s: s.update(kind="xpu-remote.io/slice/x")),
        changed("device name with a slash", lambda s: s["devices"][0].update(name="a/b")),
        changed("device name ending in a dash", lambda s: s["devices"][0].update(name="abc-")),
        changed("digit-first name at 0.3.0", lambda s: s["devices"][0].update(name="1abc") or s.update(cdiVersion="0.3.0")),
        changed("dotted class at 0.5.0", lambda s: s.update(kind="xpu-remote.io/gpu.slice", cdiVersion="0.5.0")),
        changed("annotations at 0.5.0", lambda s: s.update(annotations={"a": "b"}, cdiVersion="0.5.0")),
        changed("additionalGids at 0.6.0", lambda s: edits(s).update(additionalGids=[1000]) or s.update(cdiVersion="0.6.0")),
        changed("netDevices at 1.0.0", lambda s: edits(s).update(netDevices=[{"hostInterfaceName": "a", "name": "b"}]) or s.update(cdiVersion="1.0.0")),
        changed("unknown cdiVersion", lambda s: s.update(cdiVersion="0.9.0")),
        changed("env entry without =", lambda s: edits(s)["env"].append("NOEQUALS")),
        changed("env entry with an empty name", lambda s: edits(s)["env"].append("=value")),
        changed("relative containerPath", lambda s: edits(s)["mounts"][0].update(containerPath="lib/libcuda.so.1")),
        changed("hook with a relative path", lambda s: edits(s).update(hooks=[{"hookName": "createContainer", "path": "hook"}])),
        changed("hook with a zero timeout", lambda s: edits(s).update(hooks=[{"hookName": "createContainer", "path": "/h", "timeout": 0}])),
        changed("deviceNodes hostPath at 0.4.0", lambda s: s["devices"][0].update(name="abc") or edits(s).update(deviceNodes=[{"path": "/dev/x", "hostPath": "/dev/y"}]) or s.update(cdiVersion="0.4.0")),
        changed("mount type at 0.3.0", lambda s: s["devices"][0].update(name="abc") or edits(s)["mounts"][0].update(type="none") or s.update(cdiVersion="0.3.0")),
    ]
    by_rules = [
        changed("cdiVersion higher than needed", lambda s: s.update(cdiVersion="1.1.0")),
        changed("another kind", lambda s: s.update(kind="nvidia.com/gpu")),
        changed("token in the environment", lambda s: edits(s)["env"].append("XPU_TOKEN=s3cret")),
        changed("a variable set twice", lambda s: edits(s)["env"].append(next(e for e in edits(s)["env"] if e.startswith("XPU_SLICE=")))),
        changed("writable mount", lambda s: edits(s)["mounts"][0].update(options=["bind"])),
        changed("shim not mounted", lambda s: edits(s).update(mounts=edits(s)["mounts"][1:])),
        changed("both XPU_POOL and XPU_SERVER", lambda s: edits(s)["env"].append("XPU_SERVER=tls://a:1")),
    ]
    return [(what, spec, "schema") for what, spec in by_schema] + [(what, spec, "rules") for what, spec in by_rules]


def main():
    if len(sys.argv) < 3:
        sys.exit("usage: check-cdi-specs.py SCHEMA SPEC.json...")
    schema = json.load(open(sys.argv[1]))
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema)
    specs = [(path, json.load(open(path))) for path in sys.argv[2:]]
    failed = False
    pool_specs = [spec for _, spec in specs if any(e.startswith("XPU_POOL=") for e in spec["devices"][0]["containerEdits"].get("env", []))]
    if not pool_specs:
        sys.exit("check-cdi-specs.py: no spec with XPU_POOL among the specs given: nothing to derive the refused cases from")
    cases = refused_cases(pool_specs[0])
    for what, spec, by in cases:
        if not (schema_problems(validator, spec) if by == "schema" else our_rules(spec)):
            print(f"check-cdi-specs.py: the {by} accepted a spec that must be refused ({what}): {json.dumps(spec)}", file=sys.stderr)
            failed = True
    if not failed:
        print(f"  {len(cases)} specs that must be refused were refused ({sum(by == 'schema' for _, _, by in cases)} by the schema alone)")
    for path, spec in specs:
        problems = schema_problems(validator, spec) + our_rules(spec)
        for problem in problems:
            print(f"check-cdi-specs.py: {path}: {problem}", file=sys.stderr)
        failed |= bool(problems)
        if not problems:
            print(f"  {path} passed the CDI schema and our rules (cdiVersion {spec['cdiVersion']})")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
