//! A factor stepup has never heard of, written here, outside every stepup crate, as an
//! application would: codes "printed" to a list (a stand-in for a letter, a pager, a hardware
//! display). Registered on the builder, it is enrolled, used to log in, and removed over HTTP
//! through stepup's generic routes, with the engine's rules around it (first-factor backup codes,
//! the MFA step, wrong codes refused, fresh MFA to remove it). Nothing under `crates/` knows it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use stepup::mfa::delivery::{Purpose, SendPolicy};
use stepup::mfa::factor::{
    EnrollmentFinish, EnrollmentStart, Factor, FactorContext, NewCredential, Verified, async_trait,
    parse_input,
};
use stepup::mfa::{InvalidCode, PasswordCheckFailed};
use stepup::store::Credential;
use stepup::{JwtIssuer, Keyring, MemoryStore, PasswordCheck, StepUp};

/// Codes printed to a shared list: what the "device" shows.
#[derive(Clone, Default)]
struct Printer(Arc<Mutex<Vec<String>>>);

impl Printer {
    fn last(&self) -> String {
        self.0
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("a code was printed")
    }

    fn count(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

/// The application's factor: a code printed on the user's device, once per purpose.
struct PrintedCodes {
    printer: Printer,
    sends: SendPolicy,
}

#[derive(Deserialize)]
struct Code {
    code: String,
}

impl PrintedCodes {
    async fn print(
        &self,
        cx: &FactorContext<'_>,
        purpose: Purpose<'_>,
    ) -> Result<Value, stepup::MfaError> {
        cx.admit_send(&self.sends, cx.user(), purpose).await?;
        let code = cx.issue_code(purpose, Duration::from_secs(300)).await?;
        self.printer.0.lock().unwrap().push(code);
        cx.code_sent(purpose).await;
        Ok(json!({ "message": "a code was printed on your device" }))
    }
}

#[async_trait]
impl Factor for PrintedCodes {
    fn kind(&self) -> &'static str {
        "printed"
    }

    fn amr(&self) -> &'static str {
        "otp"
    }

    fn noun(&self) -> &'static str {
        "a code printer"
    }

    async fn start_enrollment(
        &self,
        cx: &FactorContext<'_>,
        _input: &Value,
    ) -> Result<EnrollmentStart, stepup::MfaError> {
        let answer = self
            .print(
                cx,
                Purpose::Enrollment {
                    destination: "device",
                },
            )
            .await?;
        Ok(EnrollmentStart::pending(
            NewCredential::new("printed", "{}"),
            answer,
        ))
    }

    async fn finish_enrollment(
        &self,
        cx: &FactorContext<'_>,
        _pending: Option<&Credential>,
        input: &Value,
    ) -> Result<EnrollmentFinish, stepup::MfaError> {
        let Code { code } = parse_input(input)?;
        let purpose = Purpose::Enrollment {
            destination: "device",
        };
        if !cx.consume_code(purpose, &code).await? {
            return Err(InvalidCode.into());
        }
        Ok(EnrollmentFinish::activate(0))
    }

    async fn prepare(
        &self,
        cx: &FactorContext<'_>,
        _credentials: &[Credential],
    ) -> Result<Value, stepup::MfaError> {
        self.print(cx, Purpose::Login).await
    }

    async fn verify(
        &self,
        cx: &FactorContext<'_>,
        credentials: &[Credential],
        proof: &Value,
    ) -> Result<Verified, stepup::MfaError> {
        let Code { code } = parse_input(proof)?;
        if !cx.consume_code(Purpose::Login, &code).await? {
            return Err(InvalidCode.into());
        }
        Ok(Verified::mfa().by(&credentials[0].id))
    }
}

/// One user, `ada`, password `correct horse`.
struct OneUser;

#[async_trait]
impl PasswordCheck for OneUser {
    async fn check(
        &self,
        username: &str,
        password: &str,
    ) -> Result<Option<String>, PasswordCheckFailed> {
        Ok((username == "ada" && password == "correct horse").then(|| "user-ada".to_owned()))
    }

    async fn account_exists(&self, user: &str) -> Result<bool, PasswordCheckFailed> {
        Ok(user == "user-ada")
    }
}

