//! Who is calling: an API key from `Authorization: Bearer KEY`, `X-Api-Key: KEY` or the cookie
//! `paytrace_key=KEY` (the web UI logs in by setting it), checked against the store's salted
//! hashes; its role decides what the caller may do, and each key has its own rate limit.

use super::{AppState, problem::Problem};
use axum::{extract::FromRequestParts, http::request::Parts};
use paytrace_app::keys::Role;

/// The name of the cookie that carries the key.
pub const KEY_COOKIE: &str = "paytrace_key";

/// An authenticated caller: the extractor answers 401 without a valid key and 429 over the
/// key's rate limit.
#[derive(Clone, Debug)]
pub struct Caller {
    /// The key's id.
    pub key_id: String,
    /// The key's role.
    pub role: Role,
}

impl Caller {
    /// 403 unless the caller's role is at least `role`.
    pub fn require(&self, role: Role) -> Result<(), Problem> {
        if self.role >= role {
            Ok(())
        } else {
            Err(Problem::forbidden(format!(
                "this needs the {role} role; the API key {} has the {} role",
                self.key_id, self.role
            )))
        }
    }
}

/// The key a request carries, if any (header first, then the cookie).
pub fn presented_key(parts: &Parts) -> Option<String> {
    let h = &parts.headers;
    if let Some(v) = h
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let v = v.trim();
        if let Some(k) = v
            .strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
        {
            return Some(k.trim().to_owned());
        }
    }
    if let Some(v) = h.get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Some(v.trim().to_owned());
    }
    for c in h.get_all(axum::http::header::COOKIE) {
        let Ok(c) = c.to_str() else { continue };
        for pair in c.split(';') {
            if let Some((k, v)) = pair.trim().split_once('=')
                && k == KEY_COOKIE
            {
                return Some(v.trim().to_owned());
            }
        }
    }
    None
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        if let Some(c) = parts.extensions.get::<Caller>() {
            return Ok(c.clone());
        }
        let Some(key) = presented_key(parts) else {
            return Err(Problem::unauthorized(
                "an API key is required: send `Authorization: Bearer KEY`, `X-Api-Key: KEY` \
                 or the cookie paytrace_key=KEY (create one with `paytrace keys create`)",
            ));
        };
        let keys = state.keys().clone();
        let record = tokio::task::spawn_blocking(move || keys.verify(&key))
            .await
            .map_err(|e| Problem::internal(&anyhow::anyhow!("key check panicked: {e}")))?
            .map_err(|e| Problem::internal(&anyhow::Error::from(e)))?
            .ok_or_else(|| {
                Problem::unauthorized("the API key is not valid (unknown or revoked)")
            })?;
        state.check_rate(&record.id)?;
        let caller = Caller {
            key_id: record.id,
            role: record.role,
        };
        parts.extensions.insert(caller.clone());
        Ok(caller)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;

    fn parts(name: &str, value: &str) -> Parts {
        Request::builder()
            .header(name, value)
            .body(())
            .unwrap()
            .into_parts()
            .0
    }

    #[test]
    fn key_from_each_place() {
        assert_eq!(
            presented_key(&parts("authorization", "Bearer abc")).as_deref(),
            Some("abc")
        );
        assert_eq!(
            presented_key(&parts("x-api-key", "def")).as_deref(),
            Some("def")
        );
        assert_eq!(
            presented_key(&parts("cookie", "theme=dark; paytrace_key=ghi")).as_deref(),
            Some("ghi")
        );
        assert_eq!(presented_key(&parts("cookie", "theme=dark")), None);
        assert_eq!(presented_key(&parts("authorization", "Basic xyz")), None);
    }

    #[test]
    fn roles_gate() {
        let c = Caller {
            key_id: "k".into(),
            role: Role::Compliance,
        };
        assert!(c.require(Role::Analyst).is_ok());
        assert!(c.require(Role::Compliance).is_ok());
        assert_eq!(c.require(Role::Admin).unwrap_err().status, 403);
    }
}
