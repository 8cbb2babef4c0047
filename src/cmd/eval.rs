//! `paytrace eval`: the findings-quality harness (`paytrace_app::eval`). Generates seeded payroll
//! scenarios with ground truth, runs indexing, labels, clustering, the payout report,
//! screening and pattern detection on each, scores them per finding kind, and scores an AMLSim
//! sample at pattern level. JSON keys are documented in docs/cli.md.

use super::Context;
use anyhow::Context as _;
use clap::Args;
use paytrace_app::eval::{
    AmlSimKind, EvalOptions, EvalReport, Family, KindScore, analysis::AnalysisConfig,
    run as run_eval,
};
use paytrace_tracer::patterns::PatternKind;
use std::{path::PathBuf, process::ExitCode};

/// Arguments of `paytrace eval`.
#[derive(Debug, Args)]
pub struct EvalCmd {
    /// Scenario families (comma-separated or repeated): `payroll`, `holdout-like`
    /// [default: both].
    #[arg(long = "family", value_delimiter = ',', value_name = "FAMILY")]
    pub families: Vec<Family>,
    /// Scenarios per scale.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub seeds: u64,
    /// First seed.
    #[arg(long, default_value_t = 0)]
    pub seed_start: u64,
    /// Noise scale (repeatable or comma-separated), 1 to 1000 [default: 1].
    #[arg(long = "scale", value_delimiter = ',', value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub scales: Vec<u32>,
    /// An AMLSim sample directory (transactions.csv, nodes.csv, alertPatterns*.csv), scored at
    /// the level of its executed planted patterns.
    #[arg(long, value_name = "DIR")]
    pub amlsim: Option<PathBuf>,
    /// Typologies detected and scored on the AMLSim sample: fan-in, cycle (comma-separated or
    /// repeated) [default: both].
    #[arg(
        long = "amlsim-types",
        value_delimiter = ',',
        value_name = "TYPE",
        requires = "amlsim"
    )]
    pub amlsim_types: Vec<PatternKind>,
    /// Keep each scenario's store, payroll batch and ground truth under DIR/seed-S-scale-K/
    /// (to inspect a failing seed with the other commands) instead of deleting them.
    #[arg(long, value_name = "DIR")]
    pub keep: Option<PathBuf>,
}

fn fmt_ratio(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".to_owned(), |x| format!("{x:.3}"))
}

fn fmt_seeds(k: &KindScore) -> String {
    if k.failing_seeds.is_empty() {
        return "-".into();
    }
    let shown: Vec<String> = k
        .failing_seeds
        .iter()
        .take(12)
        .map(ToString::to_string)
        .collect();
    let more = k.failing_seeds.len().saturating_sub(12);
    if more > 0 {
        format!("{} (+{more})", shown.join(","))
    } else {
        shown.join(",")
    }
}

fn table(kinds: &[KindScore]) {
    println!(
        "  {:<28} {:>9} {:>7} {:>6} {:>6} {:>6}  failing seeds",
        "kind", "precision", "recall", "tp", "fp", "fn"
    );
    for k in kinds {
        println!(
            "  {:<28} {:>9} {:>7} {:>6} {:>6} {:>6}  {}",
            k.kind,
            fmt_ratio(k.precision),
            fmt_ratio(k.recall),
            k.tp,
            k.fp,
            k.fn_,
            fmt_seeds(k)
        );
    }
}

fn amlsim_table(kinds: &[AmlSimKind]) {
    println!(
        "  {:<28} {:>9} {:>7} {:>8} {:>6} {:>9} {:>7}",
        "kind", "precision", "recall", "planted", "found", "instances", "correct"
    );
    for k in kinds {
        let s = &k.score;
        println!(
            "  {:<28} {:>9.3} {:>7.3} {:>8} {:>6} {:>9} {:>7}",
            k.kind, s.precision, s.recall, s.planted, s.found, s.instances, s.correct_instances
        );
    }
}

fn print_text(r: &EvalReport) {
    for run in &r.runs {
        println!(
            "Scenarios ({}): seeds {}..={} at scale {} ({} transfers)",
            run.family,
            r.seed_start,
            r.seed_start + r.seeds.saturating_sub(1),
            run.scale,
            run.transfers
        );
        table(&run.kinds);
    }
    if let Some(a) = &r.amlsim {
        println!(
            "AMLSim {} ({} transactions, window {} s; planted: {})",
            a.dir.display(),
            a.transactions,
            a.window_secs,
            a.planted
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        amlsim_table(&a.kinds);
    }
    println!("Targets:");
    for t in &r.targets {
        println!("  [{}] {}", if t.met { "met" } else { "not met" }, t.target);
    }
}

impl EvalCmd {
    /// Runs the command.
    pub fn run(&self, ctx: &Context) -> anyhow::Result<ExitCode> {
        let cfg = AnalysisConfig::from_config(&ctx.config)?;
        let opts = EvalOptions {
            families: if self.families.is_empty() {
                Family::ALL.to_vec()
            } else {
                self.families.clone()
            },
            seeds: self.seeds,
            seed_start: self.seed_start,
            scales: if self.scales.is_empty() {
                vec![1]
            } else {
                self.scales.clone()
            },
            amlsim: self.amlsim.clone(),
            amlsim_kinds: self.amlsim_types.clone(),
            keep: self.keep.clone(),
        };
        let bar = super::progress::bar("eval", 0, "steps");
        let mut progress = |done: u64, total: u64, msg: &str| {
            if let Some(b) = &bar {
                b.set_length(total);
                b.set_position(done);
                b.set_message(msg.to_owned());
            }
        };
        let report = run_eval(&opts, &cfg, &mut progress).context("paytrace eval")?;
        super::progress::finish(bar.as_ref());
        if ctx.json {
            ctx.print_json(&report)?;
        } else {
            print_text(&report);
        }
        Ok(ExitCode::SUCCESS)
    }
}
