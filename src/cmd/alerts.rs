//! `paytrace alerts` and `paytrace watch`: alert listing and state, rule evaluation
//! (re-screening payees and watched addresses), and webhook delivery through the outbox.
//!
//! Evaluation runs on demand (`alerts evaluate`), after every `labels import`, and after each
//! committed sync step in `follow` (see [`FollowHook`]). Delivery is a JSON POST per alert and
//! webhook with an `Idempotency-Key` header (stable per alert and webhook), retried with
//! exponential backoff; what still fails stays in the outbox and is retried by the next run.

use super::{Context, screen::screen_params};
use anyhow::Context as _;
use backon::{ExponentialBuilder, Retryable};
use clap::{Args, Subcommand};
use paytrace_app::{
    address::parse_address,
    alerts::{Alert, AlertState, AlertStore, OutboxEntry},
};
use paytrace_config::{Config, WebhookConfig, WebhookFormat};
use paytrace_indexer::{Address, BlockNumber, ChainId, Direction, Store, StoreError, stage::Stage};
use paytrace_tracer::{
    FlowSource,
    alerts::{Role, evaluate_with_units},
    report::{ReportParams, discover_payouts},
    risk::{CachedSource, RiskLevel, screen_all},
};
use serde::Serialize;
use std::{
    collections::BTreeMap,
    process::ExitCode,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU32, Ordering},
    },
    time::Duration,
};

/// Alerts: list (default), acknowledge, close, evaluate, deliver.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AlertsCmd {
    /// What to do [default: list].
    #[command(subcommand)]
    pub action: Option<AlertsAction>,
    /// Only alerts in this state (new, acknowledged, closed).
    #[arg(long, value_parser = parse_state)]
    pub state: Option<AlertState>,
}

/// Alert actions.
#[derive(Debug, Subcommand)]
pub enum AlertsAction {
    /// List alerts (JSON lines with --json).
    List {
        /// Only alerts in this state.
        #[arg(long, value_parser = parse_state)]
        state: Option<AlertState>,
    },
    /// Acknowledge an alert.
    Ack {
        /// Alert id.
        id: u64,
    },
    /// Close an alert.
    Close {
        /// Alert id.
        id: u64,
    },
    /// Re-screen payees and watched addresses, raise new alerts, deliver them.
    Evaluate,
    /// Retry the webhook deliveries left in the outbox.
    Deliver,
}

/// Watchlist.
#[derive(Debug, Subcommand)]
pub enum WatchCmd {
    /// Add (or update) an address.
    Add {
        /// The address.
        address: String,
        /// Free text.
        #[arg(long)]
        note: Option<String>,
        /// The address pays out (payroll provider): its receivers are screened as payees.
        #[arg(long)]
        payer: bool,
    },
    /// Remove an address.
    Remove {
        /// The address.
        address: String,
    },
    /// List the watchlist.
    List,
}

fn parse_state(s: &str) -> Result<AlertState, String> {
    s.parse()
}

/// What one evaluation did (`alerts evaluate --json`, and logged after imports and syncs).
#[derive(Debug, Default, Serialize)]
pub struct EvalSummary {
    /// Addresses screened.
    pub screened: usize,
    /// Findings of the rules (before deduplication).
    pub findings: usize,
    /// Alerts raised (new findings).
    pub raised: usize,
    /// Deliveries made.
    pub delivered: usize,
    /// Deliveries that failed and stay in the outbox.
    pub pending: usize,
}

/// Subjects with their roles, and the payers.
type Subjects = (Vec<(Role, Address)>, Vec<Address>);

/// The subjects: watched addresses and payees of the payers (config and watchlist); and the
/// payers.
fn subjects(cfg: &Config, store: &Store, alerts: &AlertStore) -> anyhow::Result<Subjects> {
    let mut out: BTreeMap<Address, Role> = BTreeMap::new();
    let mut payers = Vec::new();
    for p in &cfg.alerts.payers {
        payers.push(parse_address("alerts.payers", p)?);
    }
    for w in alerts.watchlist()? {
        if w.payer {
            payers.push(w.address);
        } else {
            out.insert(w.address, Role::Watched);
        }
    }
    for p in &payers {
        for t in FlowSource::address_transfers(store, p, Direction::Outgoing, None)? {
            if !t.to.is_tx() && t.to != *p {
                out.entry(t.to).or_insert(Role::Payee);
            }
        }
    }
    payers.sort();
    payers.dedup();
    Ok((out.into_iter().map(|(a, r)| (r, a)).collect(), payers))
}

