//! The demo's admin policy in front of stepup's admin reset: a fresh phishing-resistant login
//! and an allow-list of user ids (`STEPUP_ADMINS`).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use stepup::routes::ApiError;
use stepup::{AuthContext, RequireAcr, StepUp};

/// How recent an administrator's phishing-resistant login must be to reset another user.
pub(crate) const ADMIN_MAX_AGE: Duration = Duration::from_secs(300);

/// The demo's administrators: the user ids (`sub`, as `GET /api/me` shows them) listed,
/// comma-separated, in `STEPUP_ADMINS`. None by default: then nobody may reset anybody.
#[derive(Clone, Debug, Default)]
pub(crate) struct Admins(Arc<HashSet<String>>);

impl Admins {
    /// The user ids in `ids`.
    #[allow(dead_code)] // The tests name their administrators; `main.rs` reads the variable.
    pub(crate) fn new<I: IntoIterator<Item = String>>(ids: I) -> Self {
        Self(Arc::new(ids.into_iter().collect()))
    }

    /// The user ids of `STEPUP_ADMINS` (comma-separated, blanks ignored).
    pub(crate) fn from_env() -> Self {
        let listed = std::env::var("STEPUP_ADMINS").unwrap_or_default();
        Self(Arc::new(
            listed
                .split(',')
                .map(str::trim)
                .filter(|id| !id.is_empty())
                .map(str::to_owned)
                .collect(),
        ))
    }
}

/// stepup's admin reset, `POST /api/admin/users/{user}/mfa/reset`, behind the demo's policy: a
/// phishing-resistant login (a passkey) of the last [`ADMIN_MAX_AGE`] (else `401` with the RFC
/// 9470 challenge), then the caller's id among the [`Admins`] (else `403`).
pub(crate) fn routes(stepup: &StepUp, admins: Admins) -> Router {
    Router::new()
        .route(
            "/api/admin/users/{user}/mfa/reset",
            post(stepup::routes::admin_reset)
                .layer::<_, std::convert::Infallible>(axum::middleware::from_fn_with_state(
                    (admins, stepup.clone()),
                    only_admins,
                ))
                .layer(RequireAcr::level("phr").max_age(ADMIN_MAX_AGE)),
        )
        .with_state(stepup.clone())
}

async fn only_admins(
    State((admins, stepup)): State<(Admins, StepUp)>,
    caller: Option<AuthContext>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    match caller {
        // The user the token stands for: an external provider's `sub` is not a local id.
        Some(caller) if admins.0.contains(&*stepup.mfa().user_of(&caller)) => {
            next.run(request).await
        }
        _ => ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "only the demo's administrators (STEPUP_ADMINS) may do this",
        )
        .into_response(),
    }
}
