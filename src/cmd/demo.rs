//! `paytrace demo`: generates the deterministic payroll scenario (`paytrace_tracer::demo`),
//! ingests it through the store's write path (offline) or deploys it on an anvil node and
//! indexes it over JSON-RPC (`--rpc`), imports its labels, runs the payout report and checks
//! the findings against the scenario's ground truth.

use super::{
    Context,
    report::{Format, Written, print_summary, run_on_store, write_report},
};
use anyhow::{Context as _, bail};
use clap::Args;
use paytrace_app::clusters::ClusterStore;
use paytrace_app::params::{ReportOptions, report_params};
use paytrace_indexer::store::PreparedRange;
use paytrace_indexer::{
    Address, ChainKind, Store,
    labels::{Format as LabelFormat, ImportOptions, Input, LabelStore, import_inputs},
};
use paytrace_tracer::{
    demo::{DEFAULT_BASE, Scenario, check},
    report::{ReportParams, discover_payouts},
    risk::{ScreenResult, screen},
};
use serde::Serialize;
use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    process::ExitCode,
};

/// Name of the chain the demo writes.
pub const DEMO_CHAIN: &str = "demo";
const MARKER: &str = ".paytrace-demo-store";

/// Arguments of `paytrace demo`.
#[derive(Debug, Args)]
pub struct DemoCmd {
    /// Directory for the report, the ground truth and the demo's own store.
    #[arg(long, default_value = "./paytrace-demo")]
    pub out: PathBuf,
    /// Start a dev node (anvil) of the demo's own on a free port, deploy the scenario on it
    /// and index it over JSON-RPC instead of writing it directly; the node is stopped at the
    /// end. Never sends transactions to a node the demo did not start.
    #[arg(long)]
    pub rpc: bool,
    /// The anvil binary for `--rpc` (default: `$PAYTRACE_ANVIL`, else `anvil` on the PATH).
    #[arg(long, value_name = "PATH", requires = "rpc")]
    pub anvil: Option<PathBuf>,
    /// Then serve the demo's store in the web UI: watch the provider's payees (alerts raised),
    /// create an admin API key, listen on `--listen` and print (and try to open) the UI's URL,
    /// logged in. Ctrl-C stops the server.
    #[arg(long)]
    pub serve: bool,
    /// Address the web UI listens on with `--serve` (port 0: a free port).
    #[arg(
        long,
        value_name = "ADDR",
        default_value = "127.0.0.1:8080",
        requires = "serve"
    )]
    pub listen: std::net::SocketAddr,
}

/// The `--json` output of `paytrace demo`.
#[derive(Debug, Serialize)]
pub struct DemoSummary<'a> {
    /// `offline` or `rpc`.
    pub mode: &'static str,
    /// The demo's store.
    pub store: PathBuf,
    /// Transfers indexed.
    pub transfers: u64,
    /// Payouts traced.
    pub payouts: usize,
    /// Payees.
    pub payees: usize,
    /// Flagged payees.
    pub flagged_payees: &'a [String],
    /// Convergence points.
    pub convergence: Vec<String>,
    /// Shared deposit addresses.
    pub shared_deposits: Vec<String>,
    /// Screening of every payee and of the operator wallet, as of the scenario's last day.
    pub screening: Vec<DemoScreen>,
    /// The full screening results (`[{name, result}]`, each result as `screen --json`).
    pub screening_file: PathBuf,
    /// Files written.
    pub files: &'a Written,
    /// The ground truth file.
    pub ground_truth: PathBuf,
    /// The Bitcoin leg: the operator's withdrawal from the exchange traced on the demo's
    /// Bitcoin chain.
    pub bitcoin: DemoBitcoin,
    /// Differences between findings and ground truth (empty: all found exactly).
    pub truth_mismatches: &'a [String],
}

