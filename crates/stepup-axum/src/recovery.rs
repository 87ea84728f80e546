//! Account recovery over HTTP, and the administrator's reset handler.
//!
//! - `POST /api/mfa/recovery/request {email}`: always `202` with the same body, whether or not the
//!   address belongs to an account or is over a limit (per mail address, per client address
//!   group), after the same work (the application's look-up, the same store calls; the audit
//!   record and the mail follow in the background).
//! - `POST /api/mfa/recovery/confirm {token, password}`: the code from the mail and the password.
//!   `200` with a token at `acr` `pwd` (every factor, backup code and device gone, earlier tokens
//!   and `mfa_token`s void), or `202 {"status":"pending","due_at"}` when a recovery delay is
//!   configured. A wrong, reused or expired code, and a wrong password, are all
//!   `400 invalid_token`: the code is used up either way, and the failure counts against the
//!   client address's budget (and, when the code named a user, that user's attempt limit).
//! - [`admin_reset`]: a handler for the application to mount behind its own admin policy.
//!
//! The policy and its reasons are in [`stepup_mfa::recovery`].

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use stepup_core::AuthContext;
use stepup_mfa::RecoveryOutcome;

use crate::caller::Client;
use crate::error::ApiError;
use crate::json::JsonBody;
use crate::path::Path;
use crate::respond::{conclude, no_store};
use crate::stepup::StepUp;

#[derive(Deserialize)]
pub(crate) struct RecoveryRequest {
    email: String,
}

/// `POST /api/mfa/recovery/request`: `202`, the same answer for every well-formed address.
pub(crate) async fn request(
    State(stepup): State<StepUp>,
    Client(client): Client,
    JsonBody(body): JsonBody<RecoveryRequest>,
) -> Result<Response, ApiError> {
    stepup.mfa().start_recovery(&body.email, &client).await?;
    let body = json!({
        "status": "accepted",
        "message": "if this address belongs to an account, a recovery code has been mailed to it",
    });
    Ok(no_store((StatusCode::ACCEPTED, Json(body)).into_response()))
}

#[derive(Deserialize)]
pub(crate) struct RecoveryConfirm {
    token: String,
    password: String,
}

/// `POST /api/mfa/recovery/confirm`: the code and the password; a token at `pwd` to enroll again.
pub(crate) async fn confirm(
    State(stepup): State<StepUp>,
    Client(client): Client,
    JsonBody(body): JsonBody<RecoveryConfirm>,
) -> Result<Response, ApiError> {
    let outcome = stepup
        .mfa()
        .finish_recovery(&body.token, &body.password, &client)
        .await?;
    match outcome {
        RecoveryOutcome::Completed { login, .. } => conclude(&stepup, login).await,
        RecoveryOutcome::Pending { due_at, .. } => {
            let body = json!({
                "status": "pending",
                "due_at": due_at,
                "message": "the recovery takes effect at the first password login after due_at; \
                            a login with an existing factor before then cancels it",
            });
            Ok(no_store((StatusCode::ACCEPTED, Json(body)).into_response()))
        }
        _ => Err(ApiError::server_error()),
    }
}

/// An administrator's reset of the user named in the path (`{user}`, the user id): every
/// factor, backup code and remembered device removed, every factor unlocked, the user's earlier
/// tokens voided; the caller's `sub` is recorded as the acting admin in the `admin_reset` audit
/// event and the user is mailed. Answers `200 {"success":true}`, or `404` for an unknown user.
///
/// **It checks no admin rights itself**: mount it behind the application's own policy, e.g. a
/// fresh phishing-resistant login and a role check:
///
/// ```no_run
/// # fn example(stepup: stepup_axum::StepUp) -> axum::Router {
/// use std::time::Duration;
/// use axum::{Router, routing::post};
/// use stepup_tower::RequireAcr;
///
/// # async fn is_admin(request: axum::extract::Request, next: axum::middleware::Next)
/// #     -> axum::response::Response { next.run(request).await }
/// # let my_admin_check = axum::middleware::from_fn(is_admin);
/// Router::new()
///     .route(
///         "/api/admin/users/{user}/mfa/reset",
///         post(stepup_axum::admin_reset)
///             // The application's role check, run after `RequireAcr`.
///             .layer::<_, std::convert::Infallible>(my_admin_check)
///             .layer(RequireAcr::level("phr").max_age(Duration::from_secs(300))),
///     )
///     .with_state(stepup.clone())
/// # }
/// ```
pub async fn admin_reset(
    State(stepup): State<StepUp>,
    admin: AuthContext,
    Path(user): Path<String>,
) -> Result<Response, ApiError> {
    let mfa = stepup.mfa();
    mfa.check_caller(&admin).await?;
    if user.is_empty() || user.len() > 256 || !mfa.account_exists(&user).await? {
        return Err(ApiError::not_found("no such user"));
    }
    stepup
        .mfa()
        .admin_reset(&user, &mfa.user_of(&admin))
        .await?;
    Ok(no_store(Json(json!({ "success": true })).into_response()))
}
