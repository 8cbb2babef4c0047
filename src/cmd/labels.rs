//! `paytrace labels ...`: import label sources, show the labels of an address, list labels
//! and sources, fetch the OFAC SDN files. JSON keys are documented in docs/cli.md.

use super::Context;
use anyhow::Context as _;
use clap::{Args, Subcommand};
use paytrace_indexer::labels::{
    Category, DEFAULT_MAX_SHRINK_PCT, Defaults, Format, ImportOptions, ImportReport, Input,
    LabelStore, ShrinkGuard, import_files, import_inputs,
};
use std::{path::PathBuf, process::ExitCode};

/// Where `labels fetch ofac` downloads `sdn.csv` and `sdn_comments.csv` from by default.
pub const OFAC_BASE_URL: &str = "https://www.treasury.gov/ofac/downloads";

/// Label commands.
#[derive(Debug, Subcommand)]
pub enum LabelsCmd {
    /// Import label files as one version of one source.
    Import(ImportArgs),
    /// Labels of one address (valid today, or on --as-of).
    Show(ShowArgs),
    /// All labels, optionally filtered.
    List(ListArgs),
    /// The imported label sources and their versions.
    Sources,
    /// Download a label source and import it.
    #[command(subcommand)]
    Fetch(FetchCmd),
}

/// `labels import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Input format.
    #[arg(long, value_parser = parse_format)]
    pub format: Format,
    /// Files to import (for ofac-csv: sdn.csv and sdn_comments.csv).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Source name [default: ofac-sdn for OFAC formats, else the file stem].
    #[arg(long)]
    pub source: Option<String>,
    /// Version of the source (a date YYYY-MM-DD dates delistings) [default: from the data, else today].
    #[arg(long, alias = "source-version")]
    pub version: Option<String>,
    /// Category of rows without one (taxonomy name or synonym).
    #[arg(long, value_parser = parse_category)]
    pub category: Option<Category>,
    /// Entity of rows without one.
    #[arg(long)]
    pub entity: Option<String>,
    /// Currency code or chain of rows without one (ETH, XBT, TRX, LTC, ethereum, bitcoin...).
    #[arg(long)]
    pub chain: Option<String>,
    /// Confidence (0-100) of rows without one [default: 100].
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub confidence: Option<u8>,
    /// Guard against large delistings.
    #[command(flatten)]
    pub shrink: ShrinkArgs,
}

/// The guard against a new version that delists much of a source (shared by `labels import`
/// and `labels fetch`).
#[derive(Debug, Args)]
pub struct ShrinkArgs {
    /// Refuse a version that would delist more than PCT % of the source's active labels
    /// [default: `[labels] max_shrink_pct` of the config, else 10].
    #[arg(long, value_name = "PCT", value_parser = clap::value_parser!(u8).range(0..=100))]
    pub max_shrink: Option<u8>,
    /// Accept a version that delists any share of the source's labels, or reads no row.
    #[arg(long)]
    pub allow_shrink: bool,
}

impl ShrinkArgs {
    /// The guard: the flags, else the config, else the default.
    fn guard(&self, config: &paytrace_config::Config) -> ShrinkGuard {
        ShrinkGuard {
            max_shrink_pct: self
                .max_shrink
                .or(config.labels.max_shrink_pct)
                .unwrap_or(DEFAULT_MAX_SHRINK_PCT),
            allow_shrink: self.allow_shrink,
        }
    }
}

/// `labels show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The address (EVM, Bitcoin, Tron; others need --chain).
    pub address: String,
    /// Date the labels must hold on (YYYY-MM-DD) [default: today].
    #[arg(long, value_parser = super::time_arg::parse_day)]
    pub as_of: Option<paytrace_indexer::labels::Date>,
    /// Currency code or chain of the address (needed for LTC, XMR, ...).
    #[arg(long)]
    pub chain: Option<String>,
    /// Show every label ever recorded, including delisted ones.
    #[arg(long, conflicts_with = "as_of")]
    pub history: bool,
}

/// `labels list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only this category.
    #[arg(long, value_parser = parse_category)]
    pub category: Option<Category>,
    /// Only this source.
    #[arg(long)]
    pub source: Option<String>,
    /// Include delisted / expired labels.
    #[arg(long)]
    pub all: bool,
}

/// `labels fetch`.
#[derive(Debug, Subcommand)]
pub enum FetchCmd {
    /// Download OFAC's SDN files over HTTPS (sdn.csv + sdn_comments.csv, or sdn_advanced.xml)
    /// and import them as `ofac-sdn`.
    Ofac(FetchOfacArgs),
}

