# Sourced by .ci/run and testnet/demo.sh: installs what the build needs on a fresh machine and
# points cargo at a target directory outside the clone, so later runs reuse the build.
# Only libclang itself counts: libclang-cpp (often preinstalled) is not what clang-sys loads.
if ! ls /usr/lib/llvm-*/lib/libclang.so* >/dev/null 2>&1 && ! ls /usr/lib/x86_64-linux-gnu/libclang-[0-9]*.so* >/dev/null 2>&1; then
  echo "installing libclang (RocksDB's bindings need it)…" >&2
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq >/dev/null
  $SUDO apt-get install -y -qq libclang-dev >/dev/null
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/plaza-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# One profile for tests, demo and bench: RocksDB is compiled once (see DEPS.md).
PLAZA_PROFILE_FLAG="--release"
PLAZA_BIN="$CARGO_TARGET_DIR/release/plaza"
