//! `examples/resource_server` in process, against the fake OpenID Connect provider on 127.0.0.1
//! (discovery + JWKS), once per profile: a `pwd` token reaches `/api/me`, gets the RFC 9470
//! challenge in the provider's own vocabulary (with `resource_metadata`) at `/api/account`,
//! and an `mfa` one passes. The verifier's clock is a `ManualClock`.

#[path = "../examples/resource_server/app.rs"]
#[allow(dead_code, unreachable_pub)]
mod app;
mod support_oidc;

use std::collections::HashMap;
use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::{Value, json};
use stepup::clock::ManualClock;
use support_oidc::{FakeIdp, TestKey};

const T0: u64 = 1_800_000_000;

/// A provider, its dialect, and the resource server trusting it.
struct Case {
    name: &'static str,
    issuer_path: &'static str,
    /// Extra settings (`STEPUP_IDP_PROFILE`, `OIDC_AUDIENCE`, `STEPUP_ACR_MAP`).
    env: &'static [(&'static str, &'static str)],
    /// The audience the provider's tokens carry (`None`: the resource identifier).
    audience: Option<&'static str>,
    /// The provider's `acr` for a password, a second factor, a phishing-resistant factor.
    pwd: &'static str,
    mfa: &'static str,
    phr: &'static str,
}

const CASES: &[Case] = &[
    Case {
        name: "generic",
        issuer_path: "",
        env: &[],
        audience: None,
        pwd: "pwd",
        mfa: "mfa",
        phr: "phr",
    },
    Case {
        name: "generic with STEPUP_ACR_MAP",
        issuer_path: "/oidc",
        env: &[
            ("STEPUP_IDP_PROFILE", "generic"),
            (
                "STEPUP_ACR_MAP",
                "pwd=urn:example:1fa,mfa=urn:example:2fa,phr=urn:example:phr",
            ),
        ],
        audience: None,
        pwd: "urn:example:1fa",
        mfa: "urn:example:2fa",
        phr: "urn:example:phr",
    },
    Case {
        name: "keycloak",
        issuer_path: "/realms/demo",
        env: &[
            ("STEPUP_IDP_PROFILE", "keycloak"),
            ("OIDC_AUDIENCE", "account"),
        ],
        audience: Some("account"),
        pwd: "1",
        mfa: "2",
        phr: "3",
    },
    Case {
        name: "okta",
        issuer_path: "/oauth2/default",
        env: &[
            ("STEPUP_IDP_PROFILE", "okta"),
            ("OIDC_AUDIENCE", "api://default"),
        ],
        audience: Some("api://default"),
        pwd: "urn:okta:loa:1fa:pwd",
        mfa: "urn:okta:loa:2fa:any",
        phr: "phr",
    },
];

/// The resource server, serving on 127.0.0.1 with the settings `main.rs` would read.
struct Running {
    base: String,
    settings: app::Settings,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn start(idp: &FakeIdp, extra: &[(&str, &str)]) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut env: HashMap<&str, String> = extra.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
    env.insert("OIDC_ISSUER", idp.issuer.clone());
    env.insert("STEPUP_ADDR", addr.to_string());
    let settings = app::Settings::from_lookup(|name| env.get(name).cloned()).unwrap();
    let metadata = settings.metadata().unwrap();
    let verifier = settings
        .verifier(Arc::new(ManualClock::at_unix(T0)))
        .unwrap();
    verifier.refresh_keys().await.unwrap();
    let router = app::router(verifier, &metadata);
    let server = tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    Running {
        base: format!("http://{addr}"),
        settings,
        server,
    }
}

fn token(key: &TestKey, idp: &FakeIdp, audience: &str, acr: &str, auth_time: u64) -> String {
    key.sign(&json!({
        "iss": idp.issuer,
        "aud": audience,
        "sub": "user-1",
        "iat": T0,
        "exp": T0 + 600,
        "auth_time": auth_time,
        "acr": acr,
        "amr": ["pwd"],
        "scope": "openid",
    }))
}

struct Answer {
    status: StatusCode,
    challenge: Option<String>,
    body: Value,
}

async fn send(request: reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.unwrap();
    let status = response.status();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|value| value.to_str().unwrap().to_owned());
    let text = response.text().await.unwrap();
    Answer {
        status,
        challenge,
        body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
    }
}

