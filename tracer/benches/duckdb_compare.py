#!/usr/bin/env python3
"""DuckDB baseline for the tracer benchmark: 3-hop time-respecting reachability.

Input: the CSVs written by `cargo bench -p paytrace-tracer --bench trace` with
PAYTRACE_BENCH_CSV / PAYTRACE_BENCH_SEEDS_CSV set (same generated graph, same 100 seeds).
Addresses < 100 are the hubs (exchanges): reached but not expanded, like the tracer's stop rule.

Two formulations, DuckDB limited to 2 threads:
  * recursive CTE (USING KEY keeps the earliest arrival per address, so it is a
    time-respecting BFS, not a path enumeration);
  * per-hop frontier queries driven from Python (frontier = earliest arrival per address).

Usage: duckdb_compare.py transfers.csv seeds.csv [db_file]
"""

import statistics
import sys
import time

import duckdb

HUBS = 100
HOPS = 3


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round((len(xs) - 1) * p))]


def report(name, times):
    ms = [t * 1000 for t in times]
    print(
        f"{name}: n={len(ms)} p50 {pct(ms, 0.5):.2f} ms  p99 {pct(ms, 0.99):.2f} ms  "
        f"mean {statistics.mean(ms):.2f} ms"
    )


def frontier(con, addr, k, hops):
    """Per-hop time-respecting reachability from `addr` after key `k` (earliest arrival per
    address, hubs reached but not expanded); returns the addresses reached with the seed."""
    reached = {addr: k}
    front = [(addr, k)]
    for _ in range(hops):
        front = [(a, kk) for a, kk in front if a >= HUBS]
        if not front:
            break
        con.execute("CREATE OR REPLACE TEMP TABLE f(addr BIGINT, k BIGINT)")
        con.executemany("INSERT INTO f VALUES (?, ?)", front)
        rows = con.execute(
            "SELECT t.dst, min(t.k) FROM f JOIN t ON t.src = f.addr AND t.k > f.k "
            "GROUP BY t.dst"
        ).fetchall()
        front = []
        for d, kk in rows:
            if d not in reached or kk < reached[d]:
                reached[d] = kk
                front.append((d, kk))
    return len(reached)


def main():
    transfers, seeds_csv = sys.argv[1], sys.argv[2]
    db = sys.argv[3] if len(sys.argv) > 3 else ":memory:"
    con = duckdb.connect(db)
    con.execute("SET threads = 2")
    t0 = time.time()
    con.execute(
        "CREATE OR REPLACE TABLE t AS SELECT src, dst, block * 100 + tx AS k, "
        f"CAST(amount AS HUGEINT) AS amount FROM read_csv_auto('{transfers}') ORDER BY src, k"
    )
    seeds = con.execute(
        f"SELECT dst, block * 100 + tx FROM read_csv_auto('{seeds_csv}')"
    ).fetchall()
    print(f"loaded {con.execute('SELECT count(*) FROM t').fetchone()[0]} transfers "
          f"in {time.time() - t0:.1f} s")

    cte = f"""
    WITH RECURSIVE r(addr, k, depth) USING KEY (addr) AS (
      SELECT ?::BIGINT, ?::BIGINT, 0
      UNION
      SELECT t.dst, min(t.k), min(r.depth) + 1
      FROM r JOIN t ON t.src = r.addr AND t.k > r.k
      WHERE r.depth < {HOPS} AND r.addr >= {HUBS}
      GROUP BY t.dst
    )
    SELECT count(*) FROM r
    """

    for name, fn in [
        ("recursive CTE", lambda a, k: con.execute(cte, [a, k]).fetchone()[0]),
        ("per-hop frontier", lambda a, k: frontier(con, a, k, HOPS)),
    ]:
        for a, k in seeds[:5]:
            fn(a, k)  # warm-up
        times, sizes = [], []
        for a, k in seeds:
            t1 = time.perf_counter()
            sizes.append(fn(a, k))
            times.append(time.perf_counter() - t1)
        report(name, times)
        print(f"  reached addresses per seed: mean {statistics.mean(sizes):.0f}")


if __name__ == "__main__":
    main()
