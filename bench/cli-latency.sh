#!/usr/bin/env bash
# What a user waits for: wall time from process start to the end of output of short commands,
# each run N times in turn (interleaved), output to /dev/null, with p50/p90/max.
#
# Usage: bench/cli-latency.sh STORE [N] [BINARY] -- 'ARGS 1' 'ARGS 2' ...
#   STORE   a paytrace data dir (read only: every command here is a read command)
#   N       runs per command (default 21)
#   BINARY  default target/release/paytrace (`cargo build --release -p paytrace`)
# `--version` is always measured first, as the floor (process start, no store).
set -euo pipefail
store=${1:?usage: bench/cli-latency.sh STORE [N] [BINARY] -- ARGS...}
shift
n=21
bin=target/release/paytrace
if [[ $# -gt 0 && "$1" != "--" ]]; then n=$1; shift; fi
if [[ $# -gt 0 && "$1" != "--" ]]; then bin=$1; shift; fi
[[ "${1:-}" == "--" ]] && shift
python3 - "$bin" "$store" "$n" "$@" <<'PY'
import os, shlex, subprocess, sys, time
binary, store, n, cmds = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
runs = [("--version", [binary, "--version"])]
runs += [(c, [binary, "--data-dir", store] + shlex.split(c)) for c in cmds]
times = {name: [] for name, _ in runs}
devnull = open(os.devnull, "w")
for name, argv in runs:  # warm the page cache once
    subprocess.run(argv, stdout=devnull, stderr=devnull, check=True)
for _ in range(n):
    for name, argv in runs:
        t = time.perf_counter()
        subprocess.run(argv, stdout=devnull, stderr=devnull, check=True)
        times[name].append((time.perf_counter() - t) * 1000)
load = open("/proc/loadavg").read().split()[:3]
print(f"load average {' '.join(load)}, {n} runs each")
for name, ts in times.items():
    ts.sort()
    p = lambda q: ts[min(len(ts) - 1, round((len(ts) - 1) * q))]
    print(f"{p(0.5):8.1f} ms p50 {p(0.9):8.1f} ms p90 {ts[-1]:8.1f} ms max  {name}")
PY