/// The Bitcoin leg of the demo, as found.
#[derive(Debug, Serialize)]
pub struct DemoBitcoin {
    /// Chain name in the demo's store.
    pub chain: String,
    /// Transfers indexed on it.
    pub transfers: u64,
    /// The operator's Bitcoin address.
    pub operator: String,
    /// The withdrawal transaction.
    pub withdrawal_tx: String,
    /// The withdrawal, satoshis.
    pub withdrawal: paytrace_indexer::Amount,
    /// Where it went: address (or `tx:<txid>` for fees), kind, satoshis, hops.
    pub destinations: Vec<DemoBtcDestination>,
    /// The report of the withdrawal (JSON, as `report payouts`).
    pub report_file: PathBuf,
}

/// One destination of the Bitcoin withdrawal.
#[derive(Debug, Serialize)]
pub struct DemoBtcDestination {
    /// Bitcoin address, or `tx:<txid>` for a fee.
    pub address: String,
    /// Kind (as in the payout report).
    pub kind: &'static str,
    /// Satoshis that ended there.
    pub amount: paytrace_indexer::Amount,
    /// Hops after the operator's address.
    pub hops: u32,
}

/// One screened address of the demo.
#[derive(Debug, Serialize)]
pub struct DemoScreen {
    /// Payee name, or `operator`.
    pub name: String,
    /// Address.
    pub address: Address,
    /// Risk level.
    pub level: &'static str,
    /// Score 0..100.
    pub score: f64,
    /// The highest reason, in words.
    pub reason: Option<String>,
}

/// Name of the screening of the operator's Bitcoin address in the demo's screening list.
pub const OPERATOR_BTC: &str = "operator (bitcoin)";

/// Screens every payee and the operator wallet as of the scenario's last day, with the config's
/// `[risk]` scoring (defaults unless a config says otherwise), then the operator's Bitcoin
/// address on the Bitcoin leg's chain (`btc_chain`).
fn screen_scenario(
    ctx: &Context,
    store: &Store,
    s: &Scenario,
    chain: Option<paytrace_indexer::ChainId>,
    btc_chain: Option<paytrace_indexer::ChainId>,
) -> anyhow::Result<Vec<(String, ScreenResult)>> {
    let as_of = paytrace_indexer::labels::date_of_unix(i64::try_from(s.end().0)?)
        .context("the scenario's last day")?;
    let mut p = super::screen::screen_params(&ctx.config.risk, as_of, chain);
    let mut p_btc = super::screen::screen_params(&ctx.config.risk, as_of, btc_chain);
    let units = super::report::units(ctx, store, &[])?;
    p.assets = units.book(chain);
    p_btc.assets = units.book(btc_chain);
    let clusters = super::report::StoreClusters::open(store)?;
    let history = super::report::screen_history(store, &clusters)?;
    s.payees
        .iter()
        .map(|x| (x.name.clone(), x.address, &p))
        .chain([
            ("operator".to_owned(), s.truth.operator, &p),
            (OPERATOR_BTC.to_owned(), s.bitcoin.operator(), &p_btc),
        ])
        .map(|(name, a, p)| {
            let r = screen(store, &history, &a, p).with_context(|| format!("screening {a}"))?;
            Ok((name, r))
        })
        .collect()
}