/// Which OFAC file set `labels fetch ofac` downloads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OfacFiles {
    /// The legacy CSV set: `sdn.csv` and `sdn_comments.csv` (a few MB).
    Csv,
    /// The advanced XML: `sdn_advanced.xml` (over 100 MB; streamed to a temporary file).
    Xml,
}

/// `labels fetch ofac`.
#[derive(Debug, Args)]
pub struct FetchOfacArgs {
    /// Base URL holding the files [default: `[labels] ofac_url` of the config, else OFAC's
    /// downloads site].
    #[arg(long, env = "PAYTRACE_OFAC_URL")]
    pub url: Option<String>,
    /// Which file set to download.
    #[arg(long, value_enum, default_value_t = OfacFiles::Csv)]
    pub format: OfacFiles,
    /// Version to record [default: today].
    #[arg(long, alias = "source-version")]
    pub version: Option<String>,
    /// HTTP timeout in seconds.
    #[arg(long, default_value_t = 120)]
    pub timeout: u64,
    /// Guard against large delistings.
    #[command(flatten)]
    pub shrink: ShrinkArgs,
}

fn parse_format(s: &str) -> Result<Format, String> {
    s.parse().map_err(|e| format!("{e}"))
}

fn parse_category(s: &str) -> Result<Category, String> {
    s.parse().map_err(|e| format!("{e}"))
}

impl LabelsCmd {
    /// Runs the command.
    pub fn run(&self, ctx: &Context) -> anyhow::Result<ExitCode> {
        let store = match self {
            Self::Import(_) | Self::Fetch(_) => ctx.open_store()?,
            Self::Show(_) | Self::List(_) | Self::Sources => ctx.open_store_read()?,
        };
        let labels = LabelStore::open(&store).context("opening the label store")?;
        match self {
            Self::Import(a) => {
                let opts = ImportOptions {
                    source: a.source.clone(),
                    version: a.version.clone(),
                    url: None,
                    defaults: Defaults {
                        category: a.category,
                        entity: a.entity.clone(),
                        currency: a.chain.clone(),
                        confidence: a.confidence,
                    },
                    guard: a.shrink.guard(&ctx.config),
                };
                let report = import_files(&labels, a.format, &a.files, &opts)?;
                print_report(ctx, &report)?;
                // New labels: re-screen payees and watched addresses, raise new findings only.
                super::alerts::after_labels_change(&ctx.config, &store);
            }
            Self::Show(a) => {
                let out = paytrace_app::labels::show(
                    &store,
                    "ADDRESS",
                    &a.address,
                    a.chain.as_deref(),
                    a.as_of,
                    a.history,
                )?;
                if ctx.json {
                    ctx.print_json(&out)?;
                } else {
                    println!("{} ({})", out.address, out.chain);
                    if out.labels.is_empty() {
                        println!("  no labels");
                    }
                    for l in &out.labels {
                        print_label(l);
                    }
                }
            }
            Self::List(a) => {
                let out = paytrace_app::labels::list(
                    &store,
                    a.category,
                    a.source.as_deref(),
                    a.all,
                    0,
                    usize::MAX,
                )?;
                if ctx.json {
                    ctx.print_json(&out)?;
                } else {
                    for l in &out {
                        println!(
                            "{}\t{}\t{}\t{}\t{}",
                            l.address, l.chain, l.category, l.entity, l.source
                        );
                    }
                }
            }
            Self::Sources => {
                let sources = labels.sources()?;
                if ctx.json {
                    ctx.print_json(&sources)?;
                } else {
                    for s in &sources {
                        println!("{} ({})", s.name, s.format);
                        for v in &s.versions {
                            println!(
                                "  {}  active {}  added {}  removed {}  imported {}",
                                v.version, v.active, v.added, v.removed, v.imported_at
                            );
                        }
                    }
                }
            }
            Self::Fetch(FetchCmd::Ofac(a)) => {
                let base = a
                    .url
                    .clone()
                    .or_else(|| ctx.config.labels.ofac_url.clone())
                    .unwrap_or_else(|| OFAC_BASE_URL.to_owned());
                let base = base.trim_end_matches('/');
                let opts = ImportOptions {
                    source: Some("ofac-sdn".into()),
                    version: a.version.clone(),
                    url: Some(base.to_owned()),
                    defaults: Defaults::default(),
                    guard: a.shrink.guard(&ctx.config),
                };
                let report = match a.format {
                    OfacFiles::Csv => {
                        let urls = [
                            format!("{base}/sdn.csv"),
                            format!("{base}/sdn_comments.csv"),
                        ];
                        let bodies = download(&urls, a.timeout)?;
                        let inputs = urls
                            .iter()
                            .zip(&bodies)
                            .map(|(u, b)| Input::from_bytes(u.clone(), b))
                            .collect();
                        import_inputs(&labels, Format::OfacCsv, inputs, &opts)?
                    }
                    OfacFiles::Xml => {
                        let url = format!("{base}/sdn_advanced.xml");
                        let file = download_to_file(&url, a.timeout)?;
                        let input = Input {
                            name: url.clone(),
                            reader: Box::new(std::io::BufReader::with_capacity(
                                1 << 16,
                                file.reopen()
                                    .with_context(|| format!("reading the download of {url}"))?,
                            )),
                        };
                        import_inputs(&labels, Format::OfacXml, vec![input], &opts)?
                    }
                };
                print_report(ctx, &report)?;
                super::alerts::after_labels_change(&ctx.config, &store);
            }
        }
        store.persist_for_reopen()?;
        Ok(ExitCode::SUCCESS)
    }
}

