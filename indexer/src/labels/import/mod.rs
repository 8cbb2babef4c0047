//! Importers, one per format. Each parser reads its input and hands rows to a [`Sink`]:
//! valid-looking rows as [`Candidate`]s (the sink validates addresses), malformed rows as
//! rejects with file, line and reason. A parser never panics on input; an input that is
//! malformed as a whole (broken XML or YAML, a cut-off OFAC file) is a [`LabelError::Parse`],
//! and an input in another format than the one given (sniffed from its first bytes) is a
//! [`LabelError::WrongFormat`]; then nothing is written.

pub mod csv;
pub mod list;
pub mod ofac_csv;
pub mod ofac_xml;
pub mod tagpack;

use super::{
    LabelError,
    model::Category,
    store::{Candidate, Defaults, ImportReport, ImportSession, LabelStore, ShrinkGuard},
};
use std::{
    fmt,
    io::{BufRead, Read},
    path::{Path, PathBuf},
    str::FromStr,
};

/// Receives what a parser reads.
pub trait Sink {
    /// A row with an address.
    fn candidate(&mut self, c: Candidate) -> Result<(), LabelError>;
    /// A malformed row.
    fn reject(&mut self, file: &str, line: u64, reason: String);
    /// A version read from the data (e.g. the XML `DateOfIssue`), used when none was given.
    fn version_hint(&mut self, version: &str);
}

impl Sink for ImportSession<'_> {
    fn candidate(&mut self, c: Candidate) -> Result<(), LabelError> {
        self.add(c)
    }
    fn reject(&mut self, file: &str, line: u64, reason: String) {
        ImportSession::reject(self, file, line, reason);
    }
    fn version_hint(&mut self, version: &str) {
        self.set_version_if_unset(version);
    }
}

/// A sink that keeps everything in memory (tests, dry runs).
#[derive(Default, Debug)]
pub struct Collect {
    /// Rows read.
    pub candidates: Vec<Candidate>,
    /// `(file, line, reason)` of rejected rows.
    pub rejects: Vec<(String, u64, String)>,
    /// Version hints.
    pub versions: Vec<String>,
}

impl Sink for Collect {
    fn candidate(&mut self, c: Candidate) -> Result<(), LabelError> {
        self.candidates.push(c);
        Ok(())
    }
    fn reject(&mut self, file: &str, line: u64, reason: String) {
        self.rejects.push((file.to_owned(), line, reason));
    }
    fn version_hint(&mut self, version: &str) {
        self.versions.push(version.to_owned());
    }
}

/// Input formats.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Format {
    /// OFAC legacy CSV set: `sdn.csv` and `sdn_comments.csv`.
    OfacCsv,
    /// OFAC advanced XML (`sdn_advanced.xml` schema).
    OfacXml,
    /// GraphSense TagPack YAML.
    Tagpack,
    /// One address per line, or a JSON array of strings.
    List,
    /// CSV with a header row.
    Csv,
}

impl Format {
    /// The command-line name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::OfacCsv => "ofac-csv",
            Self::OfacXml => "ofac-xml",
            Self::Tagpack => "tagpack",
            Self::List => "list",
            Self::Csv => "csv",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown format name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown label format {0:?} (known: ofac-csv, ofac-xml, tagpack, list, csv)")]
pub struct UnknownFormat(pub String);

impl FromStr for Format {
    type Err = UnknownFormat;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "ofac-csv" => Self::OfacCsv,
            "ofac-xml" => Self::OfacXml,
            "tagpack" => Self::Tagpack,
            "list" => Self::List,
            "csv" => Self::Csv,
            _ => return Err(UnknownFormat(s.to_owned())),
        })
    }
}

/// Options of an import.
#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    /// Source name (default: `ofac-sdn` for OFAC formats, else the file stem, or the format
    /// name for several files).
    pub source: Option<String>,
    /// Version (default: from the data when it has one, else today's date).
    pub version: Option<String>,
    /// URL of the source, recorded with it.
    pub url: Option<String>,
    /// Defaults for rows lacking a field.
    pub defaults: Defaults,
    /// Refusal of a version that delists too much of the source (default: at most 10 %).
    pub guard: ShrinkGuard,
}