fn step_up(description: &str, acr_values: &str, max_age: Option<u64>, metadata: &str) -> String {
    let max_age = max_age.map_or(String::new(), |age| format!(", max_age={age}"));
    format!(
        "Bearer error=\"insufficient_user_authentication\", \
         error_description=\"{description}\", acr_values=\"{acr_values}\"{max_age}, \
         resource_metadata=\"{metadata}\""
    )
}

#[tokio::test]
async fn each_profile_protects_the_routes_in_its_own_vocabulary() {
    for case in CASES {
        let key = TestKey::rsa("rs-1");
        let idp = FakeIdp::start(case.issuer_path, &[&key]).await;
        let server = start(&idp, case.env).await;
        let base = &server.base;
        let audience = case.audience.unwrap_or(base);
        let metadata_url = format!("{base}/.well-known/oauth-protected-resource");
        let client = reqwest::Client::new();
        let name = case.name;

        // The RFC 9728 metadata names the provider.
        let answer = send(client.get(&metadata_url)).await;
        assert_eq!(answer.status, StatusCode::OK, "{name}");
        assert_eq!(
            answer.body,
            json!({
                "resource": base,
                "authorization_servers": [idp.issuer],
                "scopes_supported": ["openid"],
                "bearer_methods_supported": ["header"],
                "resource_name": "stepup resource server example",
            }),
            "{name}"
        );

        // No token: the bare challenge points at the metadata.
        let answer = send(client.get(format!("{base}/api/me"))).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{name}");
        assert_eq!(
            answer.challenge.as_deref(),
            Some(format!("Bearer resource_metadata=\"{metadata_url}\"").as_str()),
            "{name}"
        );

        // A password token: the profile, read in stepup's terms.
        let pwd = token(&key, &idp, audience, case.pwd, T0);
        let answer = send(client.get(format!("{base}/api/me")).bearer_auth(&pwd)).await;
        assert_eq!(answer.status, StatusCode::OK, "{name}: {:?}", answer.body);
        assert_eq!(answer.body["sub"], "user-1", "{name}");
        assert_eq!(answer.body["acr"], "pwd", "{name}");
        assert_eq!(answer.body["iss"], idp.issuer.as_str(), "{name}");

        // … refused at the account deletion, asking the provider for its own `mfa` value.
        let answer = send(
            client
                .delete(format!("{base}/api/account"))
                .bearer_auth(&pwd),
        )
        .await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{name}");
        let description = "a stronger authentication level is required";
        assert_eq!(
            answer.challenge.as_deref(),
            Some(step_up(description, case.mfa, Some(300), &metadata_url).as_str()),
            "{name}"
        );
        assert_eq!(
            answer.body,
            json!({
                "error": "insufficient_user_authentication",
                "error_description": description,
                "acr_values": case.mfa,
                "max_age": 300,
            }),
            "{name}"
        );

        // A second-factor token passes; the admin page wants the provider's `phr` value.
        let mfa = token(&key, &idp, audience, case.mfa, T0);
        let answer = send(
            client
                .delete(format!("{base}/api/account"))
                .bearer_auth(&mfa),
        )
        .await;
        assert_eq!(answer.status, StatusCode::OK, "{name}: {:?}", answer.body);
        assert_eq!(answer.body, json!({"success": true}), "{name}");
        let answer = send(client.get(format!("{base}/api/admin")).bearer_auth(&mfa)).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{name}");
        assert_eq!(
            answer.challenge.as_deref(),
            Some(step_up(description, case.phr, None, &metadata_url).as_str()),
            "{name}"
        );
        let phr = token(&key, &idp, audience, case.phr, T0);
        let answer = send(client.get(format!("{base}/api/admin")).bearer_auth(&phr)).await;
        assert_eq!(answer.status, StatusCode::OK, "{name}");

        // A second factor more than 300 s ago is not fresh enough to delete the account.
        let stale = token(&key, &idp, audience, case.mfa, T0 - 301);
        let answer = send(
            client
                .delete(format!("{base}/api/account"))
                .bearer_auth(&stale),
        )
        .await;
        assert_eq!(
            answer.challenge.as_deref(),
            Some(
                step_up(
                    "a more recent authentication is required",
                    case.mfa,
                    Some(300),
                    &metadata_url
                )
                .as_str()
            ),
            "{name}"
        );

        // A token for another audience, or signed by a key the provider does not publish.
        let elsewhere = token(&key, &idp, "https://elsewhere.test", case.mfa, T0);
        let answer = send(client.get(format!("{base}/api/me")).bearer_auth(&elsewhere)).await;
        assert_eq!(
            answer.challenge.as_deref(),
            Some(
                format!(
                    "Bearer error=\"invalid_token\", \
                     error_description=\"the token's audience is not accepted\", \
                     resource_metadata=\"{metadata_url}\""
                )
                .as_str()
            ),
            "{name}"
        );
        let stranger = TestKey::ec("es-unpublished");
        let forged = token(&stranger, &idp, audience, case.mfa, T0);
        let answer = send(
            client
                .delete(format!("{base}/api/account"))
                .bearer_auth(&forged),
        )
        .await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{name}");
        assert!(
            answer
                .challenge
                .as_deref()
                .is_some_and(|challenge| challenge.starts_with("Bearer error=\"invalid_token\"")),
            "{name}: {:?}",
            answer.challenge
        );
        assert_eq!(server.settings.issuer, idp.issuer);
    }
}

