#!/usr/bin/env bash
# EVM indexing benchmark: fills a fresh anvil with N transfers (default 50,000) of all three
# kinds, then measures on the same node
#   1. the raw fetch rate (examples/rawfetch: blocks + Transfer logs + traces, nothing decoded),
#      the best of three request layouts (1, 5 and 100 blocks per unit), twice:
#      - "full": full blocks with transactions, the issue's definition of the limit;
#      - "headers": blocks without transaction objects, the calls paytrace makes with parity
#        traces (native transfers come from the traces);
#   2. paytrace end to end (fetch, decode, write the fjall index), with peak RSS, three times
#      (PAYTRACE_BENCH_RUNS), reporting the median,
# and prints both as JSON lines. Usage: bench/evm-index.sh [TRANSFERS] [paytrace index flags...]
# `ratio` is paytrace against the issue's limit (full blocks); `ratio_same_calls` against the
# raw fetch of exactly the calls paytrace makes. PAYTRACE_BENCH_BIN runs another paytrace binary
# (e.g. a build of an older commit, for before/after comparisons on the same machine state).
#
# PAYTRACE_BENCH_CORES chooses where the node and the clients run (default: "shared split"):
#   shared  anvil, rawfetch and paytrace share both cores (the node competes with the indexer
#           for CPU: every cycle paytrace spends slows the node that feeds it);
#   split   anvil is pinned to core 0 and the clients (rawfetch, then paytrace) to core 1, as
#           when the node runs on its own machine: the limit is the node's serving rate and
#           the ratio says whether paytrace keeps up with it.
# Each mode measures its own limit and its own paytrace run on the same chain, and prints one
# result line with `"cores": MODE`.
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

best_raw() { # best_raw MODE: the fastest raw fetch over three request layouts, as JSON
    local best="" u r
    for u in 1 5 100; do
        r="$($client "$tgt/release/examples/rawfetch" "$url" 0 "$head" "$u" 8 25 "$1")"
        echo "raw fetch ($1, $u blocks per unit): $r" >&2
        best="$(python3 -c 'import json,sys
a=sys.argv[1]; b=json.loads(sys.argv[2]); b["unit"]=int(sys.argv[3])
print(json.dumps(b if not a or b["seconds"] < json.loads(a)["seconds"] else json.loads(a)))' "$best" "$r" "$u")"
    done
    echo "$best"
}
for mode in ${PAYTRACE_BENCH_CORES:-shared split}; do
case "$mode" in
shared) taskset -acp 0-"$(($(nproc) - 1))" "$anvil_pid" >/dev/null; client="" ;;
split) taskset -acp 0 "$anvil_pid" >/dev/null; client="taskset -c 1" ;;
*) echo "unknown PAYTRACE_BENCH_CORES mode $mode: expected shared or split" >&2; exit 1 ;;
esac
raw="$(best_raw full)"
raw_headers="$(best_raw headers)"
echo "cores $mode, raw fetch: $raw"
echo "cores $mode, raw fetch, headers only: $raw_headers"
# paytrace runs PAYTRACE_BENCH_RUNS times (default 3), each into a fresh store; `ratio` is from
# the median run (the limit is the best of its layouts, so this errs against paytrace),
# `ratio_best` from the fastest, and the peak RSS is the largest of the runs.
runs=()
for i in $(seq 1 "${PAYTRACE_BENCH_RUNS:-3}"); do
    data="$(mktemp -d)"
    RUST_LOG=${RUST_LOG:-info} /usr/bin/time -v $client "${PAYTRACE_BENCH_BIN:-$tgt/release/paytrace}" --data-dir "$data" --json index evm --chain bench --rpc "$url" --from 0 --to "$head" "$@" \
        >"$data.summary.json" 2>"$data.time.txt"
    rss_kb=$(grep 'Maximum resident set size' "$data.time.txt" | awk '{print $NF}')
    runs+=("$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); s["rss_kb"]=int(sys.argv[2]); print(json.dumps(s))' "$data.summary.json" "$rss_kb")")
    rm -rf "$data" "$data.summary.json" "$data.time.txt"
done
python3 - "$raw" "$expected" "$raw_headers" "$mode" "${runs[@]}" <<'PY'
import json, sys
raw = json.loads(sys.argv[1]); expected = int(sys.argv[2]); rawh = json.loads(sys.argv[3])
runs = [json.loads(r) for r in sys.argv[5:]]
for s in runs:
    assert s["transfers"] == expected, (s["transfers"], expected)
secs = sorted(s["elapsed_ms"] / 1000 for s in runs)
median, best = secs[len(secs) // 2], secs[0]
raw_rate = expected / raw["seconds"]
rawh_rate = expected / rawh["seconds"]
idx_rate = expected / median
print(json.dumps({
  "cores": sys.argv[4], "transfers": expected, "blocks": runs[0]["blocks"],
  "raw_fetch_seconds": round(raw["seconds"], 3), "raw_fetch_transfers_per_sec": round(raw_rate),
  "raw_fetch_unit": raw["unit"],
  "raw_headers_seconds": round(rawh["seconds"], 3), "raw_headers_transfers_per_sec": round(rawh_rate),
  "raw_headers_unit": rawh["unit"],
  "index_seconds": median, "index_seconds_all": secs, "index_transfers_per_sec": round(idx_rate),
  "ratio": round(idx_rate / raw_rate, 3), "ratio_best": round(expected / best / raw_rate, 3),
  "ratio_same_calls": round(idx_rate / rawh_rate, 3),
  "peak_rss_mib": round(max(s["rss_kb"] for s in runs) / 1024, 1)}))
PY
done
