//! `paytrace screen`: the risk of an address (or of every address in a file), as of a date.
//! JSON keys are documented in docs/cli.md.

use super::Context;
use super::chain_view::ChainView;
use anyhow::{Context as _, bail};
use clap::Args;
use paytrace_app::address::parse_address;
use paytrace_indexer::{Address, labels::Date};
use paytrace_tracer::risk::{CachedSource, RiskLevel, ScreenResult, screen_each};
use std::{io::Write as _, path::PathBuf, process::ExitCode};

/// Exit status when `--fail-on` is given and a result is at or above the level.
pub const EXIT_RISK: u8 = 3;

/// Transfers of address histories kept in memory across the screenings of one run.
pub use paytrace_app::screen::HISTORY_CACHE;

/// Screen addresses.
#[derive(Debug, Args)]
pub struct ScreenCmd {
    /// The address to screen.
    #[arg(required_unless_present = "file", conflicts_with = "file")]
    pub address: Option<String>,
    /// Screen every address of this file (one per line; blank lines and `#` comments
    /// skipped); one result per output line.
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// Only this chain.
    #[arg(long)]
    pub chain: Option<String>,
    /// Screen as of this day (YYYY-MM-DD; an RFC 3339 date-time or Unix seconds mean their UTC
    /// day): transfers up to its end, labels valid that day [default: today].
    #[arg(long, value_parser = super::time_arg::parse_day)]
    pub as_of: Option<Date>,
    /// Hops of indirect exposure [default: from config, 3].
    #[arg(long)]
    pub hops: Option<u32>,
    /// Skip pattern detection around the address.
    #[arg(long)]
    pub no_patterns: bool,
    /// Exit with status 3 when a result is at or above this level (none, low, medium, high,
    /// severe).
    #[arg(long, value_parser = parse_level)]
    pub fail_on: Option<RiskLevel>,
    /// Threads screening a `--file` (0: one per core, at most 8); results are printed in file
    /// order and are the same for any number.
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
}

fn parse_level(s: &str) -> Result<RiskLevel, String> {
    s.parse()
        .map_err(|e: paytrace_tracer::risk::UnknownLevel| e.to_string())
}

/// The screening parameters from the `[risk]` section (the application layer's mapping).
pub use paytrace_app::params::screen_params;

/// Reads an address list: one per line, blank lines and `#` comments skipped; a bad line is
/// an error naming the file and line.
pub fn read_address_file(path: &std::path::Path) -> anyhow::Result<Vec<Address>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let s = line.split('#').next().unwrap_or("").trim();
        if s.is_empty() {
            continue;
        }
        let arg = format!("{}:{}", path.display(), i + 1);
        out.push(parse_address(&arg, s)?);
    }
    Ok(out)
}

/// One line of text output.
fn text_line(r: &ScreenResult) -> String {
    let top = r
        .reasons
        .first()
        .map(|x| x.text.as_str())
        .unwrap_or("no exposure found");
    format!(
        "{}\t{}\t{:.1}\tas of {}\t{}",
        r.address, r.level, r.score, r.as_of, top
    )
}

