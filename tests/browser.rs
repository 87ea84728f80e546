//! The demo's web page in a real browser: Debian's Chromium, headless, driven through chromedriver
//! (WebDriver), with the W3C virtual authenticator standing in for a phone's passkey. One walk
//! through what a person does: register, sign in, enroll TOTP from the shown secret, sign in with
//! the code, add a passkey, sign in with it alone, open the passkey-only vault, and delete the
//! account through the step-up prompt. Screenshots of the main screens land in
//! `STEPUP_SCREENSHOTS` (default: a `stepup-screenshots` folder in the temporary directory).
//!
//! Needs `chromium` and `chromedriver` (`apt-get install chromium chromium-driver`); without them
//! the test is skipped with a message, except under `CI=true`, where it fails.

#[path = "../examples/demo/app.rs"]
#[allow(dead_code, unreachable_pub)]
mod app;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use stepup::clock::{Clock, ManualClock};
use stepup::mfa::totp::TotpAlgorithm;
use stepup::mfa::totp::TotpKey;

const T0: u64 = 1_800_000_000;
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// How long the page gets to reach each expected state (the browser's pace, not the product's
/// clock, which is the test's `ManualClock`).
const PATIENCE: Duration = Duration::from_secs(20);

/// Whether the browser is here; `false` (the reason printed) means skip, except under CI.
fn browser_installed() -> bool {
    if Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists() {
        return true;
    }
    stepup_test_env::skip(format_args!(
        "{CHROMIUM} or {CHROMEDRIVER} is missing (apt-get install chromium chromium-driver)"
    ));
    false
}

/// The demo on a free port, reached at `http://localhost:<port>` (its WebAuthn origin).
async fn start_demo(clock: &ManualClock, dir: &Path) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://localhost:{}", listener.local_addr().unwrap().port());
    let url = format!("sqlite://{}", dir.join("demo.db").display());
    let database = app::Database::open(&url, Arc::new(clock.clone()))
        .await
        .unwrap();
    let secrets = app::Secrets {
        jwt_secret: b"browser test secret, thirty-two bytes or more".to_vec(),
        seal_key_id: "test".into(),
        seal_key: vec![7; 32],
        lookup_key: vec![8; 32],
    };
    let settings = app::Settings {
        client: app::demo_client("demo", &format!("{base}/callback")),
        public_url: base.clone(),
        outbox_dir: Some(dir.to_owned()),
        ..app::Settings::new(database, secrets, Arc::new(clock.clone()))
    };
    let router = app::build(settings).await.unwrap();
    tokio::spawn(async move {
        let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
        axum::serve(listener, service).await.unwrap()
    });
    base
}

/// chromedriver on a free port, killed when dropped.
struct Chromedriver {
    child: Child,
    url: String,
}

impl Chromedriver {
    async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let driver = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + PATIENCE;
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "chromedriver did not come up");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        driver
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One browser at a time: two Chromium starts at once on a 2-core machine can miss
/// chromedriver's session deadline.
static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A headless Chromium session, its profile in `profile`.
async fn browser(driver: &Chromedriver, profile: &Path) -> Client {
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-quic", "--no-first-run", "--window-size=1000,1300",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&driver.url)
        .await
        .expect("open a Chromium session")
}

/// `POST /session/{id}/webauthn/authenticator`: a virtual platform authenticator (CTAP2,
/// internal transport) with resident keys and user verification, as a phone's passkey.
#[derive(Debug)]
struct AddVirtualAuthenticator;

impl WebDriverCompatibleCommand for AddVirtualAuthenticator {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!(
            "session/{}/webauthn/authenticator",
            session.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        let body = json!({
            "protocol": "ctap2",
            "transport": "internal",
            "hasResidentKey": true,
            "hasUserVerification": true,
            "isUserVerified": true,
            "automaticPresenceSimulation": true,
        });
        (http::Method::POST, Some(body.to_string()))
    }
}

/// The page, driven by id, with the checks a person makes by looking.
struct Page {
    client: Client,
    shots: PathBuf,
}

impl Page {
    async fn eval(&self, script: &str) -> Value {
        self.client.execute(script, vec![]).await.unwrap()
    }

