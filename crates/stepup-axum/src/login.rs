//! The login: `POST /oauth/authorize` (the first factor, or a signed-in user's step-up) and
//! `POST /oauth/authorize/mfa` (the second factor). An enrolled user gets nothing but the MFA
//! challenge on every path, unless a remembered device of that same user vouches.

use std::net::IpAddr;

use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::header::{SET_COOKIE, USER_AGENT};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use stepup_core::AuthContext;
use stepup_core::acr::{amr, level};
use stepup_mfa::webauthn::PublicKeyCredential;
use stepup_mfa::{AuditEvent, Authentication, DeviceSeen, Method, PendingAuthorization, Proof};
use stepup_tower::{ClientAddr, TrustedDevice, device_cookie};

use crate::error::ApiError;
use crate::json::JsonBody;
use crate::oauth::{self, OAuthParams};
use crate::respond::{finish, no_store};
use crate::stepup::StepUp;

#[derive(Deserialize)]
pub(crate) struct AuthorizeRequest {
    username: Option<String>,
    password: Option<String>,
    acr_values: Option<String>,
    #[serde(flatten)]
    oauth: OAuthParams,
}

/// `POST /oauth/authorize`: a password (or, for a signed-in user asking for `acr_values=mfa`,
/// their current token), then a token, a `302` with a code, or the MFA challenge.
pub(crate) async fn authorize(
    State(stepup): State<StepUp>,
    caller: Option<AuthContext>,
    device: Option<Extension<TrustedDevice>>,
    client: Option<Extension<ClientAddr>>,
    headers: HeaderMap,
    JsonBody(request): JsonBody<AuthorizeRequest>,
) -> Result<Response, ApiError> {
    let pending = oauth::validate(&stepup.inner.clients, &request.oauth)?;
    match (&request.username, &request.password, &caller) {
        (Some(username), Some(password), _) => {
            if username.len() > 320 || password.len() > 1024 {
                return Err(ApiError::invalid_request("username or password too long"));
            }
            let seen = seen(&headers, client.as_ref());
            limited_by_address(&stepup, client, async {
                password_login(&stepup, username, password, device, pending, seen).await
            })
            .await
        }
        (None, None, Some(caller)) if asks_for_mfa(request.acr_values.as_deref()) => {
            step_up(&stepup, caller, pending).await
        }
        (None, None, None) if request.acr_values.is_some() => Err(ApiError::bearer_required()),
        _ => Err(ApiError::invalid_request(
            "send username and password, or a bearer token with acr_values=mfa",
        )),
    }
}

async fn password_login(
    stepup: &StepUp,
    username: &str,
    password: &str,
    device: Option<Extension<TrustedDevice>>,
    pending: Option<PendingAuthorization>,
    seen: DeviceSeen,
) -> Result<Response, ApiError> {
    let mfa = stepup.mfa();
    // Failed passwords are limited per account. A remembered device of the owner still signs in
    // while the account is locked out; for anyone else the answer, right or wrong, waits for the
    // lockout to end.
    if device.is_none() {
        mfa.admit_password(username).await?;
    }
    let checked = stepup.inner.passwords.check(username, password).await?;
    let vouched = matches!(
        (&checked, &device),
        (Some(user), Some(Extension(device))) if &device.user == user
    );
    if device.is_some() && !vouched {
        mfa.admit_password(username).await?;
    }
    let Some(user) = checked else {
        if let Some(user) = stepup.inner.passwords.user_of(username).await? {
            mfa.audit()
                .record(&user, AuditEvent::PasswordFailed {})
                .await;
        }
        return Err(ApiError::new(
            axum::http::StatusCode::UNAUTHORIZED,
            "invalid_grant",
            "invalid username or password",
        ));
    };
    mfa.password_succeeded(username).await?;
    // A recovery whose delay is over takes effect now (see `stepup_mfa::recovery`).
    if mfa.apply_due_recovery(&user).await? {
        return crate::recovery::recovered(stepup, pending, user).await;
    }
    if mfa.is_enrolled(&user).await? {
        if let Some(Extension(device)) = device.filter(|device| device.user == user) {
            // No MFA step: see `stepup_tower::remembered_device` for what this login is worth.
            mfa.device_used(&user, &device.id, seen).await?;
            let authentication = Authentication {
                subject: user,
                acr: level::MFA.to_owned(),
                amr: vec![amr::PWD.to_owned()],
                auth_time: None,
            };
            return finish(stepup, pending, authentication, None).await;
        }
        let challenge = mfa.start_challenge(&user, &[amr::PWD], pending).await?;
        return Ok(no_store(Json(challenge).into_response()));
    }
    let authentication = Authentication {
        subject: user,
        acr: level::PWD.to_owned(),
        amr: vec![amr::PWD.to_owned()],
        auth_time: Some(stepup.now()),
    };
    finish(stepup, pending, authentication, None).await
}

