#!/usr/bin/env bash
# ThreadSanitizer over the suites whose code is most threaded without Swift concurrency's checks:
# the server (compute scheduler, monotonic condition, upload staging, ledger) and the pool
# directory's queue. Run on demand (a TSan build of every test target takes about as long as the
# whole of CI on 2 cores); it fails when TSan reports a race.
#   scripts/tsan.sh                  the default suites
#   scripts/tsan.sh 'XPUServerTests' any --filter expression
# Its own build folder (.build-tsan) keeps the ordinary debug build untouched.
set -euo pipefail
cd "$(dirname "$0")/.."
filter=${1:-XPUServerTests|XPUPoolTests}

swift build --build-tests --sanitize=thread --scratch-path .build-tsan
# TSan reports every race it sees and ends the process with status 66 if there was one.
status=0
swift test --skip-build --sanitize=thread --scratch-path .build-tsan --filter "$filter" 2>&1 | tee .build-tsan/tsan-output.txt || status=$?
if grep -q "WARNING: ThreadSanitizer" .build-tsan/tsan-output.txt; then
    echo "tsan.sh: ThreadSanitizer reported races (above; .build-tsan/tsan-output.txt)" >&2
    exit 1
fi
[ "$status" = 0 ] || { echo "tsan.sh: the tests failed (status $status)" >&2; exit "$status"; }
echo "tsan.sh: no race reported"
