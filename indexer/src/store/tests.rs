use super::*;
use crate::model::{Amount, Asset, Timestamp, TxHash};
use alloy_primitives::B256;

fn block(n: u64, salt: u8) -> BlockRef {
    BlockRef {
        number: BlockNumber(n),
        hash: B256::repeat_byte(salt.wrapping_add(n.to_le_bytes()[0])),
        parent: B256::repeat_byte(salt.wrapping_add(n.wrapping_sub(1).to_le_bytes()[0])),
        time: Timestamp(1_000 + n),
    }
}

fn transfer(chain: ChainId, n: u64, pos: u32, from: u8, to: u8) -> Transfer {
    Transfer {
        key: TransferKey {
            chain,
            block: BlockNumber(n),
            tx_index: 0,
            kind: TransferKind::Token,
            position: pos,
        },
        time: Timestamp(1_000 + n),
        tx_hash: TxHash(B256::repeat_byte(n.to_le_bytes()[0])),
        from: Address::Evm([from; 20]),
        to: Address::Evm([to; 20]),
        asset: Asset::Token(Address::Evm([0xee; 20])),
        amount: Amount::from_u64(n * 10 + u64::from(pos)),
        trace_address: vec![],
    }
}

#[test]
fn write_query_unwind() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    let c = s.register_chain("dev", ChainKind::Evm).unwrap();
    assert_eq!(s.register_chain("dev", ChainKind::Evm).unwrap(), c);
    assert!(s.register_chain("dev", ChainKind::Bitcoin).is_err());
    let blocks: Vec<_> = (1..=5).map(|n| block(n, 0)).collect();
    let ts: Vec<_> = (1..=5)
        .flat_map(|n| [transfer(c, n, 0, 1, 2), transfer(c, n, 1, 2, 3)])
        .collect();
    s.write_range(c, &blocks, &ts).unwrap();
    assert_eq!(s.checkpoint(c).unwrap().unwrap().number, BlockNumber(5));
    assert_eq!(s.counters(c).unwrap()[&TransferKind::Token], 10);
    let out: Vec<_> = s
        .address_transfers(&Address::Evm([2; 20]), Direction::Outgoing, None)
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(out.len(), 5);
    assert!(out.windows(2).all(|w| w[0].key < w[1].key));
    // The covering index gives back exactly the stored transfers, both directions.
    for t in &out {
        assert_eq!(s.transfer(&t.key).unwrap().as_ref(), Some(t));
    }
    let inc: Vec<_> = s
        .address_transfers(&Address::Evm([2; 20]), Direction::Incoming, Some(c))
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        inc,
        ts.iter()
            .filter(|t| t.key.position == 0)
            .cloned()
            .collect::<Vec<_>>()
    );
    // Transaction look-up: block 4's transaction holds two transfers.
    let h4 = ts[6].tx_hash;
    assert_eq!(s.tx_location(c, &h4).unwrap(), Some((BlockNumber(4), 0)));
    assert_eq!(s.transaction_transfers(c, &h4).unwrap(), ts[6..8].to_vec());
    assert!(
        s.transaction_transfers(c, &TxHash(B256::repeat_byte(0x77)))
            .unwrap()
            .is_empty()
    );
    // Not contiguous.
    assert!(matches!(
        s.write_range(c, &[block(7, 0)], &[]),
        Err(StoreError::NotContiguous { .. })
    ));
    let st = s.unwind(c, BlockNumber(3)).unwrap();
    assert_eq!(
        st,
        UnwindStats {
            blocks: 2,
            transfers: 4
        }
    );
    assert_eq!(s.checkpoint(c).unwrap().unwrap().number, BlockNumber(3));
    assert_eq!(s.counters(c).unwrap()[&TransferKind::Token], 6);
    assert_eq!(s.tx_location(c, &h4).unwrap(), None);
    assert_eq!(
        s.address_keys(&Address::Evm([3; 20]), Direction::Incoming, Some(c))
            .count(),
        3
    );
    assert_eq!(
        s.range_transfers(c, BlockNumber(0), BlockNumber(u64::MAX))
            .count(),
        6
    );
    // Unwind below everything removes the checkpoint.
    s.unwind(c, BlockNumber(0)).unwrap();
    assert_eq!(s.checkpoint(c).unwrap(), None);
    assert_eq!(
        s.range_transfers(c, BlockNumber(0), BlockNumber(u64::MAX))
            .count(),
        0
    );
}

