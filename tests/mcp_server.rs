//! `examples/mcp_server` with the demo as its authorization server, driven by `rmcp`'s own
//! client and its OAuth support, as any MCP client would: from the bare `401` it discovers the
//! resource's metadata (RFC 9728), the authorization server's (RFC 8414), registers itself
//! (RFC 7591), and sends the browser — played here over HTTP, page, password and TOTP — to the
//! authorization endpoint with PKCE and `resource`. Then `whoami`; `delete_account` after the
//! second factor has aged answers the RFC 9470 challenge even through the client's silent
//! refresh; a new authorization with its `acr_values` and `max_age` asks the signed-in user
//! only for the second factor; and a refresh keeps what the step-up proved without making it
//! fresh again. Time is the test's (`ManualClock`), for the demo and the MCP server alike.

mod demo_support;
#[path = "../examples/mcp_server/app.rs"]
#[allow(dead_code, unreachable_pub)]
mod mcp;

use std::sync::Arc;
use std::time::Duration;

use demo_support::{Demo, T0};
use reqwest::StatusCode;
use rmcp::model::{CallToolRequestParams, ClientConfig};
use rmcp::service::RunningService;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::auth::{AuthClient, AuthorizationManager, AuthorizationRequest, OAuthState};
use rmcp::transport::streamable_http_client::{
    AuthRequiredError, StreamableHttpClientTransportConfig,
};
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Value, json};
use stepup::clock::ManualClock;
use tokio::net::TcpListener;

/// Where the MCP client would listen for the browser's redirect (never reached: the test reads
/// the redirect from the page's answer).
const REDIRECT_URI: &str = "http://127.0.0.1:8976/callback";
const PASSWORD: &str = "correct horse";

type Client = RunningService<RoleClient, ClientConfig>;

/// The demo and the MCP server, on their own ports, on one clock.
struct Servers {
    demo: Demo,
    mcp_url: String,
}

async fn servers() -> Servers {
    let clock = ManualClock::at_unix(T0);
    let demo_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mcp_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let settings = mcp::Settings {
        issuer: format!(
            "http://localhost:{}",
            demo_listener.local_addr().unwrap().port()
        ),
        addr: mcp_listener.local_addr().unwrap(),
        resource: format!("http://{}/mcp", mcp_listener.local_addr().unwrap()),
    };
    let demo = Demo::start_authorization_server(
        demo_listener,
        clock.clone(),
        vec![settings.resource.clone()],
    )
    .await;
    let metadata = settings.metadata().unwrap();
    let verifier = settings.verifier(Arc::new(clock)).unwrap();
    let router = mcp::router(&settings, verifier, &metadata);
    tokio::spawn(async move { axum::serve(mcp_listener, router).await.unwrap() });
    Servers {
        demo,
        mcp_url: settings.resource,
    }
}

/// The user's browser: the demo's sign-in page and its JSON steps, with the session cookie.
struct Browser<'a> {
    demo: &'a Demo,
    session: Option<String>,
}

impl Browser<'_> {
    /// Opens the authorization URL; the page's request id and the step it opens at.
    async fn open(&self, url: &str) -> (String, String) {
        let mut request = self.demo.client.get(url);
        if let Some(cookie) = &self.session {
            request = request.header("cookie", cookie);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{response:?}");
        let html = response.text().await.unwrap();
        (
            attribute(&html, "data-request"),
            attribute(&html, "data-step"),
        )
    }

    /// A JSON step of the page; keeps the session cookie it sets.
    async fn step(&mut self, path: &str, body: Value) -> Value {
        let mut request = self
            .demo
            .client
            .post(format!("{}{path}", self.demo.base))
            .json(&body);
        if let Some(cookie) = &self.session {
            request = request.header("cookie", cookie);
        }
        let response = request.send().await.unwrap();
        if let Some(cookie) = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .find(|value| value.starts_with("__Host-stepup-session="))
        {
            self.session = Some(cookie.split(';').next().unwrap().to_owned());
        }
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        response.json().await.unwrap()
    }
}

/// The first `name="…"` attribute of the page.
fn attribute(html: &str, name: &str) -> String {
    let start = html.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
    html[start..].split('"').next().unwrap().to_owned()
}

fn param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

