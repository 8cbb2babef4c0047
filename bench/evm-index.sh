#!/usr/bin/env bash
# EVM indexing benchmark: fills a fresh anvil with N transfers (default 50,000) of all three
# kinds, then measures on the same node
#   1. the raw fetch rate (examples/rawfetch: blocks + Transfer logs + traces, nothing decoded),
#   2. paytrace end to end (fetch, decode, write the fjall index), with peak RSS,
# and prints both as JSON lines. Usage: bench/evm-index.sh [TRANSFERS] [paytrace index flags...]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
n="${1:-50000}"
shift || true
port="${PAYTRACE_BENCH_PORT:-18645}"
anvil_bin="$("$root/scripts/install-anvil")"
tgt="${CARGO_TARGET_DIR:-$root/target}"
cargo build --release --quiet --bin paytrace --example devchain --example rawfetch
"$anvil_bin" --host 127.0.0.1 --port "$port" --no-mining --silent --gas-limit 1000000000 &
anvil_pid=$!
trap 'kill "$anvil_pid" 2>/dev/null || true' EXIT
url="http://127.0.0.1:$port"
for _ in $(seq 1 100); do
    curl -s -o /dev/null -X POST -H 'content-type: application/json' \
        --data '{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}' "$url" && break
    sleep 0.1
done
gen="$("$tgt/release/examples/devchain" "$url" --bulk "$n")"
echo "generated: $gen"
head=$(echo "$gen" | python3 -c 'import json,sys; print(json.load(sys.stdin)["head"])')
expected=$(echo "$gen" | python3 -c 'import json,sys; print(json.load(sys.stdin)["expected_transfers"])')

raw="$("$tgt/release/examples/rawfetch" "$url" 0 "$head" 100 8 25)"
echo "raw fetch: $raw"
data="$(mktemp -d)"
RUST_LOG=${RUST_LOG:-info} /usr/bin/time -v "$tgt/release/paytrace" --data-dir "$data" --json index evm --chain bench --rpc "$url" --from 0 --to "$head" "$@" \
    >"$data.summary.json" 2>"$data.time.txt"
rss_kb=$(grep 'Maximum resident set size' "$data.time.txt" | awk '{print $NF}')
python3 - "$raw" "$data.summary.json" "$rss_kb" "$expected" <<'PY'
import json, sys
raw = json.loads(sys.argv[1]); s = json.load(open(sys.argv[2])); rss = int(sys.argv[3]); expected = int(sys.argv[4])
assert s["transfers"] == expected, (s["transfers"], expected)
raw_rate = expected / raw["seconds"]
idx_rate = s["transfers"] / (s["elapsed_ms"] / 1000)
print(json.dumps({
  "transfers": s["transfers"], "blocks": s["blocks"],
  "raw_fetch_seconds": round(raw["seconds"], 3), "raw_fetch_transfers_per_sec": round(raw_rate),
  "index_seconds": s["elapsed_ms"] / 1000, "index_transfers_per_sec": round(idx_rate),
  "ratio": round(idx_rate / raw_rate, 3), "peak_rss_mib": round(rss / 1024, 1)}))
PY
grep -E "fetched range|committed range" "$data.time.txt" >&2 || true
rm -rf "$data" "$data.summary.json" "$data.time.txt"
