//! The report as self-contained HTML (inline CSS and SVG, no scripts, no network) and as CSV.

use super::{Report, RiskLevel, graph::xml};
use paytrace_indexer::{Amount, Asset, Timestamp};
use std::fmt::Write as _;

/// A UTC date-time `YYYY-MM-DD HH:MM` of a block time.
pub fn datetime(t: Timestamp) -> String {
    i64::try_from(t.0)
        .ok()
        .and_then(|s| jiff::Timestamp::from_second(s).ok())
        .map(|ts| ts.strftime("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|| t.0.to_string())
}

/// The first reasons (already ranked by score), their "as of" day, then a count.
fn short_reasons(risk: &super::Risk) -> String {
    let v = &risk.reasons;
    let mut s = v
        .iter()
        .take(3)
        .map(|r| r.text.as_str())
        .collect::<Vec<_>>()
        .join("; ");
    if v.len() > 3 {
        s.push_str(&format!("; and {} more (JSON report)", v.len() - 3));
    }
    if let Some(d) = &risk.as_of {
        s = format!("as of {d}: {s}");
    }
    s
}

/// Per-asset amounts in token units, `; `-separated.
fn amounts(r: &Report, m: &std::collections::BTreeMap<String, Amount>) -> String {
    m.iter()
        .map(|(a, v)| match r.assets.assets.get(a) {
            Some(i) => format!("{} {}", v.to_decimal_string(i.decimals), i.symbol),
            None => format!("{v} {a}"),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn risk_class(l: RiskLevel) -> &'static str {
    l.as_str()
}

const CSS: &str = "body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222}\
h1{font-size:22px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ccc}\
table{border-collapse:collapse;margin:8px 0;font-size:13px}\
th,td{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}\
th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}\
code{font-size:12px}.risk{padding:1px 6px;border-radius:4px;font-weight:bold}\
.severe{background:#d62728;color:#fff}.high{background:#ff7f0e;color:#fff}\
.medium{background:#ffdd57}.low{background:#e8f4e8}.none{background:#eee}\
.graph{overflow:auto;border:1px solid #ddd;padding:8px}\
.legend span{display:inline-block;margin-right:12px}.legend i{display:inline-block;width:12px;height:12px;margin-right:4px;border:1px solid #333}\
.small{font-size:12px;color:#555}";

/// The report as one self-contained HTML page.
pub fn to_html(r: &Report) -> String {
    let fmt = |a: &Asset, v: Amount| r.assets.format(a, v);
    let mut s = String::new();
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Payout report: {}</title><style>{CSS}</style></head><body>",
        xml(&r.title)
    );
    let _ = write!(s, "<h1>Payout report: {}</h1>", xml(&r.title));
    let p = &r.parameters;
    let _ = write!(
        s,
        "<p class=\"small\">Model <b>{}</b>, up to {} hops after the payee; exits at {}. \
         Convergence: at least {} payees within {} hops{}. Providers: {}. Label set: {}. \
         Checkpoints: {}.</p>",
        p.model,
        p.hops,
        xml(&p
            .stop_categories
            .iter()
            .map(|c| c.as_str())
            .collect::<Vec<_>>()
            .join(", ")),
        p.convergence.min_payees,
        p.convergence.max_hops,
        p.convergence
            .window_secs
            .map(|w| format!(" and {} days", w / 86_400))
            .unwrap_or_default(),
        r.providers
            .iter()
            .map(|a| format!("<code>{a}</code>"))
            .collect::<Vec<_>>()
            .join(", "),
        xml(p.label_set_version.as_deref().unwrap_or("none")),
        p.checkpoints
            .iter()
            .map(|(c, b)| format!("chain {c} block {b}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    // Summary.
    let sm = &r.summary;
    s.push_str("<h2 id=\"summary\">Summary</h2><table class=\"summary\"><tbody>");
    let _ = write!(
        s,
        "<tr><th>Payouts traced</th><td class=\"num\">{}</td></tr>\
         <tr><th>Payees</th><td class=\"num\">{}</td></tr>",
        sm.payouts, sm.payees
    );
    for (a, v) in &sm.paid {
        let asset = a.parse().map(Asset::Token).unwrap_or(Asset::Native);
        let _ = write!(
            s,
            "<tr><th>Paid</th><td class=\"num\">{}</td></tr>",
            xml(&fmt(&asset, *v))
        );
    }
    for (cat, m) in &sm.totals {
        for (a, v) in m {
            let asset = a.parse().map(Asset::Token).unwrap_or(Asset::Native);
            let _ = write!(
                s,
                "<tr><th>&rarr; {}</th><td class=\"num\">{}</td></tr>",
                xml(&cat.replace('_', " ")),
                xml(&fmt(&asset, *v))
            );
        }
    }
    let _ = write!(
        s,
        "<tr><th>Convergence points</th><td class=\"num\">{}</td></tr>\
         <tr><th>Shared deposit addresses</th><td class=\"num\">{}</td></tr>\
         <tr><th>Payee clusters</th><td class=\"num\">{}</td></tr>\
         <tr><th>Batch rows with issues</th><td class=\"num\">{}</td></tr>",
        r.convergence.len(),
        r.shared_deposits.len(),
        r.payee_clusters.len(),
        r.issues.len()
    );
    s.push_str("</tbody></table>");
    if !sm.flagged_payees.is_empty() {
        let _ = write!(
            s,
            "<p><b>Payees whose money reached sanctioned or high-risk categories:</b> {}</p>",
            xml(&sm.flagged_payees.join(", "))
        );
    }
    // Payees.
    s.push_str(
        "<h2 id=\"payees\">Per payee</h2><table class=\"payees\"><thead><tr><th>Payee</th>\
         <th>Address</th><th>Payouts</th><th>Paid</th><th>Where it went</th><th>Risk</th>\
         </tr></thead><tbody>",
    );
    for p in &r.payees {
        let paid = p
            .paid
            .iter()
            .map(|(a, v)| fmt(&a.parse().map(Asset::Token).unwrap_or(Asset::Native), *v))
            .collect::<Vec<_>>()
            .join("<br>");
        let went = p
            .totals
            .iter()
            .flat_map(|(cat, m)| {
                m.iter().map(move |(a, v)| {
                    format!(
                        "{}: {}",
                        cat.replace('_', " "),
                        fmt(&a.parse().map(Asset::Token).unwrap_or(Asset::Native), *v)
                    )
                })
            })
            .collect::<Vec<_>>()
            .join("<br>");
        let _ = write!(
            s,
            "<tr><td>{}</td><td><code>{}</code></td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td>{}</td><td><span class=\"risk {}\">{}</span>\
             <div class=\"small\">{}</div></td></tr>",
            xml(&p.payee),
            p.address,
            p.payouts,
            xml(&paid),
            went,
            risk_class(p.risk.level),
            p.risk.level.as_str(),
            xml(&short_reasons(&p.risk))
        );
    }
    s.push_str("</tbody></table>");
    // Convergence.
    s.push_str("<h2 id=\"convergence\">Convergence findings</h2>");
    if r.convergence.is_empty() && r.shared_deposits.is_empty() && r.payee_clusters.is_empty() {
        s.push_str("<p>No address or cluster received value from several payees.</p>");
    }
    for (title, list) in [
        (
            "Addresses and clusters receiving from several payees",
            &r.convergence,
        ),
        (
            "Exchange deposit addresses shared by payees",
            &r.shared_deposits,
        ),
    ] {
        if list.is_empty() {
            continue;
        }
        let _ = write!(
            s,
            "<h3>{title}</h3><table class=\"convergence\"><thead><tr><th>#</th><th>Address / cluster</th>\
             <th>Labels</th><th>Payees</th><th>Tainted amount</th><th>Hops</th><th>Window</th>\
             <th>Evidence (transactions)</th></tr></thead><tbody>"
        );
        for f in list {
            let payees = f
                .payees
                .iter()
                .map(|p| format!("{} ({})", xml(&p.payee), xml(&amounts(r, &p.amounts))))
                .collect::<Vec<_>>()
                .join("<br>");
            let onward = f
                .onward
                .iter()
                .map(|o| {
                    format!(
                        "<br>&rarr; <code>{}</code> {} ({}, {})",
                        xml(&o.key),
                        xml(&o.labels.join(", ")),
                        xml(&amounts(r, &o.amounts)),
                        xml(&crate::risk::hops_text(o.hops))
                    )
                })
                .collect::<String>();
            let ev = f
                .evidence
                .iter()
                .map(|h| {
                    format!(
                        "<code>{}</code> {} &rarr; {} {}",
                        h.hop.tx_hash,
                        super::graph::short(&h.hop.from),
                        super::graph::short(&h.hop.to),
                        xml(&fmt(&h.asset, h.hop.tainted))
                    )
                })
                .collect::<Vec<_>>()
                .join("<br>");
            let _ = write!(
                s,
                "<tr><td>{}</td><td><code>{}</code>{onward}</td><td>{}</td><td>{}</td>\
                 <td class=\"num\">{}</td><td class=\"num\">{}</td><td>{} &ndash; {}</td>\
                 <td class=\"small\">{}</td></tr>",
                f.rank,
                xml(&f.key),
                xml(&f.labels.join(", ")),
                payees,
                xml(&amounts(r, &f.amounts)),
                f.hops,
                datetime(f.first_arrival),
                datetime(f.last_arrival),
                ev
            );
        }
        s.push_str("</tbody></table>");
    }
    if !r.payee_clusters.is_empty() {
        s.push_str("<h3>Payees in one cluster</h3><table><thead><tr><th>Cluster</th><th>Payees</th></tr></thead><tbody>");
        for c in &r.payee_clusters {
            let _ = write!(
                s,
                "<tr><td><code>{}</code></td><td>{}</td></tr>",
                xml(&c.cluster),
                c.payees
                    .iter()
                    .map(|p| format!("{} <code>{}</code>", xml(&p.payee), p.address))
                    .collect::<Vec<_>>()
                    .join("<br>")
            );
        }
        s.push_str("</tbody></table>");
    }
    // Graph.
    s.push_str("<h2 id=\"graph\">Flow graph</h2><p class=\"legend small\">");
    for k in [
        super::graph::NodeKind::Provider,
        super::graph::NodeKind::Payee,
        super::graph::NodeKind::Wallet,
        super::graph::NodeKind::ExchangeDeposit,
        super::graph::NodeKind::Exchange,
        super::graph::NodeKind::Sanctioned,
        super::graph::NodeKind::Mixer,
        super::graph::NodeKind::Bridge,
        super::graph::NodeKind::Labelled,
    ] {
        let _ = write!(
            s,
            "<span><i style=\"background:{}\"></i>{}</span>",
            k.colour(),
            k.as_str()
        );
    }
    s.push_str("<span><i style=\"border:3px solid #b00000\"></i>convergence point</span>");
    if r.graph.omitted_nodes > 0 {
        let _ = write!(
            s,
            " ({} smaller nodes omitted; see the JSON report)",
            r.graph.omitted_nodes
        );
    }
    s.push_str("</p><div class=\"graph\">");
    s.push_str(&r.graph.to_svg(&fmt));
    s.push_str("</div>");
    // Payouts.
    s.push_str(
        "<h2 id=\"payouts\">Payouts</h2><table class=\"payouts\"><thead><tr><th>Date</th><th>Payee</th>\
         <th>Amount</th><th>Transaction</th><th>Destinations (hops)</th><th>Risk</th></tr></thead><tbody>",
    );
    for p in &r.payouts {
        let d = p
            .destinations
            .iter()
            .map(|d| {
                format!(
                    "{} <code>{}</code>{}: {} ({})",
                    d.kind.as_str().replace('_', " "),
                    super::graph::short(&d.address),
                    d.labels
                        .first()
                        .map(|l| format!(" {}", xml(l)))
                        .unwrap_or_default(),
                    xml(&fmt(&d.asset, d.amount)),
                    d.hops
                )
            })
            .collect::<Vec<_>>()
            .join("<br>");
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td><code>{}</code></td>\
             <td class=\"small\">{}</td><td><span class=\"risk {}\">{}</span></td></tr>",
            datetime(p.time),
            xml(&p.payee),
            xml(&fmt(&p.asset, p.amount)),
            p.tx_hash,
            d,
            risk_class(p.risk.level),
            p.risk.level.as_str()
        );
    }
    s.push_str("</tbody></table>");
    if !r.issues.is_empty() {
        s.push_str("<h2 id=\"issues\">Batch rows not traced</h2><table class=\"issues\"><thead><tr><th>Line</th><th>Payee</th><th>Problem</th></tr></thead><tbody>");
        for i in &r.issues {
            let _ = write!(
                s,
                "<tr><td class=\"num\">{}</td><td>{}</td><td>{}</td></tr>",
                i.line,
                xml(i.payee.as_deref().unwrap_or("")),
                xml(&i.message)
            );
        }
        s.push_str("</tbody></table>");
    }
    s.push_str(
        "<p class=\"small\">Generated by paytrace. Amounts are exact; taint shares follow the \
         model named above (docs/heuristics.md).</p></body></html>\n",
    );
    s
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// The report as CSV: one row per payout and destination (a payout without destinations has
/// one row with empty destination fields). Amounts in raw units.
pub fn to_csv(r: &Report) -> String {
    let mut s = String::from(
        "payee,payee_address,payout_tx,payout_time,asset,payout_amount,risk,destination,kind,category,labels,hops,reached,amount,first_arrival_tx\n",
    );
    for p in &r.payouts {
        let head = [
            csv_field(&p.payee),
            p.address.to_string(),
            p.tx_hash.to_string(),
            p.time.0.to_string(),
            p.asset.to_string(),
            p.amount.to_string(),
            p.risk.level.as_str().to_owned(),
        ]
        .join(",");
        if p.destinations.is_empty() {
            let _ = writeln!(s, "{head},,,,,,,,");
        }
        for d in &p.destinations {
            let _ = writeln!(
                s,
                "{head},{},{},{},{},{},{},{},{}",
                d.address,
                d.kind.as_str(),
                d.category.as_ref().map(|c| c.as_str()).unwrap_or(""),
                csv_field(&d.labels.join("; ")),
                d.hops,
                d.reached,
                d.amount,
                d.first_arrival_tx
            );
        }
    }
    s
}
