//! The web UI served by the same binary (every asset embedded).

use super::AppState;
use axum::Router;

/// The UI's routes, merged at the root next to `/v1`.
pub fn router() -> Router<AppState> {
    Router::new()
}
