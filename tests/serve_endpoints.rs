//! HTTP tests of every `/v1` query endpoint on the offline demo store: each answer equals the
//! CLI's `--json` output for the same question; budgets (422), bad input naming the field
//! (400), missing objects (404), roles (403) and the audit log of mutations.

mod common;

use common::{
    paytrace, run_json,
    serve::{Server, create_key, demo_store},
};
use reqwest::{Client, StatusCode};
use serde_json::Value;

const KAI: &str = "0x3433ab8Ee29B8b896a4b7e7d5F669595D7F24C5D";
const PROVIDER: &str = "0x9E35B01C15A4Dc0dcA929b819d2a9711614c7Ab1";
const CONVERGENCE: &str = "0xFB912BA54551CFA96518b1D93fC7188067Eb6A80";
const UNUSED: &str = "0x00000000000000000000000000000000000000aa";

struct Api {
    c: Client,
    srv: Server,
    key: String,
}

impl Api {
    async fn get(&self, path: &str) -> (StatusCode, Value) {
        send(self.c.get(self.srv.url(path)).bearer_auth(&self.key)).await
    }
}

/// Sends `r`; the answer must validate against the OpenAPI document.
async fn send(r: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let (client, req) = r.build_split();
    let req = req.expect("a request");
    let (method, path) = (req.method().to_string(), req.url().path().to_owned());
    let r = client.execute(req).await.expect("request");
    let st = r.status();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().expect("ascii").to_owned())
        .unwrap_or_default();
    let text = r.text().await.expect("body");
    common::serve::check_answer(
        &common::serve::openapi(),
        &method,
        &path,
        st.as_u16(),
        &ct,
        &text,
    );
    (
        st,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn every_query_answers_as_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let store = demo_store(&dir.path().join("demo"));
    let cli = |args: &[&str]| run_json(paytrace(&store).args(args));
    let address = cli(&["address", KAI, "--json"]);
    let trace = cli(&["trace", KAI, "--hops", "3", "--format", "json"]);
    let path = cli(&["path", KAI, CONVERGENCE, "--json"]);
    let screen = cli(&["screen", KAI, "--json"]);
    let cluster = cli(&["cluster", "show", KAI, "--json"]);
    let explain = cli(&["cluster", "explain", KAI, CONVERGENCE, "--json"]);
    let labels_show = cli(&["labels", "show", PROVIDER, "--json"]);
    let labels_list = cli(&["labels", "list", "--json"]);
    let analyst = create_key(&store, "analyst");
    let srv = Server::start(&store, &["--max-hops", "6", "--max-bulk", "2"]);
    let api = Api {
        c: Client::new(),
        srv,
        key: analyst,
    };

    let (st, v) = api.get(&format!("/v1/address/{KAI}")).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v, address);

    // Cursor pagination walks the same transfers, one page at a time.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = cursor
            .as_ref()
            .map_or(String::new(), |c| format!("&cursor={c}"));
        let (st, page) = api
            .get(&format!(
                "/v1/address/{KAI}/transfers?direction=incoming&limit=1{q}"
            ))
            .await;
        assert_eq!(st, StatusCode::OK, "{page}");
        seen.extend(page["transfers"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(&Value::Array(seen), &address["incoming"]);
    let (st, p) = api
        .get(&format!("/v1/address/{KAI}/transfers?cursor=zz"))
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(p["field"], "cursor");

    let (st, v) = api.get(&format!("/v1/trace?seed={KAI}&hops=3")).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    for k in ["destinations", "totals_by_category", "paths", "seed"] {
        assert_eq!(v[k], trace[k], "{k}");
    }
    assert_eq!(v["truncated"], false);
    let (st, dot) = api
        .get(&format!("/v1/trace?seed={KAI}&hops=3&format=dot"))
        .await;
    assert_eq!(st, StatusCode::OK);
    assert!(dot.as_str().unwrap().starts_with("digraph"), "{dot}");
    let (st, gml) = api
        .get(&format!("/v1/trace?seed={KAI}&hops=3&format=graphml"))
        .await;
    assert_eq!(st, StatusCode::OK);
    assert!(gml.as_str().unwrap().contains("<graphml"));
    for model in ["poison", "haircut", "fifo", "lifo"] {
        let (st, v) = api
            .get(&format!("/v1/trace?seed={KAI}&model={model}&backward=true"))
            .await;
        assert_eq!(st, StatusCode::OK, "{model}: {v}");
    }
    // Budgets: 422 naming the limit.
    let (st, p) = api.get(&format!("/v1/trace?seed={KAI}&hops=9")).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(p["limit"], "hops");
    let (st, p) = api
        .get(&format!("/v1/trace?seed={KAI}&max_nodes=99999999"))
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(p["limit"], "nodes");
    // Bad input names the field; nothing to trace is 404 with the CLI's explanation.
    let (st, p) = api.get("/v1/trace?seed=0x12").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(p["field"], "seed");
    let (st, p) = api.get(&format!("/v1/trace?seed={KAI}&model=magic")).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(p["field"], "model");
    let (st, p) = api.get(&format!("/v1/trace?seed={KAI}&hops=x")).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(p["field"], "hops");
    let (st, p) = api.get("/v1/trace").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(p["field"], "seed");
    let (st, p) = api.get(&format!("/v1/trace?seed={UNUSED}")).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .starts_with("nothing to trace"),
        "{p}"
    );

    let (st, v) = api
        .get(&format!("/v1/path?from={KAI}&to={CONVERGENCE}"))
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v, path);
    let (st, p) = api.get(&format!("/v1/path?from={KAI}")).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{p}");

    let (st, v) = api.get(&format!("/v1/screen/{KAI}")).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v, screen);
    let (st, v) = send(
        api.c
            .post(api.srv.url("/v1/screen"))
            .bearer_auth(&api.key)
            .json(&serde_json::json!({ "addresses": [KAI, PROVIDER] })),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["results"][0], screen);
    assert_eq!(v["results"].as_array().unwrap().len(), 2);
    let (st, p) = send(
        api.c
            .post(api.srv.url("/v1/screen"))
            .bearer_auth(&api.key)
            .json(&serde_json::json!({ "addresses": [KAI, PROVIDER, UNUSED] })),
    )
    .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(p["limit"], "bulk");
    let (st, p) = send(
        api.c
            .post(api.srv.url("/v1/screen"))
            .bearer_auth(&api.key)
            .json(&serde_json::json!({ "addresses": [KAI, "0xnope"] })),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(p["field"], "addresses[1]");
    let (st, p) = send(
        api.c
            .post(api.srv.url("/v1/screen"))
            .bearer_auth(&api.key)
            .header("content-type", "application/json")
            .body("{\n \"addresses\": [1]\n}"),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(p["field"], "addresses[0]");
    assert_eq!(p["line"], 2);

    let (st, v) = api.get(&format!("/v1/cluster/{KAI}")).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v, cluster);
    let (st, v) = api
        .get(&format!("/v1/cluster-explain?a={KAI}&b={CONVERGENCE}"))
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v, explain);

    let (st, v) = api.get(&format!("/v1/labels/{PROVIDER}")).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v, labels_show);
    let (st, v) = api.get("/v1/labels?limit=1000").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v, labels_list);
    let (st, v) = api.get("/v1/labels?limit=2&offset=1").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        v.as_array().unwrap()[..],
        labels_list.as_array().unwrap()[1..3]
    );
    let (st, p) = api.get("/v1/labels?category=nonsense").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(p["field"], "category");
}