/// Screens the subjects, evaluates the rules and stores the new alerts (with their outbox
/// entries). Returns the new alerts and the summary without deliveries.
pub fn evaluate_rules(cfg: &Config, store: &Store) -> anyhow::Result<(Vec<Alert>, EvalSummary)> {
    let alerts = AlertStore::open(store)?;
    let (subjects, payers) = subjects(cfg, store, &alerts)?;
    let clusters = super::report::StoreClusters::open(store)?;
    let history = super::report::screen_history(store, &clusters)?;
    let rules = cfg.alerts.rules_or_default();
    let today = paytrace_indexer::labels::today();
    let mut p = screen_params(&cfg.risk, today, None);
    let units = paytrace_app::units::Units::load(store, cfg)?;
    p.assets = units.book(None);
    if let Some(pp) = p.patterns.as_mut() {
        pp.assets = p.assets.clone();
    }
    let rule_hops = rules.iter().map(|r| r.max_hops).max().unwrap_or(1);
    p.hops = p.hops.max(rule_hops.saturating_sub(1)).clamp(1, 10);
    // Subjects are screened on every core (at most 8) sharing one history cache; the results
    // come back in subject order, so findings and alert ids do not depend on the thread count.
    let src = CachedSource::new(store, super::screen::HISTORY_CACHE);
    let addresses: Vec<Address> = subjects.iter().map(|(_, a)| *a).collect();
    let mut results = Vec::with_capacity(subjects.len());
    for ((role, a), r) in subjects
        .iter()
        .zip(screen_all(&src, &history, &addresses, &p, 0))
    {
        results.push((*role, r.with_context(|| format!("screening {a}"))?));
    }
    // Convergence rules: one alert per finding of the payout report over the payers' payouts
    // (the report's rules: one finding per destination, continuations folded, services
    // ignored).
    let conv_rules: Vec<_> = rules
        .iter()
        .filter(|r| r.kind == paytrace_config::RuleKind::Convergence)
        .collect();
    let convergence = if conv_rules.is_empty() || payers.is_empty() {
        None
    } else {
        let payouts = discover_payouts(
            store,
            &payers,
            None,
            None,
            None,
            None,
            &std::collections::HashMap::new(),
        )?;
        let mut rp = ReportParams::default();
        rp.convergence.min_payees = conv_rules
            .iter()
            .map(|r| r.min_payees.max(2))
            .min()
            .unwrap_or(2);
        rp.convergence.max_hops = conv_rules
            .iter()
            .map(|r| r.max_hops.max(1))
            .max()
            .unwrap_or(1);
        rp.trace.max_hops = rp.convergence.max_hops;
        rp.scoring = p.scoring.clone();
        rp.as_of = Some(today);
        let r = super::report::run_on_store(
            store,
            "alerts",
            &payers,
            &payouts,
            Vec::new(),
            p.assets.clone(),
            &rp,
            None,
            None,
            None,
        )
        .context("building the payout report for the convergence rules")?;
        Some(r.convergence)
    };
    let findings = evaluate_with_units(&rules, &results, convergence.as_deref(), &p.assets);
    let hooks: Vec<(String, RiskLevel)> = cfg
        .alerts
        .webhooks
        .iter()
        .map(|w| {
            (
                w.name.clone(),
                w.min_severity.parse().unwrap_or(RiskLevel::Low),
            )
        })
        .collect();
    let new = alerts.raise(&findings, &hooks)?;
    for a in &new {
        tracing::info!(id = a.id, rule = %a.rule, severity = %a.severity, subject = %a.subject, "alert raised");
    }
    let summary = EvalSummary {
        screened: subjects.len(),
        findings: findings.len(),
        raised: new.len(),
        ..EvalSummary::default()
    };
    Ok((new, summary))
}

/// The body posted for `a` in `format`.
pub fn payload(a: &Alert, format: WebhookFormat) -> serde_json::Value {
    match format {
        WebhookFormat::Json => serde_json::to_value(a).unwrap_or_default(),
        WebhookFormat::Slack => serde_json::json!({
            "text": format!(
                "[{}] paytrace alert #{} ({}): {}",
                a.severity.as_str().to_uppercase(),
                a.id,
                a.rule,
                a.text
            )
        }),
    }
}

