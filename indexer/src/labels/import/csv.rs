//! CSV with a header row naming the columns (case-insensitive).
//!
//! * address: `address`, else the first column whose name ends in `address` (e.g. Forta's
//!   `banned_address`, `contract_address`); required.
//! * label text: `label`, `name`, `tag`, `wallet_tag`, `contract_tag`.
//! * `category` (mapped through the synonyms; an unknown word rejects the row), `entity`,
//!   `chain`/`currency`, `date_added`/`valid_from`, `valid_to`, `source`/`data_source`,
//!   `confidence` (0–100), `url`.
//! * every other non-empty column is kept as a note.
//!
//! One record per line (see [`super::CsvLines`]): a line with an unbalanced quote or with
//! another field count than the header is a rejected row, and the next line is read normally.

use super::{CsvLine, CsvLines, Input, Sink};
use crate::labels::{LabelError, model::Category, parse_date, store::Candidate};
use std::collections::BTreeMap;

#[derive(Default)]
struct Columns {
    address: Option<usize>,
    label: Option<usize>,
    category: Option<usize>,
    entity: Option<usize>,
    chain: Option<usize>,
    valid_from: Option<usize>,
    valid_to: Option<usize>,
    source: Option<usize>,
    confidence: Option<usize>,
    url: Option<usize>,
    names: Vec<String>,
}

impl Columns {
    fn from_header(h: &csv::StringRecord) -> Self {
        let names: Vec<String> = h
            .iter()
            .map(|s| s.trim().trim_matches('\u{feff}').to_ascii_lowercase())
            .collect();
        let find = |alts: &[&str]| alts.iter().find_map(|a| names.iter().position(|n| n == a));
        let address =
            find(&["address"]).or_else(|| names.iter().position(|n| n.ends_with("address")));
        Self {
            address,
            label: find(&["label", "name", "tag", "wallet_tag", "contract_tag"]),
            category: find(&["category"]),
            entity: find(&["entity", "actor"]),
            chain: find(&["chain", "currency", "network"]),
            valid_from: find(&["date_added", "valid_from", "date"]),
            valid_to: find(&["valid_to", "date_removed"]),
            source: find(&["source", "data_source"]),
            confidence: find(&["confidence"]),
            url: find(&["url"]),
            names,
        }
    }

    fn used(&self, i: usize) -> bool {
        [
            self.address,
            self.label,
            self.category,
            self.entity,
            self.chain,
            self.valid_from,
            self.valid_to,
            self.source,
            self.confidence,
            self.url,
        ]
        .contains(&Some(i))
    }
}

/// Parses one CSV file and feeds every row to `sink`.
///
/// A record is one line. A line with an unbalanced quote, or with another number of fields than
/// the header, is rejected with its line; the next line is read on its own (an open quote never
/// swallows the rows after it). A header that cannot be read refuses the whole file.
pub fn parse(mut input: Input<'_>, sink: &mut dyn Sink) -> Result<(), LabelError> {
    let name = input.name;
    let mut lines = CsvLines::new(&name, &mut *input.reader);
    let (header_line, header) = loop {
        match lines.next_line()? {
            None => {
                return Err(LabelError::Parse {
                    file: name.clone(),
                    line: 1,
                    reason: "the file is empty (no header row)".into(),
                });
            }
            Some((line, CsvLine::Unbalanced | CsvLine::Several)) => {
                return Err(LabelError::Parse {
                    file: name.clone(),
                    line,
                    reason:
                        "cannot read the header row: unbalanced quote or a bare carriage return"
                            .into(),
                });
            }
            Some((line, CsvLine::Record(rec))) => {
                if rec.iter().all(|f| f.iter().all(u8::is_ascii_whitespace)) {
                    continue;
                }
                let h =
                    csv::StringRecord::from_byte_record(rec).map_err(|e| LabelError::Parse {
                        file: name.clone(),
                        line,
                        reason: format!("cannot read the header row: {e}"),
                    })?;
                break (line, h);
            }
        }
    };
    let cols = Columns::from_header(&header);
    let Some(addr_col) = cols.address else {
        return Err(LabelError::Parse {
            file: name,
            line: header_line,
            reason: "no `address` column in the header".into(),
        });
    };
    while let Some((line, l)) = lines.next_line()? {
        let rec = match l {
            CsvLine::Unbalanced => {
                sink.reject(
                    &name,
                    line,
                    "unbalanced quote: a quoted field is not closed on this line".into(),
                );
                continue;
            }
            CsvLine::Several => {
                sink.reject(
                    &name,
                    line,
                    "the line holds several records (a bare carriage return?)".into(),
                );
                continue;
            }
            CsvLine::Record(rec) => rec,
        };
        if rec.iter().all(|f| {
            String::from_utf8_lossy(f)
                .trim()
                .trim_matches('\u{1a}')
                .is_empty()
        }) {
            continue;
        }
        if rec.len() != header.len() {
            sink.reject(
                &name,
                line,
                format!(
                    "expected {} fields (as the header), found {}",
                    header.len(),
                    rec.len()
                ),
            );
            continue;
        }
        let rec = match csv::StringRecord::from_byte_record(rec) {
            Ok(r) => r,
            Err(_) => {
                sink.reject(&name, line, "row is not valid utf-8".into());
                continue;
            }
        };
        match row(&name, line, &cols, addr_col, &rec) {
            Ok(c) => sink.candidate(c)?,
            Err(reason) => sink.reject(&name, line, reason),
        }
    }
    Ok(())
}

