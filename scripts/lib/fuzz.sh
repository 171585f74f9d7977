# Sourced by the fuzz scripts: replays the regression inputs, fuzzes for a bounded time, prints
# the fuzzer's summary and the number of executions, and fails on the first crash.
#   fuzz_run NAME BINARY OUT REGRESSIONS SECONDS
# NAME prefixes the messages; BINARY is the libFuzzer executable; OUT holds corpus/, seeds/,
# crashes/ and last-run.txt; REGRESSIONS is the folder of crash-* and oom-* inputs found earlier.
# XPU_FUZZ_SEED picks libFuzzer's seed: 1 by default, so a bounded run (CI's) explores the same
# inputs every time and a red run is the code's fault, not the dice's; 0 draws a fresh seed, for
# long exploratory runs (XPU_FUZZ_SEED=0 scripts/fuzz-ptx.sh 3600).
fuzz_run() {
    # libFuzzer reports a Swift trap itself; the Swift backtracer would only hold the run up.
    export SWIFT_BACKTRACE=enable=no
    local name=$1 binary=$2 out=$3 regressions_dir=$4 seconds=$5
    local seed=${XPU_FUZZ_SEED:-1}
    local regressions=() input
    for input in "$regressions_dir"/crash-* "$regressions_dir"/oom-*; do
        [ -e "$input" ] && regressions+=("$input")
    done
    if [ "${#regressions[@]}" != 0 ]; then
        echo "$name: replaying ${#regressions[@]} regression input(s)"
        "$binary" -rss_limit_mb=2048 "${regressions[@]}"
    fi
    local status=0
    "$binary" "$out/corpus" "$out/seeds" \
        -max_total_time="$seconds" -seed="$seed" -timeout=5 -rss_limit_mb=2048 -max_len=65536 \
        -artifact_prefix="$out/crashes/" -print_final_stats=1 >"$out/last-run.txt" 2>&1 || status=$?
    sed "/Recommended dictionary/,/End of recommended dictionary/d" "$out/last-run.txt" | grep -v "^#[0-9].*\(NEW\|REDUCE\|pulse\)" | tail -60
    if [ "$status" != 0 ]; then
        echo "$name: the fuzzer failed (exit $status); the input is in $out/crashes/" >&2
        exit 1
    fi
    echo "$name: $(grep '^stat::number_of_executed_units' "$out/last-run.txt" | awk '{print $2}') executions in ${seconds}s (seed $seed), no crash"
}
