#!/usr/bin/env bash
# Fuzzes the parsers and the template evaluator with libFuzzer, each target for a bounded time,
# starting from the committed corpus in Fuzz/corpus/<target>/.
#
#   scripts/fuzz.sh                     every target, FUZZ_SECONDS (45) each
#   scripts/fuzz.sh templates dag       those targets only
#   FUZZ_SECONDS=600 scripts/fuzz.sh    longer runs
#
# A crash, a hang (an input running over 10 s) or memory over 2 GiB fails the run; the input is
# copied to Fuzz/corpus/<target>/regressions/ (commit it: the test suite runs every corpus input
# through its target) and printed in base64. New inputs the fuzzer finds stay in a temporary
# directory, so the committed corpus only grows on purpose.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-45}
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then targets=(templates dag cron json events); fi

echo "fuzz: building the libFuzzer driver (release, -sanitize=fuzzer)"
BUDPIPELINE_FUZZ=1 swift build -c release --scratch-path .build-fuzz --product budpipeline-fuzz \
    -Xswiftc -sanitize=fuzzer -Xswiftc -use-ld=lld >/tmp/budpipeline-fuzz-build.log 2>&1 \
    || { tail -30 /tmp/budpipeline-fuzz-build.log >&2; exit 1; }
driver=.build-fuzz/release/budpipeline-fuzz

failed=0
for target in "${targets[@]}"; do
    work=$(mktemp -d /tmp/budpipeline-fuzz-"$target".XXXXXX)
    artifacts="$work/artifacts/"
    mkdir -p "$artifacts" "$work/corpus"
    echo "fuzz: $target for ${seconds}s"
    if ! SWIFT_BACKTRACE=enable=no "$driver" "$target" "$work/corpus" "Fuzz/corpus/$target" \
        -max_total_time="$seconds" -max_len=8192 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$artifacts" >"$work/log" 2>&1; then
        failed=1
        echo "fuzz: $target FAILED" >&2
        grep -E "ERROR|SUMMARY|Fatal error|deadly|timeout|out-of-memory" "$work/log" | head -20 >&2 || true
        mkdir -p "Fuzz/corpus/$target/regressions"
        for input in "$artifacts"*; do
            [ -f "$input" ] || continue
            name="regressions/$(basename "$input")"
            cp "$input" "Fuzz/corpus/$target/$name"
            echo "fuzz: the input is now Fuzz/corpus/$target/$name (base64 below); commit it with the fix" >&2
            base64 -w 0 "$input" >&2
            echo >&2
        done
    else
        runs=$(grep -E "stat::number_of_executed_units" "$work/log" | awk '{print $2}')
        echo "fuzz: $target passed ($runs inputs)"
    fi
    rm -rf "$work"
done
exit $failed
