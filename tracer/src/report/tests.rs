//! Unit tests of the report: amounts in token units, batch parsing and matching, convergence
//! windows and ranking, the graph and the renderers, on small in-memory graphs.

#![allow(clippy::unwrap_used)]

use super::*;
use crate::{MemoryGraph, MemoryLabels};
use paytrace_indexer::{BlockNumber, TransferKind};
use proptest::prelude::*;

fn addr(i: u8) -> Address {
    Address::Evm([i; 20])
}

const TOKEN: u8 = 0xee;

fn t(block: u64, from: u8, to: u8, amount: u64) -> Transfer {
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
        from: addr(from),
        to: addr(to),
        asset: Asset::Token(addr(TOKEN)),
        amount: Amount::from_u64(amount),
        trace_address: Vec::new(),
    }
}

fn book() -> AssetBook {
    let mut b = AssetBook::new();
    b.insert(Asset::Token(addr(TOKEN)), "USDC", 6);
    b
}

#[test]
fn parse_units_is_exact_and_strict() {
    assert_eq!(
        parse_units("5178.15", 6).unwrap(),
        Amount::from_u64(5_178_150_000)
    );
    assert_eq!(parse_units("0.000001", 6).unwrap(), Amount::from_u64(1));
    assert_eq!(parse_units("7", 0).unwrap(), Amount::from_u64(7));
    assert_eq!(parse_units(".5", 1).unwrap(), Amount::from_u64(5));
    for bad in ["", "1.0000001", "-1", "1e3", "1,5", "12.5x", ".", "1.2.3"] {
        assert!(parse_units(bad, 6).is_err(), "{bad:?}");
    }
}

proptest! {
    #[test]
    fn parse_units_inverts_decimal_display(v in any::<u64>(), d in 0u8..=18) {
        let a = Amount::from_u64(v);
        prop_assert_eq!(parse_units(&a.to_decimal_string(d), d).unwrap(), a);
    }
}

#[test]
fn batch_rows_are_parsed_matched_and_reported_by_line() {
    // provider 1 pays 10 (2 USDC) and 11 (3 USDC); 12 never receives anything.
    let g = MemoryGraph::from_transfers([t(1, 1, 10, 2_000_000), t(2, 1, 11, 3_000_000)]);
    let csv = format!(
        "payee,address,chain,asset,amount,extra\n\
         Ann,{a},eth,USDC,2,x\n\
         Ann,{a},eth,usdc,2,x\n\
         Ben,{b},eth,{tok},3.0,\n\
         Cid,{c},eth,USDC,1,\n\
         Dee,{b},eth,USDC,4,\n\
         ,{b},eth,USDC,4,\n\
         Eve,{b},eth,DAI,4,\n",
        a = addr(10),
        b = addr(11),
        c = addr(12),
        tok = addr(TOKEN)
    );
    let (rows, mut issues) = batch::parse("b.csv", csv.as_bytes(), &book()).unwrap();
    assert_eq!(rows.len(), 4);
    let (payouts, unmatched) = batch::match_rows(&g, "b.csv", &rows, &[addr(1)], None).unwrap();
    issues.extend(unmatched);
    issues.sort_by_key(|i| i.line);
    let got: Vec<(u64, batch::IssueKind)> = issues.iter().map(|i| (i.line, i.kind)).collect();
    assert_eq!(
        got,
        vec![
            (3, batch::IssueKind::Duplicate),
            (5, batch::IssueKind::UnknownAddress),
            (6, batch::IssueKind::Unmatched),
            (7, batch::IssueKind::MissingField),
            (8, batch::IssueKind::UnknownAsset),
        ]
    );
    assert_eq!(issues[0].to_string(), "b.csv:3: duplicate of line 2");
    assert_eq!(payouts.len(), 2);
    assert_eq!(payouts[0].payee, "Ann");
    assert_eq!(payouts[1].line, Some(4));
    // A header without the required columns is an error for the whole file.
    assert!(batch::parse("h.csv", "name,addr\n".as_bytes(), &book()).is_err());
}

