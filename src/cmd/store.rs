//! `paytrace store check` and `paytrace store repair`: verify a store, and cut a damaged one
//! back to its last intact state (only when the user asks: opening a store never does).

use super::Context;
use anyhow::Context as _;
use clap::Subcommand;
use paytrace_indexer::Store;
use std::process::ExitCode;

/// Exit status of `store check` when it found damage.
pub const EXIT_DAMAGED: u8 = 3;

/// `paytrace store ...`.
#[derive(Debug, Subcommand)]
pub enum StoreCmd {
    /// Verify the store without changing it: journals, then every table (exit status 3 when
    /// something is damaged).
    Check,
    /// Cut a store with a damaged journal back to its last intact state, saying what is lost.
    Repair,
}

impl StoreCmd {
    /// Runs the command.
    pub fn run(&self, ctx: &Context) -> anyhow::Result<ExitCode> {
        let dir = &ctx.data_dir;
        match self {
            Self::Check => {
                let r = Store::check(dir)
                    .with_context(|| format!("checking the store in {}", dir.display()))?;
                if ctx.json {
                    ctx.print_json(&r)?;
                } else {
                    println!(
                        "store {}: {}",
                        dir.display(),
                        if r.intact { "intact" } else { "DAMAGED" }
                    );
                    for j in &r.journals {
                        print!(
                            "  journal {}: {} bytes, {} intact batches",
                            j.file.display(),
                            j.bytes,
                            j.batches
                        );
                        match (j.state, j.damage_offset, &j.damage_reason) {
                            ("intact", ..) => println!(),
                            (state, Some(o), Some(why)) => {
                                println!(", {state} at byte {o}: {why}");
                            }
                            (state, ..) => println!(", {state}"),
                        }
                    }
                    if let Some(s) = &r.last_intact {
                        println!("  last intact state: {s}");
                        println!(
                            "  the store was not opened; `paytrace store repair` cuts it back to \
                             that state (the bytes after it are lost, saved to *.cut files)"
                        );
                    }
                    for k in &r.keyspaces {
                        match &k.error {
                            None => println!("  keyspace {}: {} entries", k.name, k.entries),
                            Some(e) => {
                                println!(
                                    "  keyspace {} ({}): DAMAGED after {} entries: {e}",
                                    k.name,
                                    k.folder.display(),
                                    k.entries
                                );
                                for t in &k.damaged_tables {
                                    println!(
                                        "    table file {}: DAMAGED after {} entries: {}",
                                        t.file.display(),
                                        t.entries_before,
                                        t.error
                                    );
                                }
                            }
                        }
                    }
                    for c in &r.chains {
                        match c.last_block {
                            Some(b) => println!("  chain {}: last block {b}", c.chain),
                            None => println!("  chain {}: no block", c.chain),
                        }
                    }
                    if r.keyspaces.iter().any(|k| k.error.is_some()) {
                        println!(
                            "  damaged tables cannot be repaired: re-index into a new --data-dir"
                        );
                    }
                }
                Ok(if r.intact {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(EXIT_DAMAGED)
                })
            }
            Self::Repair => {
                let r = Store::repair(dir)
                    .with_context(|| format!("repairing the store in {}", dir.display()))?;
                if ctx.json {
                    ctx.print_json(&r)?;
                } else {
                    match (&r.cut_file, r.cut_offset) {
                        (Some(f), Some(o)) => {
                            println!(
                                "store {}: cut back to its last intact state: journal {} \
                                 truncated at byte {o}; {} bytes of later writes are LOST \
                                 (saved to {})",
                                dir.display(),
                                f.display(),
                                r.lost_bytes,
                                r.saved_to
                                    .iter()
                                    .map(|p| p.display().to_string())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            );
                            println!(
                                "  re-run the commands that wrote after that state (e.g. \
                                 `paytrace index evm` resumes from the checkpoints below)"
                            );
                        }
                        _ => println!(
                            "store {}: no damaged journal, nothing to repair",
                            dir.display()
                        ),
                    }
                    for c in &r.chains {
                        match c.last_block {
                            Some(b) => println!("  chain {}: last block {b}", c.chain),
                            None => println!("  chain {}: no block", c.chain),
                        }
                    }
                }
                Ok(ExitCode::SUCCESS)
            }
        }
    }
}
