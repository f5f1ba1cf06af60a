#!/usr/bin/env bash
# Builds and runs every fuzz target (fuzz/fuzz_targets/) for a bounded time each, on the
# stable toolchain (libFuzzer through cargo-fuzz, no sanitizer), starting from the seed
# corpus in fuzz/seeds/ and the corpus earlier runs grew (fuzz/corpus/, not committed).
#
#   fuzz/run.sh                      every target, 10 s each
#   fuzz/run.sh 60                   every target, 60 s each
#   fuzz/run.sh 60 record export     two targets
#   PLAZA_FUZZ_RUNS=10000000 fuzz/run.sh 3600   stop each target at 10 M executions (or 1 h)
#   PLAZA_FUZZ_RUNS=10000000 PLAZA_FUZZ_TOTAL_SECONDS=5400 fuzz/run.sh 3600
#                                    the same, all targets within 1.5 h: each target gets at most
#                                    its share of the time left, so time a fast target does not
#                                    need (it stops at 10 M) goes to the slower ones after it
#   fuzz/run.sh --seeds              regenerate fuzz/seeds/ from real data (examples/seeds.rs)
#
# Prints one line per target (executions, seconds, executions/s, corpus size) and exits
# non-zero on the first crash; the crashing input is kept in fuzz/artifacts/<target>/.
# Reproduce one with `cargo fuzz run -s none TARGET fuzz/artifacts/TARGET/crash-…`.
set -euo pipefail
cd "$(dirname "$0")/.."

# The main workspace's build (where RocksDB's C++ is already compiled): the fuzz build links
# that static library instead of compiling RocksDB again under the fuzzer's RUSTFLAGS.
main_target="${CARGO_TARGET_DIR:-$HOME/.cache/plaza-target}"
export CARGO_TARGET_DIR="${PLAZA_FUZZ_TARGET_DIR:-$main_target/fuzz}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
if [ -z "${ROCKSDB_LIB_DIR:-}" ]; then
  lib=$(ls -t "$main_target"/release/build/librocksdb-sys-*/out/librocksdb.a 2>/dev/null | head -n 1 || true)
  if [ -n "$lib" ]; then
    export ROCKSDB_LIB_DIR="$(dirname "$lib")" ROCKSDB_STATIC=1
  else
    echo "note: no prebuilt RocksDB under $main_target; the fuzz build compiles it (about 20 minutes)" >&2
  fi
fi

if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "installing cargo-fuzz…" >&2
  cargo install cargo-fuzz --locked >/dev/null
fi

if [ "${1:-}" = "--seeds" ]; then
  cargo run --release --quiet --manifest-path fuzz/Cargo.toml --example seeds -- "$PWD/fuzz"
  exit 0
fi

seconds="${1:-10}"
shift || true
if [ "$#" -gt 0 ]; then
  targets="$*"
else
  targets=$(ls fuzz/fuzz_targets | sed 's/\.rs$//' | sort)
fi
runs="${PLAZA_FUZZ_RUNS:--1}"
total_seconds="${PLAZA_FUZZ_TOTAL_SECONDS:-}"

# -a: debug assertions and overflow checks, as in the project's release profile.
build_log=$(mktemp)
cargo fuzz build --fuzz-dir fuzz -s none -a >"$build_log" 2>&1 || { cat "$build_log" >&2; exit 1; }
rm -f "$build_log"

total_execs=0
budget_started=$(date +%s)
left=$(echo $targets | wc -w)
printf '%-18s %14s %8s %12s %8s\n' target executions seconds 'execs/s' corpus
for t in $targets; do
  mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
  log="fuzz/artifacts/$t/last-run.log"
  started=$(date +%s)
  limit="$seconds"
  if [ -n "$total_seconds" ]; then
    share=$(( (total_seconds - (started - budget_started)) / left ))
    if [ "$share" -lt "$limit" ]; then limit=$(( share > 1 ? share : 1 )); fi
  fi
  left=$(( left - 1 ))
  if ! cargo fuzz run --fuzz-dir fuzz -s none -a "$t" "fuzz/corpus/$t" "fuzz/seeds/$t" -- \
      -max_total_time="$limit" -runs="$runs" -seed=1 -rss_limit_mb=2048 -timeout=10 \
      -print_final_stats=1 -artifact_prefix="fuzz/artifacts/$t/" >"$log" 2>&1; then
    echo "CRASH in fuzz target $t (input kept under fuzz/artifacts/$t/):" >&2
    grep -E -A30 'panicked|ERROR: libFuzzer|SUMMARY' "$log" | head -n 60 >&2
    exit 1
  fi
  elapsed=$(( $(date +%s) - started ))
  execs=$(awk '/stat::number_of_executed_units/ {print $NF}' "$log" | tail -n 1)
  execs="${execs:-0}"
  corpus=$(ls "fuzz/corpus/$t" | wc -l)
  total_execs=$(( total_execs + execs ))
  printf '%-18s %14s %8s %12s %8s\n' "$t" "$execs" "$elapsed" "$(( execs / (elapsed > 0 ? elapsed : 1) ))" "$corpus"
done
echo "fuzzing: $(echo $targets | wc -w) targets, $total_execs executions, 0 crashes"
