#!/usr/bin/env python3
"""DuckDB baseline for wide address traces: time-respecting reachability from every outflow
of one address, per-hop frontier queries (DuckDB's fastest formulation in duckdb_compare.py).

Input: the transfers CSV written by `cargo bench -p paytrace-tracer --bench trace` with
PAYTRACE_BENCH_CSV set. Addresses < 100 are the hubs (exchanges): reached, not expanded,
like `paytrace trace --stop ADDR=exchange`.

Usage: duckdb_wide.py transfers.csv HOPS SEED [SEED ...]      (seeds: address indexes)
       duckdb_wide.py transfers.csv HOPS --scan FROM TO        (reached count per seed)
"""

import statistics
import sys
import time

import duckdb

from duckdb_compare import frontier


def main():
    transfers, hops = sys.argv[1], int(sys.argv[2])
    con = duckdb.connect(":memory:")
    con.execute("SET threads = 2")
    t0 = time.time()
    con.execute(
        "CREATE OR REPLACE TABLE t AS SELECT src, dst, block * 100 + tx AS k "
        f"FROM read_csv_auto('{transfers}') ORDER BY src, k"
    )
    print(f"loaded {con.execute('SELECT count(*) FROM t').fetchone()[0]} transfers "
          f"in {time.time() - t0:.1f} s", flush=True)

    def reach(addr):
        return frontier(con, addr, -1, hops) - 1

    if sys.argv[3] == "--scan":
        for a in range(int(sys.argv[4]), int(sys.argv[5])):
            t1 = time.perf_counter()
            n = reach(a)
            print(f"seed {a}: reached {n} in {(time.perf_counter() - t1) * 1000:.0f} ms", flush=True)
        return
    for a in [int(s) for s in sys.argv[3:]]:
        reach(a)  # warm-up
        times = []
        for _ in range(5):
            t1 = time.perf_counter()
            n = reach(a)
            times.append(time.perf_counter() - t1)
        ms = sorted(t * 1000 for t in times)
        print(f"seed {a}: reached {n}; 5 runs {' / '.join(f'{x:.0f}' for x in ms)} ms, "
              f"median {statistics.median(ms):.0f} ms", flush=True)


if __name__ == "__main__":
    main()
