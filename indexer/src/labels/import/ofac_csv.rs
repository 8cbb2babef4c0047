//! OFAC legacy CSV set: `sdn.csv` joined with `sdn_comments.csv`.
//!
//! `sdn.csv` has no header and 12 columns (`ent_num, SDN_Name, SDN_Type, Program, Title,
//! Call_Sign, Vess_type, Tonnage, GRT, Vess_flag, Vess_owner, Remarks`), `-0- ` as null, and
//! ends with a 0x1A byte. Remarks are cut at 1 000 characters; `sdn_comments.csv`
//! (`ent_num, remarks continuation`) holds the rest, concatenated with no separator. Every
//! `Digital Currency Address - CUR address` clause (including `alt.` ones) becomes a label.
//! A continuation whose entry is not in the given `sdn.csv` is still searched on its own.
//!
//! Files are told apart by their column count (2: comments, 12: sdn). The structure is checked
//! strictly, since these files are downloaded and a cut-off file must never be imported in
//! part: every row has the column count of the first, no quote is left open, and the file ends
//! with a line break; otherwise the whole import is refused with the file and line.

use super::{CsvLine, CsvLines, Input, Sink, field, read_all};
use crate::labels::{LabelError, store::Candidate};
use std::collections::{BTreeMap, HashMap};

/// The marker of a digital currency clause in OFAC remarks.
pub const MARKER: &str = "Digital Currency Address - ";

/// A `Digital Currency Address` clause found in remarks text.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Clause {
    /// Currency code as written (`XBT`, `ETH`, ...).
    pub currency: String,
    /// Address text (may be truncated or malformed: validation comes later).
    pub address: String,
}

/// Every `Digital Currency Address - CUR address` clause of `remarks`, in order.
pub fn clauses(remarks: &str) -> Vec<Clause> {
    let mut out = Vec::new();
    let mut rest = remarks;
    while let Some(i) = rest.find(MARKER) {
        let after = rest.get(i + MARKER.len()..).unwrap_or_default();
        let mut words = after.split(|c: char| c.is_whitespace() || c == ';');
        let currency = words.next().unwrap_or_default().to_owned();
        let after_code = after.get(currency.len()..).unwrap_or_default();
        let address: String = after_code
            .trim_start_matches(|c: char| c.is_whitespace())
            .chars()
            .take_while(|c| !c.is_whitespace() && *c != ';')
            .collect();
        let address = address.trim_end_matches(['.', ',']).to_owned();
        out.push(Clause { currency, address });
        rest = after;
    }
    out
}

struct Row {
    line: u64,
    fields: Vec<String>,
}

/// Reads a headerless CSV into rows of raw (untrimmed) fields, checking the file's structure:
/// every row has the column count of the first, no quote is left open, and the file ends with
/// a line break (OFAC's files do; a download cut off mid-way does not). Any of these is an
/// error for the whole file, since a cut-off or garbled sanctions file must never be imported
/// in part. A row that is not UTF-8 is rejected on its own.
fn rows(name: &str, data: &[u8], sink: &mut dyn Sink) -> Result<Vec<Row>, LabelError> {
    let bad = |line: u64, reason: String| LabelError::Parse {
        file: name.to_owned(),
        line,
        reason,
    };
    let mut reader = data;
    let mut lines = CsvLines::new(name, &mut reader);
    let mut out = Vec::new();
    let mut width: Option<(usize, u64)> = None;
    let mut last_line = 0;
    while let Some((line, l)) = lines.next_line()? {
        last_line = line;
        let rec = match l {
            CsvLine::Unbalanced => {
                return Err(bad(
                    line,
                    "unbalanced quote: a quoted field is not closed on its line (the file is cut off or malformed)".into(),
                ));
            }
            CsvLine::Several => {
                return Err(bad(
                    line,
                    "the line holds several records (a bare carriage return): malformed file"
                        .into(),
                ));
            }
            CsvLine::Record(rec) => rec,
        };
        if rec
            .iter()
            .all(|f| field(&String::from_utf8_lossy(f)).is_none())
        {
            continue; // blank line or the trailing 0x1A
        }
        match width {
            None => width = Some((rec.len(), line)),
            Some((w, first)) if w != rec.len() => {
                return Err(bad(
                    line,
                    format!(
                        "expected {w} columns (as on line {first}), found {}; the file is cut off or malformed",
                        rec.len()
                    ),
                ));
            }
            Some(_) => {}
        }
        let mut fields = Vec::with_capacity(rec.len());
        let mut bad_utf8 = false;
        for f in rec.iter() {
            match std::str::from_utf8(f) {
                Ok(s) => fields.push(s.to_owned()),
                Err(_) => bad_utf8 = true,
            }
        }
        if bad_utf8 {
            sink.reject(name, line, "row is not valid utf-8".into());
        } else {
            out.push(Row { line, fields });
        }
    }
    let ends_cleanly = {
        let trimmed = data
            .iter()
            .rposition(|b| *b != 0x1a && !matches!(b, b' ' | b'\t'))
            .and_then(|i| data.get(i));
        trimmed.is_none_or(|b| *b == b'\n')
    };
    if !ends_cleanly {
        return Err(bad(
            last_line,
            "the last row does not end with a line break: the file is cut off".into(),
        ));
    }
    Ok(out)
}

