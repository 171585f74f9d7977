# Sourced by the fuzz scripts: replays the regression inputs, fuzzes for a bounded time, prints
# the fuzzer's summary and the number of executions, and fails on the first crash.
#   fuzz_run NAME BINARY OUT REGRESSIONS SECONDS
# NAME prefixes the messages; BINARY is the libFuzzer executable; OUT holds corpus/, seeds/,
# crashes/ and last-run.txt; REGRESSIONS is the folder of crash-* inputs found earlier.
fuzz_run() {
    local name=$1 binary=$2 out=$3 regressions_dir=$4 seconds=$5
    local regressions=("$regressions_dir"/crash-*)
    if [ -e "${regressions[0]}" ]; then
        echo "$name: replaying ${#regressions[@]} regression input(s)"
        "$binary" "${regressions[@]}"
    fi
    local status=0
    "$binary" "$out/corpus" "$out/seeds" \
        -max_total_time="$seconds" -timeout=5 -rss_limit_mb=2048 -max_len=65536 \
        -artifact_prefix="$out/crashes/" -print_final_stats=1 >"$out/last-run.txt" 2>&1 || status=$?
    sed "/Recommended dictionary/,/End of recommended dictionary/d" "$out/last-run.txt" | grep -v "^#[0-9].*\(NEW\|REDUCE\|pulse\)" | tail -60
    if [ "$status" != 0 ]; then
        echo "$name: the fuzzer failed (exit $status); the input is in $out/crashes/" >&2
        exit 1
    fi
    echo "$name: $(grep '^stat::number_of_executed_units' "$out/last-run.txt" | awk '{print $2}') executions in ${seconds}s, no crash"
}
