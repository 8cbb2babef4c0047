//! End-to-end: how the commands behave in Unix pipes and on a terminal, and their exit
//! statuses on bad command lines (docs/cli.md: 0 success, 1 error, 3 `screen --fail-on`).

#![allow(clippy::unwrap_used)] // `unwrap` is allowed in tests only (project rule)

mod common;

use common::{paytrace, run_json};
use std::{
    path::Path,
    process::{Command, Output, Stdio},
};

const PAYER: u64 = 0x11;

fn addr(n: u64) -> String {
    format!("0x{n:040x}")
}

/// A store whose chain `imported` holds a payer paying 300 payees, each forwarding to one of
/// three collectors (enough output for every command below).
fn store(d: &Path) -> std::path::PathBuf {
    let csv = d.join("t.csv");
    let mut s = String::from(
        "token_address,from_address,to_address,value,transaction_hash,log_index,block_number,block_timestamp\n",
    );
    let mut n = 0u64;
    let mut push = |from: u64, to: u64, value: u64, block: u64| {
        n += 1;
        s.push_str(&format!(
            "{},{},{},{value},0x{n:064x},{},{block},{}\n",
            addr(0xaa),
            addr(from),
            addr(to),
            n % 1000,
            1_740_787_200 + block * 12
        ));
    };
    for i in 0..300u64 {
        push(PAYER, 0x1000 + i, 1_000_000, 10);
    }
    for i in 0..300u64 {
        push(0x1000 + i, 0x50 + i % 3, 900_000, 11);
    }
    std::fs::write(&csv, s).unwrap();
    let store = d.join("store");
    let r = run_json(
        paytrace(&store)
            .args(["--json", "import", "transfers"])
            .arg(&csv),
    );
    assert_eq!(r["imported"], 600, "{r}");
    store
}

/// Runs `cmd` with its stdout a pipe whose reader is already gone.
fn run_with_closed_stdout(cmd: &mut Command) -> Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    cmd.stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

#[test]
fn a_closed_stdout_ends_every_command_quietly() {
    use std::os::unix::process::ExitStatusExt as _;
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let payer = addr(PAYER);
    let payee = addr(0x1000);
    let commands: Vec<Vec<&str>> = vec![
        vec!["stats"],
        vec!["--json", "stats"],
        vec!["address", &payee],
        vec!["patterns"],
        vec!["--json", "patterns"],
        vec!["report", "payouts", "--provider-address", &payer],
        vec![
            "report",
            "payouts",
            "--provider-address",
            &payer,
            "--format",
            "csv",
        ],
        vec!["screen", &payee, "--as-of", "2025-06-01"],
        vec!["--json", "screen", &payee, "--as-of", "2025-06-01"],
        vec!["trace", &payer],
    ];
    for args in commands {
        let out = run_with_closed_stdout(paytrace(&store).args(&args));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() || out.status.signal() == Some(13),
            "{args:?}: {}\n{err}",
            out.status
        );
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(!err.contains("Broken pipe"), "{args:?}: {err}");
    }
}

/// Runs `paytrace ARGS` on a pseudo-terminal (`script` from util-linux) and returns what it
/// printed there.
fn on_terminal(store: &Path, args: &[&str]) -> String {
    let bin = env!("CARGO_BIN_EXE_paytrace");
    let mut line = format!("'{bin}' --data-dir '{}'", store.display());
    for a in args {
        line.push_str(&format!(" '{a}'"));
    }
    let out = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .env_remove("PAYTRACE_CONFIG")
        .env_remove("PAYTRACE_DATA_DIR")
        .stdin(Stdio::null())
        .output()
        .expect("run `script` (util-linux) for a pseudo-terminal");
    assert!(
        out.status.success(),
        "{line}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn report_payouts_on_a_terminal_prints_a_summary_not_the_json_document() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let payer = addr(PAYER);
    let text = on_terminal(&store, &["report", "payouts", "--provider-address", &payer]);
    assert!(text.contains("300 payouts to 300 payees traced"), "{text}");
    assert!(text.contains("--json"), "{text}");
    assert!(text.contains("--out DIR"), "{text}");
    assert!(!text.contains("\"payouts\""), "{text}");
    // Asked for, the JSON document is printed, on a terminal too.
    let json = on_terminal(
        &store,
        &["--json", "report", "payouts", "--provider-address", &payer],
    );
    // (The terminal shows the progress bar on stderr first, then the document.)
    let title = json.find("\"title\"").expect("the JSON document");
    assert!(json[..title].trim_end().ends_with('{'), "{json}");
    assert!(json[title..].contains("\"payouts\""), "{json}");
    assert!(
        text.len() * 5 < json.len(),
        "{} / {} bytes",
        text.len(),
        json.len()
    );
    // Into a pipe, the default stays the JSON document.
    let out = paytrace(&store)
        .args(["report", "payouts", "--provider-address", &payer])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["summary"]["payouts"], 300);
}

#[test]
fn bad_option_values_exit_1_naming_the_option_and_the_accepted_formats() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path());
    let payee = addr(0x1000);
    for (args, option, detail) in [
        (
            vec!["screen", payee.as_str(), "--as-of", "2025-13-40"],
            "--as-of",
            "month",
        ),
        (
            vec!["trace", payee.as_str(), "--since", "yesterday"],
            "--since",
            "yesterday",
        ),
        (
            vec![
                "path",
                payee.as_str(),
                payee.as_str(),
                "--until",
                "2025-02-30",
            ],
            "--until",
            "day",
        ),
    ] {
        let out = paytrace(&store).args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(option), "{args:?}: {err}");
        assert!(err.contains(detail), "{args:?}: {err}");
        assert!(
            err.contains("YYYY-MM-DD") && err.contains("RFC 3339") && err.contains("Unix seconds"),
            "{args:?}: {err}"
        );
        assert!(!err.contains("invalid digit found in string"), "{err}");
    }
    // A day is a valid time everywhere.
    let out = paytrace(&store)
        .args(["--json", "trace", &addr(PAYER), "--since", "2025-03-01"])
        .args(["--until", "2025-03-01T23:59:59Z"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    // Any bad command line exits 1 as documented; help exits 0.
    let out = paytrace(&store)
        .args(["stats", "--no-such-flag"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let out = paytrace(&store)
        .args(["screen", "--help"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("--as-of"));
}
