//! The docs as tests: the command blocks of README.md and docs/user-guide.md marked runnable are
//! run against the offline demo, and their outputs must match the docs.
//!
//! A runnable block is a ```` ```sh ```` block right after a line `<!-- runnable -->` (its
//! output is the fenced block that follows it, compared with the commands' standard output) or
//! `<!-- runnable, output not shown -->` (the commands must succeed). Each line is one command
//! (`\` continues it, `#` starts a comment); `paytrace` and `cargo run --release --` run the
//! binary under test. The blocks of a file run in order in one empty directory, as a reader
//! would run them from a fresh checkout (the first one writes `./paytrace-demo`).
//!
//! After a change of output, regenerate the docs' outputs with
//! `PAYTRACE_BLESS=1 cargo test --test docs_examples` and review the diff; never edit them by
//! hand.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::Command;

const MARK: &str = "<!-- runnable -->";
const MARK_NO_OUTPUT: &str = "<!-- runnable, output not shown -->";

/// A runnable block: its commands, and the line range of its output block's body.
struct Block {
    commands: Vec<String>,
    /// First and one-past-last line of the expected output (inside its fences).
    output: Option<(usize, usize)>,
    line: usize,
}

fn fence(l: &str) -> bool {
    l.trim_start().starts_with("```")
}

fn parse(lines: &[&str], file: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let marked = lines[i].trim();
        if marked != MARK && marked != MARK_NO_OUTPUT {
            i += 1;
            continue;
        }
        let line = i + 1;
        assert!(
            lines.get(i + 1).is_some_and(|l| l.trim() == "```sh"),
            "{file}:{line}: a runnable mark must be followed by a ```sh block"
        );
        let mut j = i + 2;
        let mut commands = Vec::new();
        let mut cur = String::new();
        while j < lines.len() && !fence(lines[j]) {
            let l = lines[j].split(" #").next().unwrap_or("");
            let l = if l.trim_start().starts_with('#') {
                ""
            } else {
                l
            };
            match l.trim_end().strip_suffix('\\') {
                Some(part) => {
                    cur.push_str(part);
                    cur.push(' ');
                }
                None => {
                    cur.push_str(l);
                    if !cur.trim().is_empty() {
                        commands.push(cur.trim().to_owned());
                    }
                    cur.clear();
                }
            }
            j += 1;
        }
        j += 1; // closing fence
        let output = if marked == MARK {
            while j < lines.len() && lines[j].trim().is_empty() {
                j += 1;
            }
            assert!(
                lines.get(j).is_some_and(|l| fence(l)),
                "{file}:{line}: a runnable block needs its output block right after it"
            );
            let start = j + 1;
            let mut end = start;
            while end < lines.len() && !fence(lines[end]) {
                end += 1;
            }
            i = end + 1;
            Some((start, end))
        } else {
            i = j;
            None
        };
        out.push(Block {
            commands,
            output,
            line,
        });
    }
    out
}

/// Splits a command line into words (double and single quotes group words).
fn words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut any = false;
    for c in s.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                any = true;
            }
            (None, c) if c.is_whitespace() => {
                if any || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                any = false;
            }
            (None, c) => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn run(cmd: &str, cwd: &Path, file: &str, line: usize) -> String {
    let w = words(cmd);
    let args: &[String] = match w.first().map(String::as_str) {
        Some("paytrace") => &w[1..],
        Some("cargo") if w.get(1..4).is_some_and(|x| x == ["run", "--release", "--"]) => &w[4..],
        _ => panic!("{file}:{line}: not a paytrace command: {cmd}"),
    };
    let out = Command::new(env!("CARGO_BIN_EXE_paytrace"))
        .args(args)
        .current_dir(cwd)
        .env_remove("PAYTRACE_CONFIG")
        .env_remove("PAYTRACE_DATA_DIR")
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{file}:{line}: `{cmd}` failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn check_file(rel: &str) -> Vec<String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel);
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let blocks = parse(&lines, rel);
    assert!(!blocks.is_empty(), "{rel}: no runnable block");
    let cwd = tempfile::tempdir().unwrap();
    let bless = std::env::var_os("PAYTRACE_BLESS").is_some();
    let mut mismatches = Vec::new();
    // Replacements of output bodies, applied from the end when blessing.
    let mut new_bodies: Vec<((usize, usize), String)> = Vec::new();
    for b in &blocks {
        let mut got = String::new();
        for c in &b.commands {
            got.push_str(&run(c, cwd.path(), rel, b.line));
        }
        if let Some((start, end)) = b.output {
            let want = lines[start..end].join("\n");
            let got = got.trim_end().to_owned();
            if want.trim_end() != got {
                mismatches.push(format!(
                    "{rel}:{}: the output of `{}` differs from the docs:\n--- docs\n{want}\n--- now\n{got}",
                    b.line,
                    b.commands.join("; ")
                ));
                new_bodies.push(((start, end), got));
            }
        }
    }
    if bless && !new_bodies.is_empty() {
        let mut out: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
        for ((start, end), body) in new_bodies.into_iter().rev() {
            out.splice(start..end, body.lines().map(str::to_owned));
        }
        let mut s = out.join("\n");
        s.push('\n');
        std::fs::write(&path, s).unwrap();
        return Vec::new();
    }
    mismatches
}

#[test]
fn readme_and_user_guide_commands_give_the_outputs_shown() {
    let mut all = Vec::new();
    for f in ["README.md", "docs/user-guide.md"] {
        all.extend(check_file(f));
    }
    assert!(
        all.is_empty(),
        "{}\n\nRegenerate with PAYTRACE_BLESS=1 cargo test --test docs_examples",
        all.join("\n\n")
    );
}

#[test]
fn the_block_parser_reads_commands_continuations_and_outputs() {
    let doc = "x\n<!-- runnable -->\n```sh\npaytrace a \\\n    --b \"c d\"   # note\n# comment\npaytrace e\n```\n\n```\nout\n```\n";
    let lines: Vec<&str> = doc.lines().collect();
    let b = parse(&lines, "t.md");
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].commands, ["paytrace a      --b \"c d\"", "paytrace e"]);
    assert_eq!(words(&b[0].commands[0]), ["paytrace", "a", "--b", "c d"]);
    assert_eq!(b[0].output, Some((10, 11)));
}