/// Reports the Bitcoin leg: the exchange's withdrawal to the operator's Bitcoin address, traced
/// on the leg's chain with the demo's labels (as `report payouts --provider-address` does),
/// written to `bitcoin-report.json` and `bitcoin-report.html` in `out`.
fn report_bitcoin(
    store: &Store,
    s: &Scenario,
    params: &ReportParams,
    as_of: Option<paytrace_indexer::labels::Date>,
    out: &Path,
) -> anyhow::Result<(paytrace_tracer::report::Report, PathBuf)> {
    let leg = &s.bitcoin;
    let chain = store.chain_by_name(&leg.chain)?.map(|c| c.id);
    let names: HashMap<Address, String> = [(leg.operator(), OPERATOR_BTC.to_owned())]
        .into_iter()
        .collect();
    let payouts = discover_payouts(store, &[leg.exchange()], None, None, None, chain, &names)?;
    let mut params = params.clone();
    params.trace.chain = chain;
    let mut book = paytrace_tracer::report::AssetBook::new();
    book.insert_bitcoin();
    let report = run_on_store(
        store,
        "ExampleX Exchange: the operator's Bitcoin withdrawal",
        &[leg.exchange()],
        &payouts,
        Vec::new(),
        book,
        &params,
        as_of,
        None,
        None,
    )?;
    let view = super::chain_view::ChainView::new(store, false)?;
    let json = out.join("bitcoin-report.json");
    std::fs::write(
        &json,
        view.rewrite_as(&(serde_json::to_string_pretty(&report)? + "\n"), false),
    )
    .with_context(|| format!("writing {}", json.display()))?;
    let html = out.join("bitcoin-report.html");
    std::fs::write(
        &html,
        view.rewrite_as(&paytrace_tracer::report::render::to_html(&report), false),
    )
    .with_context(|| format!("writing {}", html.display()))?;
    Ok((report, json))
}