/// Payees 10, 11, 12 paid by 1; 10 and 11 forward to 20 (a convergence point), 12 keeps.
fn converging() -> (MemoryGraph, Vec<Payout>) {
    let g = MemoryGraph::from_transfers([
        t(1, 1, 10, 100),
        t(2, 1, 11, 200),
        t(3, 1, 12, 300),
        t(4, 10, 20, 100),
        t(5, 11, 20, 150),
        t(6, 20, 30, 250),
    ]);
    let payouts = discover_payouts(
        &g,
        &[addr(1)],
        None,
        None,
        None,
        None,
        &[(addr(10), "A".to_owned()), (addr(11), "B".to_owned())]
            .into_iter()
            .collect(),
    )
    .unwrap();
    (g, payouts)
}

#[test]
fn convergence_finds_shared_addresses_in_the_window() {
    let (g, payouts) = converging();
    assert_eq!(payouts.len(), 3);
    assert_eq!(payouts[2].payee, addr(12).to_string());
    let mut labels = MemoryLabels::new();
    labels.insert(addr(30), "exchange_deposit");
    let r = build_report(
        &g,
        &labels,
        &CurrentLabelsOnly,
        &NoClusters,
        "t",
        &[addr(1)],
        &payouts,
        Vec::new(),
        book(),
        &ReportParams::default(),
    )
    .unwrap();
    let keys: Vec<&str> = r.convergence.iter().map(|f| f.key.as_str()).collect();
    assert_eq!(keys, [addr(20).to_string()]);
    let f = &r.convergence[0];
    assert_eq!(
        f.amounts[&Asset::Token(addr(TOKEN)).to_string()],
        Amount::from_u64(250)
    );
    assert_eq!(f.hops, 1);
    assert_eq!(f.evidence.len(), 4, "{:?}", f.evidence);
    // The deposit address 30 got A's and B's value only through 20: 20's onward path, not a
    // finding of its own.
    assert!(r.shared_deposits.is_empty());
    assert_eq!(f.onward.len(), 1);
    assert_eq!(f.onward[0].address, Some(addr(30)));
    assert_eq!(f.onward[0].hops, 2);
    // Payee 12 kept its salary; A's and B's risk is medium (convergence + deposit exit).
    let c = r.payees.iter().find(|p| p.address == addr(12)).unwrap();
    assert_eq!(c.risk.level, RiskLevel::None);
    assert_eq!(
        c.totals["still_held"][&Asset::Token(addr(TOKEN)).to_string()],
        Amount::from_u64(300)
    );
    assert!(
        r.payees
            .iter()
            .filter(|p| p.risk.level == RiskLevel::Medium)
            .count()
            == 2
    );

    // A one-hour window separates the arrivals at 20 (hours 4 and 5 are 1 h apart: kept);
    // with min 3 payees nothing converges.
    let mut p = ReportParams::default();
    p.convergence.min_payees = 3;
    let r = build_report(
        &g,
        &labels,
        &CurrentLabelsOnly,
        &NoClusters,
        "t",
        &[addr(1)],
        &payouts,
        Vec::new(),
        book(),
        &p,
    )
    .unwrap();
    assert!(r.convergence.is_empty());
    let mut p = ReportParams::default();
    p.convergence.window_secs = Some(1_000);
    let r = build_report(
        &g,
        &labels,
        &CurrentLabelsOnly,
        &NoClusters,
        "t",
        &[addr(1)],
        &payouts,
        Vec::new(),
        book(),
        &p,
    )
    .unwrap();
    assert!(
        r.convergence.is_empty(),
        "arrivals 1 h apart are outside a 1000 s window"
    );
}

#[test]
fn clusters_join_payees_and_addresses() {
    let (g, payouts) = converging();
    let labels = MemoryLabels::new();
    // 10 and 12 are one person; 20 and 30 one cluster.
    let clusters: HashMap<Address, String> = [
        (addr(10), "c1".to_owned()),
        (addr(12), "c1".to_owned()),
        (addr(20), "c2".to_owned()),
        (addr(30), "c2".to_owned()),
    ]
    .into_iter()
    .collect();
    let r = build_report(
        &g,
        &labels,
        &CurrentLabelsOnly,
        &clusters,
        "t",
        &[addr(1)],
        &payouts,
        Vec::new(),
        book(),
        &ReportParams::default(),
    )
    .unwrap();
    assert_eq!(r.payee_clusters.len(), 1);
    assert_eq!(r.payee_clusters[0].payees.len(), 2);
    // One finding per cluster: 20 and 30 are one owner, reached by A and B (30 is not a
    // separate continuation of 20 any more).
    assert_eq!(r.convergence.len(), 1, "{:#?}", r.convergence);
    let f = &r.convergence[0];
    assert_eq!(f.key, "cluster:c2");
    assert_eq!(f.cluster.as_deref(), Some("c2"));
    assert_eq!(f.address, None);
    assert_eq!(f.addresses, [addr(20), addr(30)]);
}

