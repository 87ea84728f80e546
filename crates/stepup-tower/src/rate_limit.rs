//! Per-client rate limiting: at most `max` requests per `window` from each [`ClientAddr`], counted
//! by a [`RequestCeiling`] policy (stepup's engine counts in its ephemeral store, so that every
//! instance of the service shares the budget, and groups addresses by its one
//! [`AddressGrouping`](stepup_core::client::AddressGrouping): IPv6 by prefix, unknown clients in
//! one group, so the limit fails closed, not open).
//!
//! Each request is counted before it is served (a fixed window started by the client's first
//! request); the policy's atomic count keeps concurrent requests from ever exceeding the limit.
//!
//! ```text
//! HTTP/1.1 429 Too Many Requests
//! Retry-After: 300
//! Content-Type: application/json
//!
//! {"error":"too_many_requests","error_description":"too many requests; retry later"}
//! ```
//!
//! If the policy cannot count, the request is refused with `503` and
//! `{"error":"temporarily_unavailable",…}`, never let through.
//!
//! ```
//! use std::collections::HashMap;
//! use std::convert::Infallible;
//! use std::net::IpAddr;
//! use std::sync::Mutex;
//! use std::time::Duration;
//! use http::{Request, Response, StatusCode};
//! use stepup_core::policy::{Admission, RequestCeiling, Unavailable, async_trait};
//! use stepup_tower::client_addr::{PeerAddr, ResolveClientAddrLayer, TrustedProxies};
//! use stepup_tower::rate_limit::RateLimitLayer;
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! /// Counts in this process only, per exact address (stepup's engine shares its counts).
//! #[derive(Default)]
//! struct LocalCounts(Mutex<HashMap<Option<IpAddr>, u64>>);
//!
//! #[async_trait]
//! impl RequestCeiling for LocalCounts {
//!     async fn admit(&self, _name: &str, client: Option<IpAddr>, max: u64, window: Duration)
//!         -> Result<Admission, Unavailable>
//!     {
//!         let mut counts = self.0.lock().map_err(|_| Unavailable)?;
//!         let count = counts.entry(client).or_default();
//!         *count += 1;
//!         Ok(if *count > max { Admission::Limited { retry_after: window } } else { Admission::Allowed })
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let service = ServiceBuilder::new()
//!     .layer(ResolveClientAddrLayer::new(TrustedProxies::none()))
//!     .layer(RateLimitLayer::new(LocalCounts::default(), "login")
//!         .with_limit(2, Duration::from_secs(60)))
//!     .service(service_fn(|_: Request<String>| async {
//!         Ok::<_, Infallible>(Response::new(String::from("welcome")))
//!     }));
//!
//! let request = || {
//!     let mut request = Request::new(String::new());
//!     request.extensions_mut().insert(PeerAddr("198.51.100.7:50000".parse().unwrap()));
//!     request
//! };
//! assert_eq!(service.clone().oneshot(request()).await?.status(), StatusCode::OK);
//! assert_eq!(service.clone().oneshot(request()).await?.status(), StatusCode::OK);
//! let refused = service.oneshot(request()).await?;
//! assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
//! assert_eq!(refused.headers()["retry-after"], "60");
//! # Ok::<(), Infallible>(())
//! # }).unwrap();
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::header::{CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderValue, Request, Response, StatusCode};
use stepup_core::policy::{Admission, RequestCeiling};
use tower_layer::Layer;
use tower_service::Service;

use crate::client_addr::ClientAddr;
pub use crate::response::ResponseBody;

/// The default ceiling: 300 requests…
pub const DEFAULT_MAX: u64 = 300;

/// …per 5 minutes. Generous on purpose: this bounds the work (password hashing) one address can
/// cause, whatever the outcome; failed logins have their own, tighter budget in the engine.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(5 * 60);

/// The shortest window.
const MIN_WINDOW: Duration = Duration::from_secs(1);

/// Response future of [`RateLimit`]: boxed, as it awaits the policy before the inner service.
pub type RateLimitFuture<B, E> =
    Pin<Box<dyn Future<Output = Result<Response<ResponseBody<B>>, E>> + Send + 'static>>;

/// Layer that applies [`RateLimit`].
#[derive(Clone)]
pub struct RateLimitLayer {
    config: Arc<Config>,
}

struct Config {
    counters: Arc<dyn RequestCeiling>,
    name: &'static str,
    max: u64,
    window: Duration,
}

impl RateLimitLayer {
    /// Limits each client to [`DEFAULT_MAX`] requests per [`DEFAULT_WINDOW`], counted by
    /// `counters` under `name`. Give each limited group of routes its own `name`.
    pub fn new(counters: impl RequestCeiling, name: &'static str) -> Self {
        Self::shared(Arc::new(counters), name)
    }

    /// [`new`](Self::new) with a policy shared with other layers.
    pub fn shared(counters: Arc<dyn RequestCeiling>, name: &'static str) -> Self {
        Self {
            config: Arc::new(Config {
                counters,
                name,
                max: DEFAULT_MAX,
                window: DEFAULT_WINDOW,
            }),
        }
    }