fn ent_num(s: &str) -> Option<String> {
    let t = s.trim();
    (!t.is_empty() && t.len() <= 12 && t.bytes().all(|b| b.is_ascii_digit())).then(|| t.to_owned())
}

/// Parses the CSV set and feeds every clause to `sink`.
pub fn parse(inputs: Vec<Input<'_>>, sink: &mut dyn Sink) -> Result<(), LabelError> {
    let mut sdn: Vec<(String, Vec<Row>)> = Vec::new();
    // ent_num -> continuation pieces (file, line, text), in file order
    let mut comments: HashMap<String, Vec<(String, u64, String)>> = HashMap::new();
    let mut comment_order: Vec<String> = Vec::new();
    for mut input in inputs {
        let data = read_all(&mut input)?;
        let name = input.name;
        let rs = rows(&name, &data, sink)?;
        let width = rs.first().map_or(0, |r| r.fields.len());
        match width {
            0 => {}
            2 => {
                for r in rs {
                    let (Some(num), Some(text)) =
                        (r.fields.first().and_then(|s| ent_num(s)), r.fields.get(1))
                    else {
                        sink.reject(
                            &name,
                            r.line,
                            "expected ent_num and remarks continuation".into(),
                        );
                        continue;
                    };
                    let text = text.trim_end_matches('\u{1a}').to_owned();
                    if !comments.contains_key(&num) {
                        comment_order.push(num.clone());
                    }
                    comments
                        .entry(num)
                        .or_default()
                        .push((name.clone(), r.line, text));
                }
            }
            12.. => sdn.push((name, rs)),
            n => {
                return Err(LabelError::Parse {
                    file: name,
                    line: rs.first().map_or(1, |r| r.line),
                    reason: format!(
                        "not an OFAC sdn.csv (12 columns) or sdn_comments.csv (2 columns): {n} columns"
                    ),
                });
            }
        }
    }
    for (name, rs) in sdn {
        for r in rs {
            let Some(num) = ent_num(&r.fields[0]) else {
                sink.reject(&name, r.line, format!("invalid ent_num {:?}", r.fields[0]));
                continue;
            };
            let mut remarks = r.fields[11].clone();
            if field(&remarks).is_none() {
                remarks.clear();
            }
            if let Some(cont) = comments.remove(&num) {
                for (_, _, t) in cont {
                    remarks.push_str(&t);
                }
            }
            let entity = field(&r.fields[1]).unwrap_or_else(|| format!("SDN entry {num}"));
            let program = field(&r.fields[3]);
            let mut notes = BTreeMap::from([("ent_num".to_owned(), num.clone())]);
            if let Some(t) = field(&r.fields[2]) {
                notes.insert("sdn_type".into(), t);
            }
            emit(&name, r.line, &remarks, &entity, program, &notes, sink)?;
        }
    }
    // continuations of entries not in the given sdn.csv
    for num in comment_order {
        let Some(cont) = comments.remove(&num) else {
            continue;
        };
        let notes = BTreeMap::from([("ent_num".to_owned(), num.clone())]);
        for (file, line, text) in cont {
            emit(
                &file,
                line,
                &text,
                &format!("SDN entry {num}"),
                None,
                &notes,
                sink,
            )?;
        }
    }
    Ok(())
}

