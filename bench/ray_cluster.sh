#!/usr/bin/env bash
# A two-node Ray cluster on this machine, a `voiceid features --engine ray` run on it, then both
# nodes stopped: the steps of a real cluster, with 127.0.0.1 standing in for the network.
#
#   bash bench/ray_cluster.sh [DATA] [OUT.parquet]
#
# DATA defaults to $VOICEID_DATA/fsdd (../shared/data/fsdd). Each node is a `ray start` with one
# CPU and a temp dir of its own: the head (GCS and a raylet), then a second raylet that joins it
# by address. Every address is 127.0.0.1, and usage reports are off. The script stops only the
# processes of these two nodes (`ray stop` would stop every Ray on the machine). Prints each
# step, the worker processes each node started and the times, and checks that the table is the
# local engine's, byte for byte (exit 1 if not).
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BIN:-.venv/bin}
DATA=${1:-${VOICEID_DATA:-$(cd .. && pwd)/shared/data}/fsdd}
OUT=${2:-$(mktemp -d /tmp/voiceid-cluster.XXXX)/features.parquet}
PORT=${RAY_PORT:-6390}
HEAD_DIR=$(mktemp -d /tmp/voiceid-ray-head.XXXX)
NODE_DIR=$(mktemp -d /tmp/voiceid-ray-node.XXXX)
export RAY_USAGE_STATS_ENABLED=0
# Ray >= 2.52 starts a head with token authentication; nodes and drivers then need the token
# (~/.ray/auth_token, written by the head, or RAY_AUTH_TOKEN) and this mode to send it.
export RAY_AUTH_MODE=token

node_pids() {
    local pids
    pids=$(pgrep -f "$HEAD_DIR|$NODE_DIR" || true)
    for pid in $pids; do
        echo "$pid"
        pgrep -P "$pid" || true
    done
}

stop_nodes() {
    local pids
    pids=$(node_pids)
    if [ -n "$pids" ]; then
        # shellcheck disable=SC2086  # one pid per word
        kill $pids 2>/dev/null || true
        for _ in $(seq 20); do
            pids=$(node_pids | while read -r p; do kill -0 "$p" 2>/dev/null && echo "$p"; done)
            [ -z "$pids" ] && break
            sleep 0.5
        done
        # shellcheck disable=SC2086
        [ -n "$pids" ] && kill -9 $pids 2>/dev/null || true
    fi
    echo "== stopped both nodes"
    rm -rf "$HEAD_DIR" "$NODE_DIR"
}
trap stop_nodes EXIT

started=$(date +%s.%N)
echo "== head node (temp dir $HEAD_DIR)"
"$BIN/ray" start --head --node-ip-address=127.0.0.1 --port="$PORT" --num-cpus=1 \
    --temp-dir="$HEAD_DIR" --include-dashboard=false --disable-usage-stats >/dev/null
echo "== second node (temp dir $NODE_DIR) joins 127.0.0.1:$PORT"
"$BIN/ray" start --address="127.0.0.1:$PORT" --node-ip-address=127.0.0.1 --num-cpus=1 \
    --temp-dir="$NODE_DIR" --disable-usage-stats >/dev/null
for _ in $(seq 30); do  # the second raylet registers with the head asynchronously
    nodes=$("$BIN/ray" status --address="127.0.0.1:$PORT" 2>/dev/null | grep -c ' node_' || true)
    [ "$nodes" -ge 2 ] && break
    sleep 1
done
"$BIN/ray" status --address="127.0.0.1:$PORT" | sed -n '/^Active:/,/^Pending:/p'
ready=$(date +%s.%N)

echo "== voiceid features $DATA --out $OUT --engine ray --ray-address 127.0.0.1:$PORT"
"$BIN/voiceid" features "$DATA" --out "$OUT" --engine ray --ray-address "127.0.0.1:$PORT" \
    | sed -e '4,$d'
done_at=$(date +%s.%N)

for dir in "$HEAD_DIR" "$NODE_DIR"; do
    workers=$(find "$dir"/session_latest/logs -name 'worker-*.out' | wc -l)
    echo "   worker processes (tasks and Ray Data's actors) on the node in $dir: $workers"
done
"$BIN/python" - "$OUT" <<'EOF'
import sys
import pyarrow.parquet as pq
rows = pq.read_table(sys.argv[1])
print(f"   table: {rows.num_rows} rows, {rows.column('error').null_count} with features")
EOF
LOCAL=${OUT%.parquet}-local.parquet
"$BIN/voiceid" features "$DATA" --out "$LOCAL" --no-cache >/dev/null
if cmp -s "$OUT" "$LOCAL"; then
    echo "   the same file, byte for byte, as the local engine's ($LOCAL)"
else
    echo "   DIFFERENT from the local engine's table ($LOCAL)"
    exit 1
fi
awk -v a="$started" -v b="$ready" -v c="$done_at" \
    'BEGIN { printf "== cluster up in %.1f s, features in %.1f s\n", b - a, c - b }'