async fn serve(printer: Printer) -> String {
    let no_cooldown = SendPolicy {
        resend_cooldown: Duration::ZERO,
        ..SendPolicy::default()
    };
    let stepup = StepUp::builder()
        .issuer(JwtIssuer::hs256(b"a test secret of thirty-two bytes or more").unwrap())
        .store(MemoryStore::new())
        .keyring(Keyring::new("k1", &[1; 32]).unwrap())
        .lookup_key(&[2; 32])
        .passwords(OneUser)
        .factor(PrintedCodes {
            printer,
            sends: no_cooldown,
        })
        .build()
        .unwrap();
    let app = axum::Router::new()
        .merge(stepup.routes())
        .layer(stepup.authenticate());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    format!("http://{address}")
}

async fn post(base: &str, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn get(base: &str, path: &str, token: &str) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .get(format!("{base}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

async fn login(base: &str) -> Value {
    let (status, body) = post(
        base,
        "/oauth/authorize",
        None,
        json!({ "username": "ada", "password": "correct horse" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

#[tokio::test]
async fn an_application_factor_is_enrolled_used_and_removed_over_http() {
    let printer = Printer::default();
    let base = serve(printer.clone()).await;

    // No factor yet: the password alone signs in, at `pwd`.
    let first = login(&base).await;
    assert_eq!(first["acr"], "pwd");
    let password_token = first["access_token"].as_str().unwrap().to_owned();

    // Enrollment through the generic routes: a code printed, then confirmed.
    let (status, started) = post(
        &base,
        "/api/mfa/factors/printed",
        Some(&password_token),
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{started}");
    assert_eq!(printer.count(), 1);
    let (status, wrong) = post(
        &base,
        "/api/mfa/factors/printed/confirm",
        Some(&password_token),
        json!({ "code": "000000" }),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{wrong}");
    assert_eq!(wrong["error"], "invalid_mfa_code");
    let (status, enrolled) = post(
        &base,
        "/api/mfa/factors/printed/confirm",
        Some(&password_token),
        json!({ "code": printer.last() }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{enrolled}");
    assert_eq!(enrolled["kind"], "printed");
    assert_eq!(
        enrolled["backup_codes"].as_array().unwrap().len(),
        10,
        "the first factor brings the backup codes, whoever wrote it"
    );
    let (_, listed) = get(&base, "/api/mfa/factors", &password_token).await;
    assert_eq!(listed["factors"][0]["kind"], "printed");
    assert_eq!(listed["factors"][0]["active"], true);
    assert_eq!(listed["factors"][0]["restricted"], false);

    // The login now asks for it, and accepts only the code printed for this step.
    let challenge = login(&base).await;
    assert_eq!(challenge["mfa_required"], true);
    assert_eq!(challenge["methods"], json!(["printed", "backup_code"]));
    let mfa_token = challenge["mfa_token"].as_str().unwrap();
    let (status, _) = post(
        &base,
        "/oauth/authorize/mfa/printed/prepare",
        None,
        json!({ "mfa_token": mfa_token }),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        printer.count(),
        2,
        "one code for the enrollment, one for this step"
    );
    let (status, refused) = post(
        &base,
        "/oauth/authorize/mfa",
        None,
        json!({ "mfa_token": mfa_token, "method": "printed", "code": "999999" }),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{refused}");
    assert_eq!(refused["error"], "invalid_mfa_code");
    let (status, signed_in) = post(
        &base,
        "/oauth/authorize/mfa",
        None,
        json!({ "mfa_token": mfa_token, "method": "printed", "code": printer.last() }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{signed_in}");
    assert_eq!(signed_in["acr"], "mfa");
    let mfa_access = signed_in["access_token"].as_str().unwrap().to_owned();

    // Removing it needs a fresh second factor: the password-level token gets the challenge.
    let removal = reqwest::Client::new()
        .delete(format!("{base}/api/mfa/factors/printed/printed"))
        .bearer_auth(&password_token)
        .send()
        .await
        .unwrap();
    assert_eq!(removal.status(), StatusCode::UNAUTHORIZED);
    assert!(
        removal.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("insufficient_user_authentication")
    );
    let removal = reqwest::Client::new()
        .delete(format!("{base}/api/mfa/factors/printed/printed"))
        .bearer_auth(&mfa_access)
        .send()
        .await
        .unwrap();
    assert_eq!(removal.status(), StatusCode::OK);
    let (_, listed) = get(&base, "/api/mfa/factors", &mfa_access).await;
    assert_eq!(listed["factors"], json!([]));
    assert_eq!(
        listed["backup_codes_remaining"], 0,
        "the codes went with the last factor"
    );
    assert_eq!(login(&base).await["acr"], "pwd");
}
