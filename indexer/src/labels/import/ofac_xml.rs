//! OFAC advanced XML (`sdn_advanced.xml` / `cons_advanced.xml` schema), streamed.
//!
//! `ReferenceValueSets/FeatureTypeValues/FeatureType` maps feature type ids to their text;
//! a `Feature` whose type text is `Digital Currency Address - CUR` is a label: the address is
//! the text of its `FeatureVersion/VersionDetail`. The type is resolved by its text, never by a
//! numeric id (ids differ between files). The entity is the primary alias of the enclosing
//! `DistinctParty` (its `NamePartValue`s), else `FixedRef N`. `DateOfIssue` is the version hint.
//! Namespaces are ignored (older files use `http://www.un.org/sanctions/1.0`).

use super::{Input, Sink};
use crate::labels::{LabelError, store::Candidate};
use quick_xml::events::{BytesStart, Event};
use std::{
    collections::{BTreeMap, HashMap},
    io::BufRead,
};

/// Feature type text prefix of digital currency addresses.
pub const FEATURE_PREFIX: &str = "Digital Currency Address - ";

/// A `BufRead` that counts the lines consumed, for error and row locations.
struct LineCounter<R> {
    inner: R,
    lines: u64,
}

impl<R: BufRead> std::io::Read for LineCounter<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.lines += count_nl(buf.get(..n).unwrap_or_default());
        Ok(n)
    }
}

impl<R: BufRead> BufRead for LineCounter<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        self.inner.fill_buf()
    }
    fn consume(&mut self, amt: usize) {
        if let Ok(b) = self.inner.fill_buf() {
            self.lines += count_nl(b.get(..amt).unwrap_or(b));
        }
        self.inner.consume(amt);
    }
}

fn count_nl(b: &[u8]) -> u64 {
    let n = b.iter().filter(|&&c| c == b'\n').count();
    u64::try_from(n).unwrap_or(u64::MAX)
}

#[derive(Default)]
struct Party {
    fixed_ref: Option<String>,
    primary_name: Vec<String>,
    /// (currency, address, line)
    features: Vec<(String, String, u64)>,
}

#[derive(Default)]
struct FeatureState {
    currency: Option<String>,
    address: String,
    line: u64,
}

fn attr(e: &BytesStart<'_>, name: &[u8]) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.local_name().as_ref().as_bytes() == name)
        .and_then(|a| {
            a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .ok()
                .map(|v| v.into_owned())
        })
}

