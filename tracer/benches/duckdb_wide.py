#!/usr/bin/env python3
"""DuckDB baseline for wide address traces: time-respecting reachability from every outflow
of one address, hop by hop (earliest arrival per address; hubs reached, not expanded), in three
formulations:
  * "python per-hop": duckdb_compare.py's frontier (the frontier goes through Python);
  * "sql per-hop": the same per-hop query with the frontier and the reached set kept in DuckDB
    temp tables (no Python round trip; DuckDB's fastest formulation here);
  * "recursive CTE" (USING KEY keeps the earliest arrival per address).

DuckDB's HOPS counts transfers from the seed; `paytrace trace ADDRESS --hops H` counts from the
seed's receivers (hop 0), so DuckDB HOPS = H + 1 (and `--model poison` is reachability).

Input: the transfers CSV written by `cargo bench -p paytrace-tracer --bench trace` with
PAYTRACE_BENCH_CSV set. Addresses < 100 are the hubs (exchanges): reached, not expanded,
like `paytrace trace --stop ADDR=exchange`.

Usage: duckdb_wide.py transfers.csv|db.duckdb HOPS SEED [SEED ...]   (seeds: address indexes)
       duckdb_wide.py transfers.csv|db.duckdb HOPS --scan FROM TO     (reached per hop, sql)
       duckdb_wide.py transfers.csv --save db.duckdb                  (load once, reuse)
       duckdb_wide.py db.duckdb HOPS --out FILE SEED   (as a user runs it: open, trace, write
                                                        the reached addresses as JSON lines)
"""

import os
import statistics
import sys
import time

import duckdb

from duckdb_compare import frontier

HUBS = 100


def sql_frontier(con, addr, hops):
    """Per-hop reachability with the frontier in DuckDB; returns the reached count per hop
    (without the seed)."""
    con.execute(
        "CREATE OR REPLACE TEMP TABLE reached AS SELECT ?::BIGINT AS addr, -1::BIGINT AS k",
        [addr],
    )
    con.execute("CREATE OR REPLACE TEMP TABLE front AS SELECT * FROM reached")
    counts = []
    for _ in range(hops):
        con.execute(
            "CREATE OR REPLACE TEMP TABLE nxt AS SELECT n.addr, n.k FROM ("
            "  SELECT t.dst AS addr, min(t.k) AS k FROM front f"
            f"  JOIN t ON t.src = f.addr AND t.k > f.k WHERE f.addr >= {HUBS} GROUP BY t.dst"
            ") n LEFT JOIN reached r ON r.addr = n.addr WHERE r.addr IS NULL OR n.k < r.k"
        )
        con.execute(
            "CREATE OR REPLACE TEMP TABLE reached AS SELECT addr, min(k) AS k FROM "
            "(SELECT * FROM reached UNION ALL SELECT * FROM nxt) GROUP BY addr"
        )
        con.execute("CREATE OR REPLACE TEMP TABLE front AS SELECT * FROM nxt")
        counts.append(con.execute("SELECT count(*) FROM reached").fetchone()[0] - 1)
    return counts


def cte(con, addr, hops):
    return con.execute(
        f"""
        WITH RECURSIVE r(addr, k, depth) USING KEY (addr) AS (
          SELECT ?::BIGINT, -1::BIGINT, 0
          UNION
          SELECT t.dst, min(t.k), min(r.depth) + 1
          FROM r JOIN t ON t.src = r.addr AND t.k > r.k
          WHERE r.depth < {hops} AND r.addr >= {HUBS}
          GROUP BY t.dst
        )
        SELECT count(*) FROM r""",
        [addr],
    ).fetchone()[0] - 1


def cpu():
    t = os.times()
    return t.user + t.system


def main():
    src = sys.argv[1]
    if src.endswith(".duckdb"):
        con = duckdb.connect(src, read_only=True)
        con.execute("SET threads = 2")
    else:
        db = sys.argv[3] if len(sys.argv) > 3 and sys.argv[2] == "--save" else ":memory:"
        con = duckdb.connect(db)
        con.execute("SET threads = 2")
        t0 = time.time()
        con.execute(
            "CREATE OR REPLACE TABLE t AS SELECT src, dst, block * 100 + tx AS k "
            f"FROM read_csv_auto('{src}') ORDER BY src, k"
        )
        print(f"loaded {con.execute('SELECT count(*) FROM t').fetchone()[0]} transfers "
              f"in {time.time() - t0:.1f} s", flush=True)
        if db != ":memory:":
            return
    hops = int(sys.argv[2])
    if sys.argv[3] == "--out":
        addr = int(sys.argv[5])
        sql_frontier(con, addr, hops)
        con.execute(
            f"COPY (SELECT addr, k // 100 AS block, k % 100 AS tx FROM reached "
            f"WHERE addr <> {addr} ORDER BY addr) TO '{sys.argv[4]}' (FORMAT json)"
        )
        return
    if sys.argv[3] == "--scan":
        for a in range(int(sys.argv[4]), int(sys.argv[5])):
            t1 = time.perf_counter()
            n = sql_frontier(con, a, hops)
            print(f"seed {a}: reached per hop {n} in {(time.perf_counter() - t1) * 1000:.0f} ms",
                  flush=True)
        return
    for a in [int(s) for s in sys.argv[3:]]:
        for name, fn in [
            ("sql per-hop", lambda: sql_frontier(con, a, hops)[-1]),
            ("python per-hop", lambda: frontier(con, a, -1, hops) - 1),
            ("recursive CTE", lambda: cte(con, a, hops)),
        ]:
            fn()  # warm-up
            walls, cpus = [], []
            for _ in range(5):
                t1, c1 = time.perf_counter(), cpu()
                n = fn()
                walls.append((time.perf_counter() - t1) * 1000)
                cpus.append((cpu() - c1) * 1000)
            walls.sort()
            print(f"seed {a} hops {hops} {name}: reached {n}; 5 runs "
                  f"{' / '.join(f'{x:.0f}' for x in walls)} ms, median "
                  f"{statistics.median(walls):.0f} ms, CPU median {statistics.median(cpus):.0f} ms"
                  f"; load {' '.join(open('/proc/loadavg').read().split()[:3])}", flush=True)


if __name__ == "__main__":
    main()
