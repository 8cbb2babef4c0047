//! Starting and stopping a real anvil node.

use super::{Result, Rpc, TestUtilError};
use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// Environment variable naming the anvil binary (overrides the installed one).
pub const ANVIL_ENV: &str = "PAYTRACE_ANVIL";

/// Where `scripts/install-anvil` puts the binary, relative to the workspace root.
const INSTALLED: &str = ".tools/anvil/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil";

/// How long anvil may take to answer after it was started.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// The workspace root (the parent of the indexer crate).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// The anvil binary: `$PAYTRACE_ANVIL`, else the one `scripts/install-anvil` installed.
///
/// Fails (telling you to run `scripts/install-anvil`) when it does not exist.
pub fn anvil_binary() -> Result<PathBuf> {
    let path = match std::env::var_os(ANVIL_ENV) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => workspace_root().join(INSTALLED),
    };
    if path.is_file() {
        Ok(path)
    } else {
        Err(TestUtilError::AnvilMissing { path })
    }
}

/// Options for starting anvil.
#[derive(Clone, Debug, Default)]
pub struct AnvilBuilder {
    no_mining: bool,
    block_time: Option<u64>,
    args: Vec<String>,
}

impl AnvilBuilder {
    /// Start with mining off (`--no-mining`): blocks are mined only by `evm_mine`.
    pub fn no_mining(mut self) -> Self {
        self.no_mining = true;
        self
    }

    /// Mine a block every `secs` seconds (`--block-time`).
    pub fn block_time(mut self, secs: u64) -> Self {
        self.block_time = Some(secs);
        self
    }

    /// Any further argument, e.g. `--gas-limit`.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Starts anvil on a free loopback port and waits until it answers.
    ///
    /// Transactions are ordered first-in first-out (`--order fifo`) so that a test controls the
    /// order of transactions inside a block.
    pub async fn spawn(self) -> Result<Anvil> {
        let bin = anvil_binary()?;
        let mut last = None;
        // A port found free may be taken before anvil binds it; try a few times.
        for _ in 0..3 {
            match self.try_spawn(&bin).await {
                Ok(a) => return Ok(a),
                Err(e @ TestUtilError::Exited { .. }) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or(TestUtilError::AnvilMissing { path: bin }))
    }

    async fn try_spawn(&self, bin: &Path) -> Result<Anvil> {
        let port = free_port().map_err(|source| TestUtilError::Spawn {
            path: bin.to_path_buf(),
            source,
        })?;
        let mut args = vec![
            "--host".to_owned(),
            "127.0.0.1".to_owned(),
            "--port".to_owned(),
            port.to_string(),
            "--order".to_owned(),
            "fifo".to_owned(),
        ];
        if self.no_mining {
            args.push("--no-mining".to_owned());
        }
        if let Some(secs) = self.block_time {
            args.push("--block-time".to_owned());
            args.push(secs.to_string());
        }
        args.extend(self.args.iter().cloned());
        let child = Command::new(bin)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|source| TestUtilError::Spawn {
                path: bin.to_path_buf(),
                source,
            })?;
        let url = format!("http://127.0.0.1:{port}");
        let mut anvil = Anvil {
            child,
            port,
            url: url.clone(),
        };
        let rpc = anvil.rpc();
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = anvil.child.try_wait() {
                return Err(TestUtilError::Exited { status, args });
            }
            if rpc.chain_id().await.is_ok() {
                return Ok(anvil);
            }
            if start.elapsed() > START_TIMEOUT {
                return Err(TestUtilError::StartTimeout {
                    url,
                    secs: START_TIMEOUT.as_secs(),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn free_port() -> std::io::Result<u16> {
    let l = TcpListener::bind(("127.0.0.1", 0))?;
    Ok(l.local_addr()?.port())
}

/// A running anvil node; killed when dropped.
#[derive(Debug)]
pub struct Anvil {
    child: Child,
    port: u16,
    url: String,
}

impl Anvil {
    /// Options for a new node.
    pub fn builder() -> AnvilBuilder {
        AnvilBuilder::default()
    }

    /// Starts a node with default options (automine on).
    pub async fn spawn() -> Result<Self> {
        AnvilBuilder::default().spawn().await
    }

    /// Its JSON-RPC URL (`http://127.0.0.1:PORT`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A JSON-RPC client for it.
    pub fn rpc(&self) -> Rpc {
        Rpc::new(&self.url)
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        // Best effort: the process may already be gone.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