#[test]
fn the_settings_say_what_is_missing_or_wrong() {
    let settings = |pairs: &[(&str, &str)]| {
        let env: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        app::Settings::from_lookup(|name| env.get(name).cloned())
    };
    assert_eq!(settings(&[]).unwrap_err(), "OIDC_ISSUER is not set");
    assert_eq!(
        settings(&[("OIDC_ISSUER", "  ")]).unwrap_err(),
        "OIDC_ISSUER is not set"
    );
    assert!(app::USAGE.contains("OIDC_ISSUER"));
    assert!(app::USAGE.contains("STEPUP_IDP_PROFILE"));

    let defaults = settings(&[("OIDC_ISSUER", "https://idp.example.com")]).unwrap();
    assert_eq!(defaults.addr.to_string(), "127.0.0.1:3001");
    assert_eq!(defaults.resource, "http://127.0.0.1:3001");
    assert_eq!(defaults.audiences, ["http://127.0.0.1:3001"]);
    assert_eq!(
        defaults.profile.kind(),
        stepup::profile::ProfileKind::Generic
    );
    assert_eq!(
        defaults.metadata().unwrap().metadata_url().as_str(),
        "http://127.0.0.1:3001/.well-known/oauth-protected-resource"
    );

    let issuer = ("OIDC_ISSUER", "https://idp.example.com");
    assert!(
        settings(&[issuer, ("STEPUP_IDP_PROFILE", "ping")])
            .unwrap_err()
            .contains("STEPUP_IDP_PROFILE")
    );
    assert!(
        settings(&[issuer, ("STEPUP_ACR_MAP", "mfa")])
            .unwrap_err()
            .contains("STEPUP_ACR_MAP")
    );
    assert!(
        settings(&[issuer, ("STEPUP_ADDR", "nowhere")])
            .unwrap_err()
            .contains("STEPUP_ADDR")
    );
    let mapped = settings(&[
        issuer,
        ("OIDC_AUDIENCE", "a, b"),
        ("STEPUP_PUBLIC_URL", "https://api.example.com/"),
        ("STEPUP_ACR_MAP", "mfa=urn:example:2fa"),
    ])
    .unwrap();
    assert_eq!(mapped.audiences, ["a", "b"]);
    assert_eq!(mapped.resource, "https://api.example.com");
    assert_eq!(mapped.profile.acr_values_for("mfa"), "urn:example:2fa");
}

/// `cargo run --example resource_server` without `OIDC_ISSUER`: the usage, and a failure.
#[test]
fn the_example_without_an_issuer_prints_what_to_set_and_fails() {
    // `cargo test` builds the examples beside the test binaries (`target/<profile>/examples`).
    let deps = std::env::current_exe().unwrap();
    let binary = deps
        .parent()
        .and_then(|deps| deps.parent())
        .map(|profile| profile.join("examples").join("resource_server"))
        .filter(|binary| binary.exists());
    let Some(binary) = binary else {
        stepup_test_env::skip(
            "the resource_server example was not built (cargo build --example resource_server)",
        );
        return;
    };
    let output = std::process::Command::new(binary)
        .env_remove("OIDC_ISSUER")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("OIDC_ISSUER is not set"), "{stderr}");
    assert!(stderr.contains(app::USAGE), "{stderr}");
}