    /// Waits until `condition` (a JavaScript expression) is true; the page's error text, if
    /// any, is in the failure message.
    async fn until(&self, condition: &str) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if self.eval(&format!("return Boolean({condition});")).await == json!(true) {
                return;
            }
            if Instant::now() > deadline {
                let error = self.text("error").await;
                let notice = self.text("notice").await;
                panic!("waited for `{condition}`; page error: {error:?}, notice: {notice:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn visible(&self, id: &str) {
        self.until(&format!(
            "document.getElementById('{id}').offsetParent !== null"
        ))
        .await;
    }

    async fn text(&self, id: &str) -> String {
        let script = format!("return document.getElementById('{id}')?.textContent ?? '';");
        self.eval(&script)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    async fn notice_is(&self, text: &str) {
        let text = serde_json::to_string(text).unwrap();
        self.until(&format!(
            "document.getElementById('notice').textContent === {text}"
        ))
        .await;
    }

    async fn type_into(&self, id: &str, value: &str) {
        let field = self.client.find(Locator::Id(id)).await.unwrap();
        field.clear().await.unwrap();
        field.send_keys(value).await.unwrap();
    }

    async fn click(&self, id: &str) {
        self.client
            .find(Locator::Id(id))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }

    /// Presses the submit button of the form `id`.
    async fn submit(&self, id: &str) {
        self.client
            .find(Locator::Css(&format!("#{id} button[type=submit]")))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }

    async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        std::fs::write(self.shots.join(format!("{name}.png")), png).unwrap();
    }

    async fn sign_in_with_password(&self, email: &str, password: &str) {
        self.type_into("sign-in-email", email).await;
        self.type_into("sign-in-password", password).await;
        self.submit("sign-in-form").await;
    }

    async fn sign_out(&self) {
        self.click("sign-out").await;
        self.notice_is("Signed out.").await;
        self.visible("sign-in-form").await;
    }
}

fn code_at(secret: &str, now: u64) -> String {
    let secret = totp_rs::Secret::try_from_base32(secret).unwrap();
    let secret = secret.as_bytes();
    TotpKey::new(secret, TotpAlgorithm::Sha1, 6, 30, 1, "demo", "browser")
        .unwrap()
        .code_at(now)
}

fn screenshot_dir() -> PathBuf {
    let dir = std::env::var_os("STEPUP_SCREENSHOTS").map_or_else(
        || std::env::temp_dir().join("stepup-screenshots"),
        PathBuf::from,
    );
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_walks_every_main_flow_in_chromium() {
    if !browser_installed() {
        return;
    }
    let _one_browser = ONE_BROWSER.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at_unix(T0);
    let base = start_demo(&clock, dir.path()).await;
    let driver = Chromedriver::start().await;
    let client = browser(&driver, &dir.path().join("profile")).await;
    client
        .issue_cmd(AddVirtualAuthenticator)
        .await
        .expect("add the virtual authenticator");
    let page = Page {
        client,
        shots: screenshot_dir(),
    };
    let (email, password) = ("ada@example.com", "correct horse battery");

    // The page and what it may load.
    page.client.goto(&format!("{base}/")).await.unwrap();
    page.until("document.body.dataset.ready === 'true'").await;
    page.visible("dev-panel").await;
    let unlabelled = page
        .eval("return [...document.querySelectorAll('input')].filter(i => i.labels.length === 0).map(i => i.id);")
        .await;
    assert_eq!(unlabelled, json!([]), "every input has a label");
    page.screenshot("signed-out").await;

    // Register, then sign in with the password alone (no factor yet: acr pwd).
    page.type_into("register-email", email).await;
    page.type_into("register-password", password).await;
    page.submit("register-form").await;
    page.notice_is("Account created: sign in below.").await;
    page.sign_in_with_password(email, password).await;
    page.visible("signed-in").await;
    assert_eq!(page.text("session-acr").await, "pwd");

    // Enroll TOTP from the secret shown beside the QR code; the backup codes appear once.
    page.click("totp-setup").await;
    page.visible("totp-qr").await;
    page.until("document.getElementById('totp-qr').complete && document.getElementById('totp-qr').naturalWidth > 0")
        .await;
    let secret = page.text("totp-secret").await;
    assert!(secret.len() >= 26, "a base32 secret of 128 bits or more");
    page.screenshot("enroll-totp").await;
    page.type_into("totp-confirm-code", &code_at(&secret, clock.unix_seconds()))
        .await;
    page.submit("totp-confirm-form").await;
    page.notice_is("Authenticator app enabled.").await;
    page.visible("backup-codes").await;
    let codes = page
        .eval("return document.querySelectorAll('#backup-code-list li').length;")
        .await;
    assert_eq!(codes, json!(10));
    page.screenshot("backup-codes").await;
    page.click("backup-hide").await;
    page.sign_out().await;

    // Sign in again: the password now leads to the second-factor step.
    page.sign_in_with_password(email, password).await;
    page.visible("mfa-step").await;
    page.visible("mfa-totp-form").await;
    let no_passkey_yet = page
        .eval("return document.getElementById('mfa-webauthn').hidden;")
        .await;
    assert_eq!(
        no_passkey_yet,
        json!(true),
        "no passkey is offered before one exists"
    );
    page.screenshot("second-factor").await;
    clock.advance(Duration::from_secs(30));
    page.type_into("mfa-totp-code", &code_at(&secret, clock.unix_seconds()))
        .await;
    page.submit("mfa-totp-form").await;
    page.visible("signed-in").await;
    assert_eq!(page.text("session-acr").await, "mfa");
    // The token is bound to a key the page cannot export (DPoP), and every call since carried a
    // proof: the browser's clock is weeks off the demo's, and the page dated its proofs by the
    // demo's `Date`.
    assert_eq!(
        page.text("session-token").await,
        "DPoP-bound to a key this page cannot export (extractable: false)"
    );

    // Add a passkey (the virtual authenticator answers), then sign in with it alone.
    page.type_into("passkey-label", "virtual phone").await;
    page.submit("passkey-add-form").await;
    page.notice_is("Passkey added.").await;
    page.until("document.getElementById('passkey-list').textContent.includes('virtual phone')")
        .await;
    page.screenshot("signed-in").await;

    // The vault wants a passkey: stepup.js meets the phr challenge with a passkey-only prompt.
    page.click("open-vault").await;
    page.visible("mfa-step").await;
    assert_eq!(
        page.text("mfa-reason").await,
        "This needs a passkey: confirm with yours."
    );
    let codes_offered = page
        .eval("return !document.getElementById('mfa-totp-form').hidden;")
        .await;
    assert_eq!(codes_offered, json!(false), "only a passkey reaches phr");
    page.click("mfa-passkey").await;
    page.until("document.getElementById('vault').textContent.includes('opens only to a passkey')")
        .await;
    assert_eq!(page.text("session-acr").await, "phr");
    page.sign_out().await;
    page.click("passkey-sign-in").await;
    page.notice_is("Signed in with a passkey.").await;
    assert_eq!(page.text("session-acr").await, "phr");
    assert_eq!(
        page.text("session-amr").await,
        "hwk",
        "no password was checked"
    );

    // The vault opens to the fresh passkey login, with no prompt.
    page.eval("document.getElementById('vault').textContent = ''; return null;")
        .await;
    page.click("open-vault").await;
    page.until("document.getElementById('vault').textContent.includes('opens only to a passkey')")
        .await;

    // Five minutes on, deleting the account asks for a fresh factor first (RFC 9470), then works.
    clock.advance(Duration::from_secs(301));
    page.click("delete-account").await;
    page.client.accept_alert().await.unwrap();
    page.visible("mfa-step").await;
    assert_eq!(
        page.text("mfa-reason").await,
        "Confirm it is you with a second factor."
    );
    page.type_into("mfa-totp-code", &code_at(&secret, clock.unix_seconds()))
        .await;
    page.submit("mfa-totp-form").await;
    page.notice_is("Account deleted.").await;
    page.visible("sign-in-form").await;
    page.sign_in_with_password(email, password).await;
    page.until("document.getElementById('error').textContent === 'invalid username or password'")
        .await;

    // Nothing came from anywhere but the demo itself.
    let loaded = page
        .eval(
            "return [document.URL, ...performance.getEntriesByType('resource').map(e => e.name)];",
        )
        .await;
    let loaded: Vec<String> = serde_json::from_value(loaded).unwrap();
    assert!(
        loaded.len() > 5,
        "the page's own requests are seen: {loaded:?}"
    );
    for url in &loaded {
        assert!(
            url.starts_with(&format!("{base}/")),
            "{url} is not the demo's own"
        );
    }

    // At a phone's width nothing needs sideways scrolling.
    page.client.set_window_size(390, 844).await.unwrap();
    let overflow = page
        .eval("return document.documentElement.scrollWidth - document.documentElement.clientWidth;")
        .await;
    assert_eq!(overflow, json!(0), "no horizontal scrolling at 390 px");
    eprintln!("screenshots in {}", page.shots.display());
    page.client.close().await.unwrap();
}

impl Page {
    /// Refreshes the development outbox until the list `id` holds `needle`; its text.
    async fn outbox_holding(&self, id: &str, needle: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            self.click("outbox-refresh").await;
            let text = self.text(id).await;
            if text.contains(needle) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "the outbox never showed {needle:?}: {text:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The code of the `count`th SMS, once the development outbox shows it (newest first).
    async fn sms_code(&self, count: usize) -> String {
        let deadline = Instant::now() + PATIENCE;
        let script =
            "return [...document.querySelectorAll('#sms-outbox li')].map(li => li.textContent);";
        let newest = loop {
            self.click("outbox-refresh").await;
            let shown: Vec<String> = serde_json::from_value(self.eval(script).await).unwrap();
            if shown.len() >= count && shown.iter().all(|sms| sms.contains("+15551234567")) {
                break shown[0].clone();
            }
            assert!(
                Instant::now() < deadline,
                "the outbox never showed SMS {count}: {shown:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        newest
            .split(|c: char| !c.is_ascii_digit())
            .find(|word| word.len() == 6)
            .expect("the SMS holds a 6-digit code")
            .to_owned()
    }
}

impl Page {
    /// Registers `email`, signs in and enrolls an authenticator app from the shown secret
    /// (backup codes dismissed); the secret. The page stays signed in.
    async fn new_account_with_totp(
        &self,
        email: &str,
        password: &str,
        clock: &ManualClock,
    ) -> String {
        let page = self;
        page.type_into("register-email", email).await;
        page.type_into("register-password", password).await;
        page.submit("register-form").await;
        page.notice_is("Account created: sign in below.").await;
        page.sign_in_with_password(email, password).await;
        page.visible("signed-in").await;
        page.click("totp-setup").await;
        page.visible("totp-qr").await;
        let secret = page.text("totp-secret").await;
        page.type_into("totp-confirm-code", &code_at(&secret, clock.unix_seconds()))
            .await;
        page.submit("totp-confirm-form").await;
        page.notice_is("Authenticator app enabled.").await;
        page.click("backup-hide").await;
        secret
    }
}

/// Starts a browser on a fresh demo; the virtual authenticator is not needed here.
async fn page_on_new_demo(clock: &ManualClock, dir: &Path) -> (Page, Chromedriver, String) {
    let base = start_demo(clock, dir).await;
    let driver = Chromedriver::start().await;
    let client = browser(&driver, &dir.join("profile")).await;
    let page = Page {
        client,
        shots: screenshot_dir(),
    };
    page.client.goto(&format!("{base}/")).await.unwrap();
    page.until("document.body.dataset.ready === 'true'").await;
    (page, driver, base)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sms_remembered_devices_recovery_and_a_token_kept_in_memory_only() {
    if !browser_installed() {
        return;
    }
    let _one_browser = ONE_BROWSER.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at_unix(T0);
    let (page, _driver, _base) = page_on_new_demo(&clock, dir.path()).await;
    let (email, password) = ("grace@example.com", "a long enough password");
    // The demo offers SMS only beside another factor: an authenticator app first, then a
    // sign-in with it (adding a second factor needs a fresh one).
    let secret = page.new_account_with_totp(email, password, &clock).await;
    page.sign_out().await;
    clock.advance(Duration::from_secs(31));
    page.sign_in_with_password(email, password).await;
    page.visible("mfa-totp-form").await;
    page.type_into("mfa-totp-code", &code_at(&secret, clock.unix_seconds()))
        .await;
    page.submit("mfa-totp-form").await;
    page.visible("signed-in").await;

    // A phone beside it, its code read off the development outbox.
    page.type_into("sms-phone", "+15551234567").await;
    page.submit("sms-enroll-form").await;
    page.visible("sms-verify-form").await;
    let code = page.sms_code(1).await;
    page.type_into("sms-code", &code).await;
    page.submit("sms-verify-form").await;
    page.notice_is("Phone verified.").await;
    // The number is shown masked.
    page.until("document.getElementById('factor-list').textContent.includes('+1*****4567')")
        .await;
    page.sign_out().await;

    // Sign in with an SMS code, and remember this browser.
    clock.advance(Duration::from_secs(31));
    page.sign_in_with_password(email, password).await;
    page.visible("mfa-sms-form").await;
    page.click("mfa-sms-send").await;
    page.notice_is("Code sent to +1*****4567").await;
    let second = page.sms_code(2).await;
    assert_ne!(second, code, "a new code for the login");
    page.type_into("mfa-sms-code", &second).await;
    page.click("mfa-remember").await;
    page.submit("mfa-sms-form").await;
    page.visible("signed-in").await;
    assert_eq!(page.text("session-amr").await, "pwd, sms");
    page.until("document.getElementById('device-list').textContent.includes('(this one)')")
        .await;
    page.sign_out().await;

    // The remembered browser skips the second factor.
    page.sign_in_with_password(email, password).await;
    page.visible("signed-in").await;
    assert_eq!(page.text("session-acr").await, "mfa");
    page.sign_out().await;

    // Lost the phone: recovery by mail (read off the outbox) plus the password.
    page.type_into("recovery-email", email).await;
    page.submit("recovery-request-form").await;
    page.visible("recovery-confirm-form").await;
    let mail = page.outbox_holding("mail-outbox", "Recovery code: ").await;
    let code = mail
        .split("Recovery code: ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .to_owned();
    page.type_into("recovery-code", &code).await;
    page.type_into("recovery-password", password).await;
    page.submit("recovery-confirm-form").await;
    page.notice_is("Account recovered: every factor was removed. Enroll a new one.")
        .await;
    assert_eq!(page.text("session-acr").await, "pwd");
    // Every factor and remembered device is gone.
    page.until("document.getElementById('event-list').textContent.includes('recovery')")
        .await;
    assert_eq!(page.text("factor-list").await, "none");
    assert_eq!(page.text("device-list").await, "none");

    // The token was only ever in the page's memory: nothing stored, and a reload signs out.
    let stored = page
        .eval("return localStorage.length + sessionStorage.length + document.cookie.length;")
        .await;
    assert_eq!(
        stored,
        json!(0),
        "no token in web storage or readable cookies"
    );
    page.client.refresh().await.unwrap();
    page.until("document.body.dataset.ready === 'true'").await;
    page.visible("sign-in-form").await;
    assert_eq!(page.text("whoami").await, "");
    page.client.close().await.unwrap();
}

/// RFC 7636's example pair: the client keeps the verifier, the authorization URL carries the
/// challenge.
const PKCE_VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const PKCE_CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

impl Page {
    /// Opens the authorization endpoint as a client's redirect would, with `extra` parameters.
    async fn open_authorization(&self, base: &str, state: &str, extra: &str) {
        let redirect_uri = format!("{base}/callback");
        let url = url::Url::parse_with_params(
            &format!("{base}/oauth/authorize"),
            &[
                ("response_type", "code"),
                ("client_id", "demo"),
                ("redirect_uri", redirect_uri.as_str()),
                ("state", state),
                ("code_challenge", PKCE_CHALLENGE),
                ("code_challenge_method", "S256"),
            ],
        )
        .unwrap();
        self.client.goto(&format!("{url}{extra}")).await.unwrap();
        self.until("document.getElementById('stepup-authorize') !== null")
            .await;
    }

    /// Waits for the redirect to the client's callback; the code, after checking `state` and
    /// `iss` (RFC 9207).
    async fn code_at_callback(&self, base: &str, state: &str) -> String {
        self.until(&format!(
            "document.URL.startsWith({})",
            json!(format!("{base}/callback?"))
        ))
        .await;
        let url = url::Url::parse(self.client.current_url().await.unwrap().as_str()).unwrap();
        let param = |name: &str| {
            url.query_pairs()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.into_owned())
        };
        assert_eq!(param("state").as_deref(), Some(state));
        assert_eq!(param("iss").as_deref(), Some(base));
        param("code").expect("the redirect carries the code")
    }
}

/// What the token endpoint gives the client for `code`, as `/api/me` reads its token.
async fn redeem(base: &str, code: &str) -> Value {
    let http = reqwest::Client::new();
    let redirect_uri = format!("{base}/callback");
    let token: Value = http
        .post(format!("{base}/oauth/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("code_verifier", PKCE_VERIFIER),
            ("redirect_uri", redirect_uri.as_str()),
            ("client_id", "demo"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access_token = token["access_token"].as_str().expect("an access token");
    http.get(format!("{base}/api/me"))
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_signs_in_on_the_authorization_page_and_steps_up_with_the_factor_alone() {
    if !browser_installed() {
        return;
    }
    let _one_browser = ONE_BROWSER.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at_unix(T0);
    let (page, _driver, base) = page_on_new_demo(&clock, dir.path()).await;
    let (email, password) = ("grace@example.com", "correct horse battery");

    // An account with TOTP, made on the demo's own page.
    let secret = page.new_account_with_totp(email, password, &clock).await;
    page.sign_out().await;

    // A client sends the browser to the authorization endpoint: password, then the TOTP code.
    page.open_authorization(&base, "first", "").await;
    page.visible("password-step").await;
    assert_eq!(page.text("client-name").await, "demo");
    page.screenshot("authorize-sign-in").await;
    page.type_into("username", email).await;
    page.type_into("password", password).await;
    page.submit("password-form").await;
    page.visible("code-form").await;
    page.screenshot("authorize-factor").await;
    clock.advance(Duration::from_secs(30));
    page.type_into("code", &code_at(&secret, clock.unix_seconds()))
        .await;
    page.submit("code-form").await;
    let code = page.code_at_callback(&base, "first").await;
    let signed_in = redeem(&base, &code).await;
    assert_eq!(signed_in["acr"], "mfa");
    assert_eq!(signed_in["auth_time"], json!(T0 + 30));

    // Six minutes later the client asks for a fresh second factor (acr_values + max_age): the
    // session cookie stands for the password, so the page asks for the factor alone.
    clock.advance(Duration::from_secs(360));
    page.open_authorization(&base, "step-up", "&acr_values=mfa&max_age=300")
        .await;
    page.visible("code-form").await;
    let password_asked = page
        .eval("return !document.getElementById('password-step').hidden;")
        .await;
    assert_eq!(
        password_asked,
        json!(false),
        "a step-up asks only for the factor"
    );
    page.type_into("code", &code_at(&secret, clock.unix_seconds()))
        .await;
    page.submit("code-form").await;
    let code = page.code_at_callback(&base, "step-up").await;
    let stepped_up = redeem(&base, &code).await;
    assert_eq!(stepped_up["acr"], "mfa");
    assert_eq!(
        stepped_up["auth_time"],
        json!(T0 + 390),
        "the factor is fresh"
    );

    // prompt=login asks for the password again, however fresh the session.
    page.open_authorization(&base, "again", "&prompt=login")
        .await;
    page.visible("password-step").await;
    page.client.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_is_approved_on_the_page_for_its_amount_and_payee() {
    if !browser_installed() {
        return;
    }
    let _one_browser = ONE_BROWSER.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::at_unix(T0);
    let (page, _driver, _base) = page_on_new_demo(&clock, dir.path()).await;
    let (email, password) = ("payer@example.com", "correct horse battery");
    let secret = page.new_account_with_totp(email, password, &clock).await;

    // The transfer asks for the factor, naming the amount and the payee; then it is sent.
    page.type_into("transfer-amount", "125.00").await;
    page.type_into("transfer-payee", "ACME Ltd").await;
    page.submit("transfer-form").await;
    page.visible("mfa-step").await;
    assert_eq!(
        page.text("mfa-reason").await,
        "Approve 125.00 EUR to ACME Ltd"
    );
    page.screenshot("approve-transfer").await;
    clock.advance(Duration::from_secs(30));
    page.type_into("mfa-totp-code", &code_at(&secret, clock.unix_seconds()))
        .await;
    page.submit("mfa-totp-form").await;
    page.notice_is("Sent 125.00 EUR to ACME Ltd.").await;
    // The approval was for that transfer only: the next one asks again.
    page.submit("transfer-form").await;
    page.visible("mfa-step").await;
    page.client.close().await.unwrap();
}