/// Parses one XML input and feeds every digital currency feature to `sink`.
pub fn parse(input: Input<'_>, sink: &mut dyn Sink) -> Result<(), LabelError> {
    let name = input.name;
    let mut reader = quick_xml::Reader::from_reader(LineCounter {
        inner: input.reader,
        lines: 0,
    });
    let mut buf = Vec::new();
    let mut stack: Vec<Vec<u8>> = Vec::new();
    let mut feature_types: HashMap<String, String> = HashMap::new();
    let mut ft_id: Option<String> = None;
    let mut text = String::new();
    let mut party: Option<Party> = None;
    let mut in_primary_alias = false;
    let mut feature: Option<FeatureState> = None;
    let mut in_detail = false;
    let mut date = [0u32; 3];
    // the root element's name and opening line, once seen; whether it was closed
    let mut root: Option<(String, u64)> = None;
    let mut root_closed = false;
    let structure = |line: u64, reason: String| LabelError::Parse {
        file: name.clone(),
        line,
        reason,
    };
    loop {
        let line = reader.get_ref().lines + 1;
        let ev = reader
            .read_event_into(&mut buf)
            .map_err(|e| LabelError::Parse {
                file: name.clone(),
                line,
                reason: format!("malformed xml: {e}"),
            })?;
        match ev {
            Event::Eof => {
                match &root {
                    None => {
                        return Err(structure(
                            line,
                            "no xml element: the file is empty or not xml".into(),
                        ));
                    }
                    Some((r, opened)) if !root_closed => {
                        return Err(structure(
                            line,
                            format!(
                                "the xml ends before its root element `{r}` (opened on line {opened}) is closed: the file is cut off; {} element(s) left open",
                                stack.len()
                            ),
                        ));
                    }
                    Some(_) => {}
                }
                break;
            }
            Event::Empty(e) if stack.is_empty() => {
                if root.is_some() {
                    return Err(structure(
                        line,
                        "a second root element after the first".into(),
                    ));
                }
                root = Some((e.name().as_ref().to_owned(), line));
                root_closed = true;
            }
            Event::Start(e) => {
                if stack.is_empty() {
                    if root.is_some() {
                        return Err(structure(
                            line,
                            "a second root element after the first (two files joined?)".into(),
                        ));
                    }
                    root = Some((e.name().as_ref().to_owned(), line));
                }
                let local = e.local_name().as_ref().as_bytes().to_vec();
                match local.as_slice() {
                    b"FeatureType" => {
                        ft_id = attr(&e, b"ID");
                        text.clear();
                    }
                    b"DistinctParty" => {
                        party = Some(Party {
                            fixed_ref: attr(&e, b"FixedRef"),
                            ..Party::default()
                        });
                    }
                    b"Alias" => {
                        in_primary_alias = attr(&e, b"Primary").as_deref() == Some("true");
                    }
                    b"Feature" => {
                        let currency = attr(&e, b"FeatureTypeID")
                            .and_then(|id| feature_types.get(&id))
                            .and_then(|t| t.trim().strip_prefix(FEATURE_PREFIX))
                            .map(|c| c.trim().to_owned());
                        feature = Some(FeatureState {
                            currency,
                            line,
                            ..FeatureState::default()
                        });
                    }
                    b"VersionDetail" => in_detail = true,
                    _ => {}
                }
                text.clear();
                if stack.len() < 256 {
                    stack.push(local);
                } else {
                    return Err(structure(line, "xml nested too deeply".into()));
                }
            }
            Event::Text(t) => {
                let s = t.xml10_content();
                text.push_str(&s);
                if in_detail && let Some(f) = feature.as_mut() {
                    f.address.push_str(&s);
                }
            }
            Event::CData(t) => {
                let s = t.to_string();
                text.push_str(&s);
                if in_detail && let Some(f) = feature.as_mut() {
                    f.address.push_str(&s);
                }
            }
            Event::GeneralRef(r) => {
                let c = if r.is_char_ref() {
                    r.resolve_char_ref().ok().flatten()
                } else {
                    match &*r {
                        "amp" => Some('&'),
                        "lt" => Some('<'),
                        "gt" => Some('>'),
                        "quot" => Some('"'),
                        "apos" => Some('\''),
                        _ => None,
                    }
                };
                if let Some(c) = c {
                    text.push(c);
                    if in_detail && let Some(f) = feature.as_mut() {
                        f.address.push(c);
                    }
                }
            }
            Event::End(e) => {
                let local = e.local_name().as_ref().as_bytes().to_vec();
                stack.pop();
                if stack.is_empty() {
                    root_closed = true;
                }
                let parent = stack.last().map(Vec::as_slice);
                match local.as_slice() {
                    b"FeatureType" => {
                        if let Some(id) = ft_id.take() {
                            feature_types.insert(id, text.trim().to_owned());
                        }
                    }
                    b"Year" | b"Month" | b"Day" if parent == Some(b"DateOfIssue".as_slice()) => {
                        let v = text.trim().parse().unwrap_or(0);
                        match local.as_slice() {
                            b"Year" => date[0] = v,
                            b"Month" => date[1] = v,
                            _ => date[2] = v,
                        }
                    }
                    b"DateOfIssue" => {
                        let d = format!("{:04}-{:02}-{:02}", date[0], date[1], date[2]);
                        if crate::labels::parse_date(&d).is_some() {
                            sink.version_hint(&d);
                        }
                    }
                    b"NamePartValue" if in_primary_alias => {
                        if let Some(p) = party.as_mut() {
                            let t = text.trim();
                            if !t.is_empty() {
                                p.primary_name.push(t.to_owned());
                            }
                        }
                    }
                    b"Alias" => in_primary_alias = false,
                    b"VersionDetail" => in_detail = false,
                    b"Feature" => {
                        if let Some(f) = feature.take()
                            && let Some(cur) = f.currency
                        {
                            {
                                let addr = f.address.trim().to_owned();
                                match party.as_mut() {
                                    Some(p) => p.features.push((cur, addr, f.line)),
                                    None => emit(
                                        &name,
                                        f.line,
                                        cur,
                                        addr,
                                        "unknown party".into(),
                                        None,
                                        sink,
                                    )?,
                                }
                            }
                        }
                    }
                    b"DistinctParty" => {
                        if let Some(p) = party.take() {
                            let entity = if p.primary_name.is_empty() {
                                match &p.fixed_ref {
                                    Some(r) => format!("FixedRef {r}"),
                                    None => "unknown party".into(),
                                }
                            } else {
                                p.primary_name.join(" ")
                            };
                            for (cur, addr, line) in p.features {
                                emit(
                                    &name,
                                    line,
                                    cur,
                                    addr,
                                    entity.clone(),
                                    p.fixed_ref.clone(),
                                    sink,
                                )?;
                            }
                        }
                    }
                    _ => {}
                }
                text.clear();
            }
            _ => {}
        }
        buf.clear();
    }
    Ok(())
}