fn render_text(
    r: &ScreenResult,
    bitcoin: bool,
    assets: &paytrace_tracer::report::AssetBook,
) -> String {
    let mut s = format!(
        "{}: {} (score {:.1}) as of {}, {} hops\n",
        r.address, r.level, r.score, r.as_of, r.hops
    );
    if !r.labels.is_empty() {
        s.push_str(&format!("  labels: {}\n", r.labels.join("; ")));
    }
    for x in &r.reasons {
        s.push_str(&format!("  [{} {:.1}] {}\n", x.level, x.score, x.text));
    }
    if r.reasons.is_empty() {
        s.push_str("  no exposure found\n");
    }
    for e in r.direct.iter().chain(r.indirect.iter()) {
        let kind = match e.kind {
            paytrace_tracer::risk::ExposureKind::Direct => "direct",
            paytrace_tracer::risk::ExposureKind::Indirect => "indirect",
        };
        let dir = match e.direction {
            paytrace_tracer::risk::Flow::Sent => "sent",
            paytrace_tracer::risk::Flow::Received => "received",
        };
        let amount = if bitcoin && e.asset.to_string() == "native" {
            super::chain_view::native_text(paytrace_indexer::ChainKind::Bitcoin, &e.amount)
        } else {
            assets.format(&e.asset, e.amount)
        };
        s.push_str(&format!(
            "  {kind} {dir} {}: {amount} ({:.2}%), {}, counterparties {}\n",
            e.category,
            e.share * 100.0,
            paytrace_tracer::risk::hops_text(e.hops.saturating_add(1)),
            e.counterparties
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    s
}

/// What a screening without findings looked at: the address's transfers in the store (none
/// at all names the chains indexed).
fn searched(store: &paytrace_indexer::Store, r: &ScreenResult) -> anyhow::Result<String> {
    use paytrace_indexer::Direction;
    let seen = |d| {
        store
            .address_transfers(&r.address, d, None)
            .next()
            .transpose()
            .map(|t| t.is_some())
    };
    if !seen(Direction::Outgoing)? && !seen(Direction::Incoming)? {
        return Ok(format!(
            "the store holds no transfer of {} on any chain; {}",
            r.address,
            super::explain::chains_indexed(store)?
        ));
    }
    Ok(format!(
        "searched its transfers up to {} and the labels valid on {}",
        paytrace_tracer::risk::hops_text(r.hops),
        r.as_of
    ))
}

impl ScreenCmd {
    /// Runs the command.
    pub fn run(&self, ctx: &Context) -> anyhow::Result<ExitCode> {
        let addresses = match (&self.address, &self.file) {
            (Some(a), None) => vec![parse_address("ADDRESS", a)?],
            (None, Some(f)) => read_address_file(f)?,
            _ => bail!("give an ADDRESS or --file"),
        };
        let store = ctx.open_store_for_queries()?;
        let p = paytrace_app::screen::params(
            &store,
            &ctx.config,
            &paytrace_app::screen::ScreenRequest {
                chain: self.chain.clone(),
                as_of: self.as_of,
                hops: self.hops,
                no_patterns: self.no_patterns,
            },
        )?;
        let clusters = super::report::StoreClusters::open(&store)?;
        let history = super::report::screen_history(&store, &clusters)?;
        let bulk = self.file.is_some();
        let mut worst = RiskLevel::None;
        let mut out = crate::output::stdout();
        // A file is screened on several threads (one per core, at most 8) sharing one history
        // cache and one label cache; results are printed in file order and are the same as
        // screening the addresses one by one.
        let threads = if bulk { self.threads } else { 1 };
        let src = CachedSource::new(&store, HISTORY_CACHE);
        // Bitcoin results show addresses and txids as Bitcoin does (see `chain_view`).
        let cv = ChainView::new(&store, true)?;
        let bitcoin = |i: usize| !matches!(addresses.get(i), Some(Address::Evm(_)) | None);
        let mut failed: Option<anyhow::Error> = None;
        let bar = if bulk {
            super::progress::bar("screen", u64::try_from(addresses.len())?, "addresses")
        } else {
            None
        };
        screen_each(&src, &history, &addresses, &p, threads, |i, r| {
            if let Some(b) = &bar {
                b.inc(1);
            }
            let printed = r
                .map_err(anyhow::Error::from)
                .with_context(|| format!("screening {}", addresses[i]))
                .and_then(|r| {
                    worst = worst.max(r.level);
                    let btc = bitcoin(i);
                    let show = |s: String| cv.rewrite_as(&s, btc);
                    if ctx.json {
                        if bulk {
                            writeln!(out, "{}", show(serde_json::to_string(&r)?))?;
                        } else {
                            writeln!(out, "{}", show(serde_json::to_string_pretty(&r)?))?;
                        }
                    } else if bulk {
                        writeln!(out, "{}", show(text_line(&r)))?;
                    } else {
                        write!(out, "{}", show(render_text(&r, btc, &p.assets)))?;
                        if r.reasons.is_empty() {
                            writeln!(out, "  {}", searched(&store, &r)?)?;
                        }
                    }
                    Ok(())
                });
            match printed {
                Ok(()) => true,
                Err(e) => {
                    failed = Some(e);
                    false
                }
            }
        });
        super::progress::finish(bar.as_ref());
        if let Some(e) = failed {
            return Err(e);
        }
        Ok(match self.fail_on {
            Some(level) if worst >= level => ExitCode::from(EXIT_RISK),
            _ => ExitCode::SUCCESS,
        })
    }
}