#[tokio::test(flavor = "multi_thread")]
async fn alerts_and_watchlist_need_the_compliance_role_and_are_audited() {
    let dir = tempfile::tempdir().unwrap();
    let store = demo_store(&dir.path().join("demo"));
    let analyst = create_key(&store, "analyst");
    let compliance = create_key(&store, "compliance");
    let admin = create_key(&store, "admin");
    let srv = Server::start(&store, &[]);
    let c = Client::new();

    let (st, v) = send(c.get(srv.url("/v1/alerts")).bearer_auth(&analyst)).await;
    assert_eq!(st, StatusCode::OK);
    assert!(v.is_array());
    let (st, p) = send(c.get(srv.url("/v1/alerts?state=odd")).bearer_auth(&analyst)).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(p["field"], "state");

    // 403 for an analyst, 404 for an unknown alert.
    let (st, _) = send(c.post(srv.url("/v1/alerts/999/ack")).bearer_auth(&analyst)).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, p) = send(
        c.post(srv.url("/v1/alerts/999/ack"))
            .bearer_auth(&compliance),
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{p}");
    let (st, p) = send(
        c.post(srv.url("/v1/alerts/x/close"))
            .bearer_auth(&compliance),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(p["field"], "id");

    // The watchlist: add, list, remove.
    let put = |key: &str| {
        c.put(srv.url(&format!("/v1/watchlist/{KAI}")))
            .bearer_auth(key)
            .json(&serde_json::json!({ "note": "fake payee", "payer": false }))
    };
    let (st, _) = send(put(&analyst)).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, e) = send(put(&compliance)).await;
    assert_eq!(st, StatusCode::OK, "{e}");
    assert_eq!(e["note"], "fake payee");
    let (st, list) = send(c.get(srv.url("/v1/watchlist")).bearer_auth(&analyst)).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["address"], KAI);
    let (st, r) = send(
        c.delete(srv.url(&format!("/v1/watchlist/{KAI}")))
            .bearer_auth(&compliance),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(r["removed"], true);

    // Each mutation is in the audit log, with who and what; reads are not.
    let (st, log) = send(c.get(srv.url("/v1/audit")).bearer_auth(&admin)).await;
    assert_eq!(st, StatusCode::OK);
    let log = log.as_array().unwrap();
    let actions: Vec<(&str, u64)> = log
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e["status"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        actions,
        [
            ("POST /v1/alerts/999/ack", 403),
            ("POST /v1/alerts/999/ack", 404),
            ("POST /v1/alerts/x/close", 400),
            (format!("PUT /v1/watchlist/{KAI}").as_str(), 403),
            (format!("PUT /v1/watchlist/{KAI}").as_str(), 200),
            (format!("DELETE /v1/watchlist/{KAI}").as_str(), 200),
        ]
    );
    assert_eq!(log[4]["role"], "compliance");
    assert_eq!(log[4]["target"], KAI);
}

