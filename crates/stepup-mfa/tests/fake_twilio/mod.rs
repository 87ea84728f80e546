//! A local stand-in for Twilio Verify v2 (never the network): `Verifications` starts or resends a
//! code (the same code while one is pending, as Twilio does), `VerificationCheck` approves it once;
//! Twilio's error bodies for 20404, 60202, 60203 and 20429.
#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;

pub const ACCOUNT_SID: &str = "AC00000000000000000000000000000000";
pub const AUTH_TOKEN: &str = "fake twilio auth token";
pub const SERVICE_SID: &str = "VA00000000000000000000000000000000";
/// Sends to this number answer 20429 (rate limited).
pub const RATE_LIMITED_NUMBER: &str = "+15550000429";
/// Sends per number before 60203.
pub const MAX_SENDS: u32 = 5;
/// Checks per verification before 60202.
pub const MAX_CHECKS: u32 = 5;

#[derive(Default)]
struct Pending {
    code: String,
    sends: u32,
    checks: u32,
}

#[derive(Default)]
struct Inner {
    pending: HashMap<String, Pending>,
    sends: HashMap<String, u32>,
    requests: Vec<String>,
}

#[derive(Clone, Default)]
pub struct FakeTwilio {
    inner: Arc<Mutex<Inner>>,
    pub base: String,
}

impl FakeTwilio {
    pub async fn start() -> Self {
        let mut fake = Self::default();
        let app = Router::new()
            .route("/v2/Services/{sid}/Verifications", post(start))
            .route("/v2/Services/{sid}/VerificationCheck", post(check))
            .with_state(fake.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        fake.base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        fake
    }

    /// The pending code of `to`, as the phone would receive it.
    pub fn code_for(&self, to: &str) -> Option<String> {
        let inner = self.inner.lock().unwrap();
        inner.pending.get(to).map(|pending| pending.code.clone())
    }

    /// The paths called so far.
    pub fn requests(&self) -> Vec<String> {
        self.inner.lock().unwrap().requests.clone()
    }
}

fn error(status: StatusCode, code: u64) -> Response {
    let body = json!({"code": code, "message": "fake twilio error", "status": status.as_u16()});
    (status, axum::Json(body)).into_response()
}

fn authorised(headers: &HeaderMap, sid: &str) -> bool {
    let expected = format!(
        "Basic {}",
        STANDARD.encode(format!("{ACCOUNT_SID}:{AUTH_TOKEN}"))
    );
    sid == SERVICE_SID
        && headers
            .get("authorization")
            .and_then(|value| value.to_str().ok())
            == Some(expected.as_str())
}

fn form(body: &str) -> HashMap<String, String> {
    serde_urlencoded::from_str(body).unwrap_or_default()
}

async fn start(
    State(fake): State<FakeTwilio>,
    Path(sid): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    if !authorised(&headers, &sid) {
        return error(StatusCode::UNAUTHORIZED, 20003);
    }
    let form = form(&body);
    let (Some(to), Some("sms")) = (form.get("To"), form.get("Channel").map(String::as_str)) else {
        return error(StatusCode::BAD_REQUEST, 60200);
    };
    let mut inner = fake.inner.lock().unwrap();
    inner.requests.push("Verifications".into());
    if to == RATE_LIMITED_NUMBER {
        return error(StatusCode::TOO_MANY_REQUESTS, 20429);
    }
    let sends = inner.sends.entry(to.clone()).or_default();
    *sends += 1;
    if *sends > MAX_SENDS {
        return error(StatusCode::TOO_MANY_REQUESTS, 60203);
    }
    let pending = inner.pending.entry(to.clone()).or_insert_with(|| Pending {
        code: format!("{:06}", rand::random_range(0..1_000_000u32)),
        ..Pending::default()
    });
    pending.sends += 1;
    let body = json!({"sid": "VE0", "to": to, "channel": "sms", "status": "pending"});
    (StatusCode::CREATED, axum::Json(body)).into_response()
}

async fn check(
    State(fake): State<FakeTwilio>,
    Path(sid): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    if !authorised(&headers, &sid) {
        return error(StatusCode::UNAUTHORIZED, 20003);
    }
    let form = form(&body);
    let (Some(to), Some(code)) = (form.get("To"), form.get("Code")) else {
        return error(StatusCode::BAD_REQUEST, 60200);
    };
    let mut inner = fake.inner.lock().unwrap();
    inner.requests.push("VerificationCheck".into());
    let Some(pending) = inner.pending.get_mut(to) else {
        return error(StatusCode::NOT_FOUND, 20404);
    };
    pending.checks += 1;
    if pending.checks > MAX_CHECKS {
        inner.pending.remove(to);
        return error(StatusCode::TOO_MANY_REQUESTS, 60202);
    }
    let status = if &pending.code == code {
        inner.pending.remove(to);
        "approved"
    } else {
        "pending"
    };
    axum::Json(json!({"sid": "VE0", "to": to, "status": status})).into_response()
}