    /// At most `max` requests per client in each fixed `window` (started by the client's first
    /// request). A `max` of 0 refuses every request; a `window` under a second counts as one
    /// second (stores keep whole seconds, and a zero window would count nothing).
    pub fn with_limit(self, max: u64, window: Duration) -> Self {
        let window = window.max(MIN_WINDOW);
        let config = &self.config;
        Self {
            config: Arc::new(Config {
                counters: config.counters.clone(),
                name: config.name,
                max,
                window,
            }),
        }
    }

    /// The name the requests are counted under.
    pub fn name(&self) -> &'static str {
        self.config.name
    }

    /// The maximum number of requests per window.
    pub fn max(&self) -> u64 {
        self.config.max
    }

    /// The length of a window.
    pub fn window(&self) -> Duration {
        self.config.window
    }
}

impl fmt::Debug for RateLimitLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.config.fmt(f)
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimit")
            .field("name", &self.name)
            .field("max", &self.max)
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimit {
            inner,
            config: self.config.clone(),
        }
    }
}

/// Middleware limiting each client's request rate; see the [module docs](self).
#[derive(Clone)]
pub struct RateLimit<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S: fmt::Debug> fmt::Debug for RateLimit<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimit")
            .field("inner", &self.inner)
            .field("config", &self.config)
            .finish()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RateLimit<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = RateLimitFuture<ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // The readied service is the one called; the clone waits for the next `poll_ready`.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let config = self.config.clone();
        let client = request
            .extensions()
            .get::<ClientAddr>()
            .map(|ClientAddr(ip)| *ip);
        let grpc = stepup_core::grpc::is_grpc_request(request.headers());
        Box::pin(async move {
            let admission = config
                .counters
                .admit(config.name, client, config.max, config.window)
                .await;
            match admission {
                Ok(Admission::Allowed) => inner
                    .call(request)
                    .await
                    .map(|response| response.map(ResponseBody::from_inner)),
                Ok(Admission::Limited { retry_after }) => {
                    tracing::debug!(limit = config.name, "rate limit exceeded");
                    Ok(too_many_requests(retry_after, grpc))
                }
                Err(error) => {
                    tracing::warn!(limit = config.name, %error, "rate limit policy failed; refusing");
                    Ok(crate::response::temporarily_unavailable(grpc))
                }
            }
        })
    }
}

/// `429` with `Retry-After` set to the window (whole seconds, rounded up); for a gRPC call, the
/// status `RESOURCE_EXHAUSTED` with the same `Retry-After`.
fn too_many_requests<B>(window: Duration, grpc: bool) -> Response<ResponseBody<B>> {
    use stepup_core::grpc::{GrpcCode, GrpcStatus};

    let seconds = stepup_core::error_body::retry_after_seconds(window);
    let (code, description) = ("too_many_requests", "too many requests; retry later");
    let mut response = if grpc {
        GrpcStatus::new(GrpcCode::ResourceExhausted, description)
            .with_reason(code.to_ascii_uppercase())
            .with_metadata("error", code)
            .to_response()
            .map(ResponseBody::from_rejection)
    } else {
        rejection(StatusCode::TOO_MANY_REQUESTS, code, description)
    };
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(seconds));
    response
}

fn rejection<B>(
    status: StatusCode,
    error: &'static str,
    description: &'static str,
) -> Response<ResponseBody<B>> {
    let body = stepup_core::error_body::error_body(error, description);
    let mut response = Response::new(ResponseBody::from_rejection(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up() {
        let response = too_many_requests::<String>(Duration::from_millis(1500), false);
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[RETRY_AFTER], "2");
        let response = too_many_requests::<String>(Duration::from_secs(300), false);
        assert_eq!(response.headers()[RETRY_AFTER], "300");
        assert_eq!(response.headers()[CONTENT_TYPE], "application/json");
        let response = too_many_requests::<String>(Duration::from_secs(300), true);
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["grpc-status"], "8");
        assert_eq!(response.headers()[RETRY_AFTER], "300");
    }

    struct Never;

    #[stepup_core::policy::async_trait]
    impl RequestCeiling for Never {
        async fn admit(
            &self,
            _: &str,
            _: Option<std::net::IpAddr>,
            _: u64,
            window: Duration,
        ) -> Result<Admission, stepup_core::policy::Unavailable> {
            Ok(Admission::Limited {
                retry_after: window,
            })
        }
    }

    #[test]
    fn builders() {
        let layer = RateLimitLayer::new(Never, "login");
        assert_eq!((layer.max(), layer.window()), (DEFAULT_MAX, DEFAULT_WINDOW));
        let layer = layer.with_limit(5, Duration::from_secs(60));
        assert_eq!(layer.name(), "login");
        assert_eq!((layer.max(), layer.window()), (5, Duration::from_secs(60)));
        assert!(format!("{layer:?}").contains("login"));
        let layer = layer.with_limit(1, Duration::ZERO);
        assert_eq!(layer.window(), Duration::from_secs(1));
    }
}
