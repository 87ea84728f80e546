//! No secret, code or token ever appears in a log line (SPEC §3 invariant 11): a whole session is
//! run with every stepup target at TRACE, and the captured log is searched for each secret used.

mod demo_support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use demo_support::*;
use reqwest::Method;
use serde_json::json;

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

    let demo = Demo::start().await;
    let mut secrets: Vec<String> = vec!["correct horse".into()];
    let (password_token, key, codes) = demo.enrolled_user("ivy@example.com").await;
    secrets.push(password_token.clone());
    secrets.extend(codes.iter().cloned());
    secrets.extend(codes.iter().map(|code| code.replace('-', "")));

    let mfa_token = demo.mfa_token("ivy@example.com").await;
    secrets.push(mfa_token.clone());
    demo.mfa_step(&mfa_token, json!({"code": "000000"})).await;
    let code = demo.code(&key);
    secrets.push(code.clone());
    let response = demo
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

    let mfa_token = demo.mfa_token("ivy@example.com").await;
    secrets.push(mfa_token.clone());
    let used = demo
        .mfa_step(&mfa_token, json!({"backup_code": codes[1]}))
        .await;
    secrets.push(used.token());

    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(log.contains("stepup::audit"), "audit events are logged");
    assert!(log.contains("backup_code_used"));
    assert!(log.contains("mfa_failed"));
    for secret in &secrets {
        assert!(
            !log.contains(secret.as_str()),
            "a secret reached the log: {secret}"
        );
    }
    // Neither does the TOTP secret, in base32 or as the sealed blob's plaintext.
    assert!(!log.contains("otpauth://"));
}
