//! The OpenAPI 3.1 document of the API (`GET /v1/openapi.json`, committed as
//! docs/openapi.json), built from one table of the endpoints: method, path, role, parameters,
//! body and answers. The tests check that the router serves every path of the table and that
//! each answer validates against its schema.

use serde_json::{Value, json};

/// Where a parameter goes.
#[derive(Clone, Copy)]
enum In {
    Path,
    Query,
}

/// One parameter: name, place, JSON type, required, description.
struct Param(&'static str, In, &'static str, bool, &'static str);

/// One endpoint.
struct Endpoint {
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    role: Option<&'static str>,
    params: &'static [Param],
    /// Media type and schema reference of the request body.
    body: Option<(&'static str, &'static str)>,
    /// Status, media type and schema reference of each success answer.
    ok: &'static [(u16, &'static str, &'static str)],
}

const ADDRESS: Param = Param(
    "address",
    In::Path,
    "string",
    true,
    "an address (EVM, Bitcoin, Tron, script:/tx: ids)",
);
const CHAIN: Param = Param(
    "chain",
    In::Query,
    "string",
    false,
    "only this chain (by name)",
);
const LIMIT: Param = Param("limit", In::Query, "integer", false, "most items");
const SINCE: Param = Param(
    "since",
    In::Query,
    "string",
    false,
    "window start: YYYY-MM-DD, RFC 3339 or Unix seconds",
);
const UNTIL: Param = Param(
    "until",
    In::Query,
    "string",
    false,
    "window end (inclusive)",
);
const HOPS: Param = Param("hops", In::Query, "integer", false, "maximum hops");
const MIN_AMOUNT: Param = Param(
    "min_amount",
    In::Query,
    "string",
    false,
    "smallest transfer followed (raw units)",
);
const MAX_NODES: Param = Param(
    "max_nodes",
    In::Query,
    "integer",
    false,
    "most addresses followed",
);
const STOP: Param = Param(
    "stop",
    In::Query,
    "string",
    false,
    "labels ADDR=CATEGORY, comma-separated",
);
const STOP_CATEGORY: Param = Param(
    "stop_category",
    In::Query,
    "string",
    false,
    "categories that stop a trace, comma-separated",
);
const MODEL: Param = Param(
    "model",
    In::Query,
    "string",
    false,
    "taint model: poison, haircut, fifo, lifo",
);
const AS_OF: Param = Param("as_of", In::Query, "string", false, "day YYYY-MM-DD");
const ID: Param = Param("id", In::Path, "integer", true, "alert id");

const JSON: &str = "application/json";

const ENDPOINTS: &[Endpoint] = &[
    Endpoint {
        method: "get",
        path: "/healthz",
        summary: "Liveness",
        role: None,
        params: &[],
        body: None,
        ok: &[(200, JSON, "Health")],
    },
    Endpoint {
        method: "get",
        path: "/readyz",
        summary: "Readiness: the store answers, followers near their head",
        role: None,
        params: &[],
        body: None,
        ok: &[(200, JSON, "Ready"), (503, JSON, "Ready")],
    },
    Endpoint {
        method: "get",
        path: "/v1/openapi.json",
        summary: "This document",
        role: None,
        params: &[],
        body: None,
        ok: &[(200, JSON, "Any")],
    },
    Endpoint {
        method: "get",
        path: "/v1/me",
        summary: "The caller's key and role",
        role: Some("analyst"),
        params: &[],
        body: None,
        ok: &[(200, JSON, "Me")],
    },
    Endpoint {
        method: "get",
        path: "/v1/stats",
        summary: "paytrace stats --json",
        role: Some("analyst"),
        params: &[],
        body: None,
        ok: &[(200, JSON, "Stats")],
    },
    Endpoint {
        method: "get",
        path: "/v1/limits",
        summary: "The server's request budgets",
        role: Some("analyst"),
        params: &[],
        body: None,
        ok: &[(200, JSON, "Limits")],
    },
    Endpoint {
        method: "get",
        path: "/v1/audit",
        summary: "The audit log of mutations",
        role: Some("admin"),
        params: &[LIMIT],
        body: None,
        ok: &[(200, JSON, "AuditLog")],
    },
    Endpoint {
        method: "get",
        path: "/v1/address/{address}",
        summary: "paytrace address --json",
        role: Some("analyst"),
        params: &[ADDRESS, CHAIN, LIMIT],
        body: None,
        ok: &[(200, JSON, "Address")],
    },
    Endpoint {
        method: "get",
        path: "/v1/address/{address}/transfers",
        summary: "An address's transfers, a page at a time",
        role: Some("analyst"),
        params: &[
            ADDRESS,
            Param(
                "direction",
                In::Query,
                "string",
                false,
                "incoming (default) or outgoing",
            ),
            CHAIN,
            Param(
                "cursor",
                In::Query,
                "string",
                false,
                "next_cursor of the previous page",
            ),
            LIMIT,
        ],
        body: None,
        ok: &[(200, JSON, "TransfersPage")],
    },
    Endpoint {
        method: "get",
        path: "/v1/trace",
        summary: "paytrace trace",
        role: Some("analyst"),
        params: &[
            Param(
                "seed",
                In::Query,
                "string",
                true,
                "address, transaction hash or TX:INDEX",
            ),
            Param("backward", In::Query, "boolean", false, "source of funds"),
            MODEL,
            HOPS,
            SINCE,
            UNTIL,
            MIN_AMOUNT,
            MAX_NODES,
            Param("budget_ms", In::Query, "integer", false, "time budget"),
            Param(
                "max_paths",
                In::Query,
                "integer",
                false,
                "most evidence paths",
            ),
            CHAIN,
            Param(
                "block",
                In::Query,
                "integer",
                false,
                "block of the seed transaction",
            ),
            Param(
                "format",
                In::Query,
                "string",
                false,
                "json (default), dot, graphml",
            ),
            STOP,
            STOP_CATEGORY,
            Param(
                "swap_category",
                In::Query,
                "string",
                false,
                "swap categories, comma-separated",
            ),
        ],
        body: None,
        ok: &[
            (200, JSON, "TraceResult"),
            (200, "text/vnd.graphviz; charset=utf-8", "Text"),
            (200, "application/graphml+xml", "Text"),
        ],
    },
    Endpoint {
        method: "get",
        path: "/v1/path",
        summary: "paytrace path --json",
        role: Some("analyst"),
        params: &[
            Param("from", In::Query, "string", true, "source address"),
            Param("to", In::Query, "string", false, "target address"),
            Param("to_category", In::Query, "string", false, "target category"),
            HOPS,
            Param("k", In::Query, "integer", false, "most valuable paths"),
            SINCE,
            UNTIL,
            MIN_AMOUNT,
            MAX_NODES,
            Param(
                "asset",
                In::Query,
                "string",
                false,
                "native or a token address",
            ),
            CHAIN,
            STOP,
            STOP_CATEGORY,
        ],
        body: None,
        ok: &[(200, JSON, "PathResult")],
    },
    Endpoint {
        method: "get",
        path: "/v1/screen/{address}",
        summary: "paytrace screen ADDRESS --json",
        role: Some("analyst"),
        params: &[
            ADDRESS,
            CHAIN,
            AS_OF,
            HOPS,
            Param(
                "no_patterns",
                In::Query,
                "boolean",
                false,
                "skip pattern detection",
            ),
        ],
        body: None,
        ok: &[(200, JSON, "ScreenResult")],
    },
    Endpoint {
        method: "post",
        path: "/v1/screen",
        summary: "Bulk screening",
        role: Some("analyst"),
        params: &[],
        body: Some((JSON, "BulkScreen")),
        ok: &[(200, JSON, "BulkScreenResults")],
    },
    Endpoint {
        method: "get",
        path: "/v1/cluster/{address}",
        summary: "paytrace cluster show --json",
        role: Some("analyst"),
        params: &[ADDRESS, LIMIT],
        body: None,
        ok: &[(200, JSON, "ClusterShow")],
    },
    Endpoint {
        method: "get",
        path: "/v1/cluster-explain",
        summary: "paytrace cluster explain --json",
        role: Some("analyst"),
        params: &[
            Param("a", In::Query, "string", true, "first address"),
            Param("b", In::Query, "string", true, "second address"),
        ],
        body: None,
        ok: &[(200, JSON, "ClusterExplain")],
    },
    Endpoint {
        method: "get",
        path: "/v1/labels",
        summary: "paytrace labels list --json",
        role: Some("analyst"),
        params: &[
            Param("category", In::Query, "string", false, "only this category"),
            Param("source", In::Query, "string", false, "only this source"),
            Param(
                "all",
                In::Query,
                "boolean",
                false,
                "include delisted labels",
            ),
            Param("offset", In::Query, "integer", false, "skip this many"),
            LIMIT,
        ],
        body: None,
        ok: &[(200, JSON, "Labels")],
    },
    Endpoint {
        method: "get",
        path: "/v1/labels/{address}",
        summary: "paytrace labels show --json",
        role: Some("analyst"),
        params: &[
            ADDRESS,
            CHAIN,
            AS_OF,
            Param(
                "history",
                In::Query,
                "boolean",
                false,
                "every label ever recorded",
            ),
        ],
        body: None,
        ok: &[(200, JSON, "LabelsShow")],
    },
    Endpoint {
        method: "post",
        path: "/v1/labels/import",
        summary: "paytrace labels import --json",
        role: Some("admin"),
        params: &[
            Param("format", In::Query, "string", true, "label file format"),
            Param("name", In::Query, "string", false, "file name in messages"),
            Param("source", In::Query, "string", false, "source name"),
            Param("version", In::Query, "string", false, "source version"),
            Param(
                "category",
                In::Query,
                "string",
                false,
                "category of rows without one",
            ),
            Param(
                "entity",
                In::Query,
                "string",
                false,
                "entity of rows without one",
            ),
            CHAIN,
            Param("confidence", In::Query, "integer", false, "0 to 100"),
            Param("max_shrink", In::Query, "integer", false, "0 to 100"),
            Param(
                "allow_shrink",
                In::Query,
                "boolean",
                false,
                "accept any delisting",
            ),
        ],
        body: Some(("text/csv", "Text")),
        ok: &[(200, JSON, "ImportReport")],
    },
    Endpoint {
        method: "post",
        path: "/v1/reports/payouts",
        summary: "paytrace report payouts --batch",
        role: Some("analyst"),
        params: &[
            Param(
                "format",
                In::Query,
                "string",
                false,
                "json (default), csv, html",
            ),
            Param("name", In::Query, "string", false, "the report's title"),
            MODEL,
            HOPS,
            Param(
                "min_payees",
                In::Query,
                "integer",
                false,
                "convergence minimum",
            ),
            Param(
                "window_days",
                In::Query,
                "integer",
                false,
                "convergence window",
            ),
            CHAIN,
            Param("labels_as_of", In::Query, "string", false, "day YYYY-MM-DD"),
            SINCE,
            UNTIL,
        ],
        body: Some(("text/csv", "Text")),
        ok: &[
            (200, JSON, "Report"),
            (200, "text/csv; charset=utf-8", "Text"),
            (200, "text/html; charset=utf-8", "Text"),
        ],
    },
    Endpoint {
        method: "get",
        path: "/v1/alerts",
        summary: "The alerts",
        role: Some("analyst"),
        params: &[Param(
            "state",
            In::Query,
            "string",
            false,
            "new, acknowledged, closed",
        )],
        body: None,
        ok: &[(200, JSON, "Alerts")],
    },
    Endpoint {
        method: "post",
        path: "/v1/alerts/{id}/ack",
        summary: "Acknowledge an alert",
        role: Some("compliance"),
        params: &[ID],
        body: None,
        ok: &[(200, JSON, "Alert")],
    },
    Endpoint {
        method: "post",
        path: "/v1/alerts/{id}/close",
        summary: "Close an alert",
        role: Some("compliance"),
        params: &[ID],
        body: None,
        ok: &[(200, JSON, "Alert")],
    },
    Endpoint {
        method: "get",
        path: "/v1/watchlist",
        summary: "The watchlist",
        role: Some("analyst"),
        params: &[],
        body: None,
        ok: &[(200, JSON, "Watchlist")],
    },
    Endpoint {
        method: "put",
        path: "/v1/watchlist/{address}",
        summary: "Watch an address",
        role: Some("compliance"),
        params: &[ADDRESS],
        body: Some((JSON, "WatchBody")),
        ok: &[(200, JSON, "WatchEntry")],
    },
    Endpoint {
        method: "delete",
        path: "/v1/watchlist/{address}",
        summary: "Stop watching an address",
        role: Some("compliance"),
        params: &[ADDRESS],
        body: None,
        ok: &[(200, JSON, "WatchRemoved")],
    },
];

fn object(required: &[&str], props: Value) -> Value {
    json!({ "type": "object", "required": required, "properties": props })
}

fn reference(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn array_of(name: &str) -> Value {
    json!({ "type": "array", "items": reference(name) })
}

fn schemas() -> Value {
    let amount =
        json!({ "type": "string", "pattern": "^[0-9]+$", "description": "raw integer units" });
    let opt_string = json!({ "type": ["string", "null"] });
    json!({
        "Any": {},
        "Text": { "type": "string" },
        "Problem": object(&["type", "title", "status", "detail"], json!({
            "type": { "type": "string" }, "title": { "type": "string" },
            "status": { "type": "integer" }, "detail": { "type": "string" },
            "field": { "type": "string" }, "line": { "type": "integer" },
            "retry_after": { "type": "integer" }, "limit": { "type": "string" }
        })),
        "Health": object(&["status"], json!({ "status": { "const": "ok" } })),
        "Ready": object(&["ready", "reasons", "followers"], json!({
            "ready": { "type": "boolean" },
            "reasons": { "type": "array", "items": { "type": "string" } },
            "followers": { "type": "array", "items": object(&["chain"], json!({
                "chain": { "type": "string" },
                "indexed": { "type": ["integer", "null"] },
                "head": { "type": ["integer", "null"] },
                "lag": { "type": ["integer", "null"] }
            })) }
        })),
        "Me": object(&["key_id", "role"], json!({
            "key_id": { "type": "string" },
            "role": { "enum": ["analyst", "compliance", "admin"] }
        })),
        "Stats": object(&["data_dir", "schema_version", "chains"], json!({
            "data_dir": { "type": "string" }, "schema_version": { "type": "integer" },
            "chains": { "type": "array", "items": object(&["chain", "kind", "transfers", "by_kind"], json!({
                "chain": { "type": "string" }, "kind": { "type": "string" },
                "last_block": { "type": ["integer", "null"] },
                "last_block_hash": opt_string,
                "transfers": { "type": "integer" },
                "by_kind": { "type": "object", "additionalProperties": { "type": "integer" } }
            })) }
        })),
        "Limits": object(&["max_hops", "max_nodes", "max_wall_ms", "max_bulk", "max_body_bytes"], json!({
            "max_hops": { "type": "integer" }, "max_nodes": { "type": "integer" },
            "max_wall_ms": { "type": "integer" }, "max_bulk": { "type": "integer" },
            "max_body_bytes": { "type": "integer" }
        })),
        "AuditLog": { "type": "array", "items": object(&["time", "key_id", "role", "action", "target", "status"], json!({
            "time": { "type": "string" }, "key_id": { "type": "string" }, "role": { "type": "string" },
            "action": { "type": "string" }, "target": { "type": "string" }, "status": { "type": "integer" }
        })) },
        "Transfer": object(&["chain", "block", "time", "tx", "tx_index", "kind", "position", "from", "to", "asset", "amount"], json!({
            "chain": { "type": "string" }, "block": { "type": "integer" }, "time": { "type": "integer" },
            "tx": { "type": "string" }, "tx_index": { "type": "integer" },
            "kind": { "enum": ["native", "internal", "token", "utxo"] },
            "position": { "type": "integer" },
            "trace_address": { "type": "array", "items": { "type": "integer" } },
            "from": { "type": "string" }, "to": { "type": "string" }, "asset": { "type": "string" },
            "symbol": { "type": "string" }, "decimals": { "type": "integer" },
            "amount": amount
        })),
        "Address": object(&["address", "incoming", "outgoing", "totals"], json!({
            "address": { "type": "string" },
            "incoming": array_of("Transfer"), "outgoing": array_of("Transfer"),
            "totals": { "type": "array", "items": object(&["chain", "asset", "incoming", "outgoing", "incoming_count", "outgoing_count"], json!({
                "chain": { "type": "string" }, "asset": { "type": "string" },
                "symbol": { "type": "string" }, "decimals": { "type": "integer" },
                "incoming": amount, "outgoing": amount,
                "incoming_count": { "type": "integer" }, "outgoing_count": { "type": "integer" }
            })) }
        })),
        "TransfersPage": object(&["address", "direction", "transfers", "next_cursor"], json!({
            "address": { "type": "string" },
            "direction": { "enum": ["incoming", "outgoing"] },
            "transfers": array_of("Transfer"),
            "next_cursor": opt_string
        })),
        "TraceResult": object(&["seed", "destinations", "totals_by_category", "paths", "truncated", "parameters", "stats"], json!({
            "truncated": { "type": "boolean" },
            "destinations": { "type": "array", "items": object(&["address", "amount", "hops"], json!({
                "address": { "type": "string" }, "amount": amount, "hops": { "type": "integer" }
            })) },
            "totals_by_category": { "type": "object" },
            "paths": { "type": "array" }
        })),
        "PathResult": object(&["from", "to", "most_valuable", "exhaustive"], json!({
            "from": { "type": "string" }, "to": { "type": "string" },
            "most_valuable": { "type": "array" }, "exhaustive": { "type": "boolean" }
        })),
        "ScreenResult": object(&["address", "level", "score", "as_of", "hops", "reasons", "labels"], json!({
            "address": { "type": "string" },
            "level": { "enum": ["none", "low", "medium", "high", "severe"] },
            "score": { "type": "number" }, "as_of": { "type": "string" }, "hops": { "type": "integer" },
            "reasons": { "type": "array" }, "labels": { "type": "array" }
        })),
        "BulkScreen": object(&["addresses"], json!({
            "addresses": { "type": "array", "items": { "type": "string" } },
            "chain": { "type": "string" }, "as_of": { "type": "string" },
            "hops": { "type": "integer", "minimum": 1, "maximum": 10 },
            "no_patterns": { "type": "boolean" }
        })),
        "BulkScreenResults": object(&["results"], json!({ "results": array_of("ScreenResult") })),
        "ClusterShow": object(&["address", "cluster", "size", "members", "labels", "conflicts", "merges_total", "merges"], json!({
            "address": { "type": "string" }, "cluster": { "type": ["integer", "null"] },
            "size": { "type": "integer" }, "members": { "type": "array", "items": { "type": "string" } },
            "labels": { "type": "array" }, "conflicts": { "type": "array" },
            "merges_total": { "type": "integer" }, "merges": { "type": "array" }
        })),
        "ClusterExplain": object(&["a", "b", "cluster_a", "cluster_b", "joined", "path", "refused"], json!({
            "a": { "type": "string" }, "b": { "type": "string" },
            "cluster_a": { "type": ["integer", "null"] }, "cluster_b": { "type": ["integer", "null"] },
            "joined": { "type": "boolean" }, "path": { "type": "array" }, "refused": { "type": "array" }
        })),
        "Label": object(&["address", "chain", "category", "entity", "source"], json!({
            "address": { "type": "string" }, "chain": { "type": "string" },
            "category": { "type": "string" }, "entity": { "type": "string" }, "source": { "type": "string" }
        })),
        "Labels": array_of("Label"),
        "LabelsShow": object(&["address", "chain", "as_of", "labels"], json!({
            "address": { "type": "string" }, "chain": { "type": "string" },
            "as_of": opt_string, "labels": array_of("Label")
        })),
        "ImportReport": object(&["source", "version", "read", "imported"], json!({
            "source": { "type": "string" }, "version": { "type": "string" },
            "read": { "type": "integer" }, "imported": { "type": "integer" }
        })),
        "Report": object(&["title", "summary", "payouts", "payees", "convergence", "issues"], json!({
            "title": { "type": "string" }, "summary": { "type": "object" },
            "payouts": { "type": "array" }, "payees": { "type": "array" },
            "convergence": { "type": "array" }, "issues": { "type": "array" }
        })),
        "Alert": object(&["id", "rule", "severity", "state", "subject", "text", "created_at", "updated_at"], json!({
            "id": { "type": "integer" }, "rule": { "type": "string" }, "severity": { "type": "string" },
            "state": { "enum": ["new", "acknowledged", "closed"] }, "subject": { "type": "string" },
            "text": { "type": "string" }, "created_at": { "type": "string" }, "updated_at": { "type": "string" }
        })),
        "Alerts": array_of("Alert"),
        "WatchBody": object(&[], json!({ "note": opt_string, "payer": { "type": "boolean" } })),
        "WatchEntry": object(&["address", "payer", "added_at"], json!({
            "address": { "type": "string" }, "note": opt_string,
            "payer": { "type": "boolean" }, "added_at": { "type": "string" }
        })),
        "Watchlist": array_of("WatchEntry"),
        "WatchRemoved": object(&["address", "removed"], json!({
            "address": { "type": "string" }, "removed": { "type": "boolean" }
        }))
    })
}

fn problem(description: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/problem+json": { "schema": reference("Problem") } }
    })
}

