#!/usr/bin/env bash
# Peak RSS and time of `paytrace import transfers` on N generated token transfers
# (bench/gen-token-transfers.py: block order, 100 per block), into a fresh store under $TMPDIR
# (default /tmp).
#
# Usage: bench/import-rss.sh N [BINARY] [CSV]
#   BINARY  default target/release/paytrace (build it with `cargo build --release -p paytrace`)
#   CSV     an already generated file of N rows to reuse (kept); otherwise one is generated and
#           removed at the end
set -euo pipefail
n=${1:?usage: bench/import-rss.sh N [BINARY] [CSV]}
bin=${2:-target/release/paytrace}
work=$(mktemp -d "${TMPDIR:-/tmp}/paytrace-import-XXXXXX")
trap 'rm -rf "$work"' EXIT
csv=${3:-}
if [[ -z "$csv" ]]; then
  csv="$work/t.csv"
  python3 "$(dirname "$0")/gen-token-transfers.py" "$n" > "$csv"
fi
/usr/bin/time -v "$bin" --data-dir "$work/store" --json import transfers "$csv" \
  > "$work/out.json" 2> "$work/time.txt" || { cat "$work/time.txt"; exit 1; }
rss_kib=$(awk -F': ' '/Maximum resident/ {print $2}' "$work/time.txt")
wall=$(awk -F': ' '/Elapsed \(wall/ {print $2}' "$work/time.txt")
cpu=$(awk -F': ' '/Percent of CPU/ {print $2}' "$work/time.txt")
imported=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["imported"])' "$work/out.json")
echo "{\"rows\": $n, \"imported\": $imported, \"peak_rss_mib\": $((rss_kib / 1024)), \"wall\": \"$wall\", \"cpu\": \"$cpu\", \"store\": \"$(du -sh "$work/store" | cut -f1)\"}"
