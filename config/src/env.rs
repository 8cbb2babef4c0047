//! Environment variables: names, `${VAR}` expansion, and URL checks and redaction.

/// Environment variable that overrides `data_dir`.
pub const ENV_DATA_DIR: &str = "PAYTRACE_DATA_DIR";

/// Prefix of the environment variables that override a chain's `rpc_url`; see [`rpc_env_var`].
pub const ENV_RPC_PREFIX: &str = "PAYTRACE_RPC_";

/// The environment variable that overrides the `rpc_url` of chain `chain_name`:
/// `PAYTRACE_RPC_` + the name upper-cased with `-` replaced by `_` (chain `eth-main` →
/// `PAYTRACE_RPC_ETH_MAIN`).
pub fn rpc_env_var(chain_name: &str) -> String {
    let mut var = String::with_capacity(ENV_RPC_PREFIX.len() + chain_name.len());
    var.push_str(ENV_RPC_PREFIX);
    var.extend(chain_name.chars().map(|c| match c {
        '-' => '_',
        c => c.to_ascii_uppercase(),
    }));
    var
}

/// Reads a variable of the process environment. A variable that is unset, empty or not
/// valid UTF-8 reads as `None`.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Why a `${VAR}` template could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ExpandError {
    /// `${` without a closing `}`; byte offset of the `$`.
    Unterminated(usize),
    /// `${}` or `${not a name}`.
    BadName(String),
    /// The variable is not set.
    Missing(String),
}

impl ExpandError {
    /// What a well-formed placeholder looks like, for error messages.
    pub(crate) fn expected(&self) -> String {
        match self {
            Self::Unterminated(at) => format!(
                "`${{VAR}}` placeholders closed by `}}` (the `${{` at character {} is not closed)",
                at + 1
            ),
            Self::BadName(name) => format!(
                "`${{VAR}}` placeholders whose VAR is letters, digits and '_', not starting with a \
                 digit (found `${{{name}}}`)"
            ),
            Self::Missing(name) => format!("environment variable {name} to be set"),
        }
    }
}

/// Whether `name` is a valid environment variable name for a placeholder.
fn is_var_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Replaces every `${VAR}` in `template` by the value `env` gives for `VAR`. A `$` not followed
/// by `{` is kept as is. Values are inserted verbatim (not expanded again).
pub(crate) fn expand(
    template: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, ExpandError> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    let mut offset = 0;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err(ExpandError::Unterminated(offset + start));
        };
        let name = &after[..end];
        if !is_var_name(name) {
            return Err(ExpandError::BadName(name.to_owned()));
        }
        match env(name) {
            Some(value) => out.push_str(&value),
            None => return Err(ExpandError::Missing(name.to_owned())),
        }
        let consumed = start + 2 + end + 1;
        rest = &rest[consumed..];
        offset += consumed;
    }
    out.push_str(rest);
    Ok(out)
}

/// Checks the placeholder syntax of `template` without reading any variable.
pub(crate) fn check_placeholders(template: &str) -> Result<bool, ExpandError> {
    let any = std::cell::Cell::new(false);
    expand(template, &|_| {
        any.set(true);
        Some(String::new())
    })
    .map(|_| any.get())
}

/// The parts of an absolute URL that matter here.
struct UrlParts<'a> {
    scheme: &'a str,
    userinfo: Option<&'a str>,
    host_port: &'a str,
    path: &'a str,
    query: Option<&'a str>,
    fragment: Option<&'a str>,
}

/// Splits `scheme://[userinfo@]host[:port][/path][?query][#fragment]`.
fn split_url(url: &str) -> Option<UrlParts<'_>> {
    let (scheme, rest) = url.split_once("://")?;
    if scheme.is_empty()
        || !scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        || !scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    {
        return None;
    }
    let (rest, fragment) = match rest.split_once('#') {
        Some((r, f)) => (r, Some(f)),
        None => (rest, None),
    };
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (rest, None),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let (userinfo, host_port) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    Some(UrlParts {
        scheme,
        userinfo,
        host_port,
        path,
        query,
        fragment,
    })
}

/// A URL safe to print: user name and password, path, query and fragment are replaced by
/// `***` (providers put API keys in any of them), keeping the scheme, host and port. Text
/// that is not an absolute URL is shown only when it is a bare `${VAR}` placeholder, else as
/// `***`.
///
/// ```
/// assert_eq!(
///     paytrace_config::redact_url("https://user:pw@eth.example:8545/v3/KEY?apikey=KEY"),
///     "https://***@eth.example:8545/***?***"
/// );
/// ```
pub fn redact_url(url: &str) -> String {
    let Some(p) = split_url(url) else {
        let bare_placeholder = url
            .strip_prefix("${")
            .and_then(|r| r.strip_suffix('}'))
            .is_some_and(is_var_name);
        return if bare_placeholder {
            url.to_owned()
        } else {
            "***".to_owned()
        };
    };
    let mut out = format!("{}://", p.scheme);
    if p.userinfo.is_some() {
        out.push_str("***@");
    }
    out.push_str(p.host_port);
    if !p.path.is_empty() && p.path != "/" {
        out.push_str("/***");
    } else {
        out.push_str(p.path);
    }
    if p.query.is_some() {
        out.push_str("?***");
    }
    if p.fragment.is_some() {
        out.push_str("#***");
    }
    out
}

/// What an RPC URL must look like, for error messages.
pub(crate) const RPC_URL_EXPECTED: &str =
    "an http://, https://, ws:// or wss:// URL with a host, without spaces";

/// Checks that `url` is an http, https, ws or wss URL with a host. On error, returns the
/// expectation with the redacted URL.
pub(crate) fn check_rpc_url(url: &str) -> Result<(), String> {
    let bad = || format!("{RPC_URL_EXPECTED} (found `{}`)", redact_url(url));
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad());
    }
    let Some(p) = split_url(url) else {
        return Err(bad());
    };
    let scheme_ok = ["http", "https", "ws", "wss"]
        .iter()
        .any(|s| p.scheme.eq_ignore_ascii_case(s));
    let (host, port) = match p.host_port.strip_prefix('[') {
        // IPv6 literal: `[::1]:8545`.
        Some(v6) => match v6.split_once(']') {
            Some((h, "")) => (h, None),
            Some((h, after)) => match after.strip_prefix(':') {
                Some(port) => (h, Some(port)),
                None => ("", None),
            },
            None => ("", None),
        },
        None => match p.host_port.split_once(':') {
            Some((h, port)) => (h, Some(port)),
            None => (p.host_port, None),
        },
    };
    let port_ok = port.is_none_or(|port| {
        !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit())
    });
    if !scheme_ok || host.is_empty() || !port_ok {
        return Err(bad());
    }
    Ok(())
}