/// The OpenAPI 3.1 document.
pub fn document() -> Value {
    let mut paths = serde_json::Map::new();
    for e in ENDPOINTS {
        let params: Vec<Value> = e
            .params
            .iter()
            .map(|Param(name, at, ty, required, desc)| {
                json!({
                    "name": name,
                    "in": match at { In::Path => "path", In::Query => "query" },
                    "required": required,
                    "description": desc,
                    "schema": { "type": ty }
                })
            })
            .collect();
        let mut responses = serde_json::Map::new();
        for (status, media, schema) in e.ok {
            let r = responses
                .entry(status.to_string())
                .or_insert_with(|| json!({ "description": "success", "content": {} }));
            r["content"][*media] = json!({ "schema": reference(schema) });
        }
        responses.insert(
            "400".into(),
            problem("bad input; `field` or `line` names it"),
        );
        responses.insert("404".into(), problem("no such route or object"));
        responses.insert("413".into(), problem("request body over the limit"));
        responses.insert("500".into(), problem("internal error"));
        if e.path.starts_with("/v1/") && e.role.is_some() {
            responses.insert("401".into(), problem("no valid API key"));
            responses.insert("403".into(), problem("the key's role may not do this"));
            responses.insert("409".into(), problem("the store is open for reading only"));
            responses.insert("422".into(), problem("over a budget; `limit` names it"));
            responses.insert(
                "429".into(),
                problem("over the key's rate; see Retry-After"),
            );
        }
        let mut op = json!({
            "summary": e.summary,
            "operationId": format!("{}{}", e.method, e.path.replace(['/', '{', '}', '-', '.'], "_")),
            "parameters": params,
            "responses": responses,
        });
        if let Some(role) = e.role {
            op["security"] = json!([{ "bearer": [] }, { "apiKey": [] }, { "cookie": [] }]);
            op["description"] = json!(format!("Needs the {role} role or higher."));
        } else {
            op["security"] = json!([]);
        }
        if let Some((media, schema)) = e.body {
            op["requestBody"] = json!({
                "required": true,
                "content": { media: { "schema": reference(schema) } }
            });
        }
        let item = paths.entry(e.path.to_owned()).or_insert_with(|| json!({}));
        item[e.method] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "paytrace API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The HTTP API of `paytrace serve` (docs/api.md). Amounts are decimal strings of raw integer units; errors are RFC 9457 problem documents.",
            "license": { "name": "MIT OR Apache-2.0", "identifier": "MIT OR Apache-2.0" }
        },
        "servers": [{ "url": "http://127.0.0.1:8080" }],
        "paths": paths,
        "components": {
            "schemas": schemas(),
            "securitySchemes": {
                "bearer": { "type": "http", "scheme": "bearer" },
                "apiKey": { "type": "apiKey", "in": "header", "name": "X-Api-Key" },
                "cookie": { "type": "apiKey", "in": "cookie", "name": "paytrace_key" }
            }
        }
    })
}

/// `GET /v1/openapi.json`.
pub async fn openapi() -> axum::Json<Value> {
    axum::Json(document())
}