/// One named input stream.
pub struct Input<'a> {
    /// File name or URL (used in reports).
    pub name: String,
    /// The bytes.
    pub reader: Box<dyn BufRead + 'a>,
}

impl<'a> Input<'a> {
    /// An input over bytes in memory.
    pub fn from_bytes(name: impl Into<String>, data: &'a [u8]) -> Self {
        Self {
            name: name.into(),
            reader: Box::new(data),
        }
    }
}

fn default_source(format: Format, names: &[String]) -> String {
    match format {
        Format::OfacCsv | Format::OfacXml => "ofac-sdn".to_owned(),
        _ => match names {
            [one] => Path::new(one)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| one.clone()),
            _ => format.as_str().to_owned(),
        },
    }
}

/// Imports `inputs` as one version of one source, atomically.
pub fn import_inputs(
    store: &LabelStore,
    format: Format,
    inputs: Vec<Input<'_>>,
    opts: &ImportOptions,
) -> Result<ImportReport, LabelError> {
    let names: Vec<String> = inputs.iter().map(|i| i.name.clone()).collect();
    let source = opts
        .source
        .clone()
        .unwrap_or_else(|| default_source(format, &names));
    let mut defaults = opts.defaults.clone();
    if matches!(format, Format::OfacCsv | Format::OfacXml) && defaults.category.is_none() {
        defaults.category = Some(Category::Sanctioned);
    }
    let mut session =
        store.begin_import(&source, format.as_str(), opts.url.clone(), names, defaults)?;
    if let Some(v) = &opts.version {
        session.set_version_if_unset(v);
    }
    session.set_guard(opts.guard);
    let mut inputs = inputs;
    for input in &mut inputs {
        sniff(format, input)?;
    }
    match format {
        Format::OfacCsv => ofac_csv::parse(inputs, &mut session)?,
        _ => {
            for input in inputs {
                match format {
                    Format::OfacXml => ofac_xml::parse(input, &mut session)?,
                    Format::Tagpack => tagpack::parse(input, &mut session)?,
                    Format::List => list::parse(input, &mut session)?,
                    Format::Csv => csv::parse(input, &mut session)?,
                    Format::OfacCsv => {}
                }
            }
        }
    }
    session.finish()
}

/// Imports files (see [`import_inputs`]).
pub fn import_files(
    store: &LabelStore,
    format: Format,
    paths: &[PathBuf],
    opts: &ImportOptions,
) -> Result<ImportReport, LabelError> {
    let mut inputs = Vec::with_capacity(paths.len());
    for p in paths {
        let f = std::fs::File::open(p).map_err(|source| LabelError::Read {
            path: p.clone(),
            source,
        })?;
        inputs.push(Input {
            name: p.display().to_string(),
            reader: Box::new(std::io::BufReader::with_capacity(1 << 16, f)),
        });
    }
    import_inputs(store, format, inputs, opts)
}

/// Refuses an input whose first bytes show another format: XML given as CSV, a list or a
/// TagPack, or anything but XML given as `ofac-xml`. Reads nothing (peeks at the buffer).
fn sniff(format: Format, input: &mut Input<'_>) -> Result<(), LabelError> {
    let name = input.name.clone();
    let head = input.reader.fill_buf().map_err(|source| LabelError::Read {
        path: PathBuf::from(&name),
        source,
    })?;
    let head = head
        .strip_prefix(b"\xef\xbb\xbf".as_slice())
        .unwrap_or(head);
    let Some(start) = head.iter().position(|b| !b.is_ascii_whitespace()) else {
        return Ok(()); // empty: the structure checks and the shrink guard decide
    };
    let first_line: String = String::from_utf8_lossy(head.get(start..).unwrap_or_default())
        .lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(60)
        .collect();
    let is_xml = head.get(start) == Some(&b'<');
    let wrong = |expected: &'static str, found: String| LabelError::WrongFormat {
        file: name.clone(),
        expected,
        found,
    };
    match format {
        Format::OfacXml if !is_xml => {
            let hint = if first_line.contains(',') {
                " (a CSV? use --format ofac-csv for sdn.csv, or csv)"
            } else {
                ""
            };
            Err(wrong(
                "XML",
                format!("it starts with {first_line:?}, not with `<`{hint}"),
            ))
        }
        Format::OfacCsv | Format::Csv | Format::List | Format::Tagpack if is_xml => {
            let expected = match format {
                Format::Tagpack => "TagPack YAML",
                Format::List => "address list",
                _ => "CSV",
            };
            Err(wrong(
                expected,
                format!(
                    "it is XML or HTML (starts with {first_line:?}); for OFAC's advanced XML use --format ofac-xml"
                ),
            ))
        }
        _ => Ok(()),
    }
}