#[test]
fn reopen_and_schema_and_lock() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = Store::open(dir.path()).unwrap();
        let c = s.register_chain("dev", ChainKind::Evm).unwrap();
        s.write_range(c, &[block(1, 0)], &[transfer(c, 1, 0, 1, 2)])
            .unwrap();
        // A second open in the same process while the first is alive is refused.
        assert!(matches!(
            Store::open(dir.path()),
            Err(StoreError::Locked { .. })
        ));
        s.meta
            .insert(SCHEMA_KEY, 99u32.to_be_bytes().to_vec())
            .unwrap();
    }
    match Store::open(dir.path()) {
        Err(StoreError::SchemaMismatch {
            found: 99,
            expected: SCHEMA_VERSION,
            ..
        }) => {}
        Err(e) => panic!("unexpected {e}"),
        Ok(_) => panic!("opened a store of another schema version"),
    }
}

#[test]
fn file_is_not_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("x");
    std::fs::write(&f, b"hello").unwrap();
    assert!(matches!(
        Store::open(&f),
        Err(StoreError::NotADirectory { .. })
    ));
}

#[test]
fn a_store_opened_with_a_query_cache_reads_the_same_data() {
    let dir = tempfile::tempdir().unwrap();
    let ts = {
        let s = Store::open(dir.path()).unwrap();
        let c = s.register_chain("dev", ChainKind::Evm).unwrap();
        let blocks: Vec<_> = (1..=3).map(|n| block(n, 0)).collect();
        let ts: Vec<_> = (1..=3).map(|n| transfer(c, n, 0, 1, 2)).collect();
        s.write_range(c, &blocks, &ts).unwrap();
        s.persist().unwrap();
        ts
    };
    let s = Store::open_with_cache(dir.path(), Some(QUERY_CACHE_BYTES)).unwrap();
    let out: Vec<_> = s
        .address_transfers(&Address::Evm([1; 20]), Direction::Outgoing, None)
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(out, ts);
}

/// A UTXO transfer of transaction `tx_index` of block `n` (txid `id`, internal byte order):
/// `Script(from) → Tx(node)` or `Tx(node) → Script(to)`.
fn utxo(chain: ChainId, n: u64, tx_index: u32, id: [u8; 32], position: u32) -> Transfer {
    let mut display = id;
    display.reverse();
    let node = Address::Tx(id);
    let (from, to) = if position < crate::model::UTXO_OUTPUT_BASE {
        (Address::Script([position.to_le_bytes()[0]; 32]), node)
    } else {
        (
            node,
            Address::Script([0x40 + position.to_le_bytes()[0]; 32]),
        )
    };
    Transfer {
        key: TransferKey {
            chain,
            block: BlockNumber(n),
            tx_index,
            kind: TransferKind::Utxo,
            position,
        },
        time: Timestamp(1_000 + n),
        tx_hash: TxHash(B256::from(display)),
        from,
        to,
        asset: Asset::Native,
        amount: Amount::from_u64(1_000 + u64::from(position & 0xff)),
        trace_address: vec![],
    }
}

#[test]
fn transaction_nodes_read_through_the_tx_index() {
    use crate::model::UTXO_OUTPUT_BASE as O;
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    let c = s.register_chain("btc", ChainKind::Bitcoin).unwrap();
    let (a, cb) = ([0xa1; 32], [0xcb; 32]);
    // Block 1: coinbase `cb` (index 0) and `a` (index 1, 2 inputs, 2 outputs); block 2 repeats
    // the coinbase txid (BIP30) and has a foreign node (tx hash not its reversed id).
    let mut foreign = utxo(c, 2, 1, [0xf0; 32], O);
    foreign.tx_hash = TxHash(B256::repeat_byte(0x77));
    let ts = vec![
        utxo(c, 1, 0, cb, O),
        utxo(c, 1, 1, a, 0),
        utxo(c, 1, 1, a, 1),
        utxo(c, 1, 1, a, O),
        utxo(c, 1, 1, a, O + 1),
        utxo(c, 2, 0, cb, O),
        foreign.clone(),
    ];
    s.write_range(c, &[block(1, 0), block(2, 0)], &ts).unwrap();
    // A transaction's own node has no index entries (outside coinbases) …
    let own = |t: &Transfer| (t.from == Address::Tx(a)) || (t.to == Address::Tx(a));
    let mut raw = 0;
    for ks in [&s.addr_in, &s.addr_out] {
        for kv in ks.prefix([0x03]) {
            let k = kv.key().unwrap();
            assert_ne!(&k[1..33], &a[..], "indexed own node");
            raw += 1;
        }
    }
    assert_eq!(raw, 3, "coinbase twice and the foreign node");
    // … and reads return exactly what the index used to: every direction, every chain filter.
    for node in [a, cb, [0xf0; 32]] {
        for dir in [Direction::Incoming, Direction::Outgoing] {
            let want: Vec<_> = ts
                .iter()
                .filter(|t| match dir {
                    Direction::Incoming => t.to == Address::Tx(node),
                    Direction::Outgoing => t.from == Address::Tx(node),
                })
                .cloned()
                .collect();
            for chain in [None, Some(c)] {
                let got: Vec<_> = s
                    .address_transfers(&Address::Tx(node), dir, chain)
                    .collect::<Result<_, _>>()
                    .unwrap();
                assert_eq!(got, want, "{node:?} {dir:?} {chain:?}");
                let keys: Vec<_> = s
                    .address_keys(&Address::Tx(node), dir, chain)
                    .collect::<Result<_, _>>()
                    .unwrap();
                assert_eq!(keys, want.iter().map(|t| t.key).collect::<Vec<_>>());
            }
        }
    }
    assert!(ts.iter().any(own));
    assert_eq!(
        s.address_transfers(&Address::Tx(a), Direction::Incoming, Some(ChainId(9)))
            .count(),
        0
    );
    // Unwinding removes them all (and writes no tombstones for entries never written).
    s.unwind(c, BlockNumber(0)).unwrap();
    for node in [a, cb, [0xf0; 32]] {
        assert_eq!(
            s.address_transfers(&Address::Tx(node), Direction::Outgoing, None)
                .count(),
            0
        );
    }
}

