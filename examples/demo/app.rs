//! The demo application: routes and handlers, shared by `main.rs` and the end-to-end tests.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use stepup::{AuthContext, Grant, JwtIssuer, JwtVerifier, RequireMfa, amr, authenticate, level};

/// How recent the second factor must be to delete an account.
pub(crate) const DELETE_ACCOUNT_MAX_AGE: Duration = Duration::from_secs(300);

/// Builds the demo router around a token issuer and the verifier of its tokens.
pub(crate) fn router(issuer: JwtIssuer, verifier: JwtVerifier) -> Router {
    let state = Arc::new(Demo {
        issuer,
        users: Mutex::default(),
        dummy_hash: hash_password("a password nobody has").expect("hashing a constant works"),
    });
    Router::new()
        .route("/api/register", post(register))
        .route("/oauth/authorize", post(authorize))
        .route("/api/me", get(me))
        .route(
            "/api/account",
            delete(delete_account).layer(RequireMfa.max_age(DELETE_ACCOUNT_MAX_AGE)),
        )
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "not_found", "no such endpoint") })
        .with_state(state)
        .layer(authenticate(verifier))
}

struct Demo {
    issuer: JwtIssuer,
    /// Users by normalised email; an in-memory table until the store lands.
    users: Mutex<HashMap<String, User>>,
    /// Checked when the user is unknown, so that both answers take as long.
    dummy_hash: String,
}

impl Demo {
    fn users(&self) -> std::sync::MutexGuard<'_, HashMap<String, User>> {
        self.users.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[derive(Clone)]
struct User {
    id: String,
    password_hash: String,
}

#[derive(Deserialize)]
struct Registration {
    email: String,
    password: String,
}

async fn register(
    State(demo): State<Arc<Demo>>,
    JsonBody(registration): JsonBody<Registration>,
) -> Response {
    let email = match normalise_email(&registration.email) {
        Ok(email) => email,
        Err(message) => return error(StatusCode::BAD_REQUEST, "invalid_request", message),
    };
    if let Err(message) = check_password(&registration.password) {
        return error(StatusCode::BAD_REQUEST, "invalid_request", message);
    }
    if demo.users().contains_key(&email) {
        return error(
            StatusCode::CONFLICT,
            "email_taken",
            "this email is already registered",
        );
    }
    let password = registration.password;
    let Ok(Ok(password_hash)) = tokio::task::spawn_blocking(move || hash_password(&password)).await
    else {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "could not hash the password",
        );
    };
    let id = uuid::Uuid::new_v4().to_string();
    let mut users = demo.users();
    if users.contains_key(&email) {
        return error(
            StatusCode::CONFLICT,
            "email_taken",
            "this email is already registered",
        );
    }
    users.insert(
        email,
        User {
            id: id.clone(),
            password_hash,
        },
    );
    (StatusCode::CREATED, Json(json!({ "user_id": id }))).into_response()
}

#[derive(Deserialize)]
struct Authorization {
    username: String,
    password: String,
    scope: Option<String>,
}

async fn authorize(
    State(demo): State<Arc<Demo>>,
    JsonBody(request): JsonBody<Authorization>,
) -> Response {
    let user = normalise_email(&request.username)
        .ok()
        .and_then(|email| demo.users().get(&email).cloned());
    let hash = user.as_ref().map_or_else(
        || demo.dummy_hash.clone(),
        |user| user.password_hash.clone(),
    );
    let password = request.password;
    let password_ok = tokio::task::spawn_blocking(move || verify_password(&password, &hash))
        .await
        .unwrap_or(false);
    let Some(user) = user.filter(|_| password_ok) else {
        return error(
            StatusCode::UNAUTHORIZED,
            "invalid_grant",
            "invalid username or password",
        );
    };
    let mut grant = Grant::new(user.id).acr(level::PWD).amr([amr::PWD]);
    if let Some(scope) = request.scope {
        grant = grant.scope(scope);
    }
    match demo.issuer.issue(&grant) {
        Ok(token) => Json(token).into_response(),
        Err(_) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "could not issue a token",
        ),
    }
}

async fn me(caller: AuthContext) -> Response {
    Json(json!({
        "sub": caller.subject(),
        "acr": caller.acr(),
        "amr": caller.amr(),
        "auth_time": caller.auth_time(),
    }))
    .into_response()
}

async fn delete_account(State(demo): State<Arc<Demo>>, caller: AuthContext) -> Response {
    let mut users = demo.users();
    let before = users.len();
    users.retain(|_, user| user.id != caller.subject());
    if users.len() == before {
        return error(StatusCode::NOT_FOUND, "not_found", "no such account");
    }
    Json(json!({ "success": true })).into_response()
}

/// `{"error": code, "error_description": text}` with `status`.
fn error(status: StatusCode, code: &str, description: &str) -> Response {
    (
        status,
        Json(json!({ "error": code, "error_description": description })),
    )
        .into_response()
}

/// A JSON body whose every rejection is a `400` JSON error rather than axum's plain text.
struct JsonBody<T>(T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(rejection) => {
                let description = match &rejection {
                    JsonRejection::MissingJsonContentType(_) => {
                        "expected a JSON body (Content-Type: application/json)".to_owned()
                    }
                    JsonRejection::JsonSyntaxError(_) => "the body is not valid JSON".to_owned(),
                    other => other.body_text(),
                };
                Err(error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    &description,
                ))
            }
        }
    }
}

fn normalise_email(raw: &str) -> Result<String, &'static str> {
    let email = raw.trim().to_lowercase();
    let well_formed = (3..=254).contains(&email.len())
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.contains('@')
        });
    if well_formed {
        Ok(email)
    } else {
        Err("a valid email address is required")
    }
}

fn check_password(password: &str) -> Result<(), &'static str> {
    match password.chars().count() {
        0..8 => Err("the password needs at least 8 characters"),
        8..=256 => Ok(()),
        _ => Err("the password may have at most 256 characters"),
    }
}

/// argon2id with the crate's default (OWASP-recommended) parameters and a random salt.
fn hash_password(password: &str) -> Result<String, argon2::password_hash::Error> {
    Ok(Argon2::default()
        .hash_password(password.as_bytes())?
        .to_string())
}

fn verify_password(password: &str, hash: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), hash)
        .is_ok()
}