/// Step-up of a signed-in user: the current token stands for the first factor.
async fn step_up(
    stepup: &StepUp,
    caller: &AuthContext,
    pending: Option<PendingAuthorization>,
) -> Result<Response, ApiError> {
    stepup.check_caller(caller).await?;
    let user = caller.subject();
    let mfa = stepup.mfa();
    if !mfa.is_enrolled(user).await? {
        return Err(ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "mfa_not_enrolled",
            "enroll a second factor first (POST /api/mfa/setup)",
        ));
    }
    // The new token's `amr` keeps what the current token says was used, never a second factor
    // (the MFA step adds the one really used now).
    let first: Vec<&str> = caller
        .amr()
        .iter()
        .map(String::as_str)
        .filter(|method| *method == amr::PWD)
        .collect();
    let challenge = mfa.start_challenge(user, &first, pending).await?;
    Ok(no_store(Json(challenge).into_response()))
}

/// Whether `acr_values` asks for more than a password.
fn asks_for_mfa(acr_values: Option<&str>) -> bool {
    acr_values.is_some_and(|values| {
        values
            .split(' ')
            .any(|value| value == level::MFA || value == level::PHR)
    })
}

#[derive(Deserialize)]
pub(crate) struct MfaLogin {
    mfa_token: String,
    method: Option<String>,
    code: Option<String>,
    backup_code: Option<String>,
    credential: Option<PublicKeyCredential>,
    #[serde(default)]
    remember_device: bool,
}

impl MfaLogin {
    fn proof(&self) -> Result<Proof<'_>, ApiError> {
        let method = self.method.as_deref();
        if let Some(credential) = &self.credential {
            return match (method, &self.code, &self.backup_code) {
                (None | Some("webauthn"), None, None) => Ok(Proof::Webauthn(credential)),
                _ => Err(ApiError::invalid_request(
                    "send the mfa_token with exactly one of code, backup_code and credential",
                )),
            };
        }
        match (method, &self.code, &self.backup_code) {
            (None | Some("totp"), Some(code), None) => Ok(Proof::Totp(code)),
            (None | Some("backup_code"), None, Some(code)) => Ok(Proof::BackupCode(code)),
            (Some("backup_code"), Some(code), None) => Ok(Proof::BackupCode(code)),
            (Some("sms"), Some(code), None) => Ok(Proof::Sms(code)),
            _ => Err(ApiError::invalid_request(
                "send the mfa_token with exactly one of code, backup_code and credential",
            )),
        }
    }
}

