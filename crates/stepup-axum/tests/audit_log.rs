//! No secret, code or token ever appears in a log line: a whole session is run with every
//! stepup target at TRACE, and the captured log is searched for each secret used.

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Method;
use serde_json::json;
use sha2::{Digest, Sha256};
use support::*;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_whole_session_logs_events_but_no_secret() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_env_filter(
            "trace,hyper=info,hyper_util=info,reqwest=info,h2=info,tokio=info,runtime=info",
        )
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();

    let app = sqlite_app().await;
    let mut secrets: Vec<String> = vec![PASSWORD.into()];
    // An account whose password the application keeps as an argon2id hash.
    app.register_argon2("ivy@example.com").await;
    let password_token = app.login("ivy@example.com").await.token();
    let (key, codes) = app.enroll_totp(&password_token).await;
    secrets.push(password_token.clone());
    secrets.extend(codes.iter().cloned());
    secrets.extend(codes.iter().map(|code| code.replace('-', "")));

    let mfa_token = app.mfa_token("ivy@example.com").await;
    secrets.push(mfa_token.clone());
    app.mfa_step(&mfa_token, json!({"code": "000000"})).await;
    let code = app.code(&key);
    secrets.push(code.clone());
    let response = app
        .request(Method::POST, "/oauth/authorize/mfa", None)
        .json(&json!({"mfa_token": mfa_token, "code": code, "remember_device": true}))
        .send()
        .await
        .unwrap();
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    let device_token = cookie
        .split(';')
        .next()
        .unwrap()
        .split('=')
        .nth(1)
        .unwrap()
        .to_owned();
    secrets.push(device_token);
    let body: serde_json::Value = response.json().await.unwrap();
    secrets.push(body["access_token"].as_str().unwrap().to_owned());

    let mfa_token = app.mfa_token("ivy@example.com").await;
    secrets.push(mfa_token.clone());
    let used = app
        .mfa_step(&mfa_token, json!({"backup_code": codes[1]}))
        .await;
    secrets.push(used.token());

    // The authorization-code flow: the code, the PKCE verifier and the token it buys.
    app.clock.advance(std::time::Duration::from_secs(30));
    let verifier = "a-pkce-verifier-long-enough-to-be-valid-0123456789";
    secrets.push(verifier.to_owned());
    let first = app
        .post(
            "/oauth/authorize",
            None,
            json!({
                "username": "ivy@example.com",
                "password": PASSWORD,
                "client_id": CLIENT_ID,
                "redirect_uri": REDIRECT_URI,
                "code_challenge": URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())),
                "code_challenge_method": "S256",
            }),
        )
        .await;
    let mfa_token = first.body["mfa_token"].as_str().unwrap().to_owned();
    secrets.push(mfa_token.clone());
    let code = app.code(&key);
    secrets.push(code.clone());
    let response = app
        .request(Method::POST, "/oauth/authorize/mfa", None)
        .json(&json!({"mfa_token": mfa_token, "code": code}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::FOUND);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let query = location.split_once('?').unwrap().1;
    let params: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap();
    let authorization_code = params
        .into_iter()
        .find(|(name, _)| name == "code")
        .unwrap()
        .1;
    secrets.push(authorization_code.clone());
    let exchanged = Answer::read(app.request(Method::POST, "/oauth/token", None).form(&[
        ("grant_type", "authorization_code"),
        ("code", authorization_code.as_str()),
        ("code_verifier", verifier),
        ("redirect_uri", REDIRECT_URI),
        ("client_id", CLIENT_ID),
    ]))
    .await;
    secrets.push(exchanged.token());

    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(log.contains("stepup::audit"), "audit events are logged");
    assert!(log.contains("backup_code_used"));
    assert!(log.contains("mfa_failed"));
    assert!(log.contains("authorization_code_issued"));
    for secret in &secrets {
        assert!(
            !log.contains(secret.as_str()),
            "a secret reached the log: {secret}"
        );
    }
    // Neither does the TOTP secret, in base32 or as the sealed blob's plaintext.
    assert!(!log.contains("otpauth://"));
}
