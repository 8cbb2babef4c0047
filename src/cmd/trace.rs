//! `paytrace trace` and `paytrace path` (issue 7). Output formats are documented in
//! docs/cli.md.

use super::Context;
use super::chain_view::ChainView;
use anyhow::Context as _;
use clap::{Args, ValueEnum};
use paytrace_app::params::{chain_id, parse_model, trace_defaults};
use paytrace_app::trace::{PathRequest, TraceRequest};
use paytrace_indexer::Amount;
use paytrace_tracer::report::AssetBook;
use paytrace_tracer::{Model, PathResult, TraceResult, export};
use serde::Serialize;
use std::{
    fmt::Write as _,
    io::{IsTerminal as _, Write as _},
    process::ExitCode,
    time::Duration,
};

/// Output format of `paytrace trace`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Human-readable report.
    Text,
    /// The full result as JSON (keys in docs/cli.md).
    Json,
    /// The flow graph in Graphviz DOT.
    Dot,
    /// The flow graph in GraphML (Gephi, yEd).
    Graphml,
}

/// Labels and stop rules given on the command line (until the label store plugs in).
#[derive(Debug, Args)]
pub struct LabelArgs {
    /// Label an address with a category, e.g. `--stop 0xabc...=exchange` (repeatable); these
    /// take precedence over the label store. Value reaching an address whose category is in
    /// the stop list exits there.
    #[arg(long = "stop", value_name = "ADDR=CATEGORY")]
    pub stop: Vec<String>,
    /// Categories that stop a trace [default: exchange, exchange_deposit, bridge, mixer,
    /// sanctioned] (repeatable or comma-separated).
    #[arg(long = "stop-category", value_delimiter = ',')]
    pub stop_categories: Vec<String>,
    /// Categories of swap/DEX addresses through which taint crosses assets [default: defi,
    /// swap] (repeatable or comma-separated).
    #[arg(long = "swap-category", value_delimiter = ',')]
    pub swap_categories: Vec<String>,
}

impl LabelArgs {
    /// The rules as the application layer takes them.
    pub fn rules(&self) -> paytrace_app::trace::LabelRules {
        paytrace_app::trace::LabelRules {
            stop: self.stop.clone(),
            stop_categories: self.stop_categories.clone(),
            swap_categories: self.swap_categories.clone(),
        }
    }
}

/// Trace value forwards or backwards.
#[derive(Debug, Args)]
pub struct TraceCmd {
    /// Address (all its outflows in the window; backward: its balance) or transaction hash,
    /// optionally `TX:INDEX` (the INDEX-th transfer of the transaction in canonical order).
    pub seed: String,
    /// Source of funds instead of destination of funds.
    #[arg(long)]
    pub backward: bool,
    /// Taint model.
    #[arg(long, default_value_t = trace_defaults().model, value_parser = parse_model)]
    pub model: Model,
    /// Maximum hops after the payee (the seed's receiver is hop 0).
    #[arg(long, default_value_t = trace_defaults().max_hops)]
    pub hops: u32,
    /// Window start: YYYY-MM-DD (UTC), RFC 3339 or Unix seconds.
    #[arg(long, value_parser = super::time_arg::parse_since)]
    pub since: Option<u64>,
    /// Window end (inclusive; a day means its last second): YYYY-MM-DD, RFC 3339 or Unix seconds.
    #[arg(long, value_parser = super::time_arg::parse_until)]
    pub until: Option<u64>,
    /// Do not follow transfers carrying less than this (raw units).
    #[arg(long, default_value = "0")]
    pub min_amount: String,
    /// Follow (load the history of) at most this many addresses; when the limit stops the
    /// trace, the result says `truncated: true` (`truncated_by: max_nodes`).
    #[arg(long, default_value_t = trace_defaults().max_nodes)]
    pub max_nodes: usize,
    /// Time budget in milliseconds (default: none): when it runs out the trace stops
    /// following new addresses and the result says `truncated: true` (`truncated_by:
    /// time_budget`).
    #[arg(long, value_name = "MS")]
    pub budget_ms: Option<u64>,
    /// At most this many evidence paths.
    #[arg(long, default_value_t = trace_defaults().max_paths)]
    pub max_paths: usize,
    /// Only this chain (by configured name).
    #[arg(long)]
    pub chain: Option<String>,
    /// Block of the transaction (optional: the transaction index finds it).
    #[arg(long)]
    pub block: Option<u64>,
    /// Output format (`--json` is the same as `--format json`).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Token units for the text output, `ADDR=SYMBOL:DECIMALS` (repeatable; overrides the
    /// store's token metadata and the config).
    #[arg(long = "token", value_name = "ADDR=SYMBOL:DECIMALS")]
    pub tokens: Vec<String>,
    /// Labels and stop rules.
    #[command(flatten)]
    pub labels: LabelArgs,
}

