//! Plain address lists: one address per line (blank lines and `#` comments skipped), or a
//! JSON array of strings. Category, entity and currency come from the import defaults.

use super::{Input, Sink, read_all};
use crate::labels::{LabelError, store::Candidate};
use std::io::BufRead;

/// Parses one list and feeds every address to `sink`.
pub fn parse(mut input: Input<'_>, sink: &mut dyn Sink) -> Result<(), LabelError> {
    let name = input.name.clone();
    let head = input.reader.fill_buf().map_err(|source| LabelError::Read {
        path: name.clone().into(),
        source,
    })?;
    let is_json = head
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|&b| b == b'[');
    if is_json {
        return parse_json(&name, &read_all(&mut input)?, sink);
    }
    let mut line = Vec::new();
    let mut n = 0u64;
    loop {
        line.clear();
        let read = input
            .reader
            .read_until(b'\n', &mut line)
            .map_err(|source| LabelError::Read {
                path: name.clone().into(),
                source,
            })?;
        if read == 0 {
            break;
        }
        n += 1;
        let Ok(s) = std::str::from_utf8(&line) else {
            sink.reject(&name, n, "line is not valid utf-8".into());
            continue;
        };
        let s = s.trim().trim_matches('\u{feff}');
        if s.is_empty() || s.starts_with('#') {
            continue;
        }
        sink.candidate(Candidate {
            file: name.clone(),
            line: n,
            address: s.to_owned(),
            ..Candidate::default()
        })?;
    }
    Ok(())
}

fn parse_json(name: &str, data: &[u8], sink: &mut dyn Sink) -> Result<(), LabelError> {
    let items: Vec<serde_json::Value> =
        serde_json::from_slice(data).map_err(|e| LabelError::Parse {
            file: name.to_owned(),
            line: u64::try_from(e.line()).unwrap_or(1),
            reason: format!("not a json array: {e}"),
        })?;
    let text = String::from_utf8_lossy(data);
    let mut cursor = 0usize;
    let mut line = 1u64;
    for (i, item) in items.into_iter().enumerate() {
        // locate the item in the text to report its line (items are plain strings)
        let needle = item.to_string();
        if let Some(off) = text.get(cursor..).and_then(|t| t.find(&needle)) {
            let upto = text.get(cursor..cursor + off).unwrap_or_default();
            line += u64::try_from(upto.matches('\n').count()).unwrap_or(0);
            cursor += off + needle.len();
        }
        match item {
            serde_json::Value::String(s) => sink.candidate(Candidate {
                file: name.to_owned(),
                line,
                address: s,
                ..Candidate::default()
            })?,
            other => sink.reject(
                name,
                line,
                format!("item #{} is not a string: {other}", i + 1),
            ),
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // `unwrap` is allowed in tests only (project rule)
mod tests {
    use super::*;
    use crate::labels::import::Collect;

    #[test]
    fn text_and_json() {
        let mut s = Collect::default();
        parse(Input::from_bytes("l.txt", b"# c\n0xa\n\n0xb\r\n"), &mut s).unwrap();
        let v: Vec<_> = s
            .candidates
            .iter()
            .map(|c| (c.address.as_str(), c.line))
            .collect();
        assert_eq!(v, [("0xa", 2), ("0xb", 4)]);
        let mut s = Collect::default();
        parse(
            Input::from_bytes("l.json", b"[\n  \"0xa\",\n  1,\n  \"0xb\"\n]"),
            &mut s,
        )
        .unwrap();
        let v: Vec<_> = s
            .candidates
            .iter()
            .map(|c| (c.address.as_str(), c.line))
            .collect();
        assert_eq!(v, [("0xa", 2), ("0xb", 4)]);
        assert_eq!(s.rejects.len(), 1);
        assert!(parse(Input::from_bytes("l.json", b"[1,"), &mut Collect::default()).is_err());
    }
}
