#!/usr/bin/env bash
# Builds certgate's fuzz targets (fuzz/) with libFuzzer's coverage
# instrumentation and runs them on their committed corpora.
#
#   scripts/fuzz.sh                 every target for 20 s (CI's bounded step)
#   scripts/fuzz.sh 600             every target for 600 s
#   scripts/fuzz.sh 600 jws csr     only those targets
#   FUZZ_RUNS=10000000 scripts/fuzz.sh 0 jws   10 million executions of jws
#   FUZZ_JOBS=1 scripts/fuzz.sh     one target at a time (default: one per core)
#
# The flags are those `cargo fuzz` passes, without a sanitizer: certgate
# parses nothing in unsafe code, and a stable toolchain builds them.
# `cargo +nightly fuzz run <target>` (cargo-fuzz) runs the same targets
# under AddressSanitizer. New inputs the fuzzer finds go to
# fuzz/target/corpus/<target>, not into the repository; crashes go to
# fuzz/artifacts/<target>/ (docs/fuzzing.md says what to do with one).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds=${1:-20}
shift || true
mapfile -t all < <(sed -n 's/^name = "\(.*\)"$/\1/p' Cargo.toml | tail -n +2)
targets=("$@")
((${#targets[@]})) || targets=("${all[@]}")

host=$(rustc -vV | sed -n 's/^host: //p')
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing"
started=$SECONDS
# --target keeps the instrumentation off build scripts and proc macros.
cargo build --locked --release --target "$host" --bins
echo "fuzz: targets built in $((SECONDS - started)) s"

bin="target/$host/release"
# Runs one target; its summary line goes to target/<target>.result, and a
# crash or hang leaves target/<target>.failed.
run_target() {
  local target=$1 work="target/corpus/$1"
  mkdir -p "$work" "artifacts/$target"
  rm -f "target/$target.failed"
  local limit=(-max_total_time="$seconds")
  if [ -n "${FUZZ_RUNS:-}" ]; then limit=(-runs="$FUZZ_RUNS"); fi
  # The committed corpus is read, never written: new finds go to $work.
  if "$bin/$target" "$work" "corpus/$target" "${limit[@]}" -timeout=10 -rss_limit_mb=2048 \
      -artifact_prefix="artifacts/$target/" -print_final_stats=1 >"target/$target.log" 2>&1; then
    echo "fuzz: $target: $(grep -E '^stat::number_of_executed_units' "target/$target.log" | awk '{print $2}') executions, $(grep -E '^stat::average_exec_per_sec' "target/$target.log" | awk '{print $2}')/s, $(grep -oE 'cov: [0-9]+' "target/$target.log" | tail -1) edges, no crash"
  else
    echo "fuzz: $target FAILED; its log:"
    tail -n 60 "target/$target.log"
    touch "target/$target.failed"
  fi >"target/$target.result"
}

# One target per core at a time (FUZZ_JOBS to choose): each still gets
# its whole time on a core of its own.
lanes=${FUZZ_JOBS:-$(nproc)}
for target in "${targets[@]}"; do
  while (($(jobs -rp | wc -l) >= lanes)); do wait -n || true; done
  run_target "$target" &
done
wait
failed=()
for target in "${targets[@]}"; do
  cat "target/$target.result"
  if [ -e "target/$target.failed" ]; then failed+=("$target"); fi
done
echo "fuzz: ${#targets[@]} targets in $((SECONDS - started)) s"
if ((${#failed[@]})); then
  echo "fuzz: crashes or hangs in: ${failed[*]} (inputs under fuzz/artifacts/)"
  exit 1
fi