/// One physical line of a CSV file, parsed on its own.
pub(crate) enum CsvLine {
    /// The fields of the line (blank lines give one empty field).
    Record(::csv::ByteRecord),
    /// The line has an odd number of `"`: a quoted field is not closed on it (records never
    /// span lines in label files, so this is a malformed row, not the start of a long field).
    Unbalanced,
    /// The line holds more than one record: a bare carriage return ends a record inside it.
    Several,
}

/// Reads a CSV file line by line, so that an unbalanced quote spoils only its own line and never
/// swallows the rows after it. A record is one line: a quoted field cannot hold a line break.
pub(crate) struct CsvLines<'r> {
    reader: &'r mut dyn BufRead,
    name: String,
    buf: Vec<u8>,
    line: u64,
    /// Whether the last line read ended with a line break.
    pub(crate) terminated: bool,
}

impl<'r> CsvLines<'r> {
    /// Lines of `reader`, reported as `name`.
    pub(crate) fn new(name: &str, reader: &'r mut dyn BufRead) -> Self {
        Self {
            reader,
            name: name.to_owned(),
            buf: Vec::new(),
            line: 0,
            terminated: true,
        }
    }

    /// The next line with its 1-based number, or `None` at the end.
    pub(crate) fn next_line(&mut self) -> Result<Option<(u64, CsvLine)>, LabelError> {
        self.buf.clear();
        let n = self
            .reader
            .read_until(b'\n', &mut self.buf)
            .map_err(|source| LabelError::Read {
                path: PathBuf::from(&self.name),
                source,
            })?;
        if n == 0 {
            return Ok(None);
        }
        self.line += 1;
        self.terminated = self.buf.last() == Some(&b'\n');
        let mut body = self.buf.as_slice();
        body = body.strip_suffix(b"\n").unwrap_or(body);
        body = body.strip_suffix(b"\r").unwrap_or(body);
        if body.iter().filter(|&&b| b == b'"').count() % 2 == 1 {
            return Ok(Some((self.line, CsvLine::Unbalanced)));
        }
        let mut rdr = ::csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .buffer_capacity(body.len().max(64))
            .from_reader(body);
        let mut rec = ::csv::ByteRecord::new();
        match rdr.read_byte_record(&mut rec) {
            Ok(true) => {
                let mut more = ::csv::ByteRecord::new();
                if matches!(rdr.read_byte_record(&mut more), Ok(true)) {
                    return Ok(Some((self.line, CsvLine::Several)));
                }
                Ok(Some((self.line, CsvLine::Record(rec))))
            }
            // an empty line: one empty field, like a blank row
            Ok(false) => Ok(Some((
                self.line,
                CsvLine::Record(::csv::ByteRecord::from(vec![""])),
            ))),
            Err(e) => Err(LabelError::Parse {
                file: self.name.clone(),
                line: self.line,
                reason: format!("malformed csv row: {e}"),
            }),
        }
    }
}

/// Reads a whole input, mapping I/O errors.
fn read_all(input: &mut Input<'_>) -> Result<Vec<u8>, LabelError> {
    let mut buf = Vec::new();
    input
        .reader
        .read_to_end(&mut buf)
        .map_err(|source| LabelError::Read {
            path: PathBuf::from(&input.name),
            source,
        })?;
    Ok(buf)
}

/// Trims a field and maps OFAC's `-0-` null and empty strings to `None`.
fn field(s: &str) -> Option<String> {
    let t = s.trim().trim_matches('\u{1a}').trim();
    (!t.is_empty() && t != "-0-").then(|| t.to_owned())
}
