//! Account recovery over HTTP, the administrator's reset handler, and the notifier that mails.
//!
//! - `POST /api/mfa/recovery/request {email}`: always `202` with the same body, whether or not the
//!   address belongs to an account, after the same work (the application's look-up, the same
//!   store calls; the mail leaves in the background).
//! - `POST /api/mfa/recovery/confirm {token, password}`: the code from the mail and the password.
//!   `200` with a token at `acr` `pwd` (every factor, backup code and device gone, earlier tokens
//!   and `mfa_token`s void), or `202 {"status":"pending","due_at"}` when a recovery delay is
//!   configured. A wrong, reused or expired code, and a wrong password, are all
//!   `400 invalid_token`: the code is used up either way, and the failure counts against the
//!   client address's budget (and, when the code named a user, that user's attempt limit).
//! - [`admin_reset`]: a handler for the application to mount behind its own admin policy.
//!
//! The policy and its reasons are in [`stepup_mfa::recovery`].

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::json;
use stepup_core::AuthContext;
use stepup_core::acr::{amr, level};
use stepup_core::clock::{Clock, SharedClock};
use stepup_core::token::Grant;
use stepup_mail::{Mail, Mailer, send_in_background};
use stepup_mfa::{
    AuditEvent, Authentication, MfaError, Notifier, PendingAuthorization, RecoveryOutcome,
};
use stepup_tower::ClientAddr;

use crate::error::ApiError;
use crate::json::JsonBody;
use crate::login::limited_by_address;
use crate::respond::{no_store, redirect_with_code};
use crate::stepup::{PasswordCheck, StepUp};

#[derive(Deserialize)]
pub(crate) struct RecoveryRequest {
    email: String,
}

/// `POST /api/mfa/recovery/request`: `202`, the same answer for every well-formed address.
pub(crate) async fn request(
    State(stepup): State<StepUp>,
    JsonBody(body): JsonBody<RecoveryRequest>,
) -> Result<Response, ApiError> {
    let email = body.email.trim();
    if email.is_empty() || email.len() > 320 {
        return Err(ApiError::invalid_request("an email address is required"));
    }
    let passwords = &stepup.inner.passwords;
    let mfa = stepup.mfa();
    let user = passwords.user_by_email(email).await?;
    let outcome = match user {
        Some(user) => {
            // The address on file, as the application keeps it.
            let on_file = passwords.email_of(&user).await?;
            match (on_file, mfa.mailer()) {
                (Some(on_file), Some(_)) => mfa.request_recovery(&user, &on_file).await,
                _ => mfa.recovery_decoy(email).await,
            }
        }
        None => {
            // The same look-up as for a known account, for an id nobody has.
            let _ = passwords
                .email_of(&stepup_core::tokens::random_id())
                .await?;
            mfa.recovery_decoy(email).await
        }
    };
    match outcome {
        Ok(()) | Err(MfaError::MailNotConfigured) => {}
        Err(MfaError::Unavailable(error)) => return Err(error.into()),
        Err(error) => tracing::error!(%error, "a recovery request failed"),
    }
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
    client: Option<Extension<ClientAddr>>,
    JsonBody(body): JsonBody<RecoveryConfirm>,
) -> Result<Response, ApiError> {
    if body.token.len() > 128 || body.password.len() > 1024 {
        return Err(ApiError::invalid_request("token or password too long"));
    }
    limited_by_address(&stepup, client, async {
        let passwords = &stepup.inner.passwords;
        let password = body.password.as_str();
        let outcome = stepup
            .mfa()
            .confirm_recovery::<ApiError>(&body.token, async |user: &str| {
                let Some(email) = passwords.email_of(user).await? else {
                    return Ok(false);
                };
                Ok(passwords.check(&email, password).await?.as_deref() == Some(user))
            })
            .await?;
        match outcome {
            RecoveryOutcome::Completed { user } => recovered(&stepup, None, user).await,
            RecoveryOutcome::Pending { due_at, .. } => {
                let body = json!({
                    "status": "pending",
                    "due_at": due_at,
                    "message": "the recovery takes effect at the first password login after due_at; \
                                a login with an existing factor before then cancels it",
                });
                Ok(no_store(
                    (StatusCode::ACCEPTED, Json(body)).into_response(),
                ))
            }
            _ => Err(ApiError::server_error()),
        }
    })
    .await
}

/// Ends a login whose recovery just took effect: a token at `pwd` (or, for a pending
/// authorization, a code). The reset's revocation mark voids every token of its second, so this
/// token is dated the next second.
pub(crate) async fn recovered(
    stepup: &StepUp,
    pending: Option<PendingAuthorization>,
    user: String,
) -> Result<Response, ApiError> {
    let now = stepup.now();
    if let Some(pending) = pending {
        let authentication = Authentication {
            subject: user,
            acr: level::PWD.to_owned(),
            amr: vec![amr::PWD.to_owned()],
            auth_time: Some(now),
        };
        let code = stepup
            .mfa()
            .issue_authorization_code_after_reset(authentication, &pending)
            .await?;
        return redirect_with_code(&pending, &code);
    }
    let issuer = stepup
        .issuer()
        .clone()
        .with_clock(Arc::new(NextSecond(stepup.inner.clock.clone())));
    let grant = Grant::new(user.clone())
        .acr(level::PWD)
        .amr([amr::PWD])
        .auth_time(now);
    let token = issuer.issue(&grant).map_err(|_| ApiError::server_error())?;
    let event = AuditEvent::TokenIssued {
        acr: level::PWD.to_owned(),
        amr: vec![amr::PWD.to_owned()],
        via: "recovery",
    };
    stepup.mfa().audit().record(&user, event).await;
    let body = serde_json::to_value(token).map_err(|_| ApiError::server_error())?;
    Ok(no_store(Json(body).into_response()))
}