/// Schema 4 keeps one `transfers` row per transaction slot: transfers given out of order,
/// repeated, or added later by `write_sparse` read back in canonical order, each once, also
/// with two hashes in one slot.
#[test]
fn transaction_rows_merge_sort_and_keep_every_hash() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    let c = s.register_chain("dev", ChainKind::Evm).unwrap();
    let blocks: Vec<_> = (1..=2).map(|n| block(n, 0)).collect();
    let mut native = transfer(c, 1, 0, 4, 5);
    native.key.kind = TransferKind::Native;
    native.asset = Asset::Native;
    let (a, b) = (transfer(c, 1, 7, 1, 2), transfer(c, 1, 3, 2, 3));
    let mut repeated = a.clone();
    repeated.amount = Amount::from_u64(999);
    // Out of order, with a repeated key (the later one wins, as a later insert did).
    let given = vec![a.clone(), b.clone(), native.clone(), repeated.clone()];
    s.write_range(c, &blocks, &given).unwrap();
    let want = vec![native.clone(), b.clone(), repeated.clone()];
    let got: Vec<_> = s
        .range_transfers(c, BlockNumber(0), BlockNumber(9))
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(got, want);
    assert_eq!(s.transaction_transfers(c, &a.tx_hash).unwrap(), want);
    assert_eq!(s.transfer(&b.key).unwrap(), Some(b.clone()));
    assert_eq!(s.transfer(&transfer(c, 1, 4, 1, 2).key).unwrap(), None);
    assert_eq!(s.counters(c).unwrap()[&TransferKind::Token], 2);

    // A later sparse write merges into the row; what is stored already is skipped.
    let extra = transfer(c, 1, 5, 6, 7);
    assert_eq!(
        s.write_sparse(c, &[extra.clone(), b.clone()], vec![])
            .unwrap(),
        1
    );
    let want = vec![native, b, extra.clone(), repeated];
    assert_eq!(s.transaction_transfers(c, &a.tx_hash).unwrap(), want);
    assert_eq!(s.counters(c).unwrap()[&TransferKind::Token], 3);
    assert_eq!(
        s.address_transfers(&extra.from, Direction::Outgoing, Some(c))
            .collect::<Result<Vec<_>, _>>()
            .unwrap(),
        vec![extra]
    );

    // Another hash in the same slot (imports without transaction indexes put a whole block at
    // index 0): stored in the same row, each transaction still reads back only its own.
    let mut other = transfer(c, 1, 9, 1, 2);
    other.tx_hash = TxHash(B256::repeat_byte(0x55));
    other.time = Timestamp(7);
    assert_eq!(s.write_sparse(c, &[other.clone()], vec![]).unwrap(), 1);
    assert_eq!(s.transaction_transfers(c, &a.tx_hash).unwrap(), want);
    assert_eq!(
        s.transaction_transfers(c, &other.tx_hash).unwrap(),
        vec![other.clone()]
    );
    assert_eq!(s.transfer(&other.key).unwrap(), Some(other));

    // Unwinding removes whole rows and every index entry of their transfers.
    let st = s.unwind(c, BlockNumber(0)).unwrap();
    assert_eq!(st.transfers, 5);
    assert_eq!(
        s.range_transfers(c, BlockNumber(0), BlockNumber(9)).count(),
        0
    );
    assert_eq!(
        s.address_transfers(&Address::Evm([1; 20]), Direction::Outgoing, None)
            .count(),
        0
    );
}
