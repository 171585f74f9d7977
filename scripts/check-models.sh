#!/usr/bin/env bash
# Model-checks the compute scheduler's wait/notify protocol (Tests/Models/compute-turns.pml) with
# spin: the protocol as built must have no state where every tenant sleeps and none runs, and the
# same protocol with ties broken by dictionary order must have one (so the check can fail).
# Needs spin and cc (Debian: apt-get install spin gcc).
set -euo pipefail
cd "$(dirname "$0")/.."

model=$PWD/Tests/Models/compute-turns.pml
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

verify() {
    rm -f pan pan.* ./*.trail
    spin -a "$@" "$model" >/dev/null
    cc -O2 -o pan pan.c
    ./pan -m1000000 2>&1
}

out=$(verify)
if ! grep -q "errors: 0" <<<"$out"; then
    echo "check-models.sh: compute-turns.pml: spin found a lost wake-up (every tenant asleep, none running):" >&2
    echo "$out" >&2
    exit 1
fi
echo "compute-turns.pml: no lost wake-up ($(grep -o '[0-9]* states, stored' <<<"$out"))"

out=$(verify -DDICTIONARY_ORDER)
if ! grep -q "invalid end state" <<<"$out"; then
    echo "check-models.sh: compute-turns.pml with -DDICTIONARY_ORDER should deadlock and did not: the model no longer shows the wake-up it guards against" >&2
    echo "$out" >&2
    exit 1
fi
echo "compute-turns.pml -DDICTIONARY_ORDER: the lost wake-up is found, as it must be"
