"""The tracer bench graph (tracer/benches/common/mod.rs: same splitmix64 stream, skewed
degrees, 10 transfers per block) as an ethereum-etl token_transfers CSV for
`paytrace import transfers`, so the bench store can be built without compiling the bench.

    python3 tracer/benches/bench_csv.py ADDRESSES TRANSFERS > t.csv
    python3 tracer/benches/bench_csv.py stops    # the `--stop ADDR=exchange` flags of the 100 hubs
"""
import sys
M = (1 << 64) - 1
class Rng:
    def __init__(s, x): s.x = x
    def next(s):
        s.x = (s.x + 0x9e3779b97f4a7c15) & M
        z = s.x
        z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & M
        z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & M
        return z ^ (z >> 31)
    def skewed(s, n):
        u = s.next() >> 43
        return ((n * u * u * u) >> 63) % n
def a(i): return "0xaa" + "00" * 11 + i.to_bytes(8, 'big').hex()
if sys.argv[1] == "stops":
    print(" ".join(f"--stop {a(i)}=exchange" for i in range(100)))
    sys.exit(0)
n_addr, n_tr = int(sys.argv[1]), int(sys.argv[2])
r = Rng(42)
out = sys.stdout
out.write("token_address,from_address,to_address,value,transaction_hash,log_index,block_number,block_timestamp\n")
tok = "0x" + "cc" * 20
for b in range(1, n_tr // 10 + 1):
    for tx in range(10):
        f = r.skewed(n_addr)
        t = r.skewed(n_addr) if r.next() % 2 == 0 else r.next() % n_addr
        amount = 1 + r.next() % 1_000_000_000_000_000_000
        h = "0x" + b.to_bytes(8, 'big').hex() + tx.to_bytes(4, 'big').hex() + "00" * 20
        out.write(f"{tok},{a(f)},{a(t)},{amount},{h},{tx},{b},{1600000000 + b * 12}\n")
