//! The demo's web page: `GET /` and its assets (plain HTML, CSS and ES modules, embedded in the
//! binary), the security headers every answer carries, and the development outbox the page shows
//! so a person can finish the SMS and recovery flows without a phone or a mailbox.

use std::net::SocketAddr;
use std::path::{Path as FilePath, PathBuf};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use stepup::clock::SharedClock;
use stepup::routes::ApiError;
use tower_http::set_header::SetResponseHeaderLayer;

/// Scripts and styles from this origin only, no inline script, no framing, requests to this
/// origin only; `data:` images for the locally made QR code.
pub(crate) const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'none'; \
     frame-ancestors 'none'; base-uri 'none'";

const INDEX: &str = include_str!("web/index.html");

/// The page's assets under `/assets/`: name, content type, body.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("web/app.js"),
    ),
    (
        "stepup.js",
        "text/javascript; charset=utf-8",
        include_str!("web/stepup.js"),
    ),
    (
        "passkeys.js",
        "text/javascript; charset=utf-8",
        include_str!("web/passkeys.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("web/style.css"),
    ),
];

/// How many outbox entries the panel shows, and how far back in each file it reads.
const OUTBOX_ENTRIES: usize = 20;
const OUTBOX_TAIL_BYTES: u64 = 64 * 1024;

/// The files the demo writes SMS and mail to instead of sending them (`None`: a real provider
/// sends, and the panel shows nothing of it).
#[derive(Clone, Default)]
pub(crate) struct Outboxes {
    pub(crate) sms: Option<PathBuf>,
    pub(crate) mail: Option<PathBuf>,
}

/// `GET /`, `GET /assets/{name}`, and `GET /dev/outbox` when there is an outbox to show.
pub(crate) fn routes(outboxes: Outboxes) -> Router {
    let page = Router::new()
        .route(
            "/",
            get(|| async { page(INDEX, "text/html; charset=utf-8") }),
        )
        .route("/assets/{name}", get(asset));
    if outboxes.sms.is_none() && outboxes.mail.is_none() {
        return page;
    }
    page.route("/dev/outbox", get(outbox).with_state(Arc::new(outboxes)))
}

/// Dates every answer (`Date`, RFC 9110) by `clock`, the clock that judges tokens and DPoP
/// proofs: a client whose own clock is off dates its proofs by it (stepup.js does). With the
/// system clock it is the date the server would send anyway.
pub(crate) fn server_date<B>(
    clock: SharedClock,
) -> SetResponseHeaderLayer<impl Fn(&http::Response<B>) -> Option<HeaderValue> + Clone> {
    SetResponseHeaderLayer::overriding(header::DATE, move |_: &http::Response<B>| {
        let now = UNIX_EPOCH + Duration::from_secs(clock.unix_seconds());
        HeaderValue::from_str(&httpdate::fmt_http_date(now)).ok()
    })
}

/// The page's security headers, on every answer where the handler set none.
pub(crate) fn security_headers() -> [SetResponseHeaderLayer<HeaderValue>; 5] {
    [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
    ]
    .map(|(name, value)| {
        SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value))
    })
}

fn page(body: &'static str, content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            // Embedded in the binary: a new build is a new page, so always revalidate.
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|(asset, _, _)| *asset == name) {
        Some((_, content_type, body)) => page(body, content_type),
        None => ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such asset").into_response(),
    }
}

/// `GET /dev/outbox`: the latest SMS and mail of the outbox files, newest first. They hold
/// one-time codes, so only a client on this machine is shown them: a loopback peer that is not a
/// proxy (a request that carries a forwarding header came from elsewhere, through a proxy on this
/// machine).
async fn outbox(State(outboxes): State<Arc<Outboxes>>, request: Request) -> Response {
    let loopback_peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .is_some_and(|ConnectInfo(peer)| peer.ip().is_loopback());
    let forwarded = ["forwarded", "x-forwarded-for", "x-real-ip"]
        .iter()
        .any(|name| request.headers().contains_key(*name));
    let local = loopback_peer && !forwarded;
    if !local {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "access_denied",
            "the development outbox is shown to this machine only",
        )
        .into_response();
    }
    let read = tokio::task::spawn_blocking(move || {
        json!({
            "sms": outboxes.sms.as_deref().map(latest).unwrap_or_default(),
            "mail": outboxes.mail.as_deref().map(latest).unwrap_or_default(),
        })
    })
    .await;
    match read {
        Ok(body) => ([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response(),
        Err(_) => ApiError::server_error().into_response(),
    }
}

/// The last [`OUTBOX_ENTRIES`] JSON lines of `path`, newest first; nothing when it is missing.
fn latest(path: &FilePath) -> Vec<Value> {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut file) = std::fs::File::open(path) else {
        return Vec::new();
    };
    let length = file.metadata().map_or(0, |metadata| metadata.len());
    let start = length.saturating_sub(OUTBOX_TAIL_BYTES);
    let mut bytes = Vec::new();
    if file.seek(SeekFrom::Start(start)).is_err() || file.read_to_end(&mut bytes).is_err() {
        return Vec::new();
    }
    let text = String::from_utf8_lossy(&bytes);
    // A read that starts mid-file starts mid-line: that first piece is dropped.
    let mut entries: Vec<Value> = text
        .lines()
        .skip(usize::from(start > 0))
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    entries.reverse();
    entries.truncate(OUTBOX_ENTRIES);
    entries
}