impl TraceCmd {
    fn request(&self) -> anyhow::Result<TraceRequest> {
        Ok(TraceRequest {
            seed: self.seed.clone(),
            backward: self.backward,
            model: self.model,
            hops: self.hops,
            since: self.since,
            until: self.until,
            min_amount: self.min_amount.parse::<Amount>().context("--min-amount")?,
            max_nodes: self.max_nodes,
            budget: self.budget_ms.map(Duration::from_millis),
            max_paths: self.max_paths,
            chain: self.chain.clone(),
            block: self.block,
            rules: self.labels.rules(),
        })
    }

    /// Runs the command.
    pub fn run(&self, ctx: &Context) -> anyhow::Result<ExitCode> {
        let store = ctx.open_store_for_queries()?;
        let req = self.request()?;
        let chain = chain_id(&store, self.chain.as_deref())?;
        let result = paytrace_app::trace::trace(&store, &req)?;
        let format = if ctx.json { Format::Json } else { self.format };
        let pretty = std::io::stdout().is_terminal();
        let mut out = std::io::BufWriter::with_capacity(1 << 16, crate::output::stdout());
        let subject = paytrace_app::trace::subject(&result);
        let view = ChainView::open(&store, &subject)?;
        match format {
            Format::Json if view.is_bitcoin() => {
                let s = if pretty {
                    serde_json::to_string_pretty(&result)?
                } else {
                    serde_json::to_string(&result)?
                };
                writeln!(out, "{}", view.rewrite(&s))?;
            }
            Format::Json => write_json(&mut out, &result, pretty)?,
            Format::Dot => out.write_all(view.rewrite(&export::to_dot(&result)).as_bytes())?,
            Format::Graphml => {
                out.write_all(view.rewrite(&export::to_graphml(&result)).as_bytes())?;
            }
            Format::Text => {
                let book =
                    super::report::units(ctx, &store, &self.tokens)?.book_for(chain, &subject);
                out.write_all(view.rewrite(&render_text(&result, &view, &book)).as_bytes())?;
            }
        }
        out.flush().context("writing the result to stdout")?;
        Ok(ExitCode::SUCCESS)
    }
}

/// Streams `value` as JSON to `out` (no intermediate string): indented when `pretty` (a
/// terminal), compact otherwise (a file or a pipe), with a final newline.
pub fn write_json<W: std::io::Write, T: Serialize>(
    out: &mut W,
    value: &T,
    pretty: bool,
) -> anyhow::Result<()> {
    if pretty {
        serde_json::to_writer_pretty(&mut *out, value)
    } else {
        serde_json::to_writer(&mut *out, value)
    }
    .context("writing the JSON result to stdout")?;
    out.write_all(b"\n")
        .context("writing the JSON result to stdout")?;
    Ok(())
}

