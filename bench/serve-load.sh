#!/usr/bin/env bash
# Load test of `paytrace serve` with ApacheBench (`ab`, Debian package apache2-utils):
# CONCURRENCY keep-alive clients, every seed of SEEDS_CSV (the tracer bench's seed transfers,
# columns dst,block,tx) in turn, REQUESTS requests per seed; prints p50/p90/p99/max over all
# requests of each workload and the request rate.
#
#   bench/serve-load.sh URL KEY SEEDS_CSV [CONCURRENCY=64] [REQUESTS=640]
#
# (screening sends CONCURRENCY requests per seed: one screening reads thousands of transfers)
#
# Workloads: a 3-hop haircut trace from the seed transfer, screening of the seed's receiver,
# and a mix (address summary, one transfer page, stats) for the read rate.
set -euo pipefail
url="$1"
key="$2"
seeds="$3"
conc="${4:-64}"
reqs="${5:-640}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

run() { # name path [requests]
    local name="$1" path="$2" n="${3:-$reqs}"
    ab -q -k -c "$conc" -n "$n" -H "X-Api-Key: $key" -g "$tmp/$name.$RANDOM.tsv" \
        "$url$path" >"$tmp/ab.out" 2>&1 || { cat "$tmp/ab.out" >&2; exit 1; }
    if grep -q "^Non-2xx responses" "$tmp/ab.out"; then
        grep "^Non-2xx" "$tmp/ab.out" >&2
        echo "serve-load: non-2xx answers for $path" >&2
        exit 1
    fi
    grep "^Time taken for tests" "$tmp/ab.out" | awk '{print $5}' >>"$tmp/$name.wall"
}

report() { # name
    local name="$1"
    python3 - "$tmp" "$name" <<'EOF'
import glob, sys
tmp, name = sys.argv[1], sys.argv[2]
t = []
for f in glob.glob(f"{tmp}/{name}.*.tsv"):
    for line in open(f).readlines()[1:]:
        t.append(int(line.split("\t")[4]))  # ttime, ms
t.sort()
wall = sum(float(x) for x in open(f"{tmp}/{name}.wall"))
q = lambda p: t[min(len(t) - 1, int(p * len(t)))]
print(f"{name}: {len(t)} requests, p50 {q(0.5)} ms, p90 {q(0.9)} ms, p99 {q(0.99)} ms, "
      f"max {t[-1]} ms, {len(t) / wall:.0f} requests/s")
EOF
}

tail -n +2 "$seeds" | while IFS=, read -r dst block tx; do
    seed=$(printf '0x%016x%08x%040d' "$block" "$tx" 0)
    addr=$(printf '0xaa%038x' "$dst")
    run trace "/v1/trace?seed=$seed&hops=3&model=haircut"
    run screen "/v1/screen/$addr" "$conc"
    run mixed_address "/v1/address/$addr?limit=10"
    run mixed_transfers "/v1/address/$addr/transfers?direction=incoming&limit=10"
    run mixed_stats "/v1/stats"
done
report trace
report screen
report mixed_address
report mixed_transfers
report mixed_stats
