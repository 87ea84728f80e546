//! The remembered-device cookie: after a second factor with `remember_device: true`, a random
//! token in a `__Host-` cookie ([`device_cookie`]) lets the same user skip the MFA step on that
//! browser.
//!
//! - [`RememberedDevicesLayer`] reads the cookie, asks its [`DeviceVouching`] policy (stepup's
//!   engine, which keeps only the token's SHA-256) whose device it is, and puts a
//!   [`TrustedDevice`] in the request extensions; handlers decide what it is worth (a device
//!   vouches only for its own user). A policy that cannot answer makes the device unknown, so MFA
//!   is asked for: it fails closed.
//!
//! ```
//! use stepup_core::policy::{DeviceVouching, TrustedDevice, Unavailable, async_trait};
//! use stepup_tower::remembered_device::RememberedDevicesLayer;
//! use tower::ServiceBuilder;
//!
//! struct NoDevices;
//!
//! #[async_trait]
//! impl DeviceVouching for NoDevices {
//!     async fn device(&self, _token: &str) -> Result<Option<TrustedDevice>, Unavailable> {
//!         Ok(None)
//!     }
//! }
//!
//! let service = ServiceBuilder::new()
//!     .layer(RememberedDevicesLayer::new(NoDevices))
//!     .service(tower::service_fn(|_: http::Request<String>| async {
//!         Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
//!     }));
//! # drop(service);
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use cookie::{Cookie, SameSite};
use http::header::COOKIE;
use http::{HeaderMap, HeaderValue, Request};
pub use stepup_core::policy::{DeviceVouching, TrustedDevice};
use tower_layer::Layer;
use tower_service::Service;

/// The cookie's name. `__Host-` makes browsers refuse it unless `Secure`, host-only and `Path=/`.
pub const DEVICE_COOKIE: &str = "__Host-stepup_device";
/// How long a device is remembered by default.
pub const DEFAULT_REMEMBER_FOR: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// Layer that verifies the device cookie; see the [module docs](self).
#[derive(Clone)]
pub struct RememberedDevicesLayer {
    devices: Arc<dyn DeviceVouching>,
}

impl RememberedDevicesLayer {
    /// Asks `devices` whose device each cookie is.
    pub fn new(devices: impl DeviceVouching) -> Self {
        Self {
            devices: Arc::new(devices),
        }
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
    devices: Arc<dyn DeviceVouching>,
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
                match devices.device(&token).await {
                    Ok(Some(device)) => {
                        request.extensions_mut().insert(device);
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
pub fn device_token(headers: &HeaderMap) -> Option<String> {
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

/// The `Set-Cookie` value that gives a browser its device `token` for `max_age`: `__Host-`
/// name, `Secure`, `HttpOnly`, `SameSite=Strict`, `Path=/`.
pub fn device_cookie(token: &str, max_age: Duration) -> Option<HeaderValue> {
    let max_age = i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX);
    let cookie = Cookie::build((DEVICE_COOKIE, token))
        .path("/")
        .secure(true)
        .http_only(true)
        .same_site(SameSite::Strict)
        .max_age(cookie::time::Duration::seconds(max_age))
        .build();
    HeaderValue::from_str(&cookie.to_string()).ok()
}