/// The text report of a trace (addresses through `view`, amounts in the units of `book`). The seed's
/// receivers are called receivers here (`payee` in JSON, whose keys are stable).
pub fn render_text(r: &TraceResult, view: &ChainView, book: &AssetBook) -> String {
    let mut s = String::new();
    let p = &r.parameters;
    let _ = writeln!(
        s,
        "{} trace, model {}, hops {}, seed {} ({} transfer(s))",
        p.direction,
        r.model,
        p.max_hops,
        r.seed.kind,
        r.seed.transfers.len()
    );
    for (asset, v) in &r.seed.total {
        let _ = writeln!(s, "  seed value: {}", book.format_str(asset, *v));
    }
    if let Some(by) = r.truncated_by {
        let why = match by {
            paytrace_tracer::Truncation::MaxNodes => {
                format!("--max-nodes {} addresses were followed", p.max_nodes)
            }
            paytrace_tracer::Truncation::TimeBudget => "the time budget ran out".to_owned(),
        };
        let _ = writeln!(
            s,
            "  TRUNCATED ({}): {why}; addresses reached later were not followed, amounts \
             beyond them are missing",
            by.as_str()
        );
    }
    if r.incomplete_history {
        let _ = writeln!(
            s,
            "  WARNING: incomplete history (a balance went negative); amounts are bounds"
        );
    }
    let _ = writeln!(s, "\nTotals by category:");
    for (cat, m) in &r.totals_by_category {
        for (asset, v) in m {
            let cat = if cat == "still_at_payee" {
                "still_at_receiver"
            } else {
                cat
            };
            let _ = writeln!(s, "  {cat:<20} {}", book.format_str(asset, *v));
        }
    }
    let _ = writeln!(
        s,
        "\n{}:",
        if p.direction == "backward" {
            "Sources"
        } else {
            "Destinations"
        }
    );
    let _ = writeln!(
        s,
        "  {:<44} {:<16} {:>4} {:>30}  {:<20} labels",
        "address", "status", "hops", "amount", "first"
    );
    for d in r.destinations.iter().take(50) {
        let status = serde_json::to_value(d.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .map(|s| {
                if s == "payee" {
                    "receiver".to_owned()
                } else {
                    s
                }
            })
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "  {:<44} {:<16} {:>4} {:>30}  {:<20} {}{}",
            view.address(&d.address),
            status,
            d.hops,
            book.format_str(&d.asset.to_string(), d.amount),
            super::time_arg::iso(d.first_arrival),
            d.labels.join(", "),
            if d.incomplete_history {
                " (incomplete)"
            } else {
                ""
            }
        );
    }
    if r.destinations.len() > 50 {
        let _ = writeln!(
            s,
            "  ... {} more (use --format json)",
            r.destinations.len() - 50
        );
    }
    if !r.paths.is_empty() {
        let _ = writeln!(s, "\nEvidence paths:");
        for path in &r.paths {
            let _ = writeln!(
                s,
                "  to {} ({}): {}",
                view.address(&path.to),
                path.category.as_ref().map_or("unlabelled", |c| c.as_str()),
                book.format_str(&path.asset.to_string(), path.amount)
            );
            let asset = path.asset.to_string();
            for h in &path.hops {
                let _ = writeln!(
                    s,
                    "    {} -> {}  {} of {}  tx {} block {}",
                    view.address(&h.from),
                    view.address(&h.to),
                    book.format_str(&asset, h.tainted),
                    book.format_str(&asset, h.amount),
                    h.tx_hash,
                    h.block
                );
            }
        }
    }
    let _ = writeln!(
        s,
        "\n{} addresses followed, {} transfers read; read up to {}",
        r.stats.expanded_addresses,
        r.stats.transfers_read,
        p.checkpoints
            .iter()
            .map(|(c, b)| format!("block {b} (chain #{c})"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    s
}

/// Time-respecting paths between addresses.
#[derive(Debug, Args)]
pub struct PathCmd {
    /// Source address.
    pub from: String,
    /// Target address (or use --to-category).
    pub to: Option<String>,
    /// Any address of this category (needs labels, e.g. --stop ADDR=sanctioned).
    #[arg(long)]
    pub to_category: Option<String>,
    /// Maximum transfers on a path.
    #[arg(long, default_value_t = 4)]
    pub hops: u32,
    /// How many most valuable paths.
    #[arg(short, long, default_value_t = 5)]
    pub k: usize,
    /// Window start: YYYY-MM-DD (UTC), RFC 3339 or Unix seconds.
    #[arg(long, value_parser = super::time_arg::parse_since)]
    pub since: Option<u64>,
    /// Window end (inclusive; a day means its last second): YYYY-MM-DD, RFC 3339 or Unix seconds.
    #[arg(long, value_parser = super::time_arg::parse_until)]
    pub until: Option<u64>,
    /// Ignore transfers smaller than this (raw units).
    #[arg(long, default_value = "0")]
    pub min_amount: String,
    /// Load at most this many addresses.
    #[arg(long, default_value_t = 5_000)]
    pub max_nodes: usize,
    /// Only this asset (`native` or a token address).
    #[arg(long)]
    pub asset: Option<String>,
    /// Only this chain.
    #[arg(long)]
    pub chain: Option<String>,
    /// Token units for the text output, `ADDR=SYMBOL:DECIMALS` (repeatable; overrides the
    /// store's token metadata and the config).
    #[arg(long = "token", value_name = "ADDR=SYMBOL:DECIMALS")]
    pub tokens: Vec<String>,
    /// Labels and stop rules (stop-category addresses are not expanded).
    #[command(flatten)]
    pub labels: LabelArgs,
}

impl PathCmd {
    /// Runs the command.
    pub fn run(&self, ctx: &Context) -> anyhow::Result<ExitCode> {
        let store = ctx.open_store_for_queries()?;
        let req = PathRequest {
            from: self.from.clone(),
            to: self.to.clone(),
            to_category: self.to_category.clone(),
            hops: self.hops,
            k: self.k,
            since: self.since,
            until: self.until,
            min_amount: self.min_amount.parse().context("--min-amount")?,
            max_nodes: self.max_nodes,
            asset: self.asset.clone(),
            chain: self.chain.clone(),
            rules: self.labels.rules(),
        };
        let (from, r) = paytrace_app::trace::path(&store, &req)?;
        let chain = chain_id(&store, self.chain.as_deref())?;
        let view = ChainView::open(&store, &from)?;
        if ctx.json {
            super::print_json_view(&r, &view)?;
        } else {
            let book = super::report::units(ctx, &store, &self.tokens)?.book_for(chain, &from);
            print!("{}", view.rewrite(&render_paths(&r, &book)));
        }
        Ok(ExitCode::SUCCESS)
    }
}

fn render_paths(r: &PathResult, book: &AssetBook) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "paths {} -> {} (subgraph: {} addresses, {} transfers)",
        r.from, r.to, r.subgraph_nodes, r.subgraph_edges
    );
    let one = |title: &str, p: &paytrace_tracer::FoundPath, s: &mut String| {
        let _ = writeln!(
            s,
            "{title}: {} hops, value {}",
            p.hops.len(),
            book.format_str(&p.asset.to_string(), p.value)
        );
        let asset = p.asset.to_string();
        for h in &p.hops {
            let _ = writeln!(
                s,
                "    {} -> {}  {}  {}  tx {}",
                h.from,
                h.to,
                book.format_str(&asset, h.amount),
                super::time_arg::iso(h.time),
                h.tx_hash
            );
        }
    };
    match &r.shortest {
        Some(p) => one("shortest", p, &mut s),
        None => {
            let _ = writeln!(s, "no time-respecting path within the bounds");
        }
    }
    for (i, p) in r.most_valuable.iter().enumerate() {
        one(&format!("most valuable #{}", i + 1), p, &mut s);
    }
    if !r.exhaustive {
        let _ = writeln!(s, "(search budget exhausted: the k best may be incomplete)");
    }
    s
}
