//! `paytrace report payouts` (issue 4): where a payroll provider's payouts went, per payee,
//! with convergence findings; HTML, JSON and CSV. Output keys are in docs/cli.md.

use super::Context;
use anyhow::{Context as _, bail};
use clap::{Args, Subcommand, ValueEnum};
use paytrace_app::address::parse_address;
use paytrace_app::params::{ReportOptions, chain_id, parse_model, report_params};
use paytrace_indexer::{Address, Asset, ChainId, Store, Timestamp};
use paytrace_tracer::{
    Model,
    report::{AssetBook, Payout, Report, ReportParams, batch, discover_payouts, render},
    risk::{ScreenParams, hops_text},
};
use serde::Serialize;
use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    process::ExitCode,
};

/// `paytrace report ...`.
#[derive(Debug, Subcommand)]
pub enum ReportCmd {
    /// Where a payroll provider's payouts went: per payout and payee, convergence findings.
    Payouts(PayoutsArgs),
}

/// Output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Self-contained HTML page.
    Html,
    /// The full report as JSON.
    Json,
    /// One row per payout and destination.
    Csv,
}

impl Format {
    fn ext(self) -> &'static str {
        match self {
            Self::Html => "html",
            Self::Json => "json",
            Self::Csv => "csv",
        }
    }
}

/// Arguments of `paytrace report payouts`.
#[derive(Debug, Args)]
pub struct PayoutsArgs {
    /// A provider of the config file (`[[providers]]` name).
    #[arg(long, conflicts_with_all = ["provider_address", "batch"])]
    pub provider: Option<String>,
    /// A provider hot-wallet address (repeatable); no config needed.
    #[arg(long = "provider-address", value_name = "ADDR")]
    pub provider_address: Vec<String>,
    /// A payroll batch CSV (`payee,address,chain,asset,amount,tx_hash,date`).
    #[arg(long, value_name = "FILE.csv")]
    pub batch: Option<PathBuf>,
    /// Payouts from this time on: YYYY-MM-DD (UTC), RFC 3339 or Unix seconds.
    #[arg(long, value_parser = super::time_arg::parse_since)]
    pub since: Option<u64>,
    /// Payouts up to this time (inclusive; a day means its last second): YYYY-MM-DD, RFC 3339
    /// or Unix seconds.
    #[arg(long, value_parser = super::time_arg::parse_until)]
    pub until: Option<u64>,
    /// Taint model.
    #[arg(long, default_value_t = ReportOptions::default().model, value_parser = parse_model)]
    pub model: Model,
    /// Hops followed after each payee.
    #[arg(long, default_value_t = ReportOptions::default().hops)]
    pub hops: u32,
    /// Minimum distinct payees for a convergence finding.
    #[arg(long, default_value_t = ReportOptions::default().min_payees)]
    pub min_payees: usize,
    /// Convergence time window in days (0: no limit).
    #[arg(long, default_value_t = ReportOptions::default().window_days)]
    pub window_days: u64,
    /// Only this chain (default: the provider's chain).
    #[arg(long)]
    pub chain: Option<String>,
    /// Token shown with symbol and decimals, `ADDR=SYMBOL:DECIMALS` (repeatable); adds to the
    /// config's token lists.
    #[arg(long = "token", value_name = "ADDR=SYMBOL:DECIMALS")]
    pub tokens: Vec<String>,
    /// Labels valid on this day decide where traces stop (default: today). Sanctions are
    /// always judged as of each transfer's date.
    #[arg(long, value_parser = super::time_arg::parse_day)]
    pub labels_as_of: Option<paytrace_indexer::labels::Date>,
    /// Output format(s) (repeatable or comma-separated) [default: json on stdout, a summary on
    /// a terminal; with --out: html, json and csv].
    #[arg(long, value_enum, value_delimiter = ',')]
    pub format: Vec<Format>,
    /// Directory to write `payout-report.{html,json,csv}` into.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Threads tracing the payouts (0: one per core, at most 8); the report is the same for
    /// any number.
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
}

/// The token units of the store's chains (its token metadata, the config's token lists) plus
/// `--token` flags.
pub fn units(
    ctx: &Context,
    store: &Store,
    flags: &[String],
) -> anyhow::Result<paytrace_app::units::Units> {
    Ok(paytrace_app::units::Units::load(store, &ctx.config)?.with_flags(flags)?)
}

/// Where the files went.
#[derive(Debug, Serialize)]
pub struct Written {
    /// HTML report.
    pub html: Option<PathBuf>,
    /// JSON report.
    pub json: Option<PathBuf>,
    /// CSV report.
    pub csv: Option<PathBuf>,
}

