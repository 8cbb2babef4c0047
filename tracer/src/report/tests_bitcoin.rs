//! Unit tests of reports on Bitcoin payouts: batch rows with `chain = bitcoin` (amounts in BTC,
//! mainnet addresses only), payouts through transaction nodes, a report mixing an EVM token
//! payroll with a Bitcoin one (amounts kept apart per chain family and shown in BTC), and
//! convergence across the two when a cluster ties an address on each.

#![allow(clippy::unwrap_used)]

use super::*;
use crate::{MemoryGraph, MemoryLabels};
use paytrace_indexer::{BlockNumber, TransferKind, model::UTXO_OUTPUT_BASE};

const TOKEN: u8 = 0xee;
const BTC_CHAIN: ChainId = ChainId(1);
/// 1 BTC in satoshis.
const COIN: u64 = 100_000_000;

/// Real mainnet addresses (from the OFAC XBT list and the BIP-173/350 examples).
const PROVIDER: &str = "12QtD5BFwRsdNsAZY76UVE1xyCGNTojH9h";
const BEN: &str = "bc1qm34lsc65zpw79lxes69zkqmk6ee3ewf0j77s3h";
const CAT: &str = "3NDzzVxiLBUs1WPvVGRfCYDTAD2Ua2PvW4";
const WALLET: &str = "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa";

fn evm(i: u8) -> Address {
    Address::Evm([i; 20])
}

fn btc(s: &str) -> Address {
    batch::parse_bitcoin_address(s).unwrap()
}

fn tx_node(block: u64) -> Address {
    let mut b = [0u8; 32];
    b[..8].copy_from_slice(&block.to_be_bytes());
    b[31] = 0xb7;
    Address::Tx(b)
}

fn token(block: u64, from: Address, to: Address, amount: u64) -> Transfer {
    let mut h = [0u8; 32];
    h[..8].copy_from_slice(&block.to_be_bytes());
    Transfer {
        key: TransferKey {
            chain: ChainId(0),
            block: BlockNumber(block),
            tx_index: 0,
            kind: TransferKind::Token,
            position: 0,
        },
        time: Timestamp(1_700_000_000 + block * 3_600),
        tx_hash: TxHash(h.into()),
        from,
        to,
        asset: Asset::Token(evm(TOKEN)),
        amount: Amount::from_u64(amount),
        trace_address: Vec::new(),
    }
}

/// One Bitcoin transaction in `block` (its only one after the coinbase): `inputs` into the
/// transaction node, then `outputs` out of it.
fn utxo_tx(block: u64, inputs: &[(Address, u64)], outputs: &[(Address, u64)]) -> Vec<Transfer> {
    let node = tx_node(block);
    let Address::Tx(txid) = node else {
        unreachable!()
    };
    let mk = |position: u32, from: Address, to: Address, v: u64| Transfer {
        key: TransferKey {
            chain: BTC_CHAIN,
            block: BlockNumber(block),
            tx_index: 1,
            kind: TransferKind::Utxo,
            position,
        },
        time: Timestamp(1_700_000_000 + block * 3_600),
        tx_hash: TxHash(txid.into()),
        from,
        to,
        asset: Asset::Native,
        amount: Amount::from_u64(v),
        trace_address: Vec::new(),
    };
    let mut v = Vec::new();
    for (i, (a, amount)) in (0u32..).zip(inputs) {
        v.push(mk(i, *a, node, *amount));
    }
    for (o, (a, amount)) in (0u32..).zip(outputs) {
        v.push(mk(UTXO_OUTPUT_BASE + o, node, *a, *amount));
    }
    v
}

fn book() -> AssetBook {
    let mut b = AssetBook::new();
    b.insert(Asset::Native, "ETH", 18);
    b.insert(Asset::Token(evm(TOKEN)), "USDC", 6);
    b.insert_bitcoin();
    b
}

