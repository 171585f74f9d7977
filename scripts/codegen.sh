#!/usr/bin/env bash
# Regenerates the code derived from proto/ (codecs, shim exports, server dispatch, C stubs).
#   scripts/codegen.sh          write the generated files
#   scripts/codegen.sh --check  fail if any committed generated file differs (CI runs this)
set -euo pipefail
cd "$(dirname "$0")/.."
swift build --product xpu-codegen -c debug >/dev/null
exec "$(swift build --product xpu-codegen -c debug --show-bin-path)/xpu-codegen" "$@" .