fn emit(
    file: &str,
    line: u64,
    remarks: &str,
    entity: &str,
    program: Option<String>,
    notes: &BTreeMap<String, String>,
    sink: &mut dyn Sink,
) -> Result<(), LabelError> {
    for c in clauses(remarks) {
        if c.currency.is_empty() || c.address.is_empty() {
            sink.reject(
                file,
                line,
                format!("truncated digital currency clause for {entity}"),
            );
            continue;
        }
        sink.candidate(Candidate {
            file: file.to_owned(),
            line,
            address: c.address,
            currency: Some(c.currency),
            entity: Some(entity.to_owned()),
            program: program.clone(),
            notes: notes.clone(),
            ..Candidate::default()
        })?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // `unwrap` is allowed in tests only (project rule)
mod tests {
    use super::*;
    use crate::labels::import::Collect;

    #[test]
    fn finds_clauses() {
        let c = clauses(
            "DOB 1977; Digital Currency Address - XBT 12QtD5BFwRsdNsAZY76UVE1xyCGNTojH9h; alt. \
             Digital Currency Address - ETH 0xabc.",
        );
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].currency, "XBT");
        assert_eq!(c[0].address, "12QtD5BFwRsdNsAZY76UVE1xyCGNTojH9h");
        assert_eq!(c[1].address, "0xabc");
        assert_eq!(clauses("Digital Currency Address - ").len(), 1);
    }

    #[test]
    fn joins_continuations() {
        let sdn = "1,\"A\",\"individual\",\"CYBER\",-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,\"x; Digital Currency Address - XBT 1Gq\"\r\n\u{1a}";
        let com = "1,\"ChmWqGtsaLrGbHfgdrV5Nkvahtjjuxr; Digital Currency Address - ETH 0x1.\"\r\n";
        let mut sink = Collect::default();
        parse(
            vec![
                Input::from_bytes("sdn.csv", sdn.as_bytes()),
                Input::from_bytes("c.csv", com.as_bytes()),
            ],
            &mut sink,
        )
        .unwrap();
        assert!(sink.rejects.is_empty(), "{:?}", sink.rejects);
        let a: Vec<_> = sink.candidates.iter().map(|c| c.address.as_str()).collect();
        assert_eq!(a, ["1GqChmWqGtsaLrGbHfgdrV5Nkvahtjjuxr", "0x1"]);
        assert_eq!(sink.candidates[0].program.as_deref(), Some("CYBER"));
    }

    #[test]
    fn structure_faults_refuse_the_file() {
        let row = "1,\"A\",\"individual\",\"CYBER\",-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,-0- ,\"Digital Currency Address - XBT 1Gq\"";
        let cases = [
            (
                format!("{row}\r\n1,\"A\",-0- \r\n"),
                "line:2 expected 12 columns (as on line 1), found 3",
            ),
            (
                format!("{row}\r\n{row}"),
                "line:2 does not end with a line break",
            ),
            (format!("{row}\r\n1,\"A\r\n"), "line:2 unbalanced quote"),
            (format!("{row}\r{row}\r\n"), "line:1 several records"),
        ];
        for (data, want) in cases {
            let e = parse(
                vec![Input::from_bytes("sdn.csv", data.as_bytes())],
                &mut Collect::default(),
            )
            .unwrap_err();
            let LabelError::Parse { line, reason, .. } = &e else {
                panic!("{e}")
            };
            let got = format!("line:{line} {reason}");
            let (l, w) = want.split_once(' ').unwrap();
            assert!(got.starts_with(l) && got.contains(w), "{got} / {want}");
        }
        // the trailing 0x1A after the last line break is fine
        let ok = format!("{row}\r\n\u{1a}");
        let mut sink = Collect::default();
        parse(vec![Input::from_bytes("sdn.csv", ok.as_bytes())], &mut sink).unwrap();
        assert_eq!(sink.candidates.len(), 1);
    }
}
