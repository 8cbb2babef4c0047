//! Property tests: the label parsers never panic on arbitrary input.

#![allow(clippy::unwrap_used)] // `unwrap` is allowed in tests only (project rule)

use paytrace_indexer::labels::{
    LabelAddress, LabelChain,
    import::{Collect, Input, csv, list, ofac_csv, ofac_xml, tagpack},
    model::Category,
    parse_date,
};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn parsers_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = ofac_csv::parse(vec![Input::from_bytes("f", &data)], &mut Collect::default());
        let _ = ofac_xml::parse(Input::from_bytes("f", &data), &mut Collect::default());
        let _ = tagpack::parse(Input::from_bytes("f", &data), &mut Collect::default());
        let _ = list::parse(Input::from_bytes("f", &data), &mut Collect::default());
        let _ = csv::parse(Input::from_bytes("f", &data), &mut Collect::default());
    }

    #[test]
    fn structured_inputs_never_panic(s in "[ -~\\r\\n\\x1a]{0,300}") {
        let sdn = format!("1,\"A\",\"x\",\"P\",-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,\"Digital Currency Address - {s}\"\r\n");
        let com = format!("1,\"{s}\"\r\n");
        let _ = ofac_csv::parse(vec![Input::from_bytes("s", sdn.as_bytes()), Input::from_bytes("c", com.as_bytes())], &mut Collect::default());
        let xml = format!("<S><FeatureType ID=\"1\">Digital Currency Address - {s}</FeatureType><Feature FeatureTypeID=\"1\"><VersionDetail>{s}</VersionDetail></Feature></S>");
        let _ = ofac_xml::parse(Input::from_bytes("x", xml.as_bytes()), &mut Collect::default());
        let yaml = format!("currency: ETH\ntags:\n- address: '{s}'\n  context: '{s}'\n");
        let _ = tagpack::parse(Input::from_bytes("y", yaml.as_bytes()), &mut Collect::default());
        let c = format!("address,category,date_added\n{s},{s},{s}\n");
        let _ = csv::parse(Input::from_bytes("c", c.as_bytes()), &mut Collect::default());
        let _ = parse_date(&s);
        let _ = Category::from_word(&s);
        let _ = s.parse::<LabelChain>();
    }

    #[test]
    fn address_parse_never_panics(s in "\\PC{0,80}", cur in proptest::option::of("[A-Za-z0-9]{0,6}")) {
        if let Ok(a) = LabelAddress::parse(&s, cur.as_deref()) {
            // canonical text parses back to the same address
            let chain = a.chain();
            let code = match &chain {
                LabelChain::Evm => "ETH".to_owned(),
                LabelChain::Bitcoin => "XBT".to_owned(),
                LabelChain::Tron => "TRX".to_owned(),
                LabelChain::Other(c) => c.clone(),
            };
            let again = LabelAddress::parse(&a.to_string(), Some(&code)).unwrap();
            prop_assert_eq!(again.key(), a.key());
        }
    }

    #[test]
    fn evm_roundtrip(bytes in any::<[u8; 20]>()) {
        let a = LabelAddress::Evm(bytes);
        let lower = a.to_string().to_lowercase();
        prop_assert_eq!(LabelAddress::parse(&lower, Some("ETH")).unwrap(), a.clone());
        prop_assert_eq!(LabelAddress::parse(&a.to_string(), None).unwrap(), a);
    }
}
