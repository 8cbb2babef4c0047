//! OFAC importers on the real files in ../shared/data/labels/ofac.

#![allow(clippy::unwrap_used)] // `unwrap` is allowed in tests only (project rule)

use paytrace_indexer::{
    Store,
    labels::{
        Category, Format, ImportOptions, Input, LabelAddress, LabelStore, import::Collect,
        import::ofac_csv, import::ofac_xml, import_files,
    },
};
use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    path::PathBuf,
};

const DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/data/labels/ofac/"
);

fn path(name: &str) -> PathBuf {
    PathBuf::from(DIR).join(name)
}

fn open() -> (tempfile::TempDir, Store, LabelStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let labels = LabelStore::open(&store).unwrap();
    (dir, store, labels)
}

/// Independent derivation: joined remarks by plain string handling, then a scan for
/// `Digital Currency Address - CUR ADDR`. Returns currency -> set of addresses.
fn independent_2021() -> BTreeMap<String, BTreeSet<String>> {
    let sdn = std::fs::read_to_string(path("sdn-2021.csv")).unwrap();
    let com = std::fs::read_to_string(path("sdn_comments-2021.csv")).unwrap();
    let mut cont: HashMap<&str, String> = HashMap::new();
    for line in com.split("\r\n").filter(|l| !l.is_empty()) {
        let (num, text) = line.split_once(',').unwrap();
        let text = text.trim_matches('"');
        cont.entry(num).or_default().push_str(text);
    }
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in sdn.split("\r\n") {
        let Some((num, _)) = line.split_once(',') else {
            continue;
        };
        let mut full = line.trim_end_matches('"').to_owned();
        if let Some(c) = cont.get(num) {
            full.push_str(c);
        }
        for piece in full.split("Digital Currency Address - ").skip(1) {
            let mut w = piece.split([' ', ';']);
            let cur = w.next().unwrap().to_owned();
            let addr = w.next().unwrap().trim_end_matches(['.', '"']).to_owned();
            out.entry(cur).or_default().insert(addr.to_lowercase());
        }
    }
    out
}

