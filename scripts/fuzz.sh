#!/usr/bin/env bash
# Fuzzes the parsers and the template evaluator with libFuzzer, each target for a bounded time,
# starting from the committed corpus in Fuzz/corpus/<target>/.
#
#   scripts/fuzz.sh                     every target, FUZZ_SECONDS (45) each
#   scripts/fuzz.sh templates dag       those targets only
#   FUZZ_SECONDS=600 scripts/fuzz.sh    longer runs
#   FUZZ_JOBS=1 scripts/fuzz.sh         one target at a time (default: one per core; targets left
#                                       over split into shorter runs side by side)
#   scripts/fuzz.sh --build-only        build the driver only (the test script builds it while
#                                       the HTTP API is fuzzed, which leaves a core free)
#
# A crash, a hang (an input running over 10 s) or memory over 2 GiB fails the run; the input is
# copied to Fuzz/corpus/<target>/regressions/ (commit it: the test suite runs every corpus input
# through its target) and printed in base64. New inputs the fuzzer finds stay in a temporary
# directory, so the committed corpus only grows on purpose.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-45}
build_only=0
if [ "${1:-}" = "--build-only" ]; then build_only=1; shift; fi
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then targets=(templates dag cron json events); fi

echo "fuzz: building the libFuzzer driver (release, -sanitize=fuzzer)"
BUDPIPELINE_FUZZ=1 swift build -c release --scratch-path .build-fuzz --product budpipeline-fuzz \
    -Xswiftc -sanitize=fuzzer -Xswiftc -use-ld=lld >/tmp/budpipeline-fuzz-build.log 2>&1 \
    || { tail -30 /tmp/budpipeline-fuzz-build.log >&2; exit 1; }
driver=.build-fuzz/release/budpipeline-fuzz
if [ "$build_only" -eq 1 ]; then exit 0; fi

# One target: fuzzes it, then prints its report (and, on failure, keeps its input as a regression).
# Returns non-zero when the target failed.
fuzz_one() {
    local target=$1 seconds=$2 work artifacts runs
    work=$(mktemp -d /tmp/budpipeline-fuzz-"$target".XXXXXX)
    artifacts="$work/artifacts/"
    mkdir -p "$artifacts" "$work/corpus"
    if ! SWIFT_BACKTRACE=enable=no "$driver" "$target" "$work/corpus" "Fuzz/corpus/$target" \
        -max_total_time="$seconds" -max_len=8192 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$artifacts" >"$work/log" 2>&1; then
        {
            echo "fuzz: $target FAILED"
            grep -E "ERROR|SUMMARY|Fatal error|deadly|timeout|out-of-memory" "$work/log" | head -20 || true
            mkdir -p "Fuzz/corpus/$target/regressions"
            for input in "$artifacts"*; do
                [ -f "$input" ] || continue
                name="regressions/$(basename "$input")"
                cp "$input" "Fuzz/corpus/$target/$name"
                echo "fuzz: the input is now Fuzz/corpus/$target/$name (base64 below); commit it with the fix"
                base64 -w 0 "$input"
                echo
            done
        } >&2
        rm -rf "$work"
        return 1
    fi
    runs=$(grep -E "stat::number_of_executed_units" "$work/log" | awk '{print $2}')
    echo "fuzz: $target passed ($runs inputs in ${seconds}s)"
    rm -rf "$work"
}

# A libFuzzer process uses one core: the targets run side by side, one per core, each for the
# full time (the same fuzzing per target as one after the other, in a fraction of the wall time).
jobs=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 1)}
# Runs of TARGET:SECONDS. When the targets do not divide evenly among the cores, the last ones are
# split into shorter runs side by side, so that no core sits idle while one target finishes: the
# same fuzzing time in all, over fewer seconds.
runs=()
leftover=$(( ${#targets[@]} % jobs ))
whole=$(( ${#targets[@]} - leftover ))
for target in "${targets[@]:0:whole}"; do runs+=("$target:$seconds"); done
if [ "$leftover" -gt 0 ]; then
    slices=$(( jobs / leftover ))
    slice_seconds=$(( seconds / slices > 0 ? seconds / slices : 1 ))
    for target in "${targets[@]:whole}"; do
        for _ in $(seq 1 "$slices"); do runs+=("$target:$slice_seconds"); done
    done
fi
echo "fuzz: ${#targets[@]} targets, ${seconds}s each, $jobs at a time (${#runs[@]} runs)"
failed=0
running=0
for run in "${runs[@]}"; do
    if [ "$running" -ge "$jobs" ]; then
        wait -n || failed=1
        running=$((running - 1))
    fi
    fuzz_one "${run%%:*}" "${run##*:}" &
    running=$((running + 1))
done
while [ "$running" -gt 0 ]; do
    wait -n || failed=1
    running=$((running - 1))
done
exit $failed
