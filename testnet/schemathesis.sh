#!/usr/bin/env bash
# Optional (not in CI): schemathesis (4.x) against a live node's own /openapi.json (issue 14).
# Starts a 1-node local testnet that has played the demo day (so the read endpoints have data),
# runs a time-bounded schemathesis run with the node's API token, and stops the testnet.
#
#   testnet/schemathesis.sh            120 s
#   testnet/schemathesis.sh 600        600 s
#   PLAZA_SCHEMATHESIS=/path/to/venv testnet/schemathesis.sh
#
# The venv: python3 -m venv ~/.cache/plaza-schemathesis && ~/.cache/plaza-schemathesis/bin/pip install schemathesis
# Exits non-zero when schemathesis reports a failure (a 5xx, an answer off the schema, …).
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/setup.sh

seconds="${1:-120}"
venv="${PLAZA_SCHEMATHESIS:-$HOME/.cache/plaza-schemathesis}"
st="$venv/bin/schemathesis"
if [ ! -x "$st" ]; then
  echo "no schemathesis at $st; make the venv first (see the head of this script)" >&2
  exit 2
fi
if [ ! -x "$PLAZA_BIN" ]; then
  echo "no plaza binary at $PLAZA_BIN; build first: cargo build --release --workspace" >&2
  exit 2
fi

work=$(mktemp -d)
out="$work/testnet.out"
"$PLAZA_BIN" testnet --nodes 1 --demo --keep-running --json --dir "$work/net" >"$out" 2>"$work/testnet.err" &
pid=$!
stop() {
  if kill -0 "$pid" 2>/dev/null; then
    kill -INT "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
}
trap stop EXIT

# The testnet prints its description (with the node's address and token) once the demo day is played.
deadline=$(( $(date +%s) + 300 ))
until python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$out" 2>/dev/null; do
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "the testnet exited:" >&2
    cat "$work/testnet.err" >&2
    exit 1
  fi
  if [ "$(date +%s)" -gt "$deadline" ]; then
    echo "the testnet did not come up in 300 s" >&2
    exit 1
  fi
  sleep 1
done
api=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["nodes"][0]["api"])' "$out")
token=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["nodes"][0]["token"])' "$out")
echo "node at http://$api; schemathesis for $seconds s"

status=0
"$st" --config-file testnet/schemathesis.toml run "http://$api/openapi.json" \
  --max-time "$seconds" \
  --workers 1 \
  --header "Authorization: Bearer $token" \
  --request-timeout 30 \
  --report junit --report-dir "$work/report" || status=$?
echo "schemathesis exit $status; report and node log under $work (node log: $work/net/node0/node.log)"
if grep -q panicked "$work/net/node0/node.log" 2>/dev/null; then
  echo "the node panicked:" >&2
  grep panicked "$work/net/node0/node.log" >&2
  status=1
fi
exit "$status"