async fn post_once(
    client: &reqwest::Client,
    hook: &WebhookConfig,
    e: &OutboxEntry,
    body: &serde_json::Value,
) -> Result<(), String> {
    let resp = client
        .post(&hook.url)
        .timeout(Duration::from_secs(hook.timeout_secs))
        .header("Idempotency-Key", &e.idempotency_key)
        .header("X-Paytrace-Alert-Id", e.alert.to_string())
        .json(body)
        .send()
        .await
        .map_err(|err| format!("request failed: {err}"))?;
    let status = resp.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("HTTP {status}"))
    }
}

/// Delivers every outbox entry whose webhook is configured; failures stay in the outbox.
/// Returns (delivered, still pending).
pub async fn deliver(cfg: &Config, store: &Store) -> anyhow::Result<(usize, usize)> {
    let alerts = AlertStore::open(store)?;
    let hooks: BTreeMap<&str, &WebhookConfig> = cfg
        .alerts
        .webhooks
        .iter()
        .map(|w| (w.name.as_str(), w))
        .collect();
    let client = reqwest::Client::builder()
        .build()
        .context("building the HTTP client")?;
    let (mut ok, mut pending) = (0usize, 0usize);
    for e in alerts.outbox()? {
        let Some(hook) = hooks.get(e.webhook.as_str()) else {
            tracing::warn!(alert = e.alert, webhook = %e.webhook, "webhook no longer configured; delivery kept in the outbox");
            pending += 1;
            continue;
        };
        let Some(a) = alerts.get(e.alert)? else {
            continue;
        };
        let body = payload(&a, hook.format);
        let attempts = AtomicU32::new(0);
        let res = (|| async {
            attempts.fetch_add(1, Ordering::Relaxed);
            post_once(&client, hook, &e, &body).await
        })
        .retry(
            ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(hook.min_backoff_ms))
                .with_max_delay(Duration::from_secs(60))
                .with_max_times(usize::try_from(hook.max_attempts.saturating_sub(1)).unwrap_or(0)),
        )
        .notify(|err, dur| {
            tracing::warn!(alert = e.alert, webhook = %e.webhook, error = %err, retry_in_ms = dur.as_millis(), "webhook delivery failed; retrying");
        })
        .await;
        let n = attempts.load(Ordering::Relaxed);
        match res {
            Ok(()) => {
                alerts.delivered(&e)?;
                tracing::info!(alert = e.alert, webhook = %e.webhook, attempts = n, "alert delivered");
                ok += 1;
            }
            Err(err) => {
                alerts.delivery_failed(&e, n, &err)?;
                tracing::warn!(alert = e.alert, webhook = %e.webhook, attempts = n, error = %err, "delivery failed; kept in the outbox for the next run");
                pending += 1;
            }
        }
    }
    Ok((ok, pending))
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Evaluation plus delivery, from synchronous code outside any async runtime (CLI commands).
pub fn evaluate_and_deliver(
    cfg: &Config,
    store: &Store,
) -> anyhow::Result<(Vec<Alert>, EvalSummary)> {
    let (new, mut s) = evaluate_rules(cfg, store)?;
    if !cfg.alerts.webhooks.is_empty() {
        let (ok, pending) = runtime()?.block_on(deliver(cfg, store))?;
        s.delivered = ok;
        s.pending = pending;
    }
    Ok((new, s))
}

/// Re-screens after a label change (called by `labels import`); logs a summary. Failures are
/// logged, not fatal: the import itself succeeded.
pub fn after_labels_change(cfg: &Config, store: &Store) {
    match evaluate_and_deliver(cfg, store) {
        Ok((_, s)) => tracing::info!(
            screened = s.screened,
            findings = s.findings,
            raised = s.raised,
            delivered = s.delivered,
            pending = s.pending,
            "re-screened after the label import"
        ),
        Err(e) => tracing::error!(
            error = format!("{e:#}"),
            "re-screening after the label import failed; run `paytrace alerts evaluate`"
        ),
    }
}