fn row(
    file: &str,
    line: u64,
    cols: &Columns,
    addr_col: usize,
    rec: &csv::StringRecord,
) -> Result<Candidate, String> {
    let get = |i: Option<usize>| {
        i.and_then(|i| rec.get(i))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let address = get(Some(addr_col)).ok_or("empty address")?;
    let category = match get(cols.category) {
        Some(w) => Some(Category::from_word(&w).ok_or_else(|| format!("unknown category {w:?}"))?),
        None => None,
    };
    let date = |i: Option<usize>, what: &str| -> Result<_, String> {
        match get(i) {
            Some(s) => parse_date(&s)
                .map(Some)
                .ok_or_else(|| format!("invalid {what} {s:?} (expected YYYY-MM-DD)")),
            None => Ok(None),
        }
    };
    let valid_from = date(cols.valid_from, "valid_from")?;
    let valid_to = date(cols.valid_to, "valid_to")?;
    let confidence = match get(cols.confidence) {
        Some(s) => Some(
            s.parse::<u8>()
                .ok()
                .filter(|c| *c <= 100)
                .ok_or_else(|| format!("invalid confidence {s:?} (expected 0-100)"))?,
        ),
        None => None,
    };
    let mut notes = BTreeMap::new();
    for (i, v) in rec.iter().enumerate() {
        let v = v.trim();
        if !cols.used(i) && !v.is_empty() {
            let k = cols
                .names
                .get(i)
                .cloned()
                .unwrap_or_else(|| format!("column_{}", i + 1));
            notes.insert(k, v.to_owned());
        }
    }
    if let Some(s) = get(cols.source) {
        notes.insert("source".to_owned(), s);
    }
    Ok(Candidate {
        file: file.to_owned(),
        line,
        address,
        currency: get(cols.chain),
        entity: get(cols.entity),
        name: get(cols.label),
        category,
        confidence,
        valid_from,
        valid_to,
        url: get(cols.url),
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
    fn columns_and_rejects() {
        let data = "date_added,Address,name,category,extra\n2022-08-08,0xa,\"TORNADO, CASH\",mixing_service,x\n2022-13-01,0xb,n,mixer,\n2022-01-01,0xc,n,weird,\n";
        let mut s = Collect::default();
        parse(Input::from_bytes("f.csv", data.as_bytes()), &mut s).unwrap();
        assert_eq!(s.candidates.len(), 1);
        let c = &s.candidates[0];
        assert_eq!(c.name.as_deref(), Some("TORNADO, CASH"));
        assert_eq!(c.category, Some(Category::Mixer));
        assert_eq!(c.valid_from, parse_date("2022-08-08"));
        assert_eq!(c.notes.get("extra").map(String::as_str), Some("x"));
        assert_eq!(s.rejects.iter().map(|r| r.1).collect::<Vec<_>>(), [3, 4]);
        assert!(
            parse(
                Input::from_bytes("f.csv", b"a,b\n1,2\n"),
                &mut Collect::default()
            )
            .is_err()
        );
    }

    #[test]
    fn one_record_per_line() {
        // an open quote on line 2, a bare CR on line 4 (old Mac line ends), a short row on 5
        let data =
            "address,category\n\"0xa,mixer\n0xb,mixer\n0xc,mixer\r0xd,mixer\n0xe\n0xf,mixer\n";
        let mut s = Collect::default();
        parse(Input::from_bytes("f.csv", data.as_bytes()), &mut s).unwrap();
        let a: Vec<_> = s
            .candidates
            .iter()
            .map(|c| (c.address.as_str(), c.line))
            .collect();
        assert_eq!(a, [("0xb", 3), ("0xf", 6)]);
        let r: Vec<_> = s.rejects.iter().map(|r| r.1).collect();
        assert_eq!(r, [2, 4, 5]);
        assert!(s.rejects[0].2.contains("unbalanced quote"));
        assert!(s.rejects[1].2.contains("several records"));
        // a CSV with a quoted field over two lines is not accepted silently either
        let mut s = Collect::default();
        parse(
            Input::from_bytes("f.csv", b"address,name\n0xa,\"two\nlines\"\n0xb,n\n"),
            &mut s,
        )
        .unwrap();
        assert_eq!(s.candidates.len(), 1);
        assert_eq!(s.rejects.iter().map(|r| r.1).collect::<Vec<_>>(), [2, 3]);
    }
}