/// The EVM provider 1 pays Ann (10) 2 USDC, Ann forwards it to 20. The Bitcoin provider funds
/// a coinbase-like 1 BTC, pays Ben 0.25 and Cat 0.5 BTC with 0.2499 change (0.0001 fee); Ben
/// sends 0.2 BTC of it to WALLET.
fn mixed_graph() -> MemoryGraph {
    let p = btc(PROVIDER);
    let mut ts = vec![
        token(1, evm(1), evm(10), 2_000_000),
        token(5, evm(10), evm(20), 2_000_000),
    ];
    ts.extend(utxo_tx(2, &[], &[(p, COIN)]));
    ts.extend(utxo_tx(
        3,
        &[(p, COIN)],
        &[
            (btc(BEN), COIN / 4),
            (btc(CAT), COIN / 2),
            (p, COIN / 4 - 10_000),
        ],
    ));
    ts.extend(utxo_tx(
        4,
        &[(btc(BEN), COIN / 4)],
        &[(btc(WALLET), COIN / 5), (btc(BEN), COIN / 20 - 5_000)],
    ));
    MemoryGraph::from_transfers(ts)
}

#[test]
fn bitcoin_rows_parse_in_btc_and_bad_ones_name_line_and_field() {
    let csv = format!(
        "payee,address,chain,asset,amount\n\
         Ben,{BEN},bitcoin,BTC,0.25\n\
         Cat,{CAT},BTC,native,0.5\n\
         Tess,tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx,bitcoin,BTC,0.1\n\
         Chuck,1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNb,bitcoin,BTC,0.1\n\
         Eva,0x098B716B8Aaf21512996dC57EB0615e2383E2f96,bitcoin,BTC,0.1\n\
         Vic,bc1zw508d6qejxtdg4y5r3zarvaryvqyzf3du,bitcoin,BTC,0.1\n\
         Nina,{BEN},bitcoin,BTC,0.000000001\n\
         Tom,{BEN},bitcoin,USDC,1\n\
         Bob,{BEN},ethereum,USDC,1\n"
    );
    let (rows, issues) = batch::parse("pay.csv", csv.as_bytes(), &book()).unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].address, btc(BEN));
    assert_eq!(rows[0].amount, Amount::from_u64(COIN / 4));
    assert_eq!(rows[0].asset, Asset::Native);
    assert_eq!(rows[1].amount, Amount::from_u64(COIN / 2));
    let got: Vec<(u64, batch::IssueKind)> = issues.iter().map(|i| (i.line, i.kind)).collect();
    use batch::IssueKind::{BadAddress, BadAmount, UnknownAsset};
    assert_eq!(
        got,
        vec![
            (4, BadAddress),
            (5, BadAddress),
            (6, BadAddress),
            (7, BadAddress),
            (8, BadAmount),
            (9, UnknownAsset),
            (10, BadAddress),
        ]
    );
    let text: Vec<String> = issues.iter().map(ToString::to_string).collect();
    assert!(
        text[0].starts_with("pay.csv:4: field `address`:") && text[0].contains("testnet"),
        "{}",
        text[0]
    );
    assert!(
        text[1].starts_with("pay.csv:5: field `address`:") && text[1].contains("checksum"),
        "{}",
        text[1]
    );
    assert!(
        text[2].starts_with("pay.csv:6: field `address`:") && text[2].contains("EVM address"),
        "{}",
        text[2]
    );
    assert!(
        text[3].starts_with("pay.csv:7: field `address`:"),
        "{}",
        text[3]
    );
    assert!(
        text[4].contains("field `amount`") && text[4].contains("8"),
        "{}",
        text[4]
    );
    assert!(text[5].contains("bitcoin rows pay BTC"), "{}", text[5]);
    assert!(
        text[6].contains("set the row's `chain` to bitcoin"),
        "{}",
        text[6]
    );
    // A store chain of Bitcoin kind under another name is a Bitcoin row too.
    let csv = format!("payee,address,chain,asset,amount\nBen,{BEN},btc-main,BTC,0.25\n");
    let (rows, issues) =
        batch::parse_with_chains("p.csv", csv.as_bytes(), &book(), &["btc-main".into()]).unwrap();
    assert_eq!((rows.len(), issues.len()), (1, 0));
}

