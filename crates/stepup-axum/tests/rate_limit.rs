//! The per-client request ceiling (`RateLimitLayer` counted by the engine), with client
//! addresses resolved through trusted proxies only.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body_util::BodyExt;
use stepup_core::clock::ManualClock;
use stepup_mfa::{Keyring, Mfa, Stores};
use stepup_store::{EphemeralStore, MemoryStore, StoreError, StoreResult, async_trait};
use stepup_tower::client_addr::{
    ForwardedHeader, PeerAddr, ResolveClientAddrLayer, TrustedProxies,
};
use stepup_tower::rate_limit::RateLimitLayer;
use stepup_tower::{ClientAddr, ResponseBody};
use tower::util::BoxCloneSyncService;
use tower::{ServiceBuilder, ServiceExt, service_fn};

const WINDOW: Duration = Duration::from_secs(60);
const LIMIT: u64 = 5;

type TestService = BoxCloneSyncService<Request<String>, Response<ResponseBody<String>>, Infallible>;

/// The engine counting the ceiling, its ephemeral state in `counters`.
fn engine(counters: Arc<dyn EphemeralStore>) -> Mfa {
    let mut stores = Stores::shared(MemoryStore::new());
    stores.ephemeral = counters;
    Mfa::new(stores, Keyring::new("k1", &[1; 32]).unwrap(), &[2; 32]).unwrap()
}

/// Client resolution (10.0.0.0/8 trusted, writing `X-Forwarded-For`) then a limit of 5 per
/// minute; the inner service echoes the client address it saw.
fn service(counters: Arc<dyn EphemeralStore>) -> TestService {
    service_reading(counters, ForwardedHeader::XForwardedFor)
}

/// [`service`], with the proxies writing `header`.
fn service_reading(counters: Arc<dyn EphemeralStore>, header: ForwardedHeader) -> TestService {
    let trusted = TrustedProxies::parse(&["10.0.0.0/8"])
        .unwrap()
        .with_header(header);
    let service = ServiceBuilder::new()
        .layer(ResolveClientAddrLayer::new(trusted))
        .layer(RateLimitLayer::new(engine(counters), "login").with_limit(LIMIT, WINDOW))
        .service(service_fn(|request: Request<String>| async move {
            let client = request
                .extensions()
                .get::<ClientAddr>()
                .map_or_else(|| "none".to_owned(), ToString::to_string);
            Ok::<_, Infallible>(Response::new(client))
        }));
    BoxCloneSyncService::new(service)
}

fn store(clock: &ManualClock) -> Arc<MemoryStore> {
    Arc::new(MemoryStore::new().with_clock(Arc::new(clock.clone())))
}

