//! TagPack, list and CSV importers and delisting history on the real files in
//! ../shared/data/labels.

#![allow(clippy::unwrap_used)] // `unwrap` is allowed in tests only (project rule)

use paytrace_indexer::{
    Address, Store,
    labels::{
        Category, Defaults, Format, ImportOptions, Input, LabelError, LabelStore, ShrinkGuard,
        import_files, import_inputs, parse_date,
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
    // the 2026 list delists 92 of 156 (59 %): refused under the default guard (10 %), and
    // nothing changes; accepted once the shrink is allowed
    let e = import_files(
        &labels,
        Format::Csv,
        &[path("ofac/ofac-eth-2026-05.csv")],
        &opts("2026-05-26"),
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            LabelError::Shrink {
                removed: 92,
                active: 156,
                max_pct: 10,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("pass --allow-shrink"), "{e}");
    assert!(e.is_input_refused());
    assert_eq!(
        labels.source("ofac-eth").unwrap().unwrap().versions.len(),
        1
    );
    let r = import_files(
        &labels,
        Format::Csv,
        &[path("ofac/ofac-eth-2026-05.csv")],
        &ImportOptions {
            guard: ShrinkGuard {
                allow_shrink: true,
                ..ShrinkGuard::default()
            },
            ..opts("2026-05-26")
        },
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

// ---- guarded updates, structure checks, format sniffing ----------------------------------

/// Every stored label and the source records (without import times), as comparable text.
fn dump(labels: &LabelStore) -> String {
    let all: Vec<_> = labels.iter().map(Result::unwrap).collect();
    let mut sources = labels.sources().unwrap();
    for s in &mut sources {
        for v in &mut s.versions {
            v.imported_at.clear();
        }
    }
    format!("{all:?}\n{sources:?}")
}

fn ofac_opts(version: &str) -> ImportOptions {
    ImportOptions {
        version: Some(version.into()),
        ..ImportOptions::default()
    }
}

fn allow(o: ImportOptions) -> ImportOptions {
    ImportOptions {
        guard: ShrinkGuard {
            allow_shrink: true,
            ..ShrinkGuard::default()
        },
        ..o
    }
}

/// The 2025 subset (sdn + comments): 32 labels of `ofac-sdn`, version 2025-05-16.
fn subset_2025(labels: &LabelStore) {
    let r = import_files(
        labels,
        Format::OfacCsv,
        &[
            path("ofac/sdn-2025-05-subset.csv"),
            path("ofac/sdn_comments-2025-05-subset.csv"),
        ],
        &ofac_opts("2025-05-16"),
    )
    .unwrap();
    assert_eq!(
        (r.read, r.imported, r.rejected),
        (32, 32, 0),
        "{:?}",
        r.rejects
    );
}

/// Rows of the real 2025 subset sdn.csv whose ent_num is in `keep`, as a new file.
fn sdn_rows(dir: &std::path::Path, keep: &[&str]) -> PathBuf {
    let text = std::fs::read_to_string(path("ofac/sdn-2025-05-subset.csv")).unwrap();
    let rows: String = text
        .split_inclusive('\n')
        .filter(|l| keep.iter().any(|k| l.starts_with(&format!("{k},"))))
        .collect();
    let p = dir.join(format!("sdn-{}.csv", keep.join("-")));
    std::fs::write(&p, rows).unwrap();
    p
}

#[test]
fn empty_ofac_versions_are_refused_and_labels_stay() {
    let (d, _s, labels) = open();
    subset_2025(&labels);
    let before = dump(&labels);
    let empty = d.path().join("empty.csv");
    std::fs::write(&empty, b"").unwrap();
    // an empty sdn.csv as a later version: reads 0 rows, would delist all 32
    let e = import_files(
        &labels,
        Format::OfacCsv,
        std::slice::from_ref(&empty),
        &ofac_opts("2025-06-01"),
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            LabelError::Shrink {
                read: 0,
                removed: 32,
                active: 32,
                ..
            }
        ),
        "{e}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains("32 of its 32")
            && msg.contains("no row was read")
            && msg.contains("--allow-shrink"),
        "{msg}"
    );
    assert_eq!(dump(&labels), before);
    // even a limit of 100 % refuses a version that reads nothing
    let o = ImportOptions {
        guard: ShrinkGuard {
            max_shrink_pct: 100,
            allow_shrink: false,
        },
        ..ofac_opts("2025-06-01")
    };
    let e = import_files(&labels, Format::OfacCsv, &[empty], &o).unwrap_err();
    assert!(matches!(e, LabelError::Shrink { read: 0, .. }), "{e}");
    // an empty XML is not XML at all
    let e = import_inputs(
        &labels,
        Format::OfacXml,
        vec![Input::from_bytes("sdn_advanced.xml", b"")],
        &ofac_opts("2025-06-01"),
    )
    .unwrap_err();
    assert!(matches!(e, LabelError::Parse { .. }), "{e}");
    assert!(e.to_string().contains("no xml element"), "{e}");
    // an XML version without any address (the real consolidated list) reads 0 rows
    let e = import_files(
        &labels,
        Format::OfacXml,
        &[path("ofac/cons_advanced-2020.xml")],
        &ofac_opts("2025-06-01"),
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            LabelError::Shrink {
                read: 0,
                removed: 32,
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(dump(&labels), before);
    assert_eq!(
        labels.source("ofac-sdn").unwrap().unwrap().versions.len(),
        1
    );
}

#[test]
fn large_removal_is_refused_then_accepted_with_allow_shrink() {
    let (d, _s, labels) = open();
    subset_2025(&labels);
    let before = dump(&labels);
    // LIFSHITS (6 addresses) and KHOROSHEV (1) only: SUEX's 25 would be delisted
    let v2 = sdn_rows(d.path(), &["29702", "48603"]);
    let e = import_files(
        &labels,
        Format::OfacCsv,
        std::slice::from_ref(&v2),
        &ofac_opts("2025-06-01"),
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            LabelError::Shrink {
                read: 7,
                removed: 25,
                active: 32,
                max_pct: 10,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("(78.1 %)"), "{e}");
    assert_eq!(dump(&labels), before, "nothing changes on refusal");
    // a higher limit from the caller (config or --max-shrink) is honoured
    let o = ImportOptions {
        guard: ShrinkGuard {
            max_shrink_pct: 78,
            allow_shrink: false,
        },
        ..ofac_opts("2025-06-01")
    };
    assert!(import_files(&labels, Format::OfacCsv, std::slice::from_ref(&v2), &o).is_err());
    let r = import_files(
        &labels,
        Format::OfacCsv,
        &[v2],
        &allow(ofac_opts("2025-06-01")),
    )
    .unwrap();
    assert_eq!((r.read, r.imported, r.duplicates, r.removed), (7, 0, 7, 25));
    let src = labels.source("ofac-sdn").unwrap().unwrap();
    assert_eq!(src.versions.len(), 2);
    assert_eq!(src.versions[1].active, 7);
}

#[test]
fn small_removal_passes_the_guard() {
    let (d, _s, labels) = open();
    subset_2025(&labels);
    // without KHOROSHEV: 1 of 32 delisted (3.1 %), under the default 10 %
    let text = std::fs::read_to_string(path("ofac/sdn-2025-05-subset.csv")).unwrap();
    let v2 = d.path().join("sdn.csv");
    std::fs::write(
        &v2,
        text.split_inclusive('\n')
            .filter(|l| !l.starts_with("48603,"))
            .collect::<String>(),
    )
    .unwrap();
    let r = import_files(
        &labels,
        Format::OfacCsv,
        &[v2, path("ofac/sdn_comments-2025-05-subset.csv")],
        &ofac_opts("2025-06-01"),
    )
    .unwrap();
    assert_eq!((r.read, r.removed), (31, 1));
}

#[test]
fn cut_off_ofac_files_are_refused_whole() {
    let (d, _s, labels) = open();
    let sdn = std::fs::read(path("ofac/sdn-2021.csv")).unwrap();
    // cut mid-row, as a connection closing early leaves it
    let cut = d.path().join("sdn-cut.csv");
    std::fs::write(&cut, &sdn[..sdn.len() / 2]).unwrap();
    let e = import_files(&labels, Format::OfacCsv, &[cut], &ImportOptions::default()).unwrap_err();
    let LabelError::Parse { line, reason, .. } = &e else {
        panic!("{e}")
    };
    assert!(*line > 1000, "{e}");
    assert!(
        reason.contains("unbalanced quote")
            || reason.contains("expected 12 columns")
            || reason.contains("does not end with a line break"),
        "{e}"
    );
    // cut at a quote-balanced point inside the last row: the column count tells
    let text = String::from_utf8(sdn.clone()).unwrap();
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let partial = format!(
        "{}36,\"AEROCARIBBEAN AIRLINES\",-0- ,\"CUBA\"\r\n",
        lines[..10].concat()
    );
    let e = import_inputs(
        &labels,
        Format::OfacCsv,
        vec![Input::from_bytes("sdn.csv", partial.as_bytes())],
        &ImportOptions::default(),
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("sdn.csv:11: expected 12 columns (as on line 1), found 4"),
        "{e}"
    );
    // a continuation cut inside its quoted text (2 columns all the same)
    let com = std::fs::read(path("ofac/sdn_comments-2021.csv")).unwrap();
    let e = import_inputs(
        &labels,
        Format::OfacCsv,
        vec![Input::from_bytes(
            "sdn_comments.csv",
            &com[..com.len() - 40],
        )],
        &ImportOptions::default(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("unbalanced quote"), "{e}");
    // the advanced XML cut before its end
    let xml = std::fs::read(path("ofac/sdn_advanced-excerpt.xml")).unwrap();
    let text = String::from_utf8(xml).unwrap();
    let cut: String = text.split_inclusive('\n').take(40).collect();
    let e = import_inputs(
        &labels,
        Format::OfacXml,
        vec![Input::from_bytes("sdn_advanced.xml", cut.as_bytes())],
        &ImportOptions::default(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("root element `Sanctions`"), "{e}");
    assert!(e.to_string().contains("cut off"), "{e}");
    assert!(labels.sources().unwrap().is_empty());
    assert_eq!(labels.iter().count(), 0);
}

#[test]
fn formats_are_sniffed() {
    let (_d, _s, labels) = open();
    let e = import_files(
        &labels,
        Format::OfacXml,
        &[path("ofac/sdn-2025-05-subset.csv")],
        &ImportOptions::default(),
    )
    .unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, LabelError::WrongFormat { .. }), "{msg}");
    assert!(
        msg.contains("sdn-2025-05-subset.csv: not XML input") && msg.contains("--format ofac-csv"),
        "{msg}"
    );
    let e = import_files(
        &labels,
        Format::OfacCsv,
        &[path("ofac/sdn_advanced-excerpt.xml")],
        &ImportOptions::default(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("not CSV input: it is XML"), "{e}");
    for f in ["ofac/ofac-eth-2026-05.csv", "ofac/sdn_advanced-excerpt.xml"] {
        let e = import_files(
            &labels,
            Format::Tagpack,
            &[path(f)],
            &ImportOptions::default(),
        )
        .unwrap_err();
        assert!(
            matches!(
                e,
                LabelError::WrongFormat {
                    expected: "TagPack YAML",
                    ..
                }
            ),
            "{f}: {e}"
        );
    }
    assert!(labels.sources().unwrap().is_empty());
}

#[test]
fn unbalanced_quote_rejects_only_its_row() {
    let (d, _s, labels) = open();
    // real rows of the 2026 list; line 3 opens a quote it never closes
    let text = std::fs::read_to_string(path("ofac/ofac-eth-2026-05.csv")).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines[2] = format!("\"{}", lines[2]);
    let f = d.path().join("eth.csv");
    std::fs::write(&f, lines.join("\n") + "\n").unwrap();
    let opts = ImportOptions {
        defaults: Defaults {
            category: Some(Category::Sanctioned),
            currency: Some("ETH".into()),
            ..Defaults::default()
        },
        ..ImportOptions::default()
    };
    let r = import_files(&labels, Format::Csv, &[f], &opts).unwrap();
    assert_eq!(
        (r.read, r.imported, r.rejected),
        (97, 96, 1),
        "{:?}",
        r.rejects
    );
    assert_eq!(r.rejects[0].line, 3);
    assert!(r.rejects[0].reason.contains("unbalanced quote"));
    // the row after it is imported
    let next = lines[3].split(',').next().unwrap().to_owned();
    let a: Address = next.parse().unwrap();
    assert_eq!(labels.labels_for(&a, None).unwrap().len(), 1);
    // a row with a missing field is rejected with the counts
    let f = d.path().join("short.csv");
    std::fs::write(
        &f,
        "address,name\n0x098B716B8Aaf21512996dC57EB0615e2383E2f96\n0x8589427373d6d84e98730d7795d8f6f8731fda16,TORNADO CASH\n",
    )
    .unwrap();
    let r = import_files(&labels, Format::Csv, &[f], &opts).unwrap();
    assert_eq!((r.read, r.rejected), (2, 1));
    assert_eq!(r.rejects[0].line, 2);
    assert!(
        r.rejects[0]
            .reason
            .contains("expected 2 fields (as the header), found 1")
    );
}

#[test]
fn tagpack_numeric_address_is_reported_not_converted() {
    let (d, _s, labels) = open();
    let f = d.path().join("pack.yaml");
    std::fs::write(
        &f,
        "title: t\ncurrency: ETH\ncategory: exchange\nlastmod: 2024-01-01\ntags:\n- label: a\n  address: 0x1234\n- address: 1234\n- address: \"0x098B716B8Aaf21512996dC57EB0615e2383E2f96\"\n",
    )
    .unwrap();
    let r = import_files(&labels, Format::Tagpack, &[f], &ImportOptions::default()).unwrap();
    assert_eq!(
        (r.read, r.imported, r.rejected),
        (3, 1, 2),
        "{:?}",
        r.rejects
    );
    let first = &r.rejects[0];
    assert_eq!(first.line, 7);
    assert!(
        first
            .reason
            .contains("address 0x1234 is not a yaml string (read as 4660)")
            && first.reason.contains("quote it"),
        "{first}"
    );
    assert_eq!(r.rejects[1].line, 8);
    assert!(
        r.rejects[1].reason.contains("address 1234"),
        "{}",
        r.rejects[1]
    );
    assert!(labels.iter().all(|l| !l.unwrap().address.contains("4660")));
}
