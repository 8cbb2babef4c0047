//! GraphSense TagPack YAML.
//!
//! Header fields (everything but `tags`) are inherited by each tag; a tag's own field wins.
//! Used fields: `address` (required), `currency`, `label`, `actor` (entity; else `label`),
//! `abuse` (wins over `category` for the taxonomy), `category`, `confidence`, `source`
//! (evidence URL), `context` (a JSON string, kept compact in the notes), `lastmod` (the version
//! hint: the newest `lastmod` of the header). Other scalar fields are kept as notes.
//!
//! An address must be a YAML string: YAML reads an unquoted `0x1234` as the number 4660, so a
//! non-string address is rejected with its line and literal text, never converted. A document
//! that is not a mapping with a `tags` list (e.g. a CSV, which YAML reads as plain text) is
//! refused as a whole.

use super::{Input, Sink, read_all};
use crate::labels::{LabelError, model::Category, store::Candidate};
use serde_yaml_ng::{Mapping, Value};
use std::collections::BTreeMap;

/// Confidence (0–100) of a GraphSense confidence level.
pub fn confidence(level: &str) -> Option<u8> {
    Some(match level.trim() {
        "ledger_immanent" | "authority_data" => 100,
        "service_data" => 90,
        "forensic" | "forensic_investigation" => 80,
        "manual_transaction" | "service_api" => 70,
        "web_crawl" | "web_scraping" => 50,
        "unknown" => 20,
        _ => return None,
    })
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// 1-based line numbers of the items of the top-level `tags:` list, in order (block style).
fn tag_lines(text: &str) -> Vec<u64> {
    let mut out = Vec::new();
    let mut in_tags = false;
    let mut indent: Option<usize> = None;
    for (i, l) in text.lines().enumerate() {
        let n = u64::try_from(i).unwrap_or(u64::MAX).saturating_add(1);
        if !in_tags {
            in_tags = l.trim_end() == "tags:";
            continue;
        }
        let trimmed = l.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let ind = l.len() - trimmed.len();
        if ind == 0 && !trimmed.starts_with('-') {
            break;
        }
        if (trimmed.starts_with("- ") || trimmed == "-") && *indent.get_or_insert(ind) == ind {
            out.push(n);
        }
    }
    out
}

/// The literal text and line of the `address:` key of the tag that starts on `line` (lines up to
/// `next`, the next tag's line), or of the header when the tag has no address of its own.
fn address_literal(text: &str, line: u64, next: Option<u64>, own: bool) -> (u64, Option<String>) {
    let key_value = |l: &str| {
        let t = l.trim_start().trim_start_matches("- ").trim_start();
        t.strip_prefix("address:").map(|v| {
            let v = v.trim();
            let v = v.split(" #").next().unwrap_or(v).trim();
            v.to_owned()
        })
    };
    for (i, l) in text.lines().enumerate() {
        let n = u64::try_from(i).unwrap_or(u64::MAX).saturating_add(1);
        let in_tag = n >= line && next.is_none_or(|x| n < x);
        let in_header = !own && !l.starts_with(' ') && !l.starts_with('-');
        if ((own && in_tag) || (in_header && n < line))
            && let Some(v) = key_value(l).filter(|v| !v.is_empty())
        {
            return (n, Some(v));
        }
    }
    (line, None)
}

/// Parses one TagPack and feeds every tag to `sink`.
pub fn parse(mut input: Input<'_>, sink: &mut dyn Sink) -> Result<(), LabelError> {
    let name = input.name.clone();
    let data = read_all(&mut input)?;
    let text = String::from_utf8_lossy(&data);
    let doc: Value = serde_yaml_ng::from_str(&text).map_err(|e| LabelError::Parse {
        file: name.clone(),
        line: e
            .location()
            .map_or(1, |l| u64::try_from(l.line()).unwrap_or(1)),
        reason: format!("malformed yaml: {e}"),
    })?;
    let Value::Mapping(mut top) = doc else {
        let found = match &doc {
            Value::Null => "an empty document".to_owned(),
            Value::Sequence(_) => "a yaml list".to_owned(),
            Value::String(t) => {
                let first: String = t
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .chars()
                    .take(60)
                    .collect();
                let csv = if first.contains(',') { " (a CSV?)" } else { "" };
                format!("plain text starting with {first:?}{csv}")
            }
            _ => "a single yaml value".to_owned(),
        };
        return Err(LabelError::WrongFormat {
            file: name,
            expected: "TagPack YAML",
            found: format!("{found}, not a mapping with a `tags` list"),
        });
    };
    let tags = match top.remove("tags") {
        Some(Value::Sequence(s)) => s,
        _ => {
            return Err(LabelError::Parse {
                file: name,
                line: 1,
                reason: "a tagpack is a mapping with a `tags` list".into(),
            });
        }
    };
    let header = top;
    if let Some(lm) = header.get("lastmod").and_then(scalar) {
        sink.version_hint(&lm);
    }
    let lines = tag_lines(&text);
    for (i, tag) in tags.into_iter().enumerate() {
        let line = lines.get(i).copied().unwrap_or(1);
        let Value::Mapping(tag) = tag else {
            sink.reject(&name, line, format!("tag #{} is not a mapping", i + 1));
            continue;
        };
        let next = lines.get(i + 1).copied();
        if let Some(v) = tag.get("address").or_else(|| header.get("address"))
            && !matches!(v, Value::String(_))
        {
            let (at, literal) = address_literal(&text, line, next, tag.contains_key("address"));
            let shown =
                literal.unwrap_or_else(|| scalar(v).unwrap_or_else(|| "a non-text value".into()));
            let read_as = scalar(v).map_or(String::new(), |n| format!(" (read as {n})"));
            sink.reject(
                &name,
                at,
                format!(
                    "address {shown} is not a yaml string{read_as}: quote it, e.g. address: \"{shown}\""
                ),
            );
            continue;
        }
        match candidate(&name, line, &header, &tag) {
            Ok(c) => sink.candidate(c)?,
            Err(reason) => sink.reject(&name, line, reason),
        }
    }
    Ok(())
}

fn candidate(file: &str, line: u64, header: &Mapping, tag: &Mapping) -> Result<Candidate, String> {
    let get = |k: &str| tag.get(k).or_else(|| header.get(k)).and_then(scalar);
    let address = get("address").ok_or("tag without an address")?;
    let category = match (get("abuse"), get("category")) {
        (Some(a), _) if !a.trim().is_empty() => {
            Some(Category::from_word(&a).ok_or_else(|| format!("unknown abuse category {a:?}"))?)
        }
        (_, Some(c)) if !c.trim().is_empty() => {
            Some(Category::from_word(&c).ok_or_else(|| format!("unknown category {c:?}"))?)
        }
        _ => None,
    };
    let mut notes = BTreeMap::new();
    if let Some(ctx) = get("context") {
        let v: serde_json::Value =
            serde_json::from_str(&ctx).map_err(|e| format!("context is not a json string: {e}"))?;
        notes.insert("context".to_owned(), v.to_string());
    }
    const USED: &[&str] = &[
        "address",
        "currency",
        "label",
        "actor",
        "abuse",
        "category",
        "confidence",
        "source",
        "context",
        "lastmod",
        "tags",
    ];
    for (k, v) in header.iter().chain(tag.iter()) {
        if let (Some(k), Some(v)) = (k.as_str(), scalar(v))
            && !USED.contains(&k)
            && !v.is_empty()
        {
            notes.insert(k.to_owned(), v);
        }
    }
    if let Some(c) = get("abuse").and(get("category")) {
        notes.insert("graphsense_category".into(), c);
    }
    let conf = match get("confidence") {
        Some(c) => Some(confidence(&c).ok_or_else(|| format!("unknown confidence {c:?}"))?),
        None => None,
    };
    let label = get("label");
    Ok(Candidate {
        file: file.to_owned(),
        line,
        address,
        currency: get("currency"),
        entity: get("actor").or_else(|| label.clone()),
        name: label,
        category,
        confidence: conf,
        url: get("source"),
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
    fn header_inheritance_and_override() {
        let y = "title: t\ncurrency: BTC\ncategory: exchange\nlabel: L\nlastmod: 2022-01-02\ntags:\n- address: a1\n- address: a2\n  currency: ETH\n  abuse: sanction\n  context: '{\"x\": 1}'\n";
        let mut sink = Collect::default();
        parse(Input::from_bytes("p.yaml", y.as_bytes()), &mut sink).unwrap();
        assert_eq!(sink.versions, ["2022-01-02"]);
        let c = &sink.candidates;
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].currency.as_deref(), Some("BTC"));
        assert_eq!(c[0].category, Some(Category::Exchange));
        assert_eq!(c[0].line, 7);
        assert_eq!(c[1].currency.as_deref(), Some("ETH"));
        assert_eq!(c[1].category, Some(Category::Sanctioned));
        assert_eq!(c[1].line, 8);
        assert_eq!(
            c[1].notes.get("context").map(String::as_str),
            Some("{\"x\":1}")
        );
        assert_eq!(c[0].notes.get("title").map(String::as_str), Some("t"));
    }

    #[test]
    fn bad_category_and_context_are_rejected() {
        let y = "tags:\n- address: a1\n  category: weird\n- address: a2\n  category: exchange\n  context: '{'\n";
        let mut sink = Collect::default();
        parse(Input::from_bytes("p.yaml", y.as_bytes()), &mut sink).unwrap();
        assert_eq!(sink.rejects.len(), 2);
        assert_eq!(sink.rejects[0].1, 2);
        assert_eq!(sink.rejects[1].1, 4);
    }
}