/// Runs rule evaluation and delivery after the `follow` loop commits new blocks: its
/// [`AlertsStage`] in the sync's pipeline marks the hook dirty, a background task evaluates at most once per `every`. [`FollowHook::stop`]
/// ends the task cleanly (a last evaluation of what was committed, no write left running), so
/// that the command can close the store for a write-free next open.
pub struct FollowHook {
    dirty: Arc<AtomicBool>,
    stop: Arc<tokio::sync::Notify>,
    task: tokio::task::JoinHandle<()>,
}

/// One evaluation and delivery round of [`FollowHook`].
async fn hook_round(cfg: &Config, store: &Store) {
    let (c, s) = (cfg.clone(), store.clone());
    let res = tokio::task::spawn_blocking(move || evaluate_rules(&c, &s)).await;
    match res {
        Ok(Ok((_, s))) => tracing::info!(
            screened = s.screened,
            raised = s.raised,
            "alert rules evaluated after sync"
        ),
        Ok(Err(e)) => tracing::error!(
            error = format!("{e:#}"),
            "alert evaluation after sync failed"
        ),
        Err(e) => tracing::error!(error = %e, "alert evaluation task failed"),
    }
    if !cfg.alerts.webhooks.is_empty()
        && let Err(e) = deliver(cfg, store).await
    {
        tracing::error!(
            error = format!("{e:#}"),
            "webhook delivery after sync failed"
        );
    }
}

impl FollowHook {
    /// Starts the background task on the current tokio runtime.
    pub fn start(cfg: Config, store: Store, every: Duration) -> Self {
        let dirty = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(tokio::sync::Notify::new());
        let (flag, stopped) = (Arc::clone(&dirty), Arc::clone(&stop));
        let task = tokio::spawn(async move {
            loop {
                let last = tokio::select! {
                    () = tokio::time::sleep(every) => false,
                    () = stopped.notified() => true,
                };
                if flag.swap(false, Ordering::SeqCst) {
                    hook_round(&cfg, &store).await;
                }
                if last {
                    break;
                }
            }
        });
        Self { dirty, stop, task }
    }

    /// The hook as a stage of the sync's pipeline: each commit marks it dirty.
    pub fn stage(&self) -> AlertsStage {
        AlertsStage {
            dirty: Arc::clone(&self.dirty),
        }
    }

    /// Ends the background task: evaluates what was committed since its last round, then
    /// returns once nothing of it runs (its store handle is dropped).
    pub async fn stop(self) {
        self.stop.notify_one();
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "alert task failed");
        }
    }
}

/// The alert rules as the last stage of `follow`'s pipeline: after a commit it marks its
/// [`FollowHook`] dirty, whose background task evaluates the rules and delivers (at most once
/// per poll interval). It keeps no per-chain progress: each evaluation screens the store as it
/// is, and an unwind needs nothing undone.
pub struct AlertsStage {
    dirty: Arc<AtomicBool>,
}

impl Stage for AlertsStage {
    fn id(&self) -> &'static str {
        "alerts"
    }

    fn progress(&self, _store: &Store, _chain: ChainId) -> Result<Option<BlockNumber>, StoreError> {
        Ok(None)
    }

    fn execute(&self, _store: &Store, _chain: ChainId, _name: &str) -> Result<(), StoreError> {
        self.dirty.store(true, Ordering::SeqCst);
        Ok(())
    }
}

fn print_alert_text(a: &Alert) {
    println!(
        "#{}\t{}\t{}\t{}\t{}\t{}",
        a.id, a.state, a.severity, a.rule, a.subject, a.text
    );
}