/// Writes the report in `formats` into `dir` as `payout-report.<ext>`; `view` names the
/// Bitcoin payees and destinations by their addresses (`script:` ids only for non-standard
/// scripts; EVM transaction hashes keep their `0x`).
pub fn write_report(
    r: &Report,
    dir: &Path,
    formats: &[Format],
    view: &super::chain_view::ChainView,
) -> anyhow::Result<Written> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut w = Written {
        html: None,
        json: None,
        csv: None,
    };
    for f in formats {
        let path = dir.join(format!("payout-report.{}", f.ext()));
        let text = match f {
            Format::Html => render::to_html(r),
            Format::Json => serde_json::to_string_pretty(r)? + "\n",
            Format::Csv => render::to_csv(r).context("writing the CSV report")?,
        };
        let text = view.rewrite_as(&text, false);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        match f {
            Format::Html => w.html = Some(path),
            Format::Json => w.json = Some(path),
            Format::Csv => w.csv = Some(path),
        }
    }
    Ok(w)
}

pub use paytrace_app::screen::{StoreClusters, screen_history};

/// Runs a report on the store (the application layer's [`paytrace_app::report::run_on_store`])
/// with `bar`, when given, advanced one step per payout traced.
#[allow(clippy::too_many_arguments)]
pub fn run_on_store(
    store: &Store,
    title: &str,
    providers: &[Address],
    payouts: &[Payout],
    issues: Vec<batch::RowIssue>,
    assets: AssetBook,
    params: &ReportParams,
    labels_as_of: Option<paytrace_indexer::labels::Date>,
    verdicts: Option<&ScreenParams>,
    bar: Option<&indicatif::ProgressBar>,
) -> anyhow::Result<Report> {
    Ok(paytrace_app::report::run_on_store(
        store,
        title,
        providers,
        payouts,
        issues,
        assets,
        params,
        labels_as_of,
        verdicts,
        &mut |step| {
            if let Some(b) = bar {
                match step {
                    paytrace_app::report::Step::Payout => b.inc(1),
                    paytrace_app::report::Step::Screening => {
                        b.set_message("screening the payees");
                    }
                }
            }
        },
    )?)
}

/// Names payees found on chain after the entity of their label, when the label store has one.
fn name_payees(store: &Store, payouts: &mut [Payout]) -> anyhow::Result<()> {
    let ls = paytrace_indexer::labels::LabelStore::open(store)?;
    let mut names: HashMap<Address, Option<String>> = HashMap::new();
    for p in payouts.iter_mut() {
        let name = match names.get(&p.address) {
            Some(n) => n.clone(),
            None => {
                let n = ls
                    .labels_for(&p.address, None)?
                    .into_iter()
                    .next()
                    .map(|l| l.entity);
                names.insert(p.address, n.clone());
                n
            }
        };
        if let Some(n) = name {
            p.payee = n;
        }
    }
    Ok(())
}

impl ReportCmd {
    /// Runs the command.
    pub fn run(&self, ctx: &Context) -> anyhow::Result<ExitCode> {
        let Self::Payouts(a) = self;
        a.run(ctx)
    }
}

impl PayoutsArgs {
    /// Why no payout was found: what was searched, the nearest days with payouts outside
    /// the window, and the chains indexed.
    fn no_payouts(
        &self,
        store: &Store,
        title: &str,
        providers: &[Address],
        assets: Option<&[Asset]>,
        chain: Option<ChainId>,
    ) -> anyhow::Result<String> {
        use super::explain;
        let on = self
            .chain
            .as_deref()
            .map_or_else(|| "any chain".to_owned(), |c| format!("chain {c}"));
        let mut msg = format!(
            "no payouts from {title} on {on} {}",
            explain::window(self.since, self.until)
        );
        if (self.since.is_some() || self.until.is_some()) && !providers.is_empty() {
            let all =
                discover_payouts(store, providers, assets, None, None, chain, &HashMap::new())?;
            let before = all
                .iter()
                .map(|p| p.time)
                .filter(|t| self.since.is_some_and(|s| t.0 < s))
                .max();
            let after = all
                .iter()
                .map(|p| p.time)
                .filter(|t| self.until.is_some_and(|u| t.0 > u))
                .min();
            let day = |t: Timestamp| explain::day(t);
            match (before, after) {
                (None, None) => msg.push_str("; none at any other time either"),
                (Some(b), None) => msg.push_str(&format!(
                    "; the nearest payout day is {} (before the window)",
                    day(b)
                )),
                (None, Some(a)) => msg.push_str(&format!(
                    "; the nearest payout day is {} (after the window)",
                    day(a)
                )),
                (Some(b), Some(a)) => msg.push_str(&format!(
                    "; the nearest payout days are {} (before the window) and {} (after)",
                    day(b),
                    day(a)
                )),
            }
        }
        msg.push_str("; ");
        msg.push_str(&explain::chains_indexed(store)?);
        Ok(msg)
    }

