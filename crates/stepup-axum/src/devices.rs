//! "Remember this device": after a successful second factor with `remember_device: true`, a random
//! token in a `__Host-` cookie lets the same user skip the MFA step on that browser.
//!
//! - The store keeps only the token's SHA-256, the user, times, address and user agent.
//! - [`RememberedDevicesLayer`] reads and verifies the cookie and puts a [`TrustedDevice`] in the
//!   request extensions; handlers decide what it is worth.
//! - A device counts only for its own user, is listed and revoked through `/api/mfa/devices`, and
//!   is revoked when the user's factors are removed.
//! - A remembered login gets `acr` `mfa`, `amr` `["pwd"]` (only what was really used now) and **no
//!   `auth_time`**: no second factor was verified at this moment, so a route with a `max_age`
//!   refuses it and asks for a fresh one.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::http::header::{COOKIE, USER_AGENT};
use axum::http::{HeaderMap, HeaderValue, Request};
use cookie::{Cookie, SameSite};
use stepup_mfa::tokens;
use stepup_store::{DeviceRecord, DeviceStore};
use tower_layer::Layer;
use tower_service::Service;

/// The cookie's name. `__Host-` makes browsers refuse it unless `Secure`, host-only and `Path=/`.
pub const DEVICE_COOKIE: &str = "__Host-stepup_device";
/// How long a device is remembered by default.
pub const DEFAULT_REMEMBER_FOR: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// A remembered device presented by this request, verified against the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedDevice {
    /// The device's id.
    pub id: String,
    /// The user it belongs to: it vouches for nobody else.
    pub user: String,
    /// When the second factor that remembered it was verified (Unix seconds).
    pub mfa_at: u64,
}

/// Layer that verifies the device cookie; see the [module docs](self).
#[derive(Clone)]
pub struct RememberedDevicesLayer {
    devices: Arc<dyn DeviceStore>,
}

impl RememberedDevicesLayer {
    /// Verifies cookies against `devices`.
    pub fn new(devices: Arc<dyn DeviceStore>) -> Self {
        Self { devices }
    }
}

impl std::fmt::Debug for RememberedDevicesLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RememberedDevicesLayer")
            .finish_non_exhaustive()
    }
}

impl<S> Layer<S> for RememberedDevicesLayer {
    type Service = RememberedDevices<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RememberedDevices {
            inner,
            devices: self.devices.clone(),
        }
    }
}

/// Middleware inserting [`TrustedDevice`]; see the [module docs](self).
#[derive(Clone)]
pub struct RememberedDevices<S> {
    inner: S,
    devices: Arc<dyn DeviceStore>,
}

impl<S> std::fmt::Debug for RememberedDevices<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RememberedDevices").finish_non_exhaustive()
    }
}

impl<S, B> Service<Request<B>> for RememberedDevices<S>
where
    S: Service<Request<B>> + Clone + Send + 'static,
    S::Future: Send,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        // Call the service that was driven to readiness; leave a fresh clone in its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let devices = self.devices.clone();
        Box::pin(async move {
            // Only this layer may vouch for a device.
            request.extensions_mut().remove::<TrustedDevice>();
            if let Some(token) = device_token(request.headers()) {
                match devices.device_by_token(&tokens::digest(&token)).await {
                    Ok(Some(device)) => {
                        request.extensions_mut().insert(TrustedDevice {
                            id: device.id,
                            user: device.user,
                            mfa_at: device.mfa_at,
                        });
                    }
                    Ok(None) => {}
                    // Fail closed: an unverifiable device is no device, so MFA is asked for.
                    Err(error) => tracing::warn!(%error, "device lookup failed"),
                }
            }
            inner.call(request).await
        })
    }
}

/// The device token from the `Cookie` headers, if one is well-formed.
fn device_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|cookie| cookie.name() == DEVICE_COOKIE)
        .map(|cookie| cookie.value().to_owned())
        .filter(|token| token.len() == 43)
}

/// A new device for `user`: the record to store and the `Set-Cookie` value carrying its token.
/// `None` only if the cookie could not be made a header value (it always can: base64url).
pub(crate) fn remember(
    user: &str,
    now: u64,
    remember_for: Duration,
    headers: &HeaderMap,
    address: Option<String>,
) -> Option<(DeviceRecord, HeaderValue)> {
    let token = tokens::random_token();
    let user_agent = headers
        .get(USER_AGENT)
        .and_then(|value| value.to_str().ok())
        .map(|agent| agent.chars().take(256).collect());
    let record = DeviceRecord {
        id: tokens::random_id(),
        user: user.to_owned(),
        token_hash: tokens::digest(&token),
        created_at: now,
        last_used_at: now,
        expires_at: now.saturating_add(remember_for.as_secs()),
        mfa_at: now,
        address,
        user_agent,
    };
    let max_age = i64::try_from(remember_for.as_secs()).unwrap_or(i64::MAX);
    let cookie = Cookie::build((DEVICE_COOKIE, token))
        .path("/")
        .secure(true)
        .http_only(true)
        .same_site(SameSite::Strict)
        .max_age(cookie::time::Duration::seconds(max_age))
        .build();
    let header = HeaderValue::from_str(&cookie.to_string()).ok()?;
    Some((record, header))
}