/// Merges of a cluster, for the cluster findings' evidence.
struct WithMerges(HashMap<Address, String>);

impl ClusterLookup for WithMerges {
    fn cluster_of(&self, a: &Address) -> Option<String> {
        self.0.cluster_of(a)
    }
    fn merge_evidence(&self, _: &str, addresses: &[Address]) -> Vec<MergeEvidence> {
        vec![MergeEvidence {
            a: addresses[0],
            b: addresses[addresses.len() - 1],
            heuristic: "deposit_address".into(),
            tx: paytrace_indexer::TxHash::default(),
            related_tx: None,
        }]
    }
}

/// An operator's consolidation is two wallets of one cluster (20 and 21, both paying into one
/// exchange account): A and B pay 20, C pays 21. Neither wallet alone names the three fakes;
/// the cluster is the one finding, with the merge that joined its wallets. (Before, 20 and 21
/// were two findings and the cluster finding was dropped because the deposit address both
/// paid into, an address of the cluster, already named all three as 20's continuation.)
#[test]
fn a_consolidation_spread_over_one_cluster_is_one_finding_with_its_merges() {
    let g = MemoryGraph::from_transfers([
        t(1, 1, 10, 1_000),
        t(2, 1, 11, 1_000),
        t(3, 1, 12, 1_000),
        t(4, 10, 20, 1_000),
        t(5, 11, 20, 1_000),
        t(6, 12, 21, 1_000),
        t(7, 20, 30, 1_000),
        t(8, 21, 30, 1_000),
    ]);
    let payouts =
        discover_payouts(&g, &[addr(1)], None, None, None, None, &HashMap::new()).unwrap();
    let clusters = WithMerges(
        [(addr(20), "op"), (addr(21), "op"), (addr(30), "op")]
            .into_iter()
            .map(|(a, c)| (a, c.to_owned()))
            .collect(),
    );
    let r = build_report(
        &g,
        &MemoryLabels::new(),
        &CurrentLabelsOnly,
        &clusters,
        "t",
        &[addr(1)],
        &payouts,
        Vec::new(),
        book(),
        &ReportParams::default(),
    )
    .unwrap();
    assert_eq!(r.convergence.len(), 1, "{:#?}", r.convergence);
    let f = &r.convergence[0];
    assert_eq!(f.key, "cluster:op");
    assert_eq!(f.payees.len(), 3);
    assert_eq!(f.addresses, [addr(20), addr(21), addr(30)]);
    assert_eq!(f.merges.len(), 1);
    assert_eq!(f.merges[0].heuristic, "deposit_address");
}

/// Colleagues 10, 11 and 12 each pay a friend (40) a tenth of their salary and cash the rest
/// out at their own addresses; fakes 13 and 14 forward whole salaries to 20. Only 20 is a
/// finding: a payout counts where most of it went (before, 40 named the three colleagues).
#[test]
fn a_common_counterparty_of_parts_of_salaries_is_no_finding() {
    let mut rows = Vec::new();
    for p in 10..15u8 {
        rows.push(t(u64::from(p), 1, p, 10_000));
    }
    for p in 10..13u8 {
        rows.push(t(u64::from(p) + 20, p, 40, 1_000));
        rows.push(t(u64::from(p) + 40, p, p + 50, 9_000));
    }
    rows.push(t(60, 13, 20, 10_000));
    rows.push(t(61, 14, 20, 10_000));
    let g = MemoryGraph::from_transfers(rows);
    let payouts =
        discover_payouts(&g, &[addr(1)], None, None, None, None, &HashMap::new()).unwrap();
    let r = build_report(
        &g,
        &MemoryLabels::new(),
        &CurrentLabelsOnly,
        &NoClusters,
        "t",
        &[addr(1)],
        &payouts,
        Vec::new(),
        book(),
        &ReportParams::default(),
    )
    .unwrap();
    let keys: Vec<&str> = r.convergence.iter().map(|f| f.key.as_str()).collect();
    assert_eq!(keys, [addr(20).to_string()]);
}