/// The `WWW-Authenticate` challenge of a 401 somewhere in `error`'s sources.
fn challenge_in(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut source = Some(error);
    while let Some(current) = source {
        if let Some(required) = current.downcast_ref::<AuthRequiredError>() {
            return Some(required.www_authenticate_header.clone());
        }
        source = current.source();
    }
    None
}

/// Connects to the MCP server with the tokens `manager` holds.
async fn connect(
    mcp_url: &str,
    manager: AuthorizationManager,
) -> (Client, AuthClient<reqwest::Client>) {
    let auth = AuthClient::new(reqwest::Client::new(), manager);
    let transport = StreamableHttpClientTransport::with_client(
        auth.clone(),
        StreamableHttpClientTransportConfig::with_uri(mcp_url),
    );
    (
        ClientConfig::default().serve(transport).await.unwrap(),
        auth,
    )
}

/// Calls `tool`: its JSON answer, or the `WWW-Authenticate` challenge of a 401.
async fn call(client: &Client, tool: &'static str) -> Result<Value, String> {
    match client.call_tool(CallToolRequestParams::new(tool)).await {
        Ok(result) => {
            let text = result.content[0]
                .as_text()
                .expect("a text answer")
                .text
                .clone();
            Ok(serde_json::from_str(&text).unwrap())
        }
        Err(error) => Err(challenge_in(&error).unwrap_or_else(|| panic!("{tool}: {error}"))),
    }
}

