//! `paytrace cluster ...`: cluster addresses (incrementally), show a cluster, explain why two
//! addresses are (not) together. JSON keys are documented in docs/cli.md.

use super::Context;
use super::chain_view::ChainView;
use anyhow::Context as _;
use clap::{Args, Subcommand};
use paytrace_app::address::parse_address;
use paytrace_app::clusters::{ClusterStore, RunReport, exchanges_from_labels};
use paytrace_config::ClusterConfig;
use paytrace_indexer::{Address, Store, labels::LabelStore};
use paytrace_tracer::cluster::Exchanges;

/// `writeln!` into a `String` (the text is rewritten for Bitcoin before it is printed).
macro_rules! outln {
    ($buf:expr, $($t:tt)*) => {{
        use std::fmt::Write as _;
        let _ = writeln!($buf, $($t)*);
    }};
}
use std::process::ExitCode;

/// Cluster commands.
#[derive(Debug, Subcommand)]
pub enum ClusterCmd {
    /// Cluster the blocks indexed since the last run (every chain, or one).
    Run(RunArgs),
    /// The cluster of an address: members, size, labels, the evidence of each merge.
    Show(ShowArgs),
    /// The chain of merges joining two addresses, or why they are not joined.
    Explain(ExplainArgs),
}

/// `cluster run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Only this chain [default: every indexed chain].
    #[arg(long)]
    pub chain: Option<String>,
    /// Delete all cluster data first and cluster everything again.
    #[arg(long)]
    pub rebuild: bool,
}

/// `cluster show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The address (0x..., script:..., or a Bitcoin address).
    pub address: String,
    /// At most this many members and merges are listed (the counts are always exact).
    #[arg(long, default_value_t = 1000)]
    pub limit: usize,
}

/// `cluster explain`.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// First address.
    pub a: String,
    /// Second address.
    pub b: String,
}

impl ClusterCmd {
    /// Runs the command.
    pub fn run(self, ctx: &Context) -> anyhow::Result<ExitCode> {
        let store = match self {
            Self::Run(_) => ctx.open_store()?,
            Self::Show(_) | Self::Explain(_) => ctx.open_store_read()?,
        };
        let cs = ClusterStore::open(&store).context("opening the cluster keyspaces")?;
        match self {
            Self::Run(a) => run(ctx, &store, &cs, a),
            Self::Show(a) => show(ctx, &store, a),
            Self::Explain(a) => explain(ctx, &store, a),
        }
    }
}

/// Hot wallets from the label store (category `exchange`) and the config.
pub fn exchanges(store: &Store, c: &ClusterConfig) -> anyhow::Result<Exchanges> {
    let labels = LabelStore::open(store).context("opening the label store")?;
    let mut ex = exchanges_from_labels(&labels)?;
    for (i, w) in c.exchanges.iter().enumerate() {
        let a: Address = w
            .address
            .parse()
            .with_context(|| format!("cluster.exchanges[{i}].address"))?;
        ex.insert(a, Some(w.entity.clone()));
    }
    Ok(ex)
}

fn run(ctx: &Context, store: &Store, cs: &ClusterStore, a: RunArgs) -> anyhow::Result<ExitCode> {
    let params = paytrace_app::params::cluster_params(&ctx.config.cluster)?;
    let ex = exchanges(store, &ctx.config.cluster)?;
    if a.rebuild {
        cs.reset().context("deleting cluster data")?;
    }
    let chains: Vec<String> = match a.chain {
        Some(c) => vec![c],
        None => store.chains()?.into_iter().map(|c| c.name).collect(),
    };
    let mut runs: Vec<RunReport> = Vec::new();
    for name in chains {
        let mut bar: Option<indicatif::ProgressBar> = None;
        let r = cs
            .run_with_progress(store, &name, &params, &ex, &mut |done, total| {
                let b = bar.get_or_insert_with(|| {
                    super::progress::bar(&name, total, "blocks")
                        .unwrap_or_else(indicatif::ProgressBar::hidden)
                });
                b.set_position(done);
            })
            .with_context(|| format!("clustering chain {name}"))?;
        super::progress::finish(bar.as_ref());
        runs.push(r);
    }
    if ctx.json {
        ctx.print_json(&serde_json::json!({ "hot_wallets": ex.len(), "runs": runs }))?;
    } else {
        for r in &runs {
            match (r.from, r.to) {
                (Some(f), Some(t)) => println!(
                    "{}: blocks {f}..={t}: {} transfers, {} merges, {} refused, {} coinjoins, {} deposit addresses, {} airdrop recipients",
                    r.chain,
                    r.stats.transfers,
                    r.stats.merges,
                    r.stats.refused,
                    r.stats.coinjoins,
                    r.stats.deposits,
                    r.stats.airdrop_recipients
                ),
                _ => println!("{}: nothing new to cluster", r.chain),
            }
        }
    }
    store.persist_for_reopen()?;
    Ok(ExitCode::SUCCESS)
}