/// Fakes 10 and 11 pass their salaries through the operator's forwarder contract 25 (one
/// transaction each: in, then out to 20); fake 12 pays 20 directly. 25 is where two of them
/// met first, but all it received went on to 20: it is 20's upstream, not a second finding
/// naming a part of the operator's fakes.
#[test]
fn a_forwarder_that_feeds_a_finding_is_its_upstream() {
    let g = MemoryGraph::from_transfers([
        t(1, 1, 10, 1_000),
        t(2, 1, 11, 1_000),
        t(3, 1, 12, 1_000),
        t(4, 10, 25, 1_000),
        t(5, 25, 20, 1_000),
        t(6, 11, 25, 1_000),
        t(7, 25, 20, 1_000),
        t(8, 12, 20, 1_000),
    ]);
    let payouts =
        discover_payouts(&g, &[addr(1)], None, None, None, None, &HashMap::new()).unwrap();
    let r = build_report(
        &g,
        &MemoryLabels::new(),
        &CurrentLabelsOnly,
        &NoClusters,
        "t",
        &[addr(1)],
        &payouts,
        Vec::new(),
        book(),
        &ReportParams::default(),
    )
    .unwrap();
    let keys: Vec<&str> = r.convergence.iter().map(|f| f.key.as_str()).collect();
    assert_eq!(keys, [addr(20).to_string()], "{:#?}", r.convergence);
    let f = &r.convergence[0];
    assert_eq!(f.payees.len(), 3);
    assert_eq!(f.upstream.len(), 1);
    assert_eq!(f.upstream[0].address, Some(addr(25)));
    assert_eq!(f.upstream[0].payees, 2);
}

#[test]
fn sanctioned_is_judged_as_of_the_arrival() {
    let g = MemoryGraph::from_transfers([t(1, 1, 10, 100), t(5, 10, 40, 60)]);
    let payouts =
        discover_payouts(&g, &[addr(1)], None, None, None, None, &HashMap::new()).unwrap();
    let mut labels = MemoryLabels::new();
    labels.insert(addr(40), "sanctioned");
    let arrival = t(5, 10, 40, 60).time;
    for (from, kind, level) in [
        (arrival.0, DestKind::Sanctioned, RiskLevel::Severe),
        // Listed after the arrival: half weight, as in screening (100 x 0.5).
        (arrival.0 + 1, DestKind::SanctionedLater, RiskLevel::Medium),
    ] {
        let listings = MemoryListings(
            [(addr(40), ("SDN".to_owned(), Timestamp(from)))]
                .into_iter()
                .collect(),
        );
        let r = build_report(
            &g,
            &labels,
            &listings,
            &NoClusters,
            "t",
            &[addr(1)],
            &payouts,
            Vec::new(),
            book(),
            &ReportParams::default(),
        )
        .unwrap();
        let d = &r.payouts[0].destinations[0];
        assert_eq!((d.kind, d.amount), (kind, Amount::from_u64(60)));
        assert_eq!(d.path.len(), 2);
        assert_eq!(r.payouts[0].risk.level, level);
        // 40 still held by the payee.
        assert_eq!(r.payouts[0].totals["still_held"], Amount::from_u64(40));
    }
}

#[test]
fn html_and_svg_are_self_contained() {
    let (g, payouts) = converging();
    let mut labels = MemoryLabels::new();
    labels.insert_named(addr(30), "exchange_deposit", vec!["<Ex> & \"Co\"".into()]);
    let r = build_report(
        &g,
        &labels,
        &CurrentLabelsOnly,
        &NoClusters,
        "a <b>",
        &[addr(1)],
        &payouts,
        Vec::new(),
        book(),
        &ReportParams::default(),
    )
    .unwrap();
    let html = render::to_html(&r);
    assert!(!html.contains("<script") && !html.contains("https://"));
    assert!(html.contains("a &lt;b&gt;") && html.contains("&lt;Ex&gt; &amp; &quot;Co&quot;"));
    assert_eq!(
        html.matches("<g class=\"node\"").count(),
        r.graph.nodes.len()
    );
    assert_eq!(r.graph.nodes.len(), 6);
    assert_eq!(
        html.matches("<path class=\"edge\"").count(),
        r.graph.edges.len()
    );
    // Layers follow the flow: provider 0, payees 1, 20 at 2, 30 at 3.
    let layer = |a: u8| {
        r.graph
            .nodes
            .iter()
            .find(|n| n.address == addr(a))
            .unwrap()
            .layer
    };
    assert_eq!([layer(1), layer(10), layer(20), layer(30)], [0, 1, 2, 3]);
    let csv = render::to_csv(&r).unwrap();
    // A: the deposit; B: the deposit and what it still holds; C: what it holds.
    assert_eq!(csv.lines().count(), 1 + 1 + 2 + 1, "{csv}");
}