#[test]
fn bitcoin_payouts_are_found_through_transaction_nodes() {
    let g = mixed_graph();
    let p = btc(PROVIDER);
    let found = discover_payouts(&g, &[p], None, None, None, None, &HashMap::new()).unwrap();
    // Ben and Cat; the change back to the provider is no payout.
    let got: Vec<(Address, Amount, Address)> = found
        .iter()
        .map(|x| (x.address, x.amount, x.from))
        .collect();
    assert_eq!(
        got,
        vec![
            (btc(BEN), Amount::from_u64(COIN / 4), p),
            (btc(CAT), Amount::from_u64(COIN / 2), p),
        ]
    );
    // A batch row matches the output, with the provider as payer; another provider's
    // transaction does not match.
    let csv = format!("payee,address,chain,asset,amount\nBen,{BEN},bitcoin,BTC,0.25\n");
    let (rows, _) = batch::parse("b.csv", csv.as_bytes(), &book()).unwrap();
    let (payouts, issues) = batch::match_rows(&g, "b.csv", &rows, &[p], None).unwrap();
    assert!(issues.is_empty(), "{issues:?}");
    assert_eq!(payouts[0].from, p);
    assert_eq!(payouts[0].key, found[0].key);
    // The row's txid as explorers print it (64 hex digits, no 0x) picks the transaction.
    let txid = alloy_primitives::hex::encode(found[1].tx_hash.0);
    let csv = format!(
        "payee,address,chain,asset,amount,tx_hash\nCat,{CAT},bitcoin,BTC,0.5,{txid}\n\
         Cat,{CAT},bitcoin,BTC,0.5,{}\n",
        "ab".repeat(32)
    );
    let (cat_rows, issues) = batch::parse("t.csv", csv.as_bytes(), &book()).unwrap();
    assert!(issues.is_empty(), "{issues:?}");
    let (matched, unmatched) = batch::match_rows(&g, "t.csv", &cat_rows, &[p], None).unwrap();
    assert_eq!(matched.len(), 1);
    assert_eq!(matched[0].key, found[1].key);
    assert_eq!(unmatched[0].line, 3);
    let (payouts, issues) = batch::match_rows(&g, "b.csv", &rows, &[btc(WALLET)], None).unwrap();
    assert!(payouts.is_empty());
    assert_eq!(issues[0].kind, batch::IssueKind::Unmatched);
    assert_eq!(
        issues[0].message,
        format!("no indexed transfer of 0.25 BTC to {BEN} from the provider")
    );
}

#[test]
fn mixed_evm_and_bitcoin_report_keeps_units_apart_and_converges_across_chains() {
    let g = mixed_graph();
    let csv = format!(
        "payee,address,chain,asset,amount\n\
         Ann,{ann},ethereum,USDC,2\n\
         Ben,{BEN},bitcoin,BTC,0.25\n\
         Cat,{CAT},bitcoin,BTC,0.50000000\n",
        ann = evm(10)
    );
    let (rows, issues) = batch::parse("mixed.csv", csv.as_bytes(), &book()).unwrap();
    assert!(issues.is_empty(), "{issues:?}");
    let providers = [evm(1), btc(PROVIDER)];
    let (payouts, unmatched) = batch::match_rows(&g, "mixed.csv", &rows, &providers, None).unwrap();
    assert!(unmatched.is_empty(), "{unmatched:?}");
    // A cluster (or an entity label) ties the EVM wallet 20 and the Bitcoin WALLET.
    let clusters: HashMap<Address, String> = [
        (evm(20), "operator".to_owned()),
        (btc(WALLET), "operator".to_owned()),
    ]
    .into_iter()
    .collect();
    let r = build_report(
        &g,
        &MemoryLabels::new(),
        &CurrentLabelsOnly,
        &clusters,
        "mixed",
        &providers,
        &payouts,
        Vec::new(),
        book(),
        &ReportParams::default(),
    )
    .unwrap();
    let usdc = evm(TOKEN).to_string();
    assert_eq!(
        r.summary.paid,
        BTreeMap::from([
            (BITCOIN_NATIVE.to_owned(), Amount::from_u64(COIN * 3 / 4)),
            (usdc.clone(), Amount::from_u64(2_000_000)),
        ])
    );
    let in_btc = |sat: u64| format!("{} BTC", Amount::from_u64(sat).to_fixed_decimal_string(8));
    let in_usdc = |raw: u64| format!("{} USDC", Amount::from_u64(raw).to_decimal_string(6));
    assert_eq!(
        r.assets.format_amounts(&r.summary.paid),
        format!("{}; {}", in_usdc(2_000_000), in_btc(COIN * 3 / 4))
    );
    // Ben: 0.2 BTC went on to WALLET (unattributed), 0.0495 came back as his change, 0.00005
    // was the fee: the three add up to his payout.
    let ben = r.payees.iter().find(|p| p.payee == "Ben").unwrap();
    assert_eq!(
        ben.totals["unattributed"][BITCOIN_NATIVE],
        Amount::from_u64(COIN / 5)
    );
    assert_eq!(
        ben.totals["still_held"][BITCOIN_NATIVE],
        Amount::from_u64(COIN / 20 - 5_000)
    );
    assert_eq!(ben.totals["fee"][BITCOIN_NATIVE], Amount::from_u64(5_000));
    let cat = r.payees.iter().find(|p| p.payee == "Cat").unwrap();
    assert_eq!(
        cat.totals["still_held"][BITCOIN_NATIVE],
        Amount::from_u64(COIN / 2)
    );
    // Ann (USDC on the EVM chain) and Ben (BTC) meet in the cluster that ties both wallets.
    let f = r
        .convergence
        .iter()
        .find(|f| f.key == "cluster:operator")
        .unwrap_or_else(|| panic!("{:#?}", r.convergence));
    let names: Vec<&str> = f.payees.iter().map(|p| p.payee.as_str()).collect();
    assert_eq!(names, ["Ann", "Ben"]);
    assert_eq!(
        f.amounts,
        BTreeMap::from([
            (BITCOIN_NATIVE.to_owned(), Amount::from_u64(COIN / 5)),
            (usdc, Amount::from_u64(2_000_000)),
        ])
    );
    // Text, HTML and CSV show BTC units (and never add satoshis to token units).
    let html = render::to_html(&r);
    assert!(html.contains(&in_btc(COIN * 3 / 4)), "paid total in BTC");
    assert!(html.contains(&in_btc(COIN / 4)), "Ben's payout in BTC");
    assert!(html.contains(&in_usdc(2_000_000)));
    assert!(!html.contains("25000000 ETH") && !html.contains("native"));
    let csv = render::to_csv(&r).expect("csv");
    assert!(
        csv.lines()
            .any(|l| l.starts_with("Ben,") && l.contains(",BTC,bitcoin:native,0.25,")),
        "{csv}"
    );
}

