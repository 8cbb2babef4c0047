//! `paytrace init`: write a commented example config.

use super::GlobalArgs;
use anyhow::Context as _;
use clap::Args;
use std::path::PathBuf;

/// Write a commented example config file.
#[derive(Debug, Args)]
pub struct InitCmd {
    /// Where to write it.
    #[arg(default_value = "paytrace.toml")]
    pub path: PathBuf,
    /// Overwrite an existing file.
    #[arg(long)]
    pub force: bool,
}

impl InitCmd {
    /// Writes the example config.
    pub fn run(&self, g: &GlobalArgs) -> anyhow::Result<()> {
        if self.path.exists() && !self.force {
            anyhow::bail!(
                "{} exists; pass --force to overwrite it",
                self.path.display()
            );
        }
        std::fs::write(&self.path, paytrace_config::EXAMPLE)
            .with_context(|| format!("writing {}", self.path.display()))?;
        if g.json {
            println!("{}", serde_json::json!({ "written": self.path }));
        } else {
            println!("wrote {}", self.path.display());
        }
        Ok(())
    }
}
