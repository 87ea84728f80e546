//! The authorization server over HTTP, driven by a client no one here wrote (the `oauth2` crate,
//! over reqwest with rustls) where a client acts, and by plain HTTP where a browser acts (the
//! sign-in page's JSON calls with the page's request id): RFC 8414 metadata, RFC 7591
//! registration, the code flow with PKCE S256, `resource` (RFC 8707), `iss` (RFC 9207), refresh
//! rotation and reuse detection, RFC 7009 revocation, the sign-in session's step-up and
//! `prompt=login`, RFC 6749 §4.1.2.1 error redirects, resets, and 100 concurrent refreshes, on
//! every backend.

mod support;

use std::time::Duration;

use oauth2::basic::{BasicClient, BasicErrorResponseType};
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, CsrfToken, EndpointNotSet, EndpointSet,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken, RequestTokenError,
    RevocationUrl, Scope, StandardRevocableToken, TokenResponse, TokenUrl,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::*;

const APP_REDIRECT: &str = "https://app.example/callback";

type Client = BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointSet, EndpointSet>;

/// The `oauth2` crate's HTTP client: reqwest 0.13 with rustls, no redirects followed.
async fn send(request: oauth2::HttpRequest) -> Result<oauth2::HttpResponse, reqwest::Error> {
    let client = http_client();
    let (parts, body) = request.into_parts();
    let response = client
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .send()
        .await?;
    let mut answer = http::Response::builder().status(response.status());
    for (name, value) in response.headers() {
        answer = answer.header(name, value);
    }
    let body = response.bytes().await?.to_vec();
    Ok(answer.body(body).expect("a response"))
}

/// Registers a public client (RFC 7591) and returns the `oauth2` client for it.
async fn registered_client(app: &App) -> (Client, String) {
    let registered = app
        .post(
            "/oauth/register",
            None,
            json!({
                "client_name": "An MCP client",
                "redirect_uris": [APP_REDIRECT],
                "token_endpoint_auth_method": "none",
                "grant_types": ["authorization_code", "refresh_token"],
            }),
        )
        .await;
    assert_eq!(registered.status, StatusCode::CREATED, "{registered:?}");
    assert_eq!(registered.cache_control.as_deref(), Some("no-store"));
    let client_id = registered.body["client_id"].as_str().unwrap().to_owned();
    let client = BasicClient::new(ClientId::new(client_id.clone()))
        .set_auth_uri(AuthUrl::new(format!("{}/oauth/authorize", app.base)).unwrap())
        .set_token_uri(TokenUrl::new(format!("{}/oauth/token", app.base)).unwrap())
        .set_revocation_url(RevocationUrl::new(format!("{}/oauth/revoke", app.base)).unwrap())
        .set_redirect_uri(RedirectUrl::new(APP_REDIRECT.to_owned()).unwrap());
    (client, client_id)
}

/// A browser: the test's client with a cookie of its own.
struct Browser<'a> {
    app: &'a App,
    session: Option<String>,
}

impl<'a> Browser<'a> {
    fn new(app: &'a App) -> Self {
        Self { app, session: None }
    }

    fn with_cookie(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.session {
            Some(cookie) => request.header("cookie", cookie),
            None => request,
        }
    }

    /// Opens `url` (the authorization endpoint): the response.
    async fn open(&self, url: &str) -> reqwest::Response {
        let path = url.strip_prefix(&self.app.base).unwrap_or(url);
        self.with_cookie(self.app.request(Method::GET, path, None))
            .send()
            .await
            .unwrap()
    }