#[tokio::test(flavor = "multi_thread")]
async fn payout_report_and_label_import_uploads() {
    let dir = tempfile::tempdir().unwrap();
    let demo = dir.path().join("demo");
    let store = demo_store(&demo);
    let batch_path = demo.join("payroll-batch.csv");
    let batch = std::fs::read(&batch_path).unwrap();
    let name = batch_path.display().to_string();
    let cli_report = run_json(
        paytrace(&store).args(["report", "payouts", "--batch", &name, "--format", "json"]),
    );
    let analyst = create_key(&store, "analyst");
    let admin = create_key(&store, "admin");
    let srv = Server::start(&store, &[]);
    let c = Client::new();
    let url = |q: &str| srv.url(&format!("/v1/reports/payouts?{q}"));

    let (st, r) = send(
        c.post(url(&format!("name={name}")))
            .bearer_auth(&analyst)
            .header("content-type", "text/csv")
            .body(batch.clone()),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{r}");
    for k in [
        "title",
        "summary",
        "payouts",
        "payees",
        "convergence",
        "shared_deposits",
        "issues",
    ] {
        assert_eq!(r[k], cli_report[k], "{k}");
    }
    let resp = c
        .post(url("format=html"))
        .bearer_auth(&analyst)
        .body(batch.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(resp.text().await.unwrap().contains("<html"));
    let resp = c
        .post(url("format=csv"))
        .bearer_auth(&analyst)
        .body(batch.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    // A header without a required column: 400 naming the column and line 1.
    let (st, p) = send(
        c.post(url(""))
            .bearer_auth(&analyst)
            .body("payee,chain,asset,amount\nA,demo,USDC,1\n"),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{p}");
    assert_eq!(p["field"], "address");
    assert_eq!(p["line"], 1);
    // A bad row is an issue of the report, with its line (as the CLI reports it).
    let (st, r) = send(
        c.post(url("name=x.csv"))
            .bearer_auth(&analyst)
            .body("payee,address,chain,asset,amount\nA,0xnope,demo,USDC,1\n"),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{r}");
    assert_eq!(r["issues"][0]["line"], 2, "{r}");

    // Label import: admin only; the new label is then shown.
    let csv = format!("address,category,entity\n{UNUSED},mixer,Test Mixer\n");
    let import = |key: &str| {
        c.post(srv.url("/v1/labels/import?format=csv&source=upload-test"))
            .bearer_auth(key)
            .body(csv.clone())
    };
    let (st, _) = send(import(&analyst)).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, rep) = send(import(&admin)).await;
    assert_eq!(st, StatusCode::OK, "{rep}");
    assert_eq!(rep["imported"], 1, "{rep}");
    let (st, v) = send(
        c.get(srv.url(&format!("/v1/labels/{UNUSED}")))
            .bearer_auth(&analyst),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["labels"][0]["entity"], "Test Mixer", "{v}");
    let (st, p) = send(
        c.post(srv.url("/v1/labels/import?format=nonsense"))
            .bearer_auth(&admin)
            .body("x"),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(p["field"], "format");
}