#[test]
fn graph_is_capped() {
    let (g, payouts) = converging();
    let p = ReportParams {
        max_graph_nodes: 3,
        ..ReportParams::default()
    };
    let r = build_report(
        &g,
        &MemoryLabels::new(),
        &CurrentLabelsOnly,
        &NoClusters,
        "t",
        &[addr(1)],
        &payouts,
        Vec::new(),
        book(),
        &p,
    )
    .unwrap();
    assert_eq!(r.graph.nodes.len(), 3);
    assert_eq!(r.graph.omitted_nodes, 3);
    // Provider and the convergence point are kept first.
    assert!(r.graph.nodes.iter().any(|n| n.address == addr(1)));
    assert!(r.graph.nodes.iter().any(|n| n.address == addr(20)));
}

#[test]
fn parallel_report_equals_serial_report() {
    // Provider 1 pays 60 payees (10..70) on a random graph of 150 addresses with exits and a
    // sanctioned address: the report with 4 threads (one shared, evicting cache) is the
    // report with one.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut ts: Vec<Transfer> = (10..70u8)
        .map(|p| t(u64::from(p), 1, p, 1_000_000))
        .collect();
    for b in 100..1_100u64 {
        let from = u8::try_from(10 + next() % 150).unwrap();
        let to = u8::try_from(10 + next() % 150).unwrap();
        ts.push(t(b, from, to, 1 + next() % 300_000));
    }
    let g = MemoryGraph::from_transfers(ts);
    let mut labels = MemoryLabels::new();
    labels.insert(addr(150), "exchange");
    labels.insert(addr(151), "mixer");
    labels.insert(addr(152), "sanctioned");
    let listings = MemoryListings(
        [(
            addr(152),
            ("OFAC-X".to_owned(), Timestamp(1_700_000_000 + 900 * 3_600)),
        )]
        .into_iter()
        .collect(),
    );
    let payouts =
        discover_payouts(&g, &[addr(1)], None, None, None, None, &HashMap::new()).unwrap();
    assert_eq!(payouts.len(), 60);
    let run = |threads: usize| {
        let mut p = ReportParams {
            threads,
            cache_transfers: 400,
            ..ReportParams::default()
        };
        // Random transfers move parts of balances: count every material share, so that the
        // graph has findings to compare.
        p.convergence.salary_share = 0.0;
        let r = build_report(
            &g,
            &labels,
            &listings,
            &NoClusters,
            "t",
            &[addr(1)],
            &payouts,
            Vec::new(),
            book(),
            &p,
        )
        .unwrap();
        (
            serde_json::to_string(&r).unwrap(),
            render::to_csv(&r).unwrap(),
            r,
        )
    };
    let (json1, csv1, r1) = run(1);
    assert!(!r1.convergence.is_empty());
    assert!(r1.payouts.iter().any(|p| p.risk.level >= RiskLevel::High));
    let (json, csv, _) = run(4);
    assert!(json == json1, "report differs with 4 threads");
    assert_eq!(csv, csv1);
}

/// A transfer of token `token` at hour `hour`.
fn tt(hour: u64, from: u8, to: u8, token: u8, amount: u64) -> Transfer {
    let mut x = t(hour, from, to, amount);
    x.asset = Asset::Token(addr(token));
    x
}