fn fresh_store(dir: &Path) -> anyhow::Result<Store> {
    if dir.exists() {
        if !dir.join(MARKER).exists() {
            bail!(
                "{} exists and is not a paytrace demo store; choose another --out",
                dir.display()
            );
        }
        std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::write(
        dir.join(MARKER),
        "created by paytrace demo; removed by the next run\n",
    )?;
    Store::open(dir).with_context(|| format!("opening the store in {}", dir.display()))
}

/// Writes the scenario through the indexers' write path: ranges of blocks with their
/// checkpoint, encoded by `PreparedRange` and committed atomically.
fn ingest_offline(store: &Store, s: &Scenario) -> anyhow::Result<u64> {
    let chain = store.register_chain(DEMO_CHAIN, ChainKind::Evm)?;
    // The demo deployed its tokens itself: their metadata is declared, as `index evm` would
    // have read it from the contracts.
    for t in &s.tokens {
        let meta = paytrace_indexer::store::TokenMeta {
            symbol: Some(t.symbol.clone()),
            decimals: Some(t.decimals),
            source: paytrace_indexer::store::MetaSource::Declared,
        };
        store.put_token_meta(chain, &t.address, &meta)?;
    }
    let (blocks, transfers) = s.blocks(chain);
    let mut n = 0u64;
    for chunk in blocks.chunks(100) {
        let (Some(lo), Some(hi)) = (chunk.first(), chunk.last()) else {
            continue;
        };
        let ts: Vec<_> = transfers
            .iter()
            .filter(|t| t.key.block >= lo.number && t.key.block <= hi.number)
            .cloned()
            .collect();
        n += u64::try_from(ts.len())?;
        store.write_prepared(PreparedRange::new(chain, chunk.to_vec(), &ts)?)?;
    }
    store.persist()?;
    Ok(n)
}

fn import_labels(store: &Store, s: &Scenario, dir: &Path) -> anyhow::Result<()> {
    let csv = s.labels_csv();
    std::fs::write(dir.join("scenario-labels.csv"), &csv)?;
    let ls = LabelStore::open(store)?;
    let opts = ImportOptions {
        source: Some("demo-labels".into()),
        version: Some(
            paytrace_indexer::labels::date_of_unix(i64::try_from(s.base.0)?)
                .map(|d| d.to_string())
                .unwrap_or_else(|| "1".into()),
        ),
        ..ImportOptions::default()
    };
    let r = import_inputs(
        &ls,
        LabelFormat::Csv,
        vec![Input::from_bytes("scenario-labels.csv", csv.as_bytes())],
        &opts,
    )?;
    if r.rejected > 0 {
        bail!(
            "demo labels rejected: {}",
            r.rejects
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    Ok(())
}

impl DemoCmd {
    /// Runs the command.
    pub fn run(&self, ctx: &Context) -> anyhow::Result<ExitCode> {
        let (code, scenario) = self.build(ctx)?;
        if self.serve {
            // A fresh open for the server's writes, after every handle of the demo's run is
            // gone: `persist_for_reopen` emptied the journal under that handle, whose engine
            // would go on writing at its old offset (the next open would find it damaged).
            let dir = self.out.join("store");
            let store = Store::open_with(
                &dir,
                paytrace_indexer::OpenMode::Write,
                Some(paytrace_indexer::QUERY_CACHE_BYTES),
            )
            .with_context(|| format!("opening the store in {}", dir.display()))?;
            self.serve_ui(ctx, store, &scenario)?;
        }
        Ok(code)
    }

    /// Builds, reports, screens and checks the demo; its exit status and scenario.
    fn build(&self, ctx: &Context) -> anyhow::Result<(ExitCode, Scenario)> {
        let out = &self.out;
        std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
        let store_dir = out.join("store");
        let store = fresh_store(&store_dir)?;
        let (scenario, transfers, mode) = if self.rpc {
            let bin = super::demo_rpc::DevNode::binary(self.anvil.as_deref())?;
            // The node's clock starts days before the scenario, so the rpc run plays the
            // offline demo's dates.
            let node = super::demo_rpc::DevNode::start(&bin, DEFAULT_BASE - 8 * 86_400)?;
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            let (s, n) = rt.block_on(super::demo_rpc::deploy_and_index(node.url(), &store))?;
            (s, n, "rpc")
        } else {
            let s = Scenario::generate(DEFAULT_BASE);
            let n = ingest_offline(&store, &s)?;
            (s, n, "offline")
        };
        // The Bitcoin leg is written through the Bitcoin indexer's own decode and write path
        // in both modes (there is no Bitcoin node to deploy it on).
        let btc_transfers = scenario
            .bitcoin
            .ingest(&store)
            .context("writing the demo's Bitcoin leg")?;
        store.persist()?;
        import_labels(&store, &scenario, out)?;
        // Clustering with the default parameters (deposit addresses, airdrops); the report
        // reads the clusters for its "payees in one cluster" findings.
        let cluster_cfg = paytrace_config::ClusterConfig::default();
        let clusters = ClusterStore::open(&store).context("opening the cluster keyspaces")?;
        let cluster_run = clusters
            .run(
                &store,
                DEMO_CHAIN,
                &paytrace_app::params::cluster_params(&cluster_cfg)?,
                &super::cluster::exchanges(&store, &cluster_cfg)?,
            )
            .context("clustering the demo chain")?;
        tracing::debug!(
            merges = cluster_run.stats.merges,
            deposits = cluster_run.stats.deposits,
            "clustered"
        );
        // Everything is written: the commands of the guide open the store without a replay
        // and without writing to it.
        store.persist_for_reopen()?;
        let names: HashMap<Address, String> = scenario
            .payees
            .iter()
            .map(|p| (p.address, p.name.clone()))
            .collect();
        let chain = store.chain_by_name(DEMO_CHAIN)?.map(|c| c.id);
        let usdc = scenario.asset(0);
        let payouts = discover_payouts(
            &store,
            &[scenario.provider],
            Some(&[usdc]),
            None,
            None,
            chain,
            &names,
        )?;
        let opts = ReportOptions {
            chain,
            ..ReportOptions::default()
        };
        // Labels as of the scenario's last day decide where traces stop, so a scenario
        // shifted into the future (--rpc on a node whose clock is ahead) reads the same.
        let as_of = paytrace_indexer::labels::date_of_unix(i64::try_from(scenario.end().0)?);
        // Payee verdicts: the screening as of the same day, as `screen_scenario` below and
        // `paytrace screen --as-of` give them.
        let verdict_day = as_of.context("the scenario's last day")?;
        // The units of the demo's tokens, as the store records them.
        let book = super::report::units(ctx, &store, &[])?.book(chain);
        let (params, verdict_params) =
            report_params(&ctx.config.risk, &opts, verdict_day, book.clone());
        let report = run_on_store(
            &store,
            &scenario.provider_name,
            &[scenario.provider],
            &payouts,
            Vec::new(),
            book,
            &params,
            as_of,
            Some(&verdict_params),
            None,
        )?;
        let view = super::chain_view::ChainView::new(&store, false)?;
        let written = write_report(
            &report,
            out,
            &[Format::Html, Format::Json, Format::Csv],
            &view,
        )?;
        let btc_chain = store.chain_by_name(&scenario.bitcoin.chain)?.map(|c| c.id);
        let (btc_report, btc_file) = report_bitcoin(&store, &scenario, &params, as_of, out)?;
        let screened = screen_scenario(ctx, &store, &scenario, chain, btc_chain)?;
        let screening_file = out.join("screening.json");
        let body: Vec<_> = screened
            .iter()
            .map(|(name, r)| serde_json::json!({ "name": name, "result": r }))
            .collect();
        // Bitcoin parties by their addresses in every file (as the commands print them).
        let shown = |text: String| view.rewrite_as(&text, false);
        std::fs::write(
            &screening_file,
            shown(serde_json::to_string_pretty(&body)? + "\n"),
        )
        .with_context(|| format!("writing {}", screening_file.display()))?;
        let truth_path = out.join("ground-truth.json");
        std::fs::write(
            &truth_path,
            shown(serde_json::to_string_pretty(&scenario)? + "\n"),
        )?;
        std::fs::write(
            out.join("payroll-batch.csv"),
            scenario.batch_csv(DEMO_CHAIN),
        )?;
        let mut mismatches = check(&report, &scenario.truth);
        mismatches.extend(paytrace_tracer::demo::check_clusters(
            &report,
            &scenario.truth,
        ));
        let (evm_screened, btc_screened): (Vec<_>, Vec<_>) = screened
            .iter()
            .cloned()
            .partition(|(n, _)| n != OPERATOR_BTC);
        mismatches.extend(paytrace_tracer::demo::check_screening(
            &evm_screened,
            &scenario.truth,
        ));
        mismatches.extend(scenario.bitcoin.check(&btc_report));
        match btc_screened.first() {
            Some((_, r)) => mismatches.extend(scenario.bitcoin.check_screening(r)),
            None => mismatches.push("the operator's Bitcoin address was not screened".into()),
        }
        let leg = &scenario.bitcoin;
        let bitcoin = DemoBitcoin {
            chain: leg.chain.clone(),
            transfers: btc_transfers,
            operator: leg.text(&leg.operator()),
            withdrawal_tx: leg.withdrawal_txid.clone(),
            withdrawal: leg.withdrawal,
            destinations: btc_report
                .payouts
                .iter()
                .flat_map(|p| &p.destinations)
                .map(|d| DemoBtcDestination {
                    address: leg.text(&d.address),
                    kind: d.kind.as_str(),
                    amount: d.amount,
                    hops: d.hops,
                })
                .collect(),
            report_file: btc_file,
        };
        let screening: Vec<DemoScreen> = screened
            .iter()
            .map(|(name, r)| DemoScreen {
                name: name.clone(),
                address: r.address,
                level: r.level.as_str(),
                score: r.score,
                reason: r.reasons.first().map(|x| x.text.clone()),
            })
            .collect();
        if ctx.json {
            super::print_json_view(
                &DemoSummary {
                    mode,
                    store: store_dir.clone(),
                    transfers,
                    payouts: report.summary.payouts,
                    payees: report.summary.payees,
                    flagged_payees: &report.summary.flagged_payees,
                    convergence: report.convergence.iter().map(|f| f.key.clone()).collect(),
                    shared_deposits: report
                        .shared_deposits
                        .iter()
                        .map(|f| f.key.clone())
                        .collect(),
                    screening,
                    screening_file,
                    files: &written,
                    ground_truth: truth_path.clone(),
                    bitcoin,
                    truth_mismatches: &mismatches,
                },
                &view,
            )?;
        } else {
            println!(
                "paytrace demo ({mode}): {} transfers of a payroll scenario written to {}",
                transfers,
                store_dir.display()
            );
            print_summary(ctx, &report, &written)?;
            let book = &btc_report.assets;
            println!(
                "Bitcoin ({}): the operator withdrew {} from the exchange to {} (tx {}); traced there ({}):",
                bitcoin.chain,
                book.format_str(paytrace_tracer::report::BITCOIN_NATIVE, bitcoin.withdrawal),
                bitcoin.operator,
                bitcoin.withdrawal_tx,
                bitcoin.report_file.display()
            );
            for d in &bitcoin.destinations {
                println!(
                    "  {} {}: {} ({})",
                    d.kind.replace('_', " "),
                    d.address,
                    book.format_str(paytrace_tracer::report::BITCOIN_NATIVE, d.amount),
                    paytrace_tracer::risk::hops_text(d.hops)
                );
            }
            println!(
                "Screening as of the scenario's last day, {} ({}):",
                report.verdicts_as_of.as_deref().unwrap_or(""),
                screening_file.display()
            );
            for x in screening.iter().filter(|x| x.level != "none") {
                println!(
                    "  {} {}: {} ({:.0}) {}",
                    x.name,
                    leg.text(&x.address),
                    x.level,
                    x.score,
                    x.reason.as_deref().unwrap_or("")
                );
            }
            let clean = screening.iter().filter(|x| x.level == "none").count();
            println!("  {clean} other addresses: no exposure found");
            if mismatches.is_empty() {
                println!(
                    "Findings match the scenario's ground truth ({}).",
                    truth_path.display()
                );
            } else {
                println!("Findings DIFFER from the ground truth:");
                for m in &mismatches {
                    println!("  {m}");
                }
            }
            println!(
                "Explore: paytrace --data-dir {} trace {} --hops 3",
                store_dir.display(),
                scenario.truth.operator
            );
        }
        let code = if mismatches.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
        Ok((code, scenario))
    }

    /// `--serve`: the provider on the watchlist as a payer and the alert rules evaluated (so
    /// the inbox has the fake payees' alerts), an admin key, then the server on `--listen`;
    /// the UI's URL carries the key in its fragment (never sent to the server or logged), and
    /// the login page stores it in the HttpOnly cookie.
    fn serve_ui(&self, ctx: &Context, store: Store, s: &Scenario) -> anyhow::Result<()> {
        paytrace_app::alerts::AlertStore::open(&store)?
            .watch(
                s.provider,
                Some(format!("{} (demo)", s.provider_name)),
                true,
            )
            .context("adding the demo's provider to the watchlist")?;
        let (_, summary) = super::alerts::evaluate_rules(&ctx.config, &store)
            .context("evaluating the alert rules on the demo")?;
        let key = paytrace_app::keys::KeyStore::open(&store)?
            .create(paytrace_app::keys::Role::Admin, "demo")
            .context("creating the demo's admin API key")?;
        let args = crate::serve::ServeArgs {
            listen: self.listen,
            ..crate::serve::ServeArgs::default()
        };
        let raised = summary.raised;
        let json = ctx.json;
        args.serve_store(ctx, store, move |local| {
            let url = format!("http://{local}/ui/login#key={}", key.key);
            let line = format!(
                "Web UI: {url}\n  ({raised} alert(s) raised for the demo's payees; admin key {}; Ctrl-C stops the server)",
                key.key
            );
            // With --json the summary on stdout stays one JSON document.
            if json {
                eprintln!("{line}");
            } else {
                use std::io::Write as _;
                let mut out = crate::output::stdout();
                let _ = writeln!(out, "{line}");
                let _ = out.flush();
            }
            open_browser(&url);
        })
    }
}

/// Tries `xdg-open URL` when it is installed; any failure is ignored (the URL is printed).
fn open_browser(url: &str) {
    let found = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("xdg-open").is_file()));
    if !found || std::env::var_os("PAYTRACE_NO_BROWSER").is_some() {
        return;
    }
    let _ = std::process::Command::new("xdg-open")
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
}