#[test]
fn ofac_2021_csv_set() {
    let (_d, _s, labels) = open();
    let files = [path("sdn-2021.csv"), path("sdn_comments-2021.csv")];
    let opts = ImportOptions {
        version: Some("2021-07-07".into()),
        ..ImportOptions::default()
    };
    let r = import_files(&labels, Format::OfacCsv, &files, &opts).unwrap();
    assert_eq!(r.source, "ofac-sdn");
    assert_eq!(r.read, 97, "{:?}", r.rejects);
    assert_eq!(r.rejected, 1, "{:?}", r.rejects);
    let rej = &r.rejects[0];
    assert!(rej.file.ends_with("sdn-2021.csv"));
    assert!(
        rej.reason
            .contains("0xa7e5d5a720f06526557c513402f2e6b5fa20b00"),
        "{rej}"
    );
    assert!(rej.line > 1);
    assert_eq!(r.imported + r.duplicates, 96);

    // per currency, distinct addresses, against the independent derivation
    let mut ours: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for l in labels.iter() {
        let l = l.unwrap();
        assert_eq!(l.category, Category::Sanctioned);
        ours.entry(l.currency.clone().unwrap())
            .or_default()
            .insert(l.address.to_lowercase());
    }
    let mut indep = independent_2021();
    indep
        .get_mut("ETH")
        .unwrap()
        .remove("0xa7e5d5a720f06526557c513402f2e6b5fa20b00");
    assert_eq!(ours, indep);
    let counts: BTreeMap<&str, usize> = ours.iter().map(|(k, v)| (k.as_str(), v.len())).collect();
    assert_eq!(counts["XBT"], 65);
    assert_eq!(counts["ETH"], 9);
    assert_eq!(counts["LTC"], 8);
    assert_eq!(counts["ZEC"], 3);
    assert_eq!(counts["DASH"], 3);
    assert_eq!(counts["BCH"], 2);
    for c in ["XMR", "BTG", "ETC", "BSV", "XVG"] {
        assert_eq!(counts[c], 1, "{c}");
    }

    // every XBT address is in the 0xB10C golden list
    let golden: BTreeSet<String> = std::fs::read_to_string(path("sanctioned_addresses_XBT.txt"))
        .unwrap()
        .lines()
        .map(|l| l.to_lowercase())
        .collect();
    assert!(ours["XBT"].is_subset(&golden));

    // spot checks: the joined continuations
    let a = LabelAddress::parse("1GqChmWqGtsaLrGbHfgdrV5Nkvahtjjuxr", Some("XBT")).unwrap();
    let l = labels.lookup(&a, None).unwrap();
    assert_eq!(l.len(), 1);
    assert_eq!(l[0].entity, "SECONDEYE SOLUTION");
    assert_eq!(l[0].notes["ent_num"], "30518");
    let a: paytrace_indexer::Address = "0x8576acc5c05d6ce88f4e49bf65bdf0c62f91353c"
        .parse()
        .unwrap();
    let l = labels.labels_for(&a, None).unwrap();
    assert!(l[0].entity.starts_with("ANDREYEV"), "{:?}", l[0]);
    assert_eq!(l[0].address, a.to_string());
    // LAZARUS GROUP has no digital currency clause in 2021
    assert!(
        labels
            .iter()
            .all(|l| !l.unwrap().entity.contains("LAZARUS"))
    );
    // a currency paytrace does not index answers too
    let ltc_any = labels
        .iter()
        .map(Result::unwrap)
        .find(|l| l.currency.as_deref() == Some("LTC"))
        .unwrap();
    let a = LabelAddress::parse(&ltc_any.address, Some("LTC")).unwrap();
    assert!(!labels.lookup(&a, None).unwrap().is_empty());

    // re-import of the same version is idempotent
    let r2 = import_files(&labels, Format::OfacCsv, &files, &opts).unwrap();
    assert_eq!((r2.imported, r2.removed, r2.rejected), (0, 0, 1));
    let src = labels.sources().unwrap();
    assert_eq!(src.len(), 1);
    assert_eq!(src[0].versions.len(), 1);
}

#[test]
fn ofac_2025_subset_with_continuation() {
    let (_d, _s, labels) = open();
    let files = [
        path("sdn-2025-05-subset.csv"),
        path("sdn_comments-2025-05-subset.csv"),
    ];
    let r = import_files(&labels, Format::OfacCsv, &files, &ImportOptions::default()).unwrap();
    assert_eq!(r.read, 32, "{:?}", r.rejects);
    assert_eq!(r.rejected, 0, "{:?}", r.rejects);
    let mut per: BTreeMap<(String, String), usize> = BTreeMap::new();
    for l in labels.iter() {
        let l = l.unwrap();
        *per.entry((l.notes["ent_num"].clone(), l.currency.clone().unwrap()))
            .or_default() += 1;
    }
    let get = |e: &str, c: &str| per.get(&(e.to_owned(), c.to_owned())).copied().unwrap_or(0);
    assert_eq!((get("29702", "XBT"), get("29702", "ETH")), (2, 2));
    assert_eq!((get("29702", "LTC"), get("29702", "DASH")), (1, 1));
    assert_eq!((get("33151", "XBT"), get("33151", "ETH")), (14, 4));
    assert_eq!(get("33151", "USDT"), 7);
    assert_eq!(get("48603", "XBT"), 1);
    // the LIFSHITS address given correctly in 2025
    let a = "0xa7e5d5a720f06526557c513402f2e6b5fa20b008"
        .parse()
        .unwrap();
    assert_eq!(labels.labels_for(&a, None).unwrap().len(), 1);
    // SUEX USDT in both EVM and Omni (bitcoin) forms
    let chains: BTreeSet<String> = labels
        .iter()
        .map(Result::unwrap)
        .filter(|l| l.currency.as_deref() == Some("USDT"))
        .map(|l| l.chain.name())
        .collect();
    assert!(
        chains.contains("evm") && chains.contains("bitcoin"),
        "{chains:?}"
    );
}