fn report_of(g: &MemoryGraph, params: &ReportParams) -> Report {
    let payouts = discover_payouts(
        g,
        &[addr(1)],
        None,
        None,
        None,
        None,
        &[(addr(10), "A".to_owned()), (addr(11), "B".to_owned())]
            .into_iter()
            .collect(),
    )
    .unwrap();
    build_report(
        g,
        &MemoryLabels::new(),
        &CurrentLabelsOnly,
        &NoClusters,
        "t",
        &[addr(1)],
        &payouts,
        Vec::new(),
        book(),
        params,
    )
    .unwrap()
}

/// A and B are paid monthly for three months and forward each salary to 20 the next day: the
/// finding's amount is every arrival of the 90-day window, not the first burst.
#[test]
fn convergence_amounts_cover_every_arrival_in_the_window() {
    let mut rows = Vec::new();
    for m in 0..3u64 {
        let h = m * 720;
        rows.push(t(h + 1, 1, 10, 100));
        rows.push(t(h + 2, 1, 11, 200));
        rows.push(t(h + 25, 10, 20, 100));
        rows.push(t(h + 26, 11, 20, 200));
    }
    let g = MemoryGraph::from_transfers(rows);
    let r = report_of(&g, &ReportParams::default());
    assert_eq!(r.convergence.len(), 1);
    let f = &r.convergence[0];
    assert_eq!(
        f.amounts[&Asset::Token(addr(TOKEN)).to_string()],
        Amount::from_u64(900)
    );
    assert_eq!(f.arrivals, 6);
    assert_eq!(f.first_arrival, t(25, 10, 20, 1).time);
    assert_eq!(f.last_arrival, t(1440 + 26, 11, 20, 1).time);
    // A 29-day window holds one month: the first (earliest of the fullest windows).
    let mut p = ReportParams::default();
    p.convergence.window_secs = Some(29 * 86_400);
    let r = report_of(&g, &p);
    let f = &r.convergence[0];
    assert_eq!(
        f.amounts[&Asset::Token(addr(TOKEN)).to_string()],
        Amount::from_u64(300)
    );
    assert_eq!(f.last_arrival, t(26, 11, 20, 1).time);
}

/// A is paid in one token, B in another; both forward to 20, which forwards everything to 21
/// and 21 to 22: one finding at 20 naming both payees with both assets, 21 and 22 its onward
/// path (downstream addresses that only one payee reached are no convergence at all).
#[test]
fn one_convergence_finding_per_destination_across_tokens_with_its_onward_path() {
    let g = MemoryGraph::from_transfers([
        tt(1, 1, 10, TOKEN, 100),
        tt(2, 1, 11, 0xef, 300),
        tt(3, 10, 20, TOKEN, 100),
        tt(4, 11, 20, 0xef, 300),
        tt(5, 20, 21, TOKEN, 100),
        tt(6, 20, 21, 0xef, 300),
        tt(7, 21, 22, 0xef, 300),
        tt(8, 21, 22, TOKEN, 100),
        tt(9, 10, 23, TOKEN, 1),
    ]);
    let r = report_of(&g, &ReportParams::default());
    let keys: Vec<&str> = r.convergence.iter().map(|f| f.key.as_str()).collect();
    assert_eq!(keys, [addr(20).to_string()]);
    let f = &r.convergence[0];
    let names: Vec<&str> = f.payees.iter().map(|p| p.payee.as_str()).collect();
    assert_eq!(names, ["A", "B"]);
    assert_eq!(f.amounts.len(), 2);
    assert_eq!(
        f.amounts[&Asset::Token(addr(0xef)).to_string()],
        Amount::from_u64(300)
    );
    let onward: Vec<Option<Address>> = f.onward.iter().map(|o| o.address).collect();
    assert_eq!(onward, [Some(addr(21)), Some(addr(22))]);
    assert_eq!(f.onward[1].payees, 2);
    // One alert for the finding, naming its payees and its onward path.
    let rule = paytrace_config::RuleConfig {
        name: "conv".into(),
        kind: paytrace_config::RuleKind::Convergence,
        min_payees: 2,
        ..paytrace_config::AlertsConfig::default()
            .rules_or_default()
            .into_iter()
            .find(|r| r.kind == paytrace_config::RuleKind::Convergence)
            .unwrap()
    };
    let alerts = crate::alerts::evaluate_with(&[rule], &[], Some(&r.convergence));
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(alerts[0].addresses, vec![addr(10), addr(11)]);
    assert!(alerts[0].text.contains("(A, B)"), "{}", alerts[0].text);
    assert!(alerts[0].text.contains("onward"), "{}", alerts[0].text);
}

