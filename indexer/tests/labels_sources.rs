//! TagPack, list and CSV importers and delisting history on the real files in
//! ../shared/data/labels.

#![allow(clippy::unwrap_used)] // `unwrap` is allowed in tests only (project rule)

use paytrace_indexer::{
    Address, Store,
    labels::{
        Category, Defaults, Format, ImportOptions, LabelError, LabelStore, import_files, parse_date,
    },
};
use std::{collections::BTreeMap, path::PathBuf};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data/labels/");

fn path(name: &str) -> PathBuf {
    PathBuf::from(DIR).join(name)
}

fn open() -> (tempfile::TempDir, Store, LabelStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let labels = LabelStore::open(&store).unwrap();
    (dir, store, labels)
}

fn per_category(labels: &LabelStore, source: &str) -> BTreeMap<Category, usize> {
    let mut m = BTreeMap::new();
    for l in labels.iter() {
        let l = l.unwrap();
        if l.source == source {
            *m.entry(l.category).or_default() += 1;
        }
    }
    m
}

fn tagpack(labels: &LabelStore, name: &str) -> paytrace_indexer::labels::ImportReport {
    import_files(
        labels,
        Format::Tagpack,
        &[path(&format!("tagpacks/{name}.yaml"))],
        &ImportOptions::default(),
    )
    .unwrap()
}

#[test]
fn tagpacks_counts_and_inheritance() {
    let (_d, _s, labels) = open();

    let r = tagpack(&labels, "tornado_cash");
    // 39 tags, one address twice (checksummed and lower-case): 38 labels, 1 duplicate
    assert_eq!(
        (r.read, r.imported, r.duplicates, r.rejected),
        (39, 38, 1, 0),
        "{:?}",
        r.rejects
    );
    assert_eq!(r.version, "2022-08-10"); // header lastmod
    assert_eq!(
        per_category(&labels, "tornado_cash"),
        BTreeMap::from([(Category::Mixer, 38)])
    );
    let a: Address = "0x8589427373D6D84E98730D7795D8f6f8731FDA16"
        .parse()
        .unwrap();
    let l = labels.labels_for(&a, None).unwrap();
    // inherited from the header
    assert_eq!(l[0].currency.as_deref(), Some("ETH"));
    assert_eq!(l[0].entity, "tornado");
    assert_eq!(l[0].confidence, 100);
    assert!(l[0].url.as_deref().unwrap().contains("20220808"));

    let r = tagpack(&labels, "ofac");
    // the TRON-form string OFAC lists as XBT is reported, not silently accepted
    assert_eq!((r.read, r.rejected), (572, 1), "{:?}", r.rejects);
    assert!(
        r.rejects[0]
            .reason
            .contains("TUCsTq7TofTCJRRoHk6RvhMoS2mJLm5Yzq")
    );
    assert_eq!(r.rejects[0].line, 1069);
    let mut cur: BTreeMap<String, usize> = BTreeMap::new();
    for l in labels
        .iter()
        .map(Result::unwrap)
        .filter(|l| l.source == "ofac")
    {
        *cur.entry(l.currency.clone().unwrap()).or_default() += 1;
    }
    assert_eq!(cur["XBT"], 384); // 385 BTC tags, one of them the TRON-form string
    assert_eq!(cur["ETH"], 147);
    assert_eq!(cur["USDT"], 9);
    assert_eq!(cur["LTC"], 8);
    // ofac.yaml says `category: user` and no abuse: mapped to unknown, not guessed
    assert_eq!(
        per_category(&labels, "ofac"),
        BTreeMap::from([(Category::Unknown, usize::try_from(r.imported).unwrap())])
    );

    let r = tagpack(&labels, "lazarus");
    assert_eq!((r.read, r.imported, r.rejected), (21, 21, 0));
    assert_eq!(
        per_category(&labels, "lazarus"),
        BTreeMap::from([(Category::Sanctioned, 21)])
    );
    let a: Address = "0x098B716B8Aaf21512996dC57EB0615e2383E2f96"
        .parse()
        .unwrap();
    let l = labels.labels_for(&a, None).unwrap();
    assert!(
        l.iter()
            .any(|l| l.source == "lazarus" && l.entity == "lazarusgroup")
    );

    let r = tagpack(&labels, "ronin_bridge");
    assert_eq!((r.read, r.rejected), (6, 0));
    assert_eq!(
        per_category(&labels, "ronin_bridge"),
        BTreeMap::from([(Category::Hack, 6)])
    );
    let l = labels.labels_for(&a, None).unwrap();
    let ronin = l.iter().find(|l| l.source == "ronin_bridge").unwrap();
    assert!(ronin.notes["context"].contains("original address"));
    // no actor: the label text is the entity
    assert_eq!(ronin.entity, "Ronin bridge exploiter");

    let r = tagpack(&labels, "usdt_blacklist");
    assert_eq!((r.read, r.rejected), (774, 0), "{:?}", r.rejects);
    assert_eq!(
        per_category(&labels, "usdt_blacklist"),
        BTreeMap::from([(Category::Blocklisted, usize::try_from(r.imported).unwrap())])
    );
    assert!(
        labels
            .iter()
            .map(Result::unwrap)
            .filter(|l| l.source == "usdt_blacklist")
            .all(|l| l.notes["context"].contains("\"token\":\"USDT\""))
    );

    // exchange wallets: one address carries several labels
    let r = tagpack(&labels, "exchange-wallets-binance");
    assert_eq!((r.read, r.rejected), (86, 0), "{:?}", r.rejects);
    assert_eq!(
        per_category(&labels, "exchange-wallets-binance"),
        BTreeMap::from([(Category::Exchange, usize::try_from(r.imported).unwrap())])
    );
    let a: Address = "0xf977814e90da44bfa03b6295a0616a897441acec"
        .parse()
        .unwrap();
    let l = labels.labels_for(&a, None).unwrap();
    assert!(
        l.iter()
            .filter(|l| l.source == "exchange-wallets-binance")
            .count()
            >= 2,
        "{l:?}"
    );
    for name in ["exchange-wallets-kucoin", "exchange-wallets-okx"] {
        let r = tagpack(&labels, name);
        assert_eq!(r.rejected, 0, "{name}: {:?}", r.rejects);
    }
    let r = tagpack(&labels, "hacks");
    // five tags have neither category nor abuse: reported with their lines, not guessed
    assert_eq!((r.read, r.rejected), (608, 5), "{:?}", r.rejects);
    assert_eq!(
        r.rejects.iter().map(|r| r.line).collect::<Vec<_>>(),
        [108, 306, 313, 320, 327]
    );
    let cats = per_category(&labels, "hacks");
    assert_eq!(cats[&Category::Hack], 178);
}

