//! Progress bars of the long commands, in one style: on stderr, only when stderr is a terminal
//! (nothing otherwise: logs and pipes stay clean), with a total fixed at the start, the rate
//! and the time left.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal as _;

/// The bar style for counted `unit`s (`blocks`, `addresses`, `payouts`, ...), or for bytes
/// with `unit` `"bytes"`.
pub fn style(unit: &str) -> ProgressStyle {
    let template = if unit == "bytes" {
        "{spinner} {prefix} [{bar:30}] {bytes}/{total_bytes} {msg} ({bytes_per_sec}, eta {eta})"
            .to_owned()
    } else {
        format!(
            "{{spinner}} {{prefix}} [{{bar:30}}] {{pos}}/{{len}} {unit} {{msg}} ({{per_sec}}, eta {{eta}})"
        )
    };
    ProgressStyle::with_template(&template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

/// A bar of `total` `unit`s named `prefix`, or `None` when stderr is not a terminal.
pub fn bar(prefix: &str, total: u64, unit: &str) -> Option<ProgressBar> {
    std::io::stderr().is_terminal().then(|| {
        let b = ProgressBar::new(total);
        b.set_style(style(unit));
        b.set_prefix(prefix.to_owned());
        b
    })
}

/// Clears `bar` when there is one.
pub fn finish(bar: Option<&ProgressBar>) {
    if let Some(b) = bar {
        b.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_style_has_a_total_a_rate_and_an_eta() {
        // Templates parse (a bad one would fall back to indicatif's default without rate).
        for unit in ["blocks", "bytes", "addresses"] {
            let t = if unit == "bytes" {
                "{spinner} {prefix} [{bar:30}] {bytes}/{total_bytes} {msg} ({bytes_per_sec}, eta {eta})".to_owned()
            } else {
                format!(
                    "{{spinner}} {{prefix}} [{{bar:30}}] {{pos}}/{{len}} {unit} {{msg}} ({{per_sec}}, eta {{eta}})"
                )
            };
            assert!(indicatif::ProgressStyle::with_template(&t).is_ok(), "{t}");
        }
    }
}
