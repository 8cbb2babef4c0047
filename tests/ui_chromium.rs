//! The web UI in a real headless Chromium, driven through chromedriver with real clicks, on the
//! demo's store served by `paytrace demo --serve`: log in through the printed URL (the key
//! lands in an HttpOnly, SameSite=Strict cookie), search a fake payee, open its graph, expand
//! the consolidation wallet and see the path to the sanctioned address highlighted, click an
//! edge for its transactions, pan and zoom, export GraphML; upload the demo's batch CSV and see
//! the report; acknowledge an alert. Every step saves a screenshot under
//! `<target>/test-artifacts/ui-*.png`, checked non-blank (decoded, distinct colours counted);
//! no console errors and no request leaves the server (every asset is embedded).
//!
//! Needs the Debian packages `chromium` and `chromium-driver` (`scripts/test` installs them);
//! without them the test fails with that advice, it is never skipped.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;
#[path = "common/demo_serve.rs"]
mod demo_serve;
#[path = "common/webdriver.rs"]
mod webdriver;

use demo_serve::start_demo;
use serde_json::{Value, json};
use std::time::Duration;
use webdriver::{Driver, console_errors, requested_urls};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_ui_on_the_demo_in_headless_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    let demo = tokio::task::spawn_blocking({
        let out = out.clone();
        move || start_demo(&out)
    })
    .await
    .unwrap();
    let truth: Value =
        serde_json::from_slice(&std::fs::read(out.join("ground-truth.json")).unwrap()).unwrap();
    let fake = truth["payees"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["fake"] == json!(true))
        .expect("a fake payee");
    let payee = fake["address"].as_str().unwrap().to_lowercase();
    let operator = truth["truth"]["operator"].as_str().unwrap().to_lowercase();
    let sanctioned = truth["truth"]["sanctioned"]
        .as_str()
        .unwrap()
        .to_lowercase();

    let driver = Driver::start().await;
    let s = driver.session(&dir.path().join("profile")).await;

    // Log in through the printed URL: the key goes from the fragment into the cookie.
    s.goto(&demo.login_url).await;
    s.wait_for("the start page", "document.getElementById('search')")
        .await;
    assert_eq!(s.current_url().await, format!("{}/ui", demo.base));
    let cookies = s.cookies().await;
    let c = cookies
        .iter()
        .find(|c| c["name"] == "paytrace_key")
        .expect("the key cookie");
    assert_eq!(c["httpOnly"], json!(true), "{c}");
    assert_eq!(c["sameSite"], json!("Strict"), "{c}");
    assert_eq!(
        s.script("return document.cookie").await,
        json!(""),
        "a script can read the key"
    );
    s.screenshot("ui-search", 20).await;

    // Search the fake payee.
    s.type_into("#search", &payee).await;
    s.click("#search-submit").await;
    s.wait_for("the address page", "document.getElementById('verdict')")
        .await;
    let shown = s
        .script("return document.getElementById('address').textContent")
        .await;
    assert_eq!(shown.as_str().unwrap().to_lowercase(), payee);
    let verdict = s
        .script("return document.querySelector('#verdict .risk').textContent")
        .await;
    assert!(
        ["medium", "high", "severe"].contains(&verdict.as_str().unwrap()),
        "fake payee verdict {verdict}"
    );
    s.wait_for(
        "the payouts in the transfers",
        "document.querySelectorAll('#transfers tbody tr').length >= 6",
    )
    .await;
    s.screenshot("ui-address", 40).await;

    // Open its graph: the payee, its provider, the consolidation wallet; no sanctioned node yet.
    s.click("#open-graph").await;
    s.wait_for(
        "the graph",
        "document.querySelectorAll('svg#explore-graph g.node').length >= 3",
    )
    .await;
    let node_of = |a: &str| {
        format!(
            "return Array.from(document.querySelectorAll('svg#explore-graph g.node')).findIndex(g => g.dataset.address.toLowerCase() === '{a}')"
        )
    };
    let op = s.script(&node_of(&operator)).await.as_i64().unwrap();
    assert!(op > 0, "the operator wallet is not drawn");
    assert_eq!(s.script(&node_of(&sanctioned)).await, json!(-1));
    assert_eq!(
        s.script("return document.querySelectorAll('g.edge.on-path').length")
            .await,
        json!(0)
    );
    // Edges carry the amount in token units and the taint.
    let label = s
        .script("return document.querySelector('g.edge .edge-label').textContent")
        .await;
    assert!(
        label.as_str().unwrap().contains("USDC") && label.as_str().unwrap().contains("taint"),
        "{label}"
    );
    s.screenshot("ui-graph", 40).await;

    // Click the consolidation wallet, then expand its outflows.
    s.click(&format!("svg#explore-graph g.node[data-index=\"{op}\"]"))
        .await;
    s.wait_for(
        "the node's details",
        &format!("!document.getElementById('detail-node-{op}').hidden"),
    )
    .await;
    s.click(&format!("#detail-node-{op} a.expand.out")).await;
    s.wait_for(
        "the sanctioned address in the graph",
        "document.querySelector('svg#explore-graph g.node.sanctioned')",
    )
    .await;
    // The path seed → operator → sanctioned is highlighted.
    let path = s
        .script(
            "return Array.from(document.querySelectorAll('g.edge.on-path')).map(e => [e.dataset.from.toLowerCase(), e.dataset.to.toLowerCase()])",
        )
        .await;
    assert_eq!(
        path,
        json!([[payee, operator], [operator, sanctioned]]),
        "the highlighted path"
    );
    let stroke = s
        .script(
            "return getComputedStyle(document.querySelector('g.edge.on-path .edge-line')).stroke",
        )
        .await;
    assert_eq!(stroke, json!("rgb(214, 39, 40)"));
    assert!(
        s.current_url().await.contains("out="),
        "the expansion is in the URL"
    );
    s.screenshot("ui-graph-sanctioned-path", 40).await;

    // Click the edge to the sanctioned address: its transactions.
    let edge = s
        .script(&format!(
            "return Array.from(document.querySelectorAll('g.edge')).findIndex(e => e.dataset.to.toLowerCase() === '{sanctioned}')"
        ))
        .await
        .as_i64()
        .unwrap();
    s.click_at(&format!("g.edge[data-index=\"{edge}\"] path.edge-hit"))
        .await;
    s.wait_for(
        "the edge's transactions",
        &format!(
            "!document.getElementById('detail-edge-{edge}').hidden && document.querySelectorAll('#detail-edge-{edge} a.tx').length > 0"
        ),
    )
    .await;
    s.screenshot("ui-graph-edge", 40).await;

    // Pan and zoom move the view box.
    let before = s
        .script("return document.getElementById('explore-graph').getAttribute('viewBox')")
        .await;
    s.click("#zoom-in").await;
    let after = s
        .script("return document.getElementById('explore-graph').getAttribute('viewBox')")
        .await;
    assert_ne!(before, after, "zoom did not change the view");
    s.click("#zoom-reset").await;

    // SVG export: the drawing as a file, with its own style sheet and the highlighted path.
    let downloads = dir.path().join("downloads");
    std::fs::create_dir_all(&downloads).unwrap();
    s.downloads_to(&downloads).await;
    s.click("#export-svg").await;
    let file = downloads.join("paytrace-graph.svg");
    let start = std::time::Instant::now();
    while !file.is_file() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no SVG downloaded"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let svg = std::fs::read_to_string(&file).unwrap();
    assert!(svg.starts_with("<?xml") && svg.contains("<svg"), "{svg}");
    assert!(svg.contains("<style>"), "{svg}");
    // (The clicked edge is also `selected`.)
    assert_eq!(svg.matches("class=\"edge on-path").count(), 2, "{svg}");

    // GraphML export of the same graph.
    let graphml = s
        .script(
            "const r = new XMLHttpRequest(); r.open('GET', document.getElementById('export-graphml').getAttribute('href'), false); r.send(); return [r.status, r.responseText]",
        )
        .await;
    assert_eq!(graphml[0], json!(200));
    let text = graphml[1].as_str().unwrap();
    assert!(
        text.starts_with("<?xml") && text.contains("<graphml"),
        "{text}"
    );
    assert!(text.contains("<data key=\"d10\">true</data>"), "{text}");

    // The payout report of the demo's batch CSV.
    s.goto(&format!("{}/ui/report", demo.base)).await;
    s.type_into("#batch", out.join("payroll-batch.csv").to_str().unwrap())
        .await;
    s.click("#report-submit").await;
    s.wait_for(
        "the report",
        "document.title.startsWith('Payout report') && document.querySelectorAll('svg#flow-graph g.node').length > 10",
    )
    .await;
    let flagged = s.script("return document.body.textContent").await;
    assert!(
        flagged
            .as_str()
            .unwrap()
            .contains(fake["name"].as_str().unwrap()),
        "the report does not name the fake payee"
    );
    s.screenshot("ui-report", 40).await;

    // Acknowledge an alert.
    s.goto(&format!("{}/ui/alerts", demo.base)).await;
    s.wait_for(
        "new alerts",
        "document.querySelector('tr.alert[data-state=\"new\"] button.ack')",
    )
    .await;
    let id = s
        .script("return document.querySelector('tr.alert[data-state=\"new\"]').dataset.id")
        .await;
    let id = id.as_str().unwrap().to_owned();
    s.click(&format!("tr.alert[data-id=\"{id}\"] button.ack"))
        .await;
    s.wait_for(
        "the acknowledgement",
        &format!(
            "document.getElementById('flash') && document.querySelector('tr.alert[data-id=\"{id}\"]').dataset.state === 'acknowledged'"
        ),
    )
    .await;
    s.screenshot("ui-alerts", 20).await;

    // No console errors, and nothing was requested from anywhere but the server.
    let errs = console_errors(&s.log("browser").await);
    assert!(errs.is_empty(), "console errors: {errs:?}");
    let urls = requested_urls(&s.log("performance").await);
    assert!(
        urls.iter().any(|u| u.ends_with("/ui/assets/ui.js")),
        "{urls:?}"
    );
    let foreign: Vec<&String> = urls
        .iter()
        // The browser's own start page loads chrome:// resources; no page may reach the network.
        .filter(|u| u.starts_with("http") && !u.starts_with(&demo.base))
        .collect();
    assert!(
        foreign.is_empty(),
        "requests outside the server: {foreign:?}"
    );
    s.quit().await;
}
