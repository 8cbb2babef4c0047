//! Request parsing with errors that name the field: JSON bodies (line, column and the JSON
//! path of the bad value) and query strings (the parameter).

use crate::serve::problem::Problem;
use axum::{
    body::Bytes,
    extract::{FromRequest, FromRequestParts, Request},
    http::request::Parts,
};
use serde::de::DeserializeOwned;

/// A JSON body; a malformed one is a 400 naming the line and the field.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| Problem::new(e.status(), e.body_text()))?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// Parses `bytes` as a `T`, naming the JSON path and line of what is wrong.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.inner();
        let line = u64::try_from(inner.line()).unwrap_or(0);
        let field = if path == "." { "body".to_owned() } else { path };
        let mut p = Problem::bad_field(
            field.clone(),
            format!(
                "request body, line {line} column {}: {field}: {inner}",
                inner.column()
            ),
        );
        p.line = Some(line);
        p
    })
}

/// Query parameters; a bad one is a 400 naming it.
pub struct Params<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Params<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Problem> {
        let q = parts.uri.query().unwrap_or("");
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(q.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(Params)
            .map_err(|e| {
                let field = e.path().to_string();
                let inner = e.into_inner();
                let field = if field == "." {
                    // serde names the field in its message (`missing field `seed``).
                    inner
                        .to_string()
                        .split('`')
                        .nth(1)
                        .map_or_else(|| "query".to_owned(), str::to_owned)
                } else {
                    field
                };
                Problem::bad_field(field.clone(), format!("query parameter {field}: {inner}"))
            })
    }
}