#[test]
fn lists_text_and_json_agree() {
    let (_d, _s, labels) = open();
    let opts = |src: &str, cur: &str| ImportOptions {
        source: Some(src.into()),
        defaults: Defaults {
            category: Some(Category::Sanctioned),
            entity: Some("OFAC SDN".into()),
            currency: Some(cur.into()),
            confidence: None,
        },
        ..ImportOptions::default()
    };
    for cur in ["ETH", "XBT", "USDT", "USDC", "TRX"] {
        let t = import_files(
            &labels,
            Format::List,
            &[path(&format!("ofac/sanctioned_addresses_{cur}.txt"))],
            &opts(&format!("b10c-{cur}"), cur),
        )
        .unwrap();
        let j = import_files(
            &labels,
            Format::List,
            &[path(&format!("ofac/sanctioned_addresses_{cur}.json"))],
            &opts(&format!("b10c-{cur}"), cur),
        )
        .unwrap();
        assert_eq!(t.read, j.read);
        assert_eq!(j.imported, 0, "json repeats the txt");
        assert_eq!((j.removed, j.rejected), (0, t.rejected));
        let expected_rejects = if cur == "XBT" { 1 } else { 0 };
        assert_eq!(t.rejected, expected_rejects, "{cur}: {:?}", t.rejects);
    }
    // the TRON-form string OFAC lists as XBT is reported with its line
    let r = import_files(
        &labels,
        Format::List,
        &[path("ofac/sanctioned_addresses_XBT.txt")],
        &opts("b10c-xbt-again", "XBT"),
    )
    .unwrap();
    assert_eq!(r.read, 435);
    assert!(
        r.rejects[0]
            .reason
            .contains("TUCsTq7TofTCJRRoHk6RvhMoS2mJLm5Yzq")
    );
    assert!(r.rejects[0].line > 1);
}

