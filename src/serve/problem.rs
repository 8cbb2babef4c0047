//! Errors as `application/problem+json` (RFC 9457): `type`, `title`, `status`, `detail` (the
//! message the CLI prints after `error: `), and for bad input the request field (`field`) or
//! upload line (`line`) it names.

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;

/// The media type of a problem document.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// One problem document (boxed: handlers return it in every `Err`).
#[derive(Debug, Clone)]
pub struct Problem(Box<ProblemDoc>);

impl std::ops::Deref for Problem {
    type Target = ProblemDoc;
    fn deref(&self) -> &ProblemDoc {
        &self.0
    }
}

impl std::ops::DerefMut for Problem {
    fn deref_mut(&mut self) -> &mut ProblemDoc {
        &mut self.0
    }
}

/// The fields of a problem document.
#[derive(Debug, Clone, Serialize)]
pub struct ProblemDoc {
    /// A URI naming the kind of problem (`about:blank` for the plain HTTP status).
    #[serde(rename = "type")]
    pub kind: String,
    /// The HTTP status' reason phrase.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong, as the CLI says it.
    pub detail: String,
    /// The request field (query parameter, JSON pointer, form part) that is wrong, if one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The line of an uploaded file that is wrong (1-based), if one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// Seconds to wait before retrying (429), also sent as `Retry-After`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// The budget that was exceeded (422 over budget): `hops`, `nodes`, `wall_ms`, ...
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<String>,
}

impl Problem {
    /// A problem with `status` and `detail`.
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self(Box::new(ProblemDoc {
            kind: "about:blank".into(),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            field: None,
            line: None,
            retry_after: None,
            limit: None,
        }))
    }

    /// 400: bad input in request field `field`.
    pub fn bad_field(field: impl Into<String>, detail: impl Into<String>) -> Self {
        let mut p = Self::new(StatusCode::BAD_REQUEST, detail);
        p.field = Some(field.into());
        p
    }

    /// 400: bad input without a single field to name.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, detail)
    }

    /// 401: no key or a key that is not valid.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, detail)
    }

    /// 403: a valid key whose role may not do this.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, detail)
    }

    /// 404: nothing at this path, or no such object.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, detail)
    }

    /// 422: the request is well-formed but exceeds budget `limit`.
    pub fn over_budget(limit: impl Into<String>, detail: impl Into<String>) -> Self {
        let mut p = Self::new(StatusCode::UNPROCESSABLE_ENTITY, detail);
        p.kind = "https://paytrace.dev/problems/over-budget".into();
        p.limit = Some(limit.into());
        p
    }

    /// 429: the key's rate limit; retry after `secs`.
    pub fn too_many(secs: u64) -> Self {
        let mut p = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!("rate limit of this API key exceeded; retry after {secs} s"),
        );
        p.retry_after = Some(secs);
        p
    }

    /// 500: an internal error (the store failed, ...), with the CLI's message.
    pub fn internal(e: &anyhow::Error) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}"))
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.title, self.detail)
    }
}

impl From<anyhow::Error> for Problem {
    /// Errors of bad input the CLI reports (an address, a model name, a chain name) become
    /// 400 with the same message; the rest 500.
    fn from(e: anyhow::Error) -> Self {
        if let Some(p) = e.downcast_ref::<Problem>() {
            return p.clone();
        }
        if let Some(a) = e.downcast_ref::<paytrace_app::address::AddressArgError>() {
            return Self::bad_request(a.to_string());
        }
        if let Some(p) = e.downcast_ref::<paytrace_app::params::ParamsError>()
            && !matches!(p, paytrace_app::params::ParamsError::Store(_))
        {
            return Self::bad_request(p.to_string());
        }
        Self::internal(&e)
    }
}

impl std::error::Error for Problem {}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::error!(status = self.status, detail = %self.detail, "request failed");
        }
        let retry = self.retry_after;
        let body = serde_json::to_vec(&*self.0).unwrap_or_default();
        let mut resp = (status, body).into_response();
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(s) = retry {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        resp
    }
}

/// What handlers return.
pub type ApiResult<T> = Result<T, Problem>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_errors_are_bad_requests_with_the_cli_message() {
        let e = paytrace_app::address::parse_address("address", "0x12").unwrap_err();
        let msg = e.to_string();
        let p = Problem::from(anyhow::Error::from(e));
        assert_eq!(p.status, 400);
        assert_eq!(p.detail, msg);
    }

    #[test]
    fn over_budget_names_the_limit() {
        let p = Problem::over_budget("hops", "hops 9 is over the budget of 6");
        let v = serde_json::to_value(&*p).unwrap();
        assert_eq!(v["status"], 422);
        assert_eq!(v["limit"], "hops");
    }
}

/// 400 or 404 for the application layer's input errors, 500 for the rest, with the CLI's
/// message.
macro_rules! from_app_error {
    ($t:ty, $input:expr, $not_found:expr) => {
        impl From<$t> for Problem {
            fn from(e: $t) -> Self {
                let (input, missing): (fn(&$t) -> bool, fn(&$t) -> bool) = ($input, $not_found);
                if missing(&e) {
                    Self::not_found(e.to_string())
                } else if input(&e) {
                    Self::bad_request(e.to_string())
                } else {
                    Self::internal(&anyhow::Error::from(e))
                }
            }
        }
    };
}

from_app_error!(
    paytrace_app::trace::QueryError,
    paytrace_app::trace::QueryError::is_input,
    paytrace_app::trace::QueryError::is_not_found
);
from_app_error!(
    paytrace_app::query::QueryError,
    paytrace_app::query::QueryError::is_input,
    |_| false
);
from_app_error!(
    paytrace_app::screen::ScreenError,
    paytrace_app::screen::ScreenError::is_input,
    |_| false
);
from_app_error!(
    paytrace_app::labels::LabelQueryError,
    paytrace_app::labels::LabelQueryError::is_input,
    |_| false
);
from_app_error!(
    paytrace_app::cluster_view::ClusterQueryError,
    |_| false,
    |_| { false }
);
from_app_error!(paytrace_app::keys::KeyError, |_| false, |e| matches!(
    e,
    paytrace_app::keys::KeyError::NotFound(_)
));
from_app_error!(paytrace_indexer::StoreError, |_| false, |_| false);
from_app_error!(paytrace_app::address::AddressArgError, |_| true, |_| false);
from_app_error!(paytrace_app::alerts::AlertError, |_| false, |e| matches!(
    e,
    paytrace_app::alerts::AlertError::NotFound(_)
));