#[test]
fn html_evidence_is_deduplicated_and_escaped_by_the_template() {
    let (g, payouts) = converging();
    let mut r = build_report(
        &g,
        &MemoryLabels::new(),
        &CurrentLabelsOnly,
        &NoClusters,
        "t",
        &[addr(1)],
        &payouts,
        Vec::new(),
        book(),
        &ReportParams::default(),
    )
    .unwrap();
    let f = r.convergence.first_mut().expect("a convergence finding");
    let first = f.evidence.first().cloned().expect("evidence");
    f.evidence.push(first.clone());
    f.evidence.push(first.clone());
    f.payees[0].payee = "<img src=x onerror=alert(1)>".into();
    let html = render::to_html(&r);
    let tx = first.hop.tx_hash.to_string();
    let cell = |h: &str| {
        let i = h.find("Evidence (transactions)").unwrap();
        let j = i + h[i..].find("</table>").unwrap();
        h[i..j].matches(&format!("<code title=\"{tx}\">")).count()
    };
    assert_eq!(cell(&html), 1, "a repeated hop is listed once");
    assert!(!html.contains("<img"), "payee names are escaped");
    assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"));
}

#[test]
fn the_report_keeps_the_units_of_the_assets_it_shows_only() {
    let (g, payouts) = converging();
    let mut b = book();
    b.insert(Asset::Token(addr(0x77)), "OTHER", 2);
    b.insert(Asset::Native, "ETH", 18);
    let mut r = build_report(
        &g,
        &MemoryLabels::new(),
        &CurrentLabelsOnly,
        &NoClusters,
        "t",
        &[addr(1)],
        &payouts,
        Vec::new(),
        b,
        &ReportParams::default(),
    )
    .unwrap();
    r.prune_assets();
    let kept: Vec<&str> = r
        .assets
        .assets
        .values()
        .map(|i| i.symbol.as_str())
        .collect();
    assert_eq!(kept, ["USDC"]);
}

/// A payee swaps its salary at a DEX router (label `defi`) into another token in one
/// transaction and sends the proceeds on to a sanctioned address: the sanctioned destination is
/// in the converted token and counts (it used to be dropped because its asset differs from the
/// payout's), while the payout's totals stay in the payout's asset (the swap holds it).
#[test]
fn value_converted_by_a_swap_is_followed_to_a_sanctioned_address() {
    const OTHER: u8 = 0xdd;
    let mut into = t(2, 10, 50, 100);
    into.key.position = 0;
    let mut out = tt(2, 50, 12, OTHER, 90);
    out.key.position = 1;
    // Liquidity the router already held, and the payee's onward send of the proceeds.
    let g = MemoryGraph::from_transfers([
        t(1, 1, 10, 100),
        tt(0, 60, 50, OTHER, 1_000),
        into,
        out,
        tt(3, 12, 40, OTHER, 90),
    ]);
    let payouts =
        discover_payouts(&g, &[addr(1)], None, None, None, None, &HashMap::new()).unwrap();
    let mut labels = MemoryLabels::new();
    labels.insert(addr(50), "defi");
    labels.insert(addr(40), "sanctioned");
    let listings = MemoryListings(
        [(addr(40), ("SDN".to_owned(), Timestamp(0)))]
            .into_iter()
            .collect(),
    );
    for model in [crate::Model::Fifo, crate::Model::Haircut] {
        let mut params = ReportParams::default();
        params.trace.model = model;
        let r = build_report(
            &g,
            &labels,
            &listings,
            &NoClusters,
            "t",
            &[addr(1)],
            &payouts,
            Vec::new(),
            book(),
            &params,
        )
        .unwrap();
        let p = &r.payouts[0];
        let s: Vec<_> = p
            .destinations
            .iter()
            .filter(|d| d.kind == DestKind::Sanctioned)
            .collect();
        assert_eq!(s.len(), 1, "{model:?}: {:?}", p.destinations);
        assert_eq!(s[0].asset, Asset::Token(addr(OTHER)));
        assert_eq!(s[0].amount, Amount::from_u64(90));
        assert_eq!(s[0].hops, 3);
        // The evidence path runs from the payout through the swap to the sanctioned address.
        let ends: Vec<(Address, Address)> = s[0].path.iter().map(|x| (x.from, x.to)).collect();
        assert_eq!(
            ends,
            vec![
                (addr(1), addr(10)),
                (addr(10), addr(50)),
                (addr(50), addr(12)),
                (addr(12), addr(40))
            ]
        );
        assert!(p.risk.level >= RiskLevel::High, "{model:?}: {:?}", p.risk);
        // Totals in the payout's asset: the router holds the swapped 100, nothing sanctioned.
        assert_eq!(p.totals.get("labelled"), Some(&Amount::from_u64(100)));
        assert!(!p.totals.contains_key("sanctioned"));
    }
}

