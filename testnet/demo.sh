#!/usr/bin/env bash
# README's first command: build plaza, start a 4-node local alliance on loopback, play a
# realistic alliance day, print the statement and payment plan, check every node holds the
# same chain, and stop the nodes.
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/setup.sh
cargo build $PLAZA_PROFILE_FLAG -p plaza-cli --bin plaza
dir="$(mktemp -d -t plaza-demo-XXXXXX)"
exec "$PLAZA_BIN" testnet --nodes 4 --demo --dir "$dir" "$@"