impl AlertsCmd {
    /// Runs the command.
    pub fn run(&self, ctx: &Context) -> anyhow::Result<ExitCode> {
        let read_only = matches!(self.action, None | Some(AlertsAction::List { .. }));
        let store = if read_only {
            ctx.open_store_read()?
        } else {
            ctx.open_store()?
        };
        let alerts = AlertStore::open(&store)?;
        let list = |state: Option<AlertState>| -> anyhow::Result<()> {
            let all = alerts.list(state)?;
            if all.is_empty() && !ctx.json {
                println!(
                    "no alerts{} in {}: alerts are raised by `paytrace alerts evaluate` and \
                     `paytrace follow` for the {} address(es) of the watchlist and the payees \
                     of payers",
                    state.map_or_else(String::new, |s| format!(" in state {s}")),
                    ctx.data_dir.display(),
                    alerts.watchlist()?.len()
                );
            }
            for a in all {
                if ctx.json {
                    println!("{}", serde_json::to_string(&a)?);
                } else {
                    print_alert_text(&a);
                }
            }
            Ok(())
        };
        match &self.action {
            None => list(self.state)?,
            Some(AlertsAction::List { state }) => list(state.or(self.state))?,
            Some(AlertsAction::Ack { id }) | Some(AlertsAction::Close { id }) => {
                let st = if matches!(self.action, Some(AlertsAction::Ack { .. })) {
                    AlertState::Acknowledged
                } else {
                    AlertState::Closed
                };
                let a = alerts.set_state(*id, st)?;
                if ctx.json {
                    println!("{}", serde_json::to_string(&a)?);
                } else {
                    println!("alert #{} is {}", a.id, a.state);
                }
            }
            Some(AlertsAction::Evaluate) => {
                let (new, s) = evaluate_and_deliver(&ctx.config, &store)?;
                if ctx.json {
                    for a in &new {
                        println!("{}", serde_json::to_string(a)?);
                    }
                } else {
                    for a in &new {
                        print_alert_text(a);
                    }
                    println!(
                        "screened {}, {} findings, {} new alerts, {} delivered, {} pending",
                        s.screened, s.findings, s.raised, s.delivered, s.pending
                    );
                }
            }
            Some(AlertsAction::Deliver) => {
                let (ok, pending) = runtime()?.block_on(deliver(&ctx.config, &store))?;
                if ctx.json {
                    println!(
                        "{}",
                        serde_json::json!({ "delivered": ok, "pending": pending })
                    );
                } else {
                    println!("{ok} delivered, {pending} pending");
                }
            }
        }
        // The next (read) open replays nothing and writes nothing.
        store.persist_for_reopen()?;
        Ok(ExitCode::SUCCESS)
    }
}

impl WatchCmd {
    /// Runs the command.
    pub fn run(&self, ctx: &Context) -> anyhow::Result<ExitCode> {
        let store = if matches!(self, Self::List) {
            ctx.open_store_read()?
        } else {
            ctx.open_store()?
        };
        let alerts = AlertStore::open(&store)?;
        match self {
            Self::Add {
                address,
                note,
                payer,
            } => {
                let e = alerts.watch(parse_address("ADDRESS", address)?, note.clone(), *payer)?;
                if ctx.json {
                    println!("{}", serde_json::to_string(&e)?);
                } else {
                    println!(
                        "watching {}{}",
                        e.address,
                        if e.payer { " (payer)" } else { "" }
                    );
                }
            }
            Self::Remove { address } => {
                let a = parse_address("ADDRESS", address)?;
                let had = alerts.unwatch(&a)?;
                if ctx.json {
                    println!("{}", serde_json::json!({ "address": a, "removed": had }));
                } else if had {
                    println!("no longer watching {a}");
                } else {
                    println!("{a} was not on the watchlist");
                }
            }
            Self::List => {
                for e in alerts.watchlist()? {
                    if ctx.json {
                        println!("{}", serde_json::to_string(&e)?);
                    } else {
                        println!(
                            "{}\t{}\t{}",
                            e.address,
                            if e.payer { "payer" } else { "watched" },
                            e.note.as_deref().unwrap_or("")
                        );
                    }
                }
            }
        }
        // The next (read) open replays nothing and writes nothing.
        store.persist_for_reopen()?;
        Ok(ExitCode::SUCCESS)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests only
mod tests {
    use super::*;

    /// `FollowHook::stop` runs the last evaluation of what was committed and returns once the
    /// task is gone (before, the task was detached and never ended: it could still write when
    /// `follow` closed the store). The store then closes for a write-free reopen.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_follow_hook_stops_cleanly_after_a_last_round() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let hook = FollowHook::start(Config::default(), store.clone(), Duration::from_secs(3600));
        // A commit, as the sync's pipeline reports it.
        hook.stage().execute(&store, ChainId(1), "dev").unwrap();
        let started = std::time::Instant::now();
        tokio::time::timeout(Duration::from_secs(60), hook.stop())
            .await
            .expect("the hook stops without waiting for its next round");
        assert!(started.elapsed() < Duration::from_secs(60));
        // The task dropped its store handle: this one is the last.
        store.persist_for_reopen().unwrap();
        drop(store);
        drop(Store::open_read(dir.path()).unwrap());
    }
}