    fn run(&self, ctx: &Context) -> anyhow::Result<ExitCode> {
        let store = ctx.open_store_for_queries()?;
        let units = units(ctx, &store, &self.tokens)?;
        let mut assets = units.book(None);
        if assets.info(&Asset::Native).is_none() {
            let k = paytrace_indexer::ChainKind::Evm;
            assets.insert(Asset::Native, k.native_symbol(), k.native_decimals());
        }
        assets.insert_bitcoin();
        let since = self.since.map(Timestamp);
        let until = self.until.map(Timestamp);
        let mut chain_name = self.chain.clone();
        let (title, providers, asset_filter): (String, Vec<Address>, Option<Vec<Asset>>) =
            match (&self.provider, self.provider_address.is_empty()) {
                (Some(name), _) => {
                    let p = ctx.config.provider(name).with_context(|| {
                        format!("no provider {name:?} in the config ([[providers]] name)")
                    })?;
                    chain_name.get_or_insert_with(|| p.chain.clone());
                    let addrs = p
                        .addresses
                        .iter()
                        // EVM addresses in the config are matched whatever their case (as
                        // before); Bitcoin addresses are case-sensitive (base58).
                        .map(|a| {
                            let a = if a.starts_with("0x") || a.starts_with("0X") {
                                a.to_ascii_lowercase()
                            } else {
                                a.clone()
                            };
                            parse_address(&format!("provider {name:?} address"), &a)
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    let assets_f = if p.assets.is_empty() {
                        None
                    } else {
                        Some(
                            p.assets
                                .iter()
                                .map(|x| {
                                    assets.resolve(x).map(|i| i.asset).with_context(|| {
                                        format!("provider {name:?}: asset {x:?} has no token entry")
                                    })
                                })
                                .collect::<anyhow::Result<Vec<_>>>()?,
                        )
                    };
                    (name.clone(), addrs, assets_f)
                }
                (None, false) => {
                    let addrs = self
                        .provider_address
                        .iter()
                        .map(|a| parse_address("--provider-address", a))
                        .collect::<Result<Vec<_>, _>>()?;
                    let title = addrs
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ");
                    (title, addrs, None)
                }
                (None, true) => match &self.batch {
                    Some(b) => (b.display().to_string(), Vec::new(), None),
                    None => {
                        bail!("give --provider NAME, --provider-address ADDR or --batch FILE.csv")
                    }
                },
            };
        let chain = chain_id(&store, chain_name.as_deref())?;
        let (payouts, issues) = match &self.batch {
            Some(path) => {
                let file = path.display().to_string();
                let f = std::fs::File::open(path).with_context(|| format!("opening {file}"))?;
                paytrace_app::report::batch_payouts(
                    &store, &file, f, &assets, &providers, chain, since, until,
                )?
            }
            None => {
                let mut payouts = discover_payouts(
                    &store,
                    &providers,
                    asset_filter.as_deref(),
                    since,
                    until,
                    chain,
                    &HashMap::new(),
                )?;
                name_payees(&store, &mut payouts)?;
                (payouts, Vec::new())
            }
        };
        if payouts.is_empty() {
            eprintln!(
                "note: {}",
                self.no_payouts(&store, &title, &providers, asset_filter.as_deref(), chain)?
            );
        }
        let opts = ReportOptions {
            model: self.model,
            hops: self.hops,
            min_payees: self.min_payees,
            window_days: self.window_days,
            threads: self.threads,
            chain,
        };
        let as_of = self.labels_as_of;
        let providers_shown = if providers.is_empty() {
            let mut v: Vec<Address> = payouts.iter().map(|p| p.from).collect();
            v.sort();
            v.dedup();
            v
        } else {
            providers
        };
        // Payee verdicts: the screening as of the labels' day (default today), with the
        // config's `[risk]` scoring, as `paytrace screen --as-of` gives them.
        let verdict_day = as_of.unwrap_or_else(paytrace_indexer::labels::today);
        let (params, sp) = report_params(&ctx.config.risk, &opts, verdict_day, units.book(chain));
        let bar = super::progress::bar("report", u64::try_from(payouts.len())?, "payouts");
        let report = run_on_store(
            &store,
            &title,
            &providers_shown,
            &payouts,
            issues,
            if chain.is_some() {
                units.book(chain)
            } else {
                assets
            },
            &params,
            as_of,
            Some(&sp),
            bar.as_ref(),
        )?;
        super::progress::finish(bar.as_ref());
        let view = super::chain_view::ChainView::new(&store, false)?;
        for i in &report.issues {
            eprintln!("warning: {i}");
        }
        match &self.out {
            Some(dir) => {
                let formats = if self.format.is_empty() {
                    vec![Format::Html, Format::Json, Format::Csv]
                } else {
                    self.format.clone()
                };
                let w = write_report(&report, dir, &formats, &view)?;
                print_summary(ctx, &report, &w)?;
            }
            None if !ctx.json
                && self.format.is_empty()
                && std::io::IsTerminal::is_terminal(&std::io::stdout()) =>
            {
                // The full report is a large document: on a terminal, only when asked.
                let none = Written {
                    html: None,
                    json: None,
                    csv: None,
                };
                print_summary(ctx, &report, &none)?;
                println!(
                    "Full report: --json (or --format json|csv|html) prints it, --out DIR writes the HTML, JSON and CSV files."
                );
            }
            None => {
                let f = if ctx.json {
                    Format::Json
                } else {
                    self.format.first().copied().unwrap_or(Format::Json)
                };
                match f {
                    Format::Html => print!("{}", view.rewrite_as(&render::to_html(&report), false)),
                    Format::Json => {
                        use std::io::Write as _;
                        let text = serde_json::to_string_pretty(&report)?;
                        let mut out = crate::output::stdout();
                        writeln!(out, "{}", view.rewrite_as(&text, false))?;
                        out.flush()?;
                    }
                    Format::Csv => print!(
                        "{}",
                        view.rewrite_as(
                            &render::to_csv(&report).context("writing the CSV report")?,
                            false
                        )
                    ),
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// The short summary printed after writing a report.
#[derive(Debug, Serialize)]
pub struct ReportSummary<'a> {
    /// Files written.
    pub files: &'a Written,
    /// Payouts traced.
    pub payouts: usize,
    /// Payees.
    pub payees: usize,
    /// Payees flagged (sanctioned / high risk).
    pub flagged_payees: &'a [String],
    /// Convergence points (address or cluster keys, ranked).
    pub convergence: Vec<String>,
    /// Shared exchange deposit addresses.
    pub shared_deposits: Vec<String>,
    /// Batch rows with issues.
    pub issues: usize,
}

/// Prints the summary of a written report (text, or JSON with `--json`).
pub fn print_summary(ctx: &Context, r: &Report, w: &Written) -> anyhow::Result<()> {
    let s = ReportSummary {
        files: w,
        payouts: r.summary.payouts,
        payees: r.summary.payees,
        flagged_payees: &r.summary.flagged_payees,
        convergence: r.convergence.iter().map(|f| f.key.clone()).collect(),
        shared_deposits: r.shared_deposits.iter().map(|f| f.key.clone()).collect(),
        issues: r.issues.len(),
    };
    if ctx.json {
        return ctx.print_json(&s);
    }
    println!(
        "{} payouts to {} payees traced ({} model, {} hops).",
        r.summary.payouts, r.summary.payees, r.parameters.model, r.parameters.hops
    );
    if !r.summary.flagged_payees.is_empty() {
        println!(
            "Payees whose money reached sanctioned or high-risk addresses: {}",
            r.summary.flagged_payees.join(", ")
        );
    }
    if let Some(d) = &r.verdicts_as_of {
        use paytrace_tracer::risk::RiskLevel as L;
        let by: Vec<String> = [L::Severe, L::High, L::Medium, L::Low, L::None]
            .iter()
            .filter_map(|l| {
                r.summary
                    .payees_by_risk
                    .get(l.as_str())
                    .map(|n| format!("{n} {l}"))
            })
            .collect();
        println!("Payee verdicts as of {d}: {}", by.join(", "));
    }
    for f in r.convergence.iter().take(5) {
        println!(
            "Convergence #{}: {} received {} from {} payees ({}), {} away, arrivals {} to {}",
            f.rank,
            f.key,
            r.assets.format_amounts(&f.amounts),
            f.payees.len(),
            f.payees
                .iter()
                .map(|p| p.payee.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            hops_text(f.hops),
            render::datetime(f.first_arrival),
            render::datetime(f.last_arrival)
        );
        if !f.onward.is_empty() {
            println!(
                "  onward: {}",
                f.onward
                    .iter()
                    .map(|o| format!(
                        "{} ({}, {})",
                        o.key,
                        r.assets.format_amounts(&o.amounts),
                        hops_text(o.hops)
                    ))
                    .collect::<Vec<_>>()
                    .join("; ")
            );
        }
    }
    for f in &r.shared_deposits {
        println!(
            "Shared exchange deposit address {} used by {} payees ({})",
            f.key,
            f.payees.len(),
            f.payees
                .iter()
                .map(|p| p.payee.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if !r.issues.is_empty() {
        println!(
            "{} batch row(s) not traced (listed in the report).",
            r.issues.len()
        );
    }
    for p in [&w.html, &w.json, &w.csv].into_iter().flatten() {
        println!("Report: {}", p.display());
    }
    Ok(())
}