fn show(ctx: &Context, store: &Store, a: ShowArgs) -> anyhow::Result<ExitCode> {
    let address = parse_address("ADDRESS", &a.address)?;
    let out = paytrace_app::cluster_view::show(store, address, a.limit)?;
    let cv = ChainView::open(store, &address)?;
    if ctx.json {
        super::print_json_view(&out, &cv)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut buf = String::new();
    match out.cluster {
        Some(c) => outln!(
            buf,
            "{} is in cluster {c} of {} addresses",
            out.address,
            out.size
        ),
        None => outln!(
            buf,
            "{} is in no cluster (no heuristic merged it)",
            out.address
        ),
    }
    if let Some(d) = &out.deposit {
        outln!(
            buf,
            "deposit address of {} ({}), first sweep {} in block {}",
            d.entity.as_deref().unwrap_or("an exchange"),
            d.exchange,
            d.sweep_tx,
            d.block
        );
    }
    outln!(buf, "members:");
    for m in &out.members {
        outln!(buf, "  {m}");
    }
    if out.members.len() < usize::try_from(out.size).unwrap_or(usize::MAX) {
        outln!(
            buf,
            "  ... ({} more)",
            out.size as usize - out.members.len()
        );
    }
    if !out.labels.is_empty() {
        outln!(buf, "labels:");
        for l in &out.labels {
            outln!(
                buf,
                "  {} {} ({}, confidence {}) via {}",
                l.category,
                l.entity,
                l.source,
                l.confidence,
                l.member
            );
        }
    }
    for c in &out.conflicts {
        outln!(buf, "conflict: entities {}", c.entities.join(", "));
    }
    if !out.merges.is_empty() {
        outln!(buf, "merges ({}):", out.merges_total);
        for m in &out.merges {
            outln!(
                buf,
                "  {} + {}: {} (confidence {}) tx {} block {} on {}",
                m.a,
                m.b,
                m.heuristic,
                m.confidence,
                m.tx,
                m.block,
                m.chain
            );
        }
    }
    print!("{}", cv.rewrite(&buf));
    Ok(ExitCode::SUCCESS)
}

fn explain(ctx: &Context, store: &Store, a: ExplainArgs) -> anyhow::Result<ExitCode> {
    let (x, y) = (parse_address("A", &a.a)?, parse_address("B", &a.b)?);
    let out = paytrace_app::cluster_view::explain(store, x, y)?;
    let cv = ChainView::open(store, &x)?;
    if ctx.json {
        super::print_json_view(&out, &cv)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut buf = String::new();
    if out.joined {
        outln!(buf, "{} and {} are in one cluster:", out.a, out.b);
        for m in &out.path {
            outln!(
                buf,
                "  {} + {}: {} (confidence {}) tx {} block {} on {}",
                m.a,
                m.b,
                m.heuristic,
                m.confidence,
                m.tx,
                m.block,
                m.chain
            );
        }
    } else {
        let show =
            |c: Option<u32>| c.map_or_else(|| "no cluster".to_owned(), |c| format!("cluster {c}"));
        outln!(
            buf,
            "{} ({}) and {} ({}) are not joined",
            out.a,
            show(out.cluster_a),
            out.b,
            show(out.cluster_b)
        );
        for r in &out.refused {
            outln!(
                buf,
                "  refused by the collapse guard: {} + {}: {} (confidence {}) tx {}, cluster sizes {} and {}",
                r.merge.a,
                r.merge.b,
                r.merge.heuristic,
                r.merge.confidence,
                r.merge.tx,
                r.size_a,
                r.size_b
            );
        }
    }
    print!("{}", cv.rewrite(&buf));
    Ok(ExitCode::SUCCESS)
}