/// Real payees 10 and 11 each pay merchant 40 a sliver of their salary (0.05 %); the merchant
/// pays on to 41. Fakes 12 and 13 forward their whole salaries to 20. Only 20 is a finding: a
/// payout counts toward an address only when a material share of it reached the address
/// (before, 40 and 41 were findings naming the real payees).
#[test]
fn immaterial_shares_do_not_make_payees_meet() {
    let g = MemoryGraph::from_transfers([
        t(1, 1, 10, 100_000),
        t(2, 1, 11, 100_000),
        t(3, 1, 12, 100_000),
        t(4, 1, 13, 100_000),
        t(5, 10, 40, 50),
        t(6, 11, 40, 50),
        t(7, 40, 41, 100),
        t(8, 12, 20, 100_000),
        t(9, 13, 20, 100_000),
    ]);
    let r = report_of(&g, &ReportParams::default());
    let keys: Vec<&str> = r.convergence.iter().map(|f| f.key.as_str()).collect();
    assert_eq!(keys, [addr(20).to_string()]);
    let payees: Vec<Address> = r.convergence[0].payees.iter().map(|p| p.address).collect();
    assert_eq!(payees, [addr(12), addr(13)]);
    // At floors of zero the merchant meeting is back (41 as its onward path).
    let mut p = ReportParams::default();
    p.convergence.min_share = 0.0;
    p.convergence.salary_share = 0.0;
    let r = report_of(&g, &p);
    let mut keys: Vec<String> = r.convergence.iter().map(|f| f.key.clone()).collect();
    keys.sort();
    let mut want = vec![addr(20).to_string(), addr(40).to_string()];
    want.sort();
    assert_eq!(keys, want);
}

/// Two operators: 10 and 11 consolidate at 20, 12 and 13 at 21 (two hops later, through 22);
/// both wallets pay the facilitator 30. 30 received all four payees' value, but each through
/// its operator's wallet: it is on the onward path of both findings, not a third finding that
/// mixes the two operators' payees.
#[test]
fn a_meeting_of_two_findings_downstream_continues_both() {
    let g = MemoryGraph::from_transfers([
        t(1, 1, 10, 1_000),
        t(2, 1, 11, 1_000),
        t(3, 1, 12, 1_000),
        t(4, 1, 13, 1_000),
        t(5, 10, 20, 1_000),
        t(6, 11, 20, 1_000),
        t(7, 12, 22, 1_000),
        t(8, 22, 23, 1_000),
        t(9, 13, 24, 1_000),
        t(10, 24, 25, 1_000),
        t(11, 23, 21, 1_000),
        t(12, 25, 21, 1_000),
        t(13, 20, 30, 500),
        t(14, 21, 30, 500),
    ]);
    // The facilitator gets a quarter of each salary: counted here (the rule under test is
    // the continuation, not the salary share).
    let mut p = ReportParams::default();
    p.convergence.salary_share = 0.001;
    let r = report_of(&g, &p);
    let mut keys: Vec<String> = r.convergence.iter().map(|f| f.key.clone()).collect();
    keys.sort();
    let mut want = vec![addr(20).to_string(), addr(21).to_string()];
    want.sort();
    assert_eq!(keys, want, "{:#?}", r.convergence);
    for f in &r.convergence {
        assert_eq!(f.payees.len(), 2);
        assert!(
            f.onward.iter().any(|o| o.address == Some(addr(30))),
            "{:#?}",
            f.onward
        );
    }
}