fn emit(
    file: &str,
    line: u64,
    currency: String,
    address: String,
    entity: String,
    fixed_ref: Option<String>,
    sink: &mut dyn Sink,
) -> Result<(), LabelError> {
    if address.is_empty() {
        sink.reject(
            file,
            line,
            format!("digital currency feature without an address ({entity})"),
        );
        return Ok(());
    }
    let mut notes = BTreeMap::new();
    if let Some(r) = fixed_ref {
        notes.insert("fixed_ref".to_owned(), r);
    }
    sink.candidate(Candidate {
        file: file.to_owned(),
        line,
        address,
        currency: Some(currency),
        entity: Some(entity),
        notes,
        ..Candidate::default()
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // `unwrap` is allowed in tests only (project rule)
mod tests {
    use super::*;
    use crate::labels::import::Collect;

    #[test]
    fn resolves_feature_type_by_text() {
        let xml = r#"<?xml version="1.0"?>
<Sanctions xmlns="x"><DateOfIssue><Year>2024</Year><Month>3</Month><Day>7</Day></DateOfIssue>
<ReferenceValueSets><FeatureTypeValues>
<FeatureType ID="9">Digital Currency Address - XBT</FeatureType>
<FeatureType ID="8">Birthdate</FeatureType>
</FeatureTypeValues></ReferenceValueSets>
<DistinctParties><DistinctParty FixedRef="7"><Profile>
<Identity><Alias Primary="true"><DocumentedName><DocumentedNamePart><NamePartValue>A &amp; B</NamePartValue></DocumentedNamePart></DocumentedName></Alias></Identity>
<Feature FeatureTypeID="8"><FeatureVersion><VersionDetail>1990</VersionDetail></FeatureVersion></Feature>
<Feature FeatureTypeID="9"><FeatureVersion><VersionDetail>1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa</VersionDetail></FeatureVersion></Feature>
</Profile></DistinctParty></DistinctParties></Sanctions>"#;
        let mut sink = Collect::default();
        parse(Input::from_bytes("t.xml", xml.as_bytes()), &mut sink).unwrap();
        assert_eq!(sink.versions, ["2024-03-07"]);
        assert_eq!(sink.candidates.len(), 1);
        let c = &sink.candidates[0];
        assert_eq!(c.currency.as_deref(), Some("XBT"));
        assert_eq!(c.entity.as_deref(), Some("A & B"));
        assert_eq!(c.line, 10);
    }

    #[test]
    fn malformed_is_an_error() {
        let mut sink = Collect::default();
        let r = parse(Input::from_bytes("t.xml", b"<a><b></a>"), &mut sink);
        assert!(matches!(r, Err(LabelError::Parse { .. })));
    }

    #[test]
    fn must_reach_the_end_of_the_root() {
        for (xml, want) in [
            ("", "no xml element"),
            ("<!-- only a comment -->\n", "no xml element"),
            (
                "<Sanctions>\n<DistinctParties>\n",
                "root element `Sanctions` (opened on line 1)",
            ),
            ("<a></a>\n<b></b>\n", "a second root element"),
        ] {
            let e = parse(
                Input::from_bytes("t.xml", xml.as_bytes()),
                &mut Collect::default(),
            )
            .unwrap_err();
            assert!(e.to_string().contains(want), "{xml:?}: {e}");
        }
        parse(
            Input::from_bytes("t.xml", b"<a/>\n"),
            &mut Collect::default(),
        )
        .unwrap();
    }
}