#[test]
fn a_label_entity_on_both_chains_ties_evm_and_bitcoin_payees() {
    let g = mixed_graph();
    let csv = format!(
        "payee,address,chain,asset,amount\n\
         Ann,{ann},ethereum,USDC,2\n\
         Ben,{BEN},bitcoin,BTC,0.25\n",
        ann = evm(10)
    );
    let (rows, _) = batch::parse("mixed.csv", csv.as_bytes(), &book()).unwrap();
    let providers = [evm(1), btc(PROVIDER)];
    let (payouts, _) = batch::match_rows(&g, "mixed.csv", &rows, &providers, None).unwrap();
    // No clustering; labels attribute wallet 20 (EVM) and WALLET (Bitcoin) to one entity.
    let entities: HashMap<Address, String> = [
        (evm(20), "Tetra".to_owned()),
        (btc(WALLET), "Tetra".to_owned()),
    ]
    .into_iter()
    .collect();
    let ties = EntityTies {
        clusters: &NoClusters,
        entities: &entities,
    };
    let r = build_report(
        &g,
        &MemoryLabels::new(),
        &CurrentLabelsOnly,
        &ties,
        "mixed",
        &providers,
        &payouts,
        Vec::new(),
        book(),
        &ReportParams::default(),
    )
    .unwrap();
    let f = r
        .convergence
        .iter()
        .find(|f| f.key == "cluster:entity:Tetra")
        .unwrap_or_else(|| panic!("{:#?}", r.convergence));
    let names: Vec<&str> = f.payees.iter().map(|p| p.payee.as_str()).collect();
    assert_eq!(names, ["Ann", "Ben"]);
    assert_eq!(f.addresses, vec![evm(20), btc(WALLET)]);
    // Without the tie, two payees on two chains never meet.
    let r = build_report(
        &g,
        &MemoryLabels::new(),
        &CurrentLabelsOnly,
        &NoClusters,
        "mixed",
        &providers,
        &payouts,
        Vec::new(),
        book(),
        &ReportParams::default(),
    )
    .unwrap();
    assert!(r.convergence.is_empty(), "{:#?}", r.convergence);
}