/// A clock one second ahead of another.
#[derive(Debug)]
struct NextSecond(SharedClock);

impl Clock for NextSecond {
    fn now(&self) -> SystemTime {
        self.0.now() + Duration::from_secs(1)
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
    stepup.check_caller(&admin).await?;
    if user.is_empty() || user.len() > 256 || !stepup.inner.passwords.account_exists(&user).await? {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such user",
        ));
    }
    stepup.mfa().admin_reset(&user, admin.subject()).await?;
    Ok(no_store(Json(json!({ "success": true })).into_response()))
}

/// The notifier of a `StepUp`: the application's, the one that mails, both, or none.
pub(crate) fn notifier(
    application: Option<Arc<dyn Notifier>>,
    mailer: Option<Arc<dyn Mailer>>,
    passwords: Option<Arc<dyn PasswordCheck>>,
) -> Option<Arc<dyn Notifier>> {
    let mailing = match (mailer, passwords) {
        (Some(mailer), Some(passwords)) => {
            Some(Arc::new(MailNotifier { mailer, passwords }) as Arc<dyn Notifier>)
        }
        _ => None,
    };
    match (application, mailing) {
        (Some(application), Some(mailing)) => Some(Arc::new(Both(application, mailing))),
        (application, mailing) => application.or(mailing),
    }
}

struct Both(Arc<dyn Notifier>, Arc<dyn Notifier>);

#[async_trait]
impl Notifier for Both {
    async fn factor_changed(&self, user: &str, event: &AuditEvent) {
        self.0.factor_changed(user, event).await;
        self.1.factor_changed(user, event).await;
    }
}

/// Mails the user about recoveries, admin resets, factors added or removed and factor locks, at
/// [`PasswordCheck::email_of`]. A notice names what happened, never a code or secret.
struct MailNotifier {
    mailer: Arc<dyn Mailer>,
    passwords: Arc<dyn PasswordCheck>,
}

#[async_trait]
impl Notifier for MailNotifier {
    async fn factor_changed(&self, user: &str, event: &AuditEvent) {
        let Some((subject, text)) = notice(event) else {
            return;
        };
        let address = match self.passwords.email_of(user).await {
            Ok(Some(address)) => address,
            Ok(None) => return,
            Err(_) => {
                tracing::warn!(target: "stepup::mail", "no address for a notice: the password check is unavailable");
                return;
            }
        };
        let body = format!(
            "{text}\n\nIf this was not you, recover your account or contact support right away."
        );
        send_in_background(self.mailer.clone(), Mail::new(address, subject, body));
    }
}

/// The subject and text of the notice of `event`, if it gets one. A recovery request gets none:
/// the mail with its code is the notice. Devices and the reset's own bookkeeping are told as part
/// of the recovery or reset.
fn notice(event: &AuditEvent) -> Option<(&'static str, String)> {
    let notice = match event {
        AuditEvent::RecoveryRequested {}
        | AuditEvent::FactorsReset {}
        | AuditEvent::DeviceRemembered { .. }
        | AuditEvent::DeviceRevoked { .. }
        | AuditEvent::DevicesRevoked { .. } => return None,
        AuditEvent::TotpEnrolled { .. } => (
            "An authenticator app was added",
            "An authenticator app was added to your account as a second factor.".to_owned(),
        ),
        AuditEvent::TotpRemoved {} => (
            "An authenticator app was removed",
            "The authenticator app was removed from your account.".to_owned(),
        ),
        AuditEvent::WebauthnEnrolled { .. } => (
            "A passkey was added",
            "A passkey or security key was added to your account.".to_owned(),
        ),
        AuditEvent::WebauthnRemoved { .. } => (
            "A passkey was removed",
            "A passkey or security key was removed from your account.".to_owned(),
        ),
        AuditEvent::WebauthnCloneSuspected { .. } => (
            "A passkey may have been copied",
            "A sign-in with one of your passkeys was refused: its counter went backwards, so the \
             key may have been copied."
                .to_owned(),
        ),
        AuditEvent::BackupCodesRegenerated { .. } => (
            "New backup codes were made",
            "A new set of backup codes was made for your account; the old ones no longer work."
                .to_owned(),
        ),
        AuditEvent::FactorLocked { method, .. } => (
            "A sign-in factor was locked",
            format!(
                "Your {} factor is locked after too many failed attempts in a row. Recover your \
                 account or ask an administrator to unlock it.",
                method.name()
            ),
        ),
        AuditEvent::RecoveryPending { due_at } => (
            "Your account recovery is pending",
            format!(
                "A recovery of your account was confirmed. It removes every second factor at the \
                 first password login after {due_at} (Unix time). To cancel it, just sign in with \
                 your authenticator, passkey or a remembered device before then."
            ),
        ),
        AuditEvent::RecoveryCancelled {} => (
            "Your account recovery was cancelled",
            "A pending recovery of your account was cancelled by a sign-in with your second factor."
                .to_owned(),
        ),
        AuditEvent::RecoveryCompleted {} => (
            "Your account was recovered",
            "Your account was recovered: every second factor, backup code and remembered device \
             was removed, and every earlier sign-in ended. Enroll a second factor again."
                .to_owned(),
        ),
        AuditEvent::AdminReset { .. } => (
            "An administrator reset your second factors",
            "An administrator removed every second factor, backup code and remembered device of \
             your account and unlocked it. Enroll a second factor again."
                .to_owned(),
        ),
        AuditEvent::AccountDeleted {} => (
            "Your account was deleted",
            "Your account was deleted.".to_owned(),
        ),
        other => (
            "How you sign in changed",
            format!("A change was made to how you sign in: {}.", other.kind()),
        ),
    };
    Some(notice)
}
