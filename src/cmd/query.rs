//! `paytrace address` and `paytrace stats`.

use super::Context;
use clap::Args;
use paytrace_app::address::parse_address;
use std::process::ExitCode;

/// Transfers in and out of an address.
#[derive(Debug, Args)]
pub struct AddressCmd {
    /// The address (0x + 40 hex digits, EIP-55 checksum checked when mixed case; a Bitcoin
    /// address; `script:<id>` or `tx:<txid>`).
    pub address: String,
    /// Only this chain.
    #[arg(long)]
    pub chain: Option<String>,
    /// At most this many transfers per direction (newest dropped first) [default: all].
    #[arg(long)]
    pub limit: Option<usize>,
}

impl AddressCmd {
    /// Runs the command.
    pub fn run(&self, ctx: &Context) -> anyhow::Result<ExitCode> {
        let address = parse_address("ADDRESS", &self.address)?;
        let store = ctx.open_store_read()?;
        let out = paytrace_app::query::address(
            &store,
            &ctx.config,
            &address,
            self.chain.as_deref(),
            self.limit,
        )?;
        if ctx.json {
            ctx.print_json(&out)?;
            return Ok(ExitCode::SUCCESS);
        }
        println!("{}", out.address);
        if out.totals.is_empty() {
            println!("  no transfers indexed");
        }
        for t in &out.totals {
            let name = t.symbol.clone().unwrap_or_else(|| t.asset.clone());
            // Text shows token units when the decimals are known; JSON keeps raw units.
            println!(
                "  {} {}: in {} ({} transfers), out {} ({} transfers)",
                t.chain,
                name,
                t.shown_incoming,
                t.incoming_count,
                t.shown_outgoing,
                t.outgoing_count
            );
        }
        for (title, list) in [("incoming", &out.incoming), ("outgoing", &out.outgoing)] {
            if list.is_empty() {
                continue;
            }
            println!("{title}:");
            for t in list {
                let other = if title == "incoming" { &t.from } else { &t.to };
                println!(
                    "  {} block {} {} {} {} {}",
                    t.chain,
                    t.block,
                    t.kind,
                    t.shown,
                    if title == "incoming" { "from" } else { "to" },
                    other
                );
                println!("      tx {}", t.tx);
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// Store statistics.
#[derive(Debug, Args)]
pub struct StatsCmd {}

impl StatsCmd {
    /// Runs the command.
    pub fn run(&self, ctx: &Context) -> anyhow::Result<ExitCode> {
        let store = ctx.open_store_read()?;
        let out = paytrace_app::query::stats(&store)?;
        if ctx.json {
            ctx.print_json(&out)?;
            return Ok(ExitCode::SUCCESS);
        }
        println!("store {} (schema {})", out.data_dir, out.schema_version);
        if out.chains.is_empty() {
            println!("  no chains indexed yet");
        }
        for c in &out.chains {
            let kinds: Vec<String> = c.by_kind.iter().map(|(k, n)| format!("{k} {n}")).collect();
            println!(
                "  {}: last block {}, {} transfers ({})",
                c.chain,
                c.last_block.map_or("none".into(), |b| b.to_string()),
                c.transfers,
                kinds.join(", ")
            );
        }
        Ok(ExitCode::SUCCESS)
    }
}