fn request(peer: &str, headers: &[(&'static str, &str)]) -> Request<String> {
    let mut request = Request::new(String::new());
    let peer: SocketAddr = peer.parse().unwrap();
    request.extensions_mut().insert(PeerAddr(peer));
    for (name, value) in headers {
        request
            .headers_mut()
            .append(*name, HeaderValue::from_str(value).unwrap());
    }
    request
}

async fn send(service: &TestService, request: Request<String>) -> (StatusCode, HeaderMap, String) {
    let response = service.clone().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    (
        parts.status,
        parts.headers,
        String::from_utf8(body.to_vec()).unwrap(),
    )
}

async fn status(service: &TestService, request: Request<String>) -> StatusCode {
    send(service, request).await.0
}

#[tokio::test]
async fn sixth_request_gets_429_with_retry_after() {
    let clock = ManualClock::at_unix(1_700_000_000);
    let service = service(store(&clock));
    for _ in 0..LIMIT {
        let (code, _, body) = send(&service, request("203.0.113.9:40000", &[])).await;
        assert_eq!(code, StatusCode::OK);
        assert_eq!(body, "203.0.113.9");
    }
    let (code, headers, body) = send(&service, request("203.0.113.9:40001", &[])).await;
    assert_eq!(code, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(headers["retry-after"], "60");
    assert_eq!(headers["content-type"], "application/json");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"], "too_many_requests");
    assert!(body["error_description"].is_string());

    // Another client has its own budget.
    assert_eq!(
        status(&service, request("203.0.113.10:40000", &[])).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn untrusted_peer_cannot_rotate_x_forwarded_for() {
    let clock = ManualClock::at_unix(1_700_000_000);
    let service = service(store(&clock));
    for index in 0..LIMIT {
        let spoofed = format!("198.51.100.{index}");
        let (code, _, body) = send(
            &service,
            request("203.0.113.9:40000", &[("x-forwarded-for", &spoofed)]),
        )
        .await;
        assert_eq!(code, StatusCode::OK);
        assert_eq!(body, "203.0.113.9");
    }
    let sixth = request(
        "203.0.113.9:40000",
        &[
            ("x-forwarded-for", "198.51.100.99"),
            ("forwarded", "for=198.51.100.98"),
        ],
    );
    assert_eq!(status(&service, sixth).await, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_client_has_its_own_budget() {
    let clock = ManualClock::at_unix(1_700_000_000);
    let service = service(store(&clock));
    let via_proxy = |xff: &str| request("10.0.0.1:443", &[("x-forwarded-for", xff)]);

    for _ in 0..LIMIT {
        let (code, _, body) = send(&service, via_proxy("198.51.100.7, 10.0.0.2")).await;
        assert_eq!(code, StatusCode::OK);
        assert_eq!(body, "198.51.100.7");
        assert_eq!(
            status(&service, via_proxy("198.51.100.8")).await,
            StatusCode::OK
        );
    }
    assert_eq!(
        status(&service, via_proxy("198.51.100.7")).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        status(&service, via_proxy("198.51.100.8")).await,
        StatusCode::TOO_MANY_REQUESTS
    );

    // Prepending hops to the left does not change who the client is.
    for spoof in [
        "1.2.3.4, 198.51.100.7",
        "10.0.0.3, 198.51.100.7",
        "unknown, 198.51.100.7",
    ] {
        let (code, _, _) = send(&service, via_proxy(spoof)).await;
        assert_eq!(code, StatusCode::TOO_MANY_REQUESTS, "{spoof}");
    }
    // A client-sent header before the proxy's own one does not either.
    let two_headers = request(
        "10.0.0.1:443",
        &[
            ("x-forwarded-for", "1.2.3.4"),
            ("x-forwarded-for", "198.51.100.7"),
        ],
    );
    assert_eq!(
        status(&service, two_headers).await,
        StatusCode::TOO_MANY_REQUESTS
    );

    // A third client still has its budget.
    assert_eq!(
        status(&service, via_proxy("1.2.3.4, 198.51.100.9")).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn forwarded_header_works_the_same() {
    let clock = ManualClock::at_unix(1_700_000_000);
    let service = service_reading(store(&clock), ForwardedHeader::Forwarded);
    let via_proxy = |forwarded: &str| request("10.0.0.1:443", &[("forwarded", forwarded)]);

    for _ in 0..LIMIT {
        let (code, _, body) = send(
            &service,
            via_proxy("for=\"[2001:db8:cafe::17]:4711\";proto=https, for=10.0.0.2"),
        )
        .await;
        assert_eq!(code, StatusCode::OK);
        assert_eq!(body, "2001:db8:cafe::17");
    }
    assert_eq!(
        status(&service, via_proxy("for=\"[2001:db8:cafe::17]\"")).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Spoofing by prepending elements does not help.
    assert_eq!(
        status(
            &service,
            via_proxy("for=192.0.2.1, for=\"[2001:db8:cafe::17]:1\"")
        )
        .await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Another client behind the proxy.
    assert_eq!(
        status(&service, via_proxy("for=192.0.2.60")).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn with_x_forwarded_for_configured_a_spoofed_forwarded_is_ignored() {
    let clock = ManualClock::at_unix(1_700_000_000);
    let service = service(store(&clock));
    // The proxy appends to X-Forwarded-For and passes the client's own Forwarded on.
    for index in 0..LIMIT {
        let spoofed = format!("for=192.0.2.{index}");
        let headers = [("x-forwarded-for", "198.51.100.7"), ("forwarded", &spoofed)];
        let (code, _, body) = send(&service, request("10.0.0.1:443", &headers)).await;
        assert_eq!(code, StatusCode::OK);
        assert_eq!(body, "198.51.100.7");
    }
    let headers = [
        ("x-forwarded-for", "198.51.100.7"),
        ("forwarded", "for=192.0.2.99"),
    ];
    assert_eq!(
        status(&service, request("10.0.0.1:443", &headers)).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Without X-Forwarded-For, Forwarded is not read either: the client is the proxy itself.
    let (code, _, body) = send(
        &service,
        request("10.0.0.1:443", &[("forwarded", "for=192.0.2.1")]),
    )
    .await;
    assert_eq!((code, body.as_str()), (StatusCode::OK, "10.0.0.1"));
}

#[tokio::test]
async fn with_forwarded_configured_a_spoofed_x_forwarded_for_is_ignored() {
    let clock = ManualClock::at_unix(1_700_000_000);
    let service = service_reading(store(&clock), ForwardedHeader::Forwarded);
    for index in 0..LIMIT {
        let spoofed = format!("192.0.2.{index}");
        let headers = [
            ("forwarded", "for=198.51.100.7"),
            ("x-forwarded-for", &spoofed),
        ];
        let (code, _, body) = send(&service, request("10.0.0.1:443", &headers)).await;
        assert_eq!(code, StatusCode::OK);
        assert_eq!(body, "198.51.100.7");
    }
    let headers = [
        ("forwarded", "for=198.51.100.7"),
        ("x-forwarded-for", "192.0.2.99"),
    ];
    assert_eq!(
        status(&service, request("10.0.0.1:443", &headers)).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    let (code, _, body) = send(
        &service,
        request("10.0.0.1:443", &[("x-forwarded-for", "192.0.2.1")]),
    )
    .await;
    assert_eq!((code, body.as_str()), (StatusCode::OK, "10.0.0.1"));
}

/// Asserts `body` is exactly `{"error": error, "error_description": …}` and names no address.
fn assert_json_error_body(body: &str, error: &str) {
    let body: serde_json::Value = serde_json::from_str(body).unwrap();
    let fields: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(fields, ["error", "error_description"]);
    assert_eq!(body["error"], error);
    let text = body.to_string();
    for echoed in ["203.0.113", "198.51.100", "10.0.0", "login"] {
        assert!(!text.contains(echoed), "{text}");
    }
}

#[tokio::test]
async fn refusals_are_json_error_bodies_that_echo_nothing() {
    let clock = ManualClock::at_unix(1_700_000_000);
    let service = service(store(&clock));
    let hostile = || {
        request(
            "10.0.0.1:443",
            &[
                ("x-forwarded-for", "198.51.100.7"),
                ("forwarded", "for=\"x\""),
            ],
        )
    };
    for _ in 0..LIMIT {
        assert_eq!(status(&service, hostile()).await, StatusCode::OK);
    }
    let (code, headers, body) = send(&service, hostile()).await;
    assert_eq!(code, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(headers["content-type"], "application/json");
    assert_json_error_body(&body, "too_many_requests");

    let failing = service_reading(Arc::new(FailingStore), ForwardedHeader::XForwardedFor);
    let (code, headers, body) = send(&failing, hostile()).await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(headers["content-type"], "application/json");
    assert_json_error_body(&body, "temporarily_unavailable");
}

#[tokio::test]
async fn ipv6_clients_of_one_64_share_a_budget() {
    let clock = ManualClock::at_unix(1_700_000_000);
    let service = service(store(&clock));
    for host in 1..=LIMIT {
        let peer = format!("[2001:db8:1:2::{host:x}]:40000");
        let (code, _, body) = send(&service, request(&peer, &[])).await;
        assert_eq!(code, StatusCode::OK);
        assert_eq!(body, format!("2001:db8:1:2::{host:x}"));
    }
    // Another address of the same /64 (a client choosing its interface id) is the same client…
    assert_eq!(
        status(
            &service,
            request("[2001:db8:1:2:ffff:ffff:ffff:ffff]:1", &[])
        )
        .await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // …and so is one named by a trusted proxy.
    let via_proxy = request(
        "10.0.0.1:443",
        &[("x-forwarded-for", "2001:db8:1:2:abcd::1")],
    );
    assert_eq!(
        status(&service, via_proxy).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // The next /64 is another client.
    assert_eq!(
        status(&service, request("[2001:db8:1:3::1]:1", &[])).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn limit_resets_after_the_window() {
    let clock = ManualClock::at_unix(1_700_000_000);
    let service = service(store(&clock));
    for _ in 0..LIMIT {
        assert_eq!(
            status(&service, request("203.0.113.9:1", &[])).await,
            StatusCode::OK
        );
    }
    assert_eq!(
        status(&service, request("203.0.113.9:1", &[])).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Still limited just before the window ends.
    clock.advance(WINDOW - Duration::from_secs(1));
    assert_eq!(
        status(&service, request("203.0.113.9:1", &[])).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    clock.advance(Duration::from_secs(1));
    for _ in 0..LIMIT {
        assert_eq!(
            status(&service, request("203.0.113.9:1", &[])).await,
            StatusCode::OK
        );
    }
    assert_eq!(
        status(&service, request("203.0.113.9:1", &[])).await,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn requests_without_a_client_address_share_one_budget() {
    let clock = ManualClock::at_unix(1_700_000_000);
    let service = service(store(&clock));
    let anonymous = |xff: &str| {
        let mut request = Request::new(String::new());
        request
            .headers_mut()
            .insert("x-forwarded-for", HeaderValue::from_str(xff).unwrap());
        request
    };
    for index in 0..LIMIT {
        let (code, _, body) = send(&service, anonymous(&format!("192.0.2.{index}"))).await;
        assert_eq!(code, StatusCode::OK);
        assert_eq!(body, "none");
    }
    assert_eq!(
        status(&service, anonymous("192.0.2.200")).await,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_never_exceed_the_limit() {
    let clock = ManualClock::at_unix(1_700_000_000);
    let service = service(store(&clock));
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let service = service.clone();
            tokio::spawn(async move { status(&service, request("203.0.113.9:1", &[])).await })
        })
        .collect();
    let mut passed = 0;
    let mut limited = 0;
    for task in tasks {
        match task.await.unwrap() {
            StatusCode::OK => passed += 1,
            StatusCode::TOO_MANY_REQUESTS => limited += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!((passed, limited), (LIMIT, 100 - LIMIT));
}

#[tokio::test]
async fn the_default_ceiling_is_300_requests_per_5_minutes() {
    let clock = ManualClock::at_unix(1_700_000_000);
    let service = BoxCloneSyncService::new(
        ServiceBuilder::new()
            .layer(ResolveClientAddrLayer::new(TrustedProxies::none()))
            .layer(RateLimitLayer::new(engine(store(&clock)), "login"))
            .service(service_fn(|_: Request<String>| async {
                Ok::<_, Infallible>(Response::new(String::new()))
            })),
    );
    for index in 0..300 {
        assert_eq!(
            status(&service, request("203.0.113.9:1", &[])).await,
            StatusCode::OK,
            "request {index}"
        );
    }
    let (code, headers, _) = send(&service, request("203.0.113.9:1", &[])).await;
    assert_eq!(code, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(headers["retry-after"], "300");
    assert_eq!(headers["cache-control"], "no-store");
    clock.advance(Duration::from_secs(299));
    assert_eq!(
        status(&service, request("203.0.113.9:1", &[])).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    clock.advance(Duration::from_secs(1));
    assert_eq!(
        status(&service, request("203.0.113.9:1", &[])).await,
        StatusCode::OK
    );
}

/// A store whose every call fails.
struct FailingStore;

#[async_trait]
impl EphemeralStore for FailingStore {
    async fn insert_if_absent(&self, _: &str, _: &[u8], _: Duration) -> StoreResult<bool> {
        Err(StoreError::Unavailable("down".into()))
    }

    async fn get(&self, _: &str) -> StoreResult<Option<Vec<u8>>> {
        Err(StoreError::Unavailable("down".into()))
    }

    async fn take(&self, _: &str) -> StoreResult<Option<Vec<u8>>> {
        Err(StoreError::Unavailable("down".into()))
    }

    async fn increment(&self, _: &str, _: Duration) -> StoreResult<u64> {
        Err(StoreError::Unavailable("down".into()))
    }

    async fn decrement(&self, _: &str) -> StoreResult<u64> {
        Err(StoreError::Unavailable("down".into()))
    }

    async fn compare_and_swap(
        &self,
        _: &str,
        _: Option<&[u8]>,
        _: &[u8],
        _: Duration,
    ) -> StoreResult<bool> {
        Err(StoreError::Unavailable("down".into()))
    }

    async fn remove(&self, _: &str) -> StoreResult<()> {
        Err(StoreError::Unavailable("down".into()))
    }
}

#[tokio::test]
async fn a_failing_store_fails_closed() {
    let service = service(Arc::new(FailingStore));
    let (code, headers, body) = send(&service, request("203.0.113.9:1", &[])).await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(headers["content-type"], "application/json");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
    assert!(body["error_description"].is_string());
}