#[test]
fn ofac_2025_02_comments_alone() {
    let data = std::fs::read(path("sdn_comments-2025-02.csv")).unwrap();
    let mut sink = Collect::default();
    ofac_csv::parse(
        vec![Input::from_bytes("sdn_comments-2025-02.csv", &data)],
        &mut sink,
    )
    .unwrap();
    let mut per: BTreeMap<String, usize> = BTreeMap::new();
    for c in &sink.candidates {
        *per.entry(c.currency.clone().unwrap()).or_default() += 1;
    }
    let expect = BTreeMap::from(
        [
            ("XBT", 219),
            ("ETH", 100),
            ("USDT", 8),
            ("LTC", 6),
            ("BCH", 4),
            ("ZEC", 1),
            ("BSV", 1),
            ("XRP", 1),
            ("TRX", 1),
        ]
        .map(|(k, v)| (k.to_owned(), v)),
    );
    assert_eq!(per, expect);
    // LAZARUS GROUP's continuation (27307) holds only aliases; SUEX's (33151) holds addresses
    assert!(
        !sink
            .candidates
            .iter()
            .any(|c| c.entity.as_deref() == Some("SDN entry 27307"))
    );
    assert!(
        sink.candidates
            .iter()
            .any(|c| c.entity.as_deref() == Some("SDN entry 33151"))
    );
    let eth = sink
        .candidates
        .iter()
        .find(|c| c.currency.as_deref() == Some("ETH"))
        .unwrap();
    // and through the store: addresses inside continuations answer look-ups
    let (_d, _s, labels) = open();
    let r = import_files(
        &labels,
        Format::OfacCsv,
        &[path("sdn_comments-2025-02.csv")],
        &ImportOptions::default(),
    )
    .unwrap();
    assert_eq!(r.read, 341);
    assert_eq!(r.rejected, 0, "{:?}", r.rejects);
    let a: paytrace_indexer::Address = eth.address.parse().unwrap();
    let l = labels.labels_for(&a, None).unwrap();
    assert!(
        l.iter()
            .any(|l| Some(&l.notes["ent_num"]) == eth.notes.get("ent_num")),
        "{l:?}"
    );
}

#[test]
fn advanced_xml_excerpt_and_consolidated_2020() {
    let (_d, _s, labels) = open();
    let r = import_files(
        &labels,
        Format::OfacXml,
        &[path("sdn_advanced-excerpt.xml")],
        &ImportOptions::default(),
    )
    .unwrap();
    assert_eq!((r.read, r.imported, r.rejected), (1, 1, 0));
    let a = "0x901bb9583b24d97e995513c6778dc6888ab6870e"
        .parse()
        .unwrap();
    let l = labels.labels_for(&a, None).unwrap();
    assert_eq!(l[0].currency.as_deref(), Some("ETH"));
    assert_eq!(l[0].category, Category::Sanctioned);

    let data = std::fs::read(path("cons_advanced-2020.xml")).unwrap();
    let mut sink = Collect::default();
    ofac_xml::parse(
        Input::from_bytes("cons_advanced-2020.xml", &data),
        &mut sink,
    )
    .unwrap();
    assert!(sink.candidates.is_empty());
    assert!(sink.rejects.is_empty());
    assert_eq!(sink.versions, ["2020-03-17"]);
    let r = import_files(
        &labels,
        Format::OfacXml,
        &[path("cons_advanced-2020.xml")],
        &ImportOptions {
            source: Some("ofac-cons".into()),
            ..ImportOptions::default()
        },
    )
    .unwrap();
    assert_eq!(
        (r.read, r.imported, r.version.as_str()),
        (0, 0, "2020-03-17")
    );
}