/// `POST /oauth/authorize/mfa`: `mfa_token` plus a second factor → a token with `acr` `mfa` (or,
/// for a pending authorization, a `302` with a code).
pub(crate) async fn authorize_mfa(
    State(stepup): State<StepUp>,
    client: Option<Extension<ClientAddr>>,
    headers: HeaderMap,
    JsonBody(login): JsonBody<MfaLogin>,
) -> Result<Response, ApiError> {
    let proof = login.proof()?;
    let seen = seen(&headers, client.as_ref());
    limited_by_address(&stepup, client, async {
        let mfa = stepup.mfa();
        let completed = mfa.complete_challenge(&login.mfa_token, proof).await?;
        let cookie = if login.remember_device {
            let remembered = mfa
                .remember_device(&completed.subject, stepup.inner.remember_for, seen)
                .await?;
            Some(
                device_cookie(&remembered.token, stepup.inner.remember_for)
                    .ok_or_else(ApiError::server_error)?,
            )
        } else {
            None
        };
        let authentication = Authentication {
            subject: completed.subject,
            acr: acr_of(completed.method, completed.phishing_resistant).to_owned(),
            amr: completed.amr,
            auth_time: Some(stepup.now()),
        };
        let mut response = finish(
            &stepup,
            completed.pending,
            authentication,
            completed.remaining_backup_codes,
        )
        .await?;
        if let Some(cookie) = cookie {
            response.headers_mut().append(SET_COOKIE, cookie);
        }
        Ok(response)
    })
    .await
}

/// The level a second factor reaches: a WebAuthn assertion with user verification is
/// phishing-resistant (`phr`); codes, and assertions without user verification, reach `mfa`.
fn acr_of(method: Method, phishing_resistant: bool) -> &'static str {
    match method {
        Method::Webauthn if phishing_resistant => level::PHR,
        _ => level::MFA,
    }
}

/// Runs a login step under the client address's failure budget: refused with `429` once it is
/// used up; a wrong guess stays counted, anything else is given back.
pub(crate) async fn limited_by_address(
    stepup: &StepUp,
    client: Option<Extension<ClientAddr>>,
    step: impl Future<Output = Result<Response, ApiError>>,
) -> Result<Response, ApiError> {
    let address = client.map(|Extension(ClientAddr(ip))| address_key(ip, stepup.inner.ipv6_prefix));
    let mfa = stepup.mfa();
    let attempt = mfa.admit_address(address.as_deref()).await?;
    let outcome = step.await;
    let failed = outcome
        .as_ref()
        .err()
        .is_some_and(ApiError::is_failed_guess);
    mfa.settle_address_attempt(attempt, failed).await?;
    outcome
}

/// Where a request came from, for the device record.
fn seen(headers: &HeaderMap, client: Option<&Extension<ClientAddr>>) -> DeviceSeen {
    DeviceSeen {
        address: client.map(|Extension(ClientAddr(address))| address.to_string()),
        user_agent: headers
            .get(USER_AGENT)
            .and_then(|agent| agent.to_str().ok())
            .map(str::to_owned),
    }
}

/// The key a client address is limited under: IPv4 as is, IPv6 by its network prefix (a /64 by
/// default), since one client usually holds a whole /64.
pub(crate) fn address_key(ip: IpAddr, ipv6_prefix: u8) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let prefix = u32::from(ipv6_prefix.min(128));
                let bits = u128::from(v6);
                let mask = if prefix == 0 {
                    0
                } else {
                    u128::MAX << (128 - prefix)
                };
                format!("{}/{prefix}", std::net::Ipv6Addr::from(bits & mask))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::address_key;

    #[test]
    fn ipv6_clients_are_grouped_by_prefix() {
        let a = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let other = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_key(a, 64), address_key(b, 64));
        assert_ne!(address_key(a, 64), address_key(other, 64));
        assert_eq!(address_key(a, 64), "2001:db8:1:2::/64");
        assert_ne!(address_key(a, 128), address_key(b, 128));
        assert_eq!(address_key("192.0.2.1".parse().unwrap(), 64), "192.0.2.1");
        assert_eq!(
            address_key("::ffff:192.0.2.1".parse().unwrap(), 64),
            "192.0.2.1"
        );
    }
}