fn runtime_and_client(timeout: u64) -> anyhow::Result<(tokio::runtime::Runtime, reqwest::Client)> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(timeout))
        .build()
        .context("building the http client")?;
    Ok((rt, client))
}

/// Downloads `url` into `out`, checking that the body is complete: a connection that fails
/// mid-way, a body shorter or longer than its `Content-Length`, or an empty body is an error.
/// (A body without `Content-Length` that is cut off is caught by the importers' structure
/// checks: column counts and quotes of the CSV, the XML's end.)
async fn fetch_into(
    client: &reqwest::Client,
    url: &str,
    out: &mut dyn std::io::Write,
) -> anyhow::Result<u64> {
    let mut resp = client
        .get(url)
        .send()
        .await
        .with_context(|| format!("downloading {url}"))?
        .error_for_status()
        .with_context(|| format!("downloading {url}"))?;
    let announced = resp.content_length();
    let of = announced.map_or(String::new(), |n| format!(" of the {n} announced"));
    let mut received = 0u64;
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                received = received.saturating_add(u64::try_from(chunk.len()).unwrap_or(u64::MAX));
                out.write_all(&chunk)
                    .with_context(|| format!("writing the download of {url}"))?;
            }
            Ok(None) => break,
            Err(e) => {
                return Err(anyhow::Error::new(e).context(format!(
                    "downloading {url}: the transfer broke off after {received} bytes{of}: incomplete download, nothing was imported"
                )));
            }
        }
    }
    if let Some(n) = announced
        && n != received
    {
        anyhow::bail!(
            "downloading {url}: received {received} bytes but Content-Length announced {n}: incomplete download, nothing was imported"
        );
    }
    if received == 0 {
        anyhow::bail!("downloading {url}: the server sent an empty body; nothing was imported");
    }
    Ok(received)
}

fn download(urls: &[String], timeout: u64) -> anyhow::Result<Vec<Vec<u8>>> {
    let (rt, client) = runtime_and_client(timeout)?;
    rt.block_on(async {
        let mut out = Vec::with_capacity(urls.len());
        for u in urls {
            let mut body = Vec::new();
            fetch_into(&client, u, &mut body).await?;
            out.push(body);
        }
        Ok(out)
    })
}

/// Streams one URL into a temporary file (the advanced XML is too big to hold in memory).
fn download_to_file(url: &str, timeout: u64) -> anyhow::Result<tempfile::NamedTempFile> {
    use std::io::Write as _;
    let (rt, client) = runtime_and_client(timeout)?;
    let mut file = tempfile::NamedTempFile::new().context("creating a temporary file")?;
    rt.block_on(fetch_into(&client, url, &mut file))?;
    file.flush().context("writing the download")?;
    Ok(file)
}

fn print_report(ctx: &Context, r: &ImportReport) -> anyhow::Result<()> {
    if ctx.json {
        return ctx.print_json(r);
    }
    for rej in &r.rejects {
        eprintln!("rejected {rej}");
    }
    println!(
        "source {} version {}: read {}, imported {}, duplicates {}, rejected {}, removed {}",
        r.source, r.version, r.read, r.imported, r.duplicates, r.rejected, r.removed
    );
    Ok(())
}

fn print_label(l: &paytrace_indexer::labels::Label) {
    let from = l.valid_from.map_or("-".to_owned(), |d| d.to_string());
    let to = l.valid_to.map_or("-".to_owned(), |d| d.to_string());
    println!(
        "  {:<16} {}  [{} {}]  valid {}..{}  confidence {}{}",
        l.category,
        l.entity,
        l.source,
        l.source_version,
        from,
        to,
        l.confidence,
        l.removed_in
            .as_ref()
            .map_or(String::new(), |v| format!("  delisted in {v}"))
    );
}