#[test]
fn forta_csv() {
    let (_d, _s, labels) = open();
    let r = import_files(
        &labels,
        Format::Csv,
        &[path("forta/etherscan_malicious_labels.csv")],
        &ImportOptions {
            defaults: Defaults {
                category: Some(Category::Scam),
                ..Defaults::default()
            },
            ..ImportOptions::default()
        },
    )
    .unwrap();
    assert_eq!(r.read, 7780);
    // two rows carry a mixed-case address with a wrong EIP-55 checksum: reported, not guessed
    assert_eq!(r.rejected, 2, "{:?}", r.rejects);
    assert_eq!(
        r.rejects.iter().map(|r| r.line).collect::<Vec<_>>(),
        [1825, 6902]
    );
    assert!(r.rejects.iter().all(|r| r.reason.contains("EIP-55")));
    // 521 addresses appear twice (checksummed and lower-case); 506 of the pairs carry the same
    // tag (duplicates), 15 carry two different tags (two labels on one address)
    assert_eq!(r.duplicates, 506);
    let distinct: std::collections::BTreeSet<String> =
        labels.iter().map(|l| l.unwrap().address).collect();
    assert_eq!(distinct.len(), 7259); // case-insensitive distinct addresses
    assert_eq!(r.imported, 7780 - 2 - 506);
    // a CSV without a category column and no --category: every row reported
    let (_d2, _s2, labels2) = open();
    let r = import_files(
        &labels2,
        Format::Csv,
        &[path("forta/malicious_smart_contracts.csv")],
        &ImportOptions::default(),
    )
    .unwrap();
    assert_eq!(r.read, 753);
    assert_eq!(r.rejected, 753);
    assert!(r.rejects[0].reason.contains("no category"));
    assert!(
        labels2
            .sources()
            .unwrap()
            .iter()
            .all(|s| s.latest().unwrap().added == 0)
    );
}

#[test]
fn delisting_tornado_cash() {
    let (_d, _s, labels) = open();
    let opts = |v: &str| ImportOptions {
        source: Some("ofac-eth".into()),
        version: Some(v.into()),
        defaults: Defaults {
            category: Some(Category::Sanctioned),
            currency: Some("ETH".into()),
            ..Defaults::default()
        },
        ..ImportOptions::default()
    };
    let r = import_files(
        &labels,
        Format::Csv,
        &[path("ofac/ofac-eth-2025-03-12.csv")],
        &opts("2025-03-12"),
    )
    .unwrap();
    assert_eq!(
        (r.read, r.imported, r.rejected),
        (156, 156, 0),
        "{:?}",
        r.rejects
    );
    let r = import_files(
        &labels,
        Format::Csv,
        &[path("ofac/ofac-eth-2026-05.csv")],
        &opts("2026-05-26"),
    )
    .unwrap();
    assert_eq!(r.read, 97);
    assert_eq!(r.removed, 92);
    assert_eq!(r.imported, 33);
    let tornado: Address = "0x8589427373d6d84e98730d7795d8f6f8731fda16"
        .parse()
        .unwrap();
    let d = |s| parse_date(s);
    let l2023 = labels.labels_for(&tornado, d("2023-01-01")).unwrap();
    assert_eq!(l2023.len(), 1);
    assert_eq!(l2023[0].category, Category::Sanctioned);
    assert_eq!(l2023[0].name.as_deref(), None);
    assert_eq!(l2023[0].entity, "TORNADO CASH");
    assert_eq!(l2023[0].valid_from, d("2022-08-08"));
    // before the designation and after the delisting: not sanctioned
    assert!(
        labels
            .labels_for(&tornado, d("2022-08-07"))
            .unwrap()
            .is_empty()
    );
    assert!(
        labels
            .labels_for(&tornado, d("2026-06-01"))
            .unwrap()
            .is_empty()
    );
    // history is kept
    let mut k = Vec::new();
    tornado.write_key(&mut k);
    let h = labels.history_by_key(&k).unwrap();
    assert_eq!(h[0].removed_in.as_deref(), Some("2026-05-26"));
    assert_eq!(h[0].valid_to, d("2026-05-26"));
    // Lazarus stays sanctioned
    let lazarus: Address = "0x098B716B8Aaf21512996dC57EB0615e2383E2f96"
        .parse()
        .unwrap();
    assert_eq!(
        labels.labels_for(&lazarus, d("2026-06-01")).unwrap().len(),
        1
    );
    // an address added in 2026 is valid from that version
    let src = labels.source("ofac-eth").unwrap().unwrap();
    assert_eq!(src.versions.len(), 2);
    assert_eq!(src.versions[1].added, 33);
    assert_eq!(src.versions[1].active, 97);
    // re-import of the latest version is idempotent; an older version is refused
    let r = import_files(
        &labels,
        Format::Csv,
        &[path("ofac/ofac-eth-2026-05.csv")],
        &opts("2026-05-26"),
    )
    .unwrap();
    assert_eq!((r.imported, r.duplicates, r.removed), (0, 97, 0));
    let e = import_files(
        &labels,
        Format::Csv,
        &[path("ofac/ofac-eth-2025-03-12.csv")],
        &opts("2025-03-12"),
    )
    .unwrap_err();
    assert!(matches!(e, LabelError::OlderVersion { .. }), "{e}");
    assert_eq!(
        labels.source("ofac-eth").unwrap().unwrap().versions.len(),
        2
    );
}
