#!/usr/bin/env bash
# Bitcoin indexing benchmark: generates a synthetic chain of BLOCKS × TXS_PER_BLOCK
# transactions (default 4,000 × 250 = 1,000,000) as XOR-obfuscated blk*.dat files, then measures
#   1. the decode-only rate of the same files (examples/btc_bench decode, 1 and 2 threads),
#   2. paytrace end to end (`index btc --blocks-dir`: inputs resolved through the UTXO set in
#      the store, transfers, address indexes, undo data and tx metadata written), with peak RSS.
# Usage: bench/btc-index.sh [BLOCKS] [TXS_PER_BLOCK] [paytrace index btc flags...]
# Data goes to ${PAYTRACE_BENCH_DIR:-/tmp/paytrace-btc-bench} (about 300 MB per million txs).
# PAYTRACE_BENCH_BIN=path/to/paytrace measures another build on the same data.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
blocks="${1:-4000}"
per="${2:-250}"
shift 2 || true
dir="${PAYTRACE_BENCH_DIR:-/tmp/paytrace-btc-bench}"
target="${CARGO_TARGET_DIR:-$root/target}"
cargo build --release --quiet --bin paytrace -p paytrace
cargo build --release --quiet -p paytrace-indexer --example btc_bench
bench="$target/release/examples/btc_bench"
if [ ! -f "$dir/blocks/blk00000.dat" ] || [ "$(cat "$dir/blocks/.params" 2>/dev/null)" != "$blocks $per" ]; then
    rm -rf "$dir/blocks"
    "$bench" generate "$dir/blocks" "$blocks" "$per" --xor
    echo "$blocks $per" > "$dir/blocks/.params"
fi
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
"$bench" decode "$dir/blocks" 1
"$bench" decode "$dir/blocks" 2
rm -rf "$dir/store"
/usr/bin/time -v "${PAYTRACE_BENCH_BIN:-$target/release/paytrace}" --data-dir "$dir/store" --json index btc \
    --blocks-dir "$dir/blocks" "$@" 2> "$dir/time.txt" | tee "$dir/summary.json"
grep -E "Maximum resident|Elapsed|Percent of CPU" "$dir/time.txt"
du -sh "$dir/store"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