#[tokio::test]
async fn an_mcp_client_signs_in_with_mfa_steps_up_and_refreshes_without_gaining_freshness() {
    let Servers { demo, mcp_url } = servers().await;
    let (_, key, _) = demo.enrolled_user("ada@example.com").await;

    // Without a token: the 401 names the resource's metadata.
    let transport = StreamableHttpClientTransport::with_client(
        reqwest::Client::new(),
        StreamableHttpClientTransportConfig::with_uri(mcp_url.as_str()),
    );
    let refused = ClientConfig::default().serve(transport).await.unwrap_err();
    let challenge = refused
        .auth_challenge()
        .expect("a 401 challenge")
        .to_owned();
    assert!(challenge.contains("resource_metadata="), "{challenge}");

    // Discovery and registration, as rmcp does them; the browser signs in with password + TOTP.
    let mut oauth = OAuthState::new(mcp_url.as_str(), None).await.unwrap();
    oauth
        .start_authorization(
            AuthorizationRequest::new(REDIRECT_URI)
                .with_client_name("rmcp test client")
                .with_challenge(challenge),
        )
        .await
        .unwrap();
    let url = oauth.get_authorization_url().await.unwrap();
    assert!(
        url.starts_with(&format!("{}/oauth/authorize?", demo.base)),
        "{url}"
    );
    assert_eq!(param(&url, "resource").as_deref(), Some(mcp_url.as_str()));
    assert_eq!(
        param(&url, "code_challenge_method").as_deref(),
        Some("S256")
    );
    let mut browser = Browser {
        demo: &demo,
        session: None,
    };
    let (request_id, step) = browser.open(&url).await;
    assert_eq!(step, "sign-in");
    let password = browser
        .step(
            "/oauth/authorize",
            json!({"request_id": request_id, "username": "ada@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(password["mfa_required"], true, "{password}");
    let signed_in = browser
        .step(
            "/oauth/authorize/mfa",
            json!({"mfa_token": password["mfa_token"], "method": "totp", "code": demo.code(&key)}),
        )
        .await;
    let callback = signed_in["redirect_to"].as_str().expect("a redirect");
    assert!(callback.starts_with(REDIRECT_URI), "{callback}");
    assert_eq!(param(callback, "iss").as_deref(), Some(demo.base.as_str()));
    oauth.handle_callback_url(callback).await.unwrap();
    let (client, auth) = connect(&mcp_url, oauth.into_authorization_manager().unwrap()).await;

    // whoami: signed in with the password and the TOTP code, now.
    let me = call(&client, "whoami").await.unwrap();
    assert_eq!(me["acr"], "mfa");
    assert_eq!(me["amr"], json!(["pwd", "otp"]));
    let signed_in_at = me["auth_time"].as_u64().unwrap();
    // A fresh second factor deletes; a phishing-resistant level it never reached reads no vault.
    let vault = call(&client, "read_vault").await.unwrap_err();
    assert!(vault.contains("acr_values=\"phr\""), "{vault}");

    // Six minutes later the second factor is too old to delete the account: the RFC 9470
    // challenge, and the client's silent refresh does not make the login fresh again.
    demo.clock.advance(Duration::from_secs(6 * 60));
    let stale = call(&client, "delete_account").await.unwrap_err();
    assert!(
        stale.contains("insufficient_user_authentication")
            && stale.contains("acr_values=\"mfa\"")
            && stale.contains("max_age=300")
            && stale.contains("resource_metadata="),
        "{stale}"
    );
    let me = call(&client, "whoami").await.unwrap();
    assert_eq!(
        me["auth_time"].as_u64(),
        Some(signed_in_at),
        "a refresh is no login"
    );

    // The step-up: a new authorization with the challenge's acr_values and max_age. The
    // signed-in browser is asked for the second factor only.
    let url = {
        let manager = auth.auth_manager.lock().await;
        manager.get_authorization_url(&[]).await.unwrap()
    };
    let (request_id, step) = browser
        .open(&format!("{url}&acr_values=mfa&max_age=300"))
        .await;
    assert_eq!(step, "factor");
    let factor = browser
        .step(
            "/oauth/authorize/session",
            json!({"request_id": request_id}),
        )
        .await;
    assert_eq!(factor["mfa_required"], true, "{factor}");
    demo.clock.advance(Duration::from_secs(30));
    let stepped_up = browser
        .step(
            "/oauth/authorize/mfa",
            json!({"mfa_token": factor["mfa_token"], "method": "totp", "code": demo.code(&key)}),
        )
        .await;
    let callback = stepped_up["redirect_to"].as_str().expect("a redirect");
    {
        let manager = auth.auth_manager.lock().await;
        manager
            .exchange_code_for_token_with_issuer(
                &param(callback, "code").unwrap(),
                &param(callback, "state").unwrap(),
                param(callback, "iss").as_deref(),
            )
            .await
            .unwrap();
    }
    let me = call(&client, "whoami").await.unwrap();
    let stepped_up_at = me["auth_time"].as_u64().unwrap();
    assert!(
        stepped_up_at > signed_in_at + 300,
        "the step-up is a new authentication"
    );
    assert_eq!(
        call(&client, "delete_account").await.unwrap()["deleted"],
        true
    );

    // A refresh keeps what the step-up proved (acr, auth_time) and gains nothing: it is
    // not a phishing-resistant login, and once 5 minutes pass it deletes nothing either.
    {
        let manager = auth.auth_manager.lock().await;
        manager.refresh_token().await.unwrap();
    }
    let me = call(&client, "whoami").await.unwrap();
    assert_eq!(me["acr"], "mfa");
    assert_eq!(me["auth_time"].as_u64(), Some(stepped_up_at));
    assert!(call(&client, "read_vault").await.is_err());
    demo.clock.advance(Duration::from_secs(301));
    {
        let manager = auth.auth_manager.lock().await;
        manager.refresh_token().await.unwrap();
    }
    let stale = call(&client, "delete_account").await.unwrap_err();
    assert!(stale.contains("max_age=300"), "{stale}");
    client.cancel().await.unwrap();
}

/// The MCP server alone, trusting tokens the test signs (HS256): the gate seen from outside.
async fn mcp_with_own_issuer(clock: &ManualClock) -> (String, stepup::JwtIssuer) {
    const SECRET: &[u8] = b"mcp gate test secret, thirty-two bytes";
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let settings = mcp::Settings {
        issuer: "https://as.example".to_owned(),
        addr: listener.local_addr().unwrap(),
        resource: format!("http://{}/mcp", listener.local_addr().unwrap()),
    };
    let issuer = stepup::JwtIssuer::hs256(SECRET)
        .unwrap()
        .with_issuer(&settings.issuer)
        .with_audience(&settings.resource)
        .with_clock(Arc::new(clock.clone()));
    let verifier = issuer
        .verifier()
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    let router = mcp::router(&settings, verifier, &settings.metadata().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (settings.resource, issuer)
}

#[tokio::test]
async fn the_gate_answers_each_tool_with_its_own_requirement() {
    let clock = ManualClock::at_unix(T0);
    let (mcp_url, issuer) = mcp_with_own_issuer(&clock).await;
    let token = |acr: &str, amr: &[&str]| {
        let grant = stepup::token::Grant::new("ada")
            .acr(acr)
            .amr(amr.iter().copied())
            .auth_time(T0);
        issuer.issue(&grant).unwrap().access_token
    };
    let (pwd, mfa) = (token("pwd", &["pwd"]), token("mfa", &["pwd", "otp"]));
    let http = reqwest::Client::new();
    let post = |token: &str, message: Value| {
        http.post(&mcp_url)
            .bearer_auth(token)
            .header("accept", "application/json, text/event-stream")
            .json(&message)
            .send()
    };
    let tool_call = |name: &str| json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": name}});

    // No token: the bare challenge, naming the metadata, which names the authorization server.
    let refused = http
        .post(&mcp_url)
        .json(&tool_call("whoami"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let challenge = refused.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    let metadata_url = challenge
        .split("resource_metadata=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("resource_metadata");
    let metadata: Value = http
        .get(metadata_url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["resource"], mcp_url);
    assert_eq!(
        metadata["authorization_servers"],
        json!(["https://as.example"])
    );

    // Each gated tool asks for its own level; the password alone reaches neither.
    for (tool, acr_values, max_age) in [
        ("delete_account", "mfa", Some(300)),
        ("read_vault", "phr", None),
    ] {
        let response = post(&pwd, tool_call(tool)).await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{tool}");
        let challenge = response.headers()["www-authenticate"].to_str().unwrap();
        assert!(
            challenge.contains("insufficient_user_authentication"),
            "{challenge}"
        );
        assert!(
            challenge.contains(&format!("acr_values=\"{acr_values}\"")),
            "{challenge}"
        );
        assert_eq!(
            challenge.contains("max_age=300"),
            max_age.is_some(),
            "{challenge}"
        );
    }
    // A fresh second factor passes the gate of delete_account (the MCP transport answers),
    // and an old one does not.
    let passed = post(&mfa, tool_call("delete_account")).await.unwrap();
    assert_ne!(passed.status(), StatusCode::UNAUTHORIZED);
    clock.advance(Duration::from_secs(301));
    let stale = post(&mfa, tool_call("delete_account")).await.unwrap();
    assert_eq!(stale.status(), StatusCode::UNAUTHORIZED);
    // The last of two duplicate names is what a JSON parser keeps: the gate reads it too.
    let smuggled = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","name":"read_vault"}}"#;
    let response = http
        .post(&mcp_url)
        .bearer_auth(&pwd)
        .header("content-type", "application/json")
        .body(smuggled)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    // Malformed calls are refused before any tool runs.
    for (message, why) in [
        (
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {}}),
            "no tool name",
        ),
        (
            json!([tool_call("delete_account"), tool_call("read_vault")]),
            "two gated tools in a batch",
        ),
    ] {
        let response = post(&mfa, message).await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{why}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request", "{why}");
    }
    let huge = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "whoami", "pad": "x".repeat(2 << 20)}});
    assert_eq!(
        post(&mfa, huge).await.unwrap().status(),
        StatusCode::PAYLOAD_TOO_LARGE
    );
}

#[test]
fn each_tool_checks_its_requirement_on_the_caller_it_is_handed() {
    // The second check, inside the tool: a caller the gate would have stopped is refused here.
    let parts_with = |context: stepup::AuthContext| {
        let (mut parts, ()) = http::Request::new(()).into_parts();
        parts.extensions.insert(context);
        parts
    };
    let pwd = parts_with(
        stepup::AuthContext::builder("ada")
            .acr("pwd")
            .auth_time(T0)
            .build(),
    );
    let mfa = parts_with(
        stepup::AuthContext::builder("ada")
            .acr("mfa")
            .auth_time(T0)
            .build(),
    );
    let (nobody, ()) = http::Request::new(()).into_parts();
    assert!(mcp::caller(&pwd, "whoami").is_ok());
    assert!(mcp::caller(&pwd, "delete_account").is_err());
    assert!(mcp::caller(&pwd, "read_vault").is_err());
    assert!(mcp::caller(&mfa, "read_vault").is_err());
    assert!(mcp::caller(&nobody, "whoami").is_err());
}