    /// Opens `url` and expects the sign-in page: its request id and the step it opens at.
    async fn page(&self, url: &str) -> (String, String) {
        let response = self.open(url).await;
        assert_eq!(response.status(), StatusCode::OK, "{response:?}");
        let headers = response.headers().clone();
        assert_eq!(headers["cache-control"], "no-store");
        let policy = headers["content-security-policy"].to_str().unwrap();
        assert!(policy.contains("script-src 'self'") && policy.contains("frame-ancestors 'none'"));
        assert!(!policy.contains("unsafe-inline"));
        let html = response.text().await.unwrap();
        assert!(!html.contains("<script>"), "no inline script");
        (
            attribute(&html, "data-request"),
            attribute(&html, "data-step"),
        )
    }

    /// A JSON call of the page; keeps the session cookie it sets.
    async fn call(&mut self, path: &str, body: Value) -> Answer {
        let response = self
            .with_cookie(self.app.request(Method::POST, path, None).json(&body))
            .send()
            .await
            .unwrap();
        if let Some(cookie) = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|value| value.to_str().unwrap())
            .find(|value| value.starts_with("__Host-stepup-session="))
        {
            assert!(cookie.contains("HttpOnly") && cookie.contains("Secure"));
            assert!(cookie.contains("SameSite=Lax") && cookie.contains("Path=/"));
            self.session = Some(cookie_pair(cookie));
        }
        Answer::from_response(response).await
    }
}

/// The value of the first `name="…"` attribute of the page.
fn attribute(html: &str, name: &str) -> String {
    let start = html.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
    html[start..].split('"').next().unwrap().to_owned()
}

/// The query parameters of a URL.
fn query_of(url: &str) -> Vec<(String, String)> {
    let url = url::Url::parse(url).unwrap();
    url.query_pairs().into_owned().collect()
}

fn param(url: &str, name: &str) -> Option<String> {
    query_of(url)
        .into_iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value)
}

/// The authorization URL of `client` with PKCE S256, scope `tools`, resource, `extra`.
fn authorization_url(
    client: &Client,
    extra: &[(&str, &str)],
) -> (String, CsrfToken, PkceCodeVerifier) {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = client
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("tools".to_owned()))
        .add_extra_param("resource", RESOURCE)
        .set_pkce_challenge(challenge);
    for (name, value) in extra {
        request = request.add_extra_param(*name, *value);
    }
    let (url, state) = request.url();
    (url.to_string(), state, verifier)
}

/// Checks a `{redirect_to}` answer of the page: to the app's redirect URI with the state and
/// `iss`; returns the code.
fn code_from(answer: &Answer, state: &CsrfToken, redirect: &str) -> String {
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    let to = answer.body["redirect_to"].as_str().expect("redirect_to");
    assert!(to.starts_with(&format!("{redirect}?")), "{to}");
    assert_eq!(param(to, "state").as_deref(), Some(state.secret().as_str()));
    assert_eq!(param(to, "iss").as_deref(), Some(PUBLIC_URL), "RFC 9207");
    param(to, "code").expect("a code")
}

