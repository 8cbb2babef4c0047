#!/usr/bin/env python3
"""Writes N synthetic token transfers in the ethereum-etl `token_transfers` CSV schema, in block
order (PER_BLOCK rows per block from block 1), for `paytrace import transfers` benchmarks.

Usage: bench/gen-token-transfers.py N [PER_BLOCK] > FILE.csv
Deterministic: 4 tokens, 1,000,000 addresses, one transaction per row, 12 s blocks.
"""
import sys


def main() -> None:
    n = int(sys.argv[1])
    per_block = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    out = sys.stdout
    out.write(
        "token_address,from_address,to_address,value,transaction_hash,log_index,"
        "block_number,block_timestamp\n"
    )
    x = 12345
    buf = []
    for i in range(n):
        x = (x * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        frm = (x >> 20) % 1_000_000 + 1
        to = (x >> 40) % 1_000_000 + 1
        block = i // per_block + 1
        buf.append(
            f"0x{0xa0 + i % 4:040x},0x{frm:040x},0x{to:040x},{(x >> 8) % 10**9 + 1},"
            f"0x{i + 1:064x},{i % per_block},{block},{1_700_000_000 + block * 12}\n"
        )
        if len(buf) >= 10_000:
            out.write("".join(buf))
            buf.clear()
    out.write("".join(buf))


if __name__ == "__main__":
    main()
