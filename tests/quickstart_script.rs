//! `scripts/quickstart` starts its own anvil and never talks to a node it did not start.
//!
//! Regression: with its port taken, the script printed anvil's `Address already in use`, then
//! filled and indexed the *other* node listening there and exited 0.

use std::{
    net::TcpListener,
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

#[test]
fn quickstart_refuses_a_port_it_does_not_own_and_sends_it_nothing() {
    // Another program already listens on the port the user asks for.
    let other = TcpListener::bind("127.0.0.1:0").expect("bind a local port");
    other.set_nonblocking(true).expect("non-blocking listener");
    let port = other.local_addr().expect("local addr").port();

    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let started = Instant::now();
    let out = Command::new(root.join("scripts/quickstart"))
        .env("PAYTRACE_QUICKSTART_PORT", port.to_string())
        .env(
            "PAYTRACE_DATA_DIR",
            tempfile::tempdir().expect("tempdir").path(),
        )
        .output()
        .expect("run scripts/quickstart");
    let stderr = String::from_utf8_lossy(&out.stderr);

    assert!(
        !out.status.success(),
        "quickstart must fail when its node cannot start:\n{stderr}"
    );
    assert!(
        stderr.contains("anvil exited before it listened") && stderr.contains("in use"),
        "the error must say the node did not start and why:\n{stderr}"
    );
    // Nothing connected to the other program: no transaction, no indexing.
    assert!(
        matches!(other.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "quickstart connected to a node it did not start"
    );
    // It fails before building anything.
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
}