async fn metadata_and_keys_are_published(backend: &Backend) {
    let app = backend.app().await;
    let metadata = app
        .get("/.well-known/oauth-authorization-server", None)
        .await;
    assert_eq!(metadata.status, StatusCode::OK);
    let body = &metadata.body;
    assert_eq!(body["issuer"], PUBLIC_URL);
    for (field, path) in [
        ("authorization_endpoint", "/oauth/authorize"),
        ("token_endpoint", "/oauth/token"),
        ("registration_endpoint", "/oauth/register"),
        ("revocation_endpoint", "/oauth/revoke"),
        ("jwks_uri", "/.well-known/jwks.json"),
    ] {
        assert_eq!(body[field], format!("{PUBLIC_URL}{path}"), "{field}");
    }
    assert_eq!(body["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(body["response_types_supported"], json!(["code"]));
    assert_eq!(
        body["grant_types_supported"],
        json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(body["acr_values_supported"], json!(["pwd", "mfa", "phr"]));
    assert_eq!(body["authorization_response_iss_parameter_supported"], true);
    assert_eq!(
        body["token_endpoint_auth_methods_supported"],
        json!(["none"])
    );
    assert_eq!(body["scopes_supported"], json!(["offline_access", "tools"]));
    assert!(body["client_id_metadata_document_supported"].is_boolean());
    // An HS256 issuer publishes no key: its secret is not public.
    let jwks = app.get("/.well-known/jwks.json", None).await;
    assert_eq!(jwks.status, StatusCode::OK);
    assert_eq!(jwks.body["keys"], json!([]));
}

async fn the_code_flow_with_an_independent_client(backend: &Backend) {
    let app = backend.app().await;
    let (_, key, _) = app.enrolled_user("ada@example.com").await;
    let (client, client_id) = registered_client(&app).await;
    let (url, state, verifier) = authorization_url(&client, &[]);
    assert!(url.contains("code_challenge_method=S256"));

    // The browser: the page, the password, the second factor.
    let mut browser = Browser::new(&app);
    let (request_id, step) = browser.page(&url).await;
    assert_eq!(step, "sign-in");
    let password = browser
        .call(
            "/oauth/authorize",
            json!({"request_id": request_id, "username": "ada@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(password.body["mfa_required"], true, "{password:?}");
    let mfa_token = password.body["mfa_token"].as_str().unwrap();
    let done = browser
        .call(
            "/oauth/authorize/mfa",
            json!({"mfa_token": mfa_token, "method": "totp", "code": app.code(&key)}),
        )
        .await;
    let code = code_from(&done, &state, APP_REDIRECT);
    assert!(
        browser.session.is_some(),
        "the sign-in session cookie is set"
    );
    app.clock.advance(Duration::from_secs(30));

    // The client: code and verifier for tokens, the resource as the audience.
    let tokens = client
        .exchange_code(AuthorizationCode::new(code.clone()))
        .set_pkce_verifier(verifier)
        .add_extra_param("resource", RESOURCE)
        .request_async(&send)
        .await
        .unwrap();
    let claims = claims_of(tokens.access_token().secret());
    assert_eq!(claims["aud"], RESOURCE);
    assert_eq!(claims["iss"], PUBLIC_URL);
    assert_eq!(claims["acr"], "mfa");
    assert_eq!(claims["amr"], json!(["pwd", "otp"]));
    assert_eq!(claims["scope"], "tools");
    let auth_time = claims["auth_time"].as_u64().unwrap();
    let first_refresh = tokens.refresh_token().expect("a refresh token").clone();
    // A code is single-use, PKCE or not.
    let (_, wrong_verifier) = PkceCodeChallenge::new_random_sha256();
    let replay = client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(wrong_verifier)
        .request_async(&send)
        .await;
    assert_invalid_grant(replay);

    // An hour later the refresh keeps what the login proved, and rotates.
    app.clock.advance(Duration::from_secs(3600));
    let refreshed = client
        .exchange_refresh_token(&first_refresh)
        .request_async(&send)
        .await
        .unwrap();
    let claims = claims_of(refreshed.access_token().secret());
    assert_eq!(claims["acr"], "mfa");
    assert_eq!(claims["amr"], json!(["pwd", "otp"]));
    assert_eq!(claims["auth_time"].as_u64(), Some(auth_time));
    assert_eq!(claims["aud"], RESOURCE);
    let second_refresh = refreshed.refresh_token().expect("rotated").clone();
    assert_ne!(second_refresh.secret(), first_refresh.secret());

    // The first token again: a reuse. Refused, and the whole family with it.
    assert_invalid_grant(
        client
            .exchange_refresh_token(&first_refresh)
            .request_async(&send)
            .await,
    );
    assert_invalid_grant(
        client
            .exchange_refresh_token(&second_refresh)
            .request_async(&send)
            .await,
    );

    // Revocation (RFC 7009) of a fresh family.
    let (url, state, verifier) = authorization_url(&client, &[]);
    let (request_id, step) = browser.page(&url).await;
    assert_eq!(step, "consent", "a third-party client: the user confirms");
    let confirmed = browser
        .call(
            "/oauth/authorize/session",
            json!({"request_id": request_id}),
        )
        .await;
    let code = code_from(&confirmed, &state, APP_REDIRECT);
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier)
        .request_async(&send)
        .await
        .unwrap();
    let refresh = tokens.refresh_token().unwrap().clone();
    // The oauth2 crate revokes over https only; the same RFC 7009 request by hand.
    let revoked = app
        .request(Method::POST, "/oauth/revoke", None)
        .form(&[
            ("token", refresh.secret().as_str()),
            ("token_type_hint", "refresh_token"),
            ("client_id", client_id.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::OK);
    let _ = StandardRevocableToken::RefreshToken(refresh.clone());
    assert_invalid_grant(
        client
            .exchange_refresh_token(&refresh)
            .request_async(&send)
            .await,
    );
    // An unknown token is no error (RFC 7009 §2.2); an access token cannot be revoked alone.
    let unknown = app
        .request(Method::POST, "/oauth/revoke", None)
        .form(&[("token", "nothing"), ("client_id", client_id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::OK);
    let access = app
        .request(Method::POST, "/oauth/revoke", None)
        .form(&[
            ("token", tokens.access_token().secret().as_str()),
            ("client_id", client_id.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(access.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        access.json::<Value>().await.unwrap()["error"],
        "unsupported_token_type"
    );
}

fn assert_invalid_grant<T: std::fmt::Debug>(
    result: Result<T, RequestTokenError<reqwest::Error, oauth2::basic::BasicErrorResponse>>,
) {
    match result {
        Err(RequestTokenError::ServerResponse(error)) => {
            assert_eq!(*error.error(), BasicErrorResponseType::InvalidGrant);
        }
        other => panic!("expected invalid_grant, got {other:?}"),
    }
}

async fn a_step_up_asks_only_for_the_second_factor(backend: &Backend) {
    let app = backend.app().await;
    app.register("bea@example.com").await;
    let (client, _) = registered_client(&app).await;
    // Signed in at pwd through the page (no factor yet): the session is at pwd.
    let mut browser = Browser::new(&app);
    let (url, state, verifier) = authorization_url(&client, &[]);
    let (request_id, _) = browser.page(&url).await;
    let signed_in = browser
        .call(
            "/oauth/authorize",
            json!({"request_id": request_id, "username": "bea@example.com", "password": PASSWORD}),
        )
        .await;
    let code = code_from(&signed_in, &state, APP_REDIRECT);
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier)
        .request_async(&send)
        .await
        .unwrap();
    assert_eq!(claims_of(tokens.access_token().secret())["acr"], "pwd");
    // The user enrolls an authenticator (with a token of the application's own API).
    let own = app.login("bea@example.com").await.token();
    let (key, _) = app.enroll_totp(&own).await;

    // A step-up: acr_values=mfa with the pwd session asks for the second factor only.
    let (url, state, verifier) = authorization_url(&client, &[("acr_values", "mfa")]);
    let (request_id, step) = browser.page(&url).await;
    assert_eq!(step, "factor");
    let challenge = browser
        .call(
            "/oauth/authorize/session",
            json!({"request_id": request_id}),
        )
        .await;
    assert_eq!(challenge.body["mfa_required"], true, "{challenge:?}");
    assert_eq!(challenge.body["methods"], json!(["totp", "backup_code"]));
    let done = browser
        .call(
            "/oauth/authorize/mfa",
            json!({"mfa_token": challenge.body["mfa_token"], "code": app.code(&key)}),
        )
        .await;
    let code = code_from(&done, &state, APP_REDIRECT);
    let stepped_up = client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier)
        .request_async(&send)
        .await
        .unwrap();
    let claims = claims_of(stepped_up.access_token().secret());
    assert_eq!(claims["acr"], "mfa");
    assert_eq!(claims["amr"], json!(["pwd", "otp"]));
    app.clock.advance(Duration::from_secs(30));

    // The application's own client, with the mfa session: the code at once, no page.
    let own_url = format!(
        "/oauth/authorize?response_type=code&client_id={CLIENT_ID}&redirect_uri={}&state=s1\
         &code_challenge={}&code_challenge_method=S256&acr_values=mfa",
        url_encode(REDIRECT_URI),
        challenge_of(PKCE_VERIFIER)
    );
    let at_once = browser.open(&own_url).await;
    assert_eq!(at_once.status(), StatusCode::FOUND);
    let location = at_once.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with(&format!("{REDIRECT_URI}?code=")),
        "{location}"
    );
    assert_eq!(param(&location, "iss").as_deref(), Some(PUBLIC_URL));
    assert_eq!(param(&location, "state").as_deref(), Some("s1"));
    // prompt=login: the whole sign-in, session or not.
    let (_, step) = browser.page(&format!("{own_url}&prompt=login")).await;
    assert_eq!(step, "sign-in");
    // max_age: a second factor older than it is asked for again.
    app.clock.advance(Duration::from_secs(120));
    let (_, step) = browser.page(&format!("{own_url}&max_age=60")).await;
    assert_eq!(step, "factor");
}

fn url_encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

async fn errors_redirect_only_to_a_valid_redirect_uri(backend: &Backend) {
    let app = backend.app().await;
    let (client, client_id) = registered_client(&app).await;
    let browser = Browser::new(&app);
    let base = |extra: &str| {
        format!(
            "/oauth/authorize?client_id={client_id}&redirect_uri={}&state=st\
             &code_challenge={}&code_challenge_method=S256{extra}",
            url_encode(APP_REDIRECT),
            challenge_of(PKCE_VERIFIER)
        )
    };
    // Never redirected: an unknown client, a redirect URI it did not register.
    for url in [
        base("&response_type=code").replace(&client_id, "nobody"),
        base("&response_type=code").replace(
            &url_encode(APP_REDIRECT),
            &url_encode("https://evil.example/cb"),
        ),
    ] {
        let response = browser.open(&url).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert!(response.headers().get("location").is_none());
        assert!(response.text().await.unwrap().contains("not valid"));
    }
    // Redirected with error, state and iss.
    for (extra, error) in [
        ("&response_type=token", "unsupported_response_type"),
        ("", "invalid_request"),
        ("&response_type=code&scope=admin", "invalid_scope"),
        (
            "&response_type=code&resource=https%3A%2F%2Felsewhere.example%2F",
            "invalid_target",
        ),
        ("&response_type=code&response_type=code", "invalid_request"),
        ("&response_type=code&prompt=none", "consent_required"),
    ] {
        let response = browser.open(&base(extra)).await;
        assert_eq!(response.status(), StatusCode::FOUND, "{extra}");
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        assert!(
            location.starts_with(&format!("{APP_REDIRECT}?")),
            "{location}"
        );
        assert_eq!(param(&location, "error").as_deref(), Some(error), "{extra}");
        assert_eq!(param(&location, "state").as_deref(), Some("st"));
        assert_eq!(param(&location, "iss").as_deref(), Some(PUBLIC_URL));
    }
    let _ = client;
}

async fn registrations_are_checked_and_limited(backend: &Backend) {
    let app = backend.app().await;
    for (metadata, error) in [
        (
            json!({"redirect_uris": ["http://app.example/cb"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["https://app.example/cb"], "token_endpoint_auth_method": "client_secret_post"}),
            "invalid_client_metadata",
        ),
    ] {
        app.post("/oauth/register", None, metadata)
            .await
            .assert_error(StatusCode::BAD_REQUEST, error);
    }
    let metadata = json!({"redirect_uris": ["http://127.0.0.1:4711/cb"]});
    for _ in 0..10 {
        let answer = app.post("/oauth/register", None, metadata.clone()).await;
        assert_eq!(answer.status, StatusCode::CREATED, "{answer:?}");
    }
    let limited = app.post("/oauth/register", None, metadata).await;
    limited.assert_error(StatusCode::TOO_MANY_REQUESTS, "too_many_requests");
    assert!(limited.retry_after.is_some());
}

/// Signs `email` (enrolled with `key`) in through the page for `client`: the tokens.
async fn tokens_for(
    app: &App,
    client: &Client,
    email: &str,
    key: &stepup_mfa::totp::TotpKey,
) -> oauth2::basic::BasicTokenResponse {
    let mut browser = Browser::new(app);
    let (url, state, verifier) = authorization_url(client, &[]);
    let (request_id, _) = browser.page(&url).await;
    let password = browser
        .call(
            "/oauth/authorize",
            json!({"request_id": request_id, "username": email, "password": PASSWORD}),
        )
        .await;
    let done = browser
        .call(
            "/oauth/authorize/mfa",
            json!({"mfa_token": password.body["mfa_token"], "code": app.code(key)}),
        )
        .await;
    let code = code_from(&done, &state, APP_REDIRECT);
    app.clock.advance(Duration::from_secs(30));
    client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier)
        .request_async(&send)
        .await
        .unwrap()
}

async fn a_hundred_concurrent_refreshes_yield_one_success(backend: &Backend) {
    let app = backend.app().await;
    let (_, key, _) = app.enrolled_user("cid@example.com").await;
    let (client, client_id) = registered_client(&app).await;
    let tokens = tokens_for(&app, &client, "cid@example.com", &key).await;
    let refresh = tokens.refresh_token().unwrap().secret().clone();
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(100));
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let (http, url, refresh, client_id, barrier) = (
                app.http.clone(),
                format!("{}/oauth/token", app.base),
                refresh.clone(),
                client_id.clone(),
                barrier.clone(),
            );
            tokio::spawn(async move {
                barrier.wait().await;
                http.post(url)
                    .form(&[
                        ("grant_type", "refresh_token"),
                        ("refresh_token", refresh.as_str()),
                        ("client_id", client_id.as_str()),
                    ])
                    .send()
                    .await
                    .unwrap()
                    .status()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    assert_eq!(
        statuses
            .iter()
            .filter(|status| **status == StatusCode::OK)
            .count(),
        1,
        "{statuses:?}"
    );
    // 99 invalid_grant; the per-address failure budget may refuse some once it is spent.
    assert!(statuses.iter().all(|status| {
        [
            StatusCode::OK,
            StatusCode::BAD_REQUEST,
            StatusCode::TOO_MANY_REQUESTS,
        ]
        .contains(status)
    }));
}

async fn a_reset_voids_every_refresh_family(backend: &Backend) {
    let app = backend.app().await;
    let (_, key, _) = app.enrolled_user("dan@example.com").await;
    let (client, _) = registered_client(&app).await;
    let tokens = tokens_for(&app, &client, "dan@example.com", &key).await;
    // The account is deleted through the application's route (a fresh second factor).
    let fresh = app.fresh_mfa_token("dan@example.com", &key).await;
    let deleted = app.delete("/api/account", Some(&fresh)).await;
    assert_eq!(deleted.status, StatusCode::OK, "{deleted:?}");
    assert_invalid_grant(
        client
            .exchange_refresh_token(&RefreshToken::new(
                tokens.refresh_token().unwrap().secret().clone(),
            ))
            .request_async(&send)
            .await,
    );
}

on_backends!([sqlite, postgres, postgres_redis]
    metadata_and_keys_are_published,
    the_code_flow_with_an_independent_client,
    a_step_up_asks_only_for_the_second_factor,
    errors_redirect_only_to_a_valid_redirect_uri,
    registrations_are_checked_and_limited,
    a_hundred_concurrent_refreshes_yield_one_success,
    a_reset_voids_every_refresh_family,
);
