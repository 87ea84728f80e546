//! Step-up bound to one operation: [`RequireTransaction`] lets a request through only when its
//! token authorizes **this** operation — RFC 9396 `authorization_details` holding an entry of the
//! operation's `type` whose every field equals the request's — and otherwise answers as
//! draft-zehavi-oauth-rar-metadata does, naming the details a token must carry:
//!
//! ```text
//! HTTP/1.1 403 Forbidden
//! WWW-Authenticate: Bearer error="insufficient_authorization_details",
//!   error_description="the access token does not authorize this operation"
//! Content-Type: application/json
//!
//! {"error":"insufficient_authorization_details","error_description":"…",
//!  "authorization_details":[{"type":"payment","amount":"125","currency":"EUR","payee":"ACME Ltd"}]}
//! ```
//!
//! "Any recent MFA" is not "this payment": a token approved for 125.00 EUR to ACME Ltd does not
//! authorize 126.00 EUR, nor another payee. The layer reads the request body (at most
//! [`DEFAULT_MAX_BODY`] by default, `413` beyond), hands it to your extractor, which returns the
//! [`Operation`], and passes the same bytes on.
//!
//! **Canonical form.** Two operations are equal when their `type` and their fields are: text
//! fields byte for byte, amounts as decimal strings (`125`, `125.0` and `"125.00"` are one
//! amount; no exponent, no sign), currencies as their upper-case ISO 4217 code. A token's entry is
//! read by the same rules, field by field; fields the operation does not name are ignored.
//! [`Operation::canonical`] is the one JSON text of an operation (keys sorted, values strings).
//!
//! The caller must also meet the level (default `mfa`) and, with
//! [`max_age`](RequireTransaction::max_age), have authenticated that recently. A request without
//! an [`AuthContext`] gets `401 WWW-Authenticate: Bearer`; a body the extractor refuses, a
//! `400` naming what is wrong (never echoing it).
//!
//! **stepup's own approval.** With [`with_approvals`](RequireTransaction::with_approvals) (the
//! engine: `StepUp::transaction_approvals()`), an operation the token does not approve is
//! recorded and answered `401` with the RFC 9470 challenge plus `transaction_id="…"` (the
//! operation in the body's `authorization_details`). The MFA step for that transaction ends in a
//! single-use grant; the client retries the same request with it in [`TRANSACTION_HEADER`], and
//! the layer passes it once, for exactly that operation. A grant for another amount or payee is
//! spent and refused (a new challenge follows); a store that cannot answer is a `503`.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use std::convert::Infallible;
//! use http::{Request, Response, StatusCode};
//! use http_body_util::Full;
//! use bytes::Bytes;
//! use serde_json::{Value, json};
//! use stepup_core::AuthContext;
//! use stepup_tower::require_transaction::{Operation, OperationError, RequireTransaction};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! fn payment(_: &http::request::Parts, body: &[u8]) -> Result<Operation, OperationError> {
//!     let body: Value = serde_json::from_slice(body)
//!         .map_err(|_| OperationError::new("the body is not JSON"))?;
//!     Operation::new("payment")
//!         .with_amount("amount", &body["amount"])?
//!         .with_currency("currency", &body["currency"])?
//!         .with_text("payee", &body["payee"])
//! }
//!
//! let service = ServiceBuilder::new()
//!     .layer(RequireTransaction::new(payment))
//!     .service(service_fn(|_: Request<Full<Bytes>>| async {
//!         Ok::<_, Infallible>(Response::new(String::from("sent")))
//!     }));
//! let approved = json!([{"type": "payment", "amount": "125.00", "currency": "EUR", "payee": "ACME Ltd"}]);
//! let request = |amount: &str| {
//!     let body = json!({"amount": amount, "currency": "eur", "payee": "ACME Ltd"});
//!     let mut request = Request::new(Full::new(Bytes::from(body.to_string())));
//!     request.extensions_mut().insert(
//!         AuthContext::builder("ada").acr("mfa").authorization_details(approved.clone()).build(),
//!     );
//!     request
//! };
//! assert_eq!(service.clone().oneshot(request("125")).await?.status(), StatusCode::OK);
//! assert_eq!(service.oneshot(request("126")).await?.status(), StatusCode::FORBIDDEN);
//! # Ok::<(), Infallible>(())
//! # }).unwrap();
//! ```

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::request::Parts;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, Full, Limited};
use serde_json::Value;
use stepup_core::acr::level;
use stepup_core::grpc::is_grpc_request;
use stepup_core::policy::{TransactionApprovals, Unavailable};
use stepup_core::{
    AcrRequirement, AuthContext, AuthRejection, DetailsChallenge, StepUpChallenge, StepUpReason,
    TransactionChallenge,
};
use tower_layer::Layer;
use tower_service::Service;

use crate::response::{ResponseBody, ResponseFuture, temporarily_unavailable};

/// The header a retried request carries its transaction grant in.
pub const TRANSACTION_HEADER: &str = "stepup-transaction";
/// The largest request body read by default (64 KiB).
pub const DEFAULT_MAX_BODY: usize = 64 * 1024;
/// The longest operation (canonical JSON) stepup's approvals record.
const MAX_OPERATION: usize = 4096;
/// The longest amount, field value or `type` accepted.
const MAX_VALUE: usize = 256;

/// One operation: a `type` and its fields, each value in canonical form (see the
/// [module docs](self)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    kind: String,
    fields: BTreeMap<String, Field>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Field {
    rule: Rule,
    value: String,
}

/// How a field's value is put in canonical form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    Text,
    Amount,
    Currency,
}

impl Rule {
    fn canonical(self, value: &Value) -> Option<String> {
        match self {
            // No control characters: the text reaches SMS and mail ("Approve … to <payee>").
            Self::Text => value
                .as_str()
                .filter(|text| {
                    !text.is_empty()
                        && text.len() <= MAX_VALUE
                        && !text.chars().any(char::is_control)
                })
                .map(str::to_owned),
            Self::Amount => canonical_amount(value),
            Self::Currency => value
                .as_str()
                .filter(|code| code.len() == 3 && code.bytes().all(|b| b.is_ascii_alphabetic()))
                .map(str::to_ascii_uppercase),
        }
    }
}

/// `125`, `125.0`, `"125.00"` → `125`; `"0.50"` → `0.5`. No sign, no exponent, digits only.
fn canonical_amount(value: &Value) -> Option<String> {
    let text = match value {
        Value::String(text) => text.clone(),
        Value::Number(number) => number.to_string(),
        _ => return None,
    };
    if text.is_empty() || text.len() > MAX_VALUE {
        return None;
    }
    let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
    let digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(fraction) || text.ends_with('.') {
        return None;
    }
    let whole = whole.trim_start_matches('0');
    let whole = if whole.is_empty() { "0" } else { whole };
    let fraction = fraction.trim_end_matches('0');
    Some(if fraction.is_empty() {
        whole.to_owned()
    } else {
        format!("{whole}.{fraction}")
    })
}

impl Operation {
    /// An operation of `kind` (its RFC 9396 `type`), with no field yet.
    pub fn new(kind: impl Into<String>) -> Self {
        Self {
            kind: kind.into(),
            fields: BTreeMap::new(),
        }
    }

    fn with(mut self, rule: Rule, name: &str, value: &Value) -> Result<Self, OperationError> {
        let value = rule.canonical(value).ok_or_else(|| {
            OperationError::new(format!(
                "{name} must be {}",
                match rule {
                    Rule::Text => "a non-empty string of at most 256 bytes, no control characters",
                    Rule::Amount => "a non-negative decimal amount, e.g. \"125.00\"",
                    Rule::Currency => "a three-letter ISO 4217 currency code",
                }
            ))
        })?;
        if name == "type" {
            return Err(OperationError::new("a field cannot be named type"));
        }
        self.fields.insert(name.to_owned(), Field { rule, value });
        Ok(self)
    }

    /// Adds the text field `name` (a payee, an account): compared byte for byte.
    pub fn with_text(self, name: &str, value: &Value) -> Result<Self, OperationError> {
        self.with(Rule::Text, name, value)
    }

    /// Adds the amount `name`, a JSON number or a decimal string, in canonical form.
    pub fn with_amount(self, name: &str, value: &Value) -> Result<Self, OperationError> {
        self.with(Rule::Amount, name, value)
    }

    /// Adds the currency `name`, an ISO 4217 code, upper case.
    pub fn with_currency(self, name: &str, value: &Value) -> Result<Self, OperationError> {
        self.with(Rule::Currency, name, value)
    }

    /// The operation's `type`.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The operation as an RFC 9396 entry: `{"type": …, field: canonical value, …}`.
    pub fn to_json(&self) -> Value {
        let mut entry = serde_json::Map::new();
        entry.insert("type".into(), self.kind.clone().into());
        for (name, field) in &self.fields {
            entry.insert(name.clone(), field.value.clone().into());
        }
        Value::Object(entry)
    }

    /// The one JSON text of the operation: keys sorted, every value a string. Equal operations
    /// have equal texts (a digest of it names the operation in an audit trail).
    pub fn canonical(&self) -> String {
        let mut entries: Vec<(&str, &str)> = self
            .fields
            .iter()
            .map(|(name, field)| (name.as_str(), field.value.as_str()))
            .collect();
        entries.push(("type", &self.kind));
        entries.sort_unstable();
        let members: Vec<String> = entries
            .into_iter()
            .map(|(name, value)| format!("{}:{}", Value::from(name), Value::from(value)))
            .collect();
        format!("{{{}}}", members.join(","))
    }

    /// Whether `details` (a token's `authorization_details`) holds an entry of this type whose
    /// every field of this operation equals it, read by the same rules.
    pub fn is_authorized_by(&self, details: Option<&Value>) -> bool {
        let Some(Value::Array(entries)) = details else {
            return false;
        };
        entries.iter().any(|entry| {
            entry["type"].as_str() == Some(self.kind.as_str())
                && self.fields.iter().all(|(name, field)| {
                    entry
                        .get(name)
                        .and_then(|value| field.rule.canonical(value))
                        .is_some_and(|value| value == field.value)
                })
        })
    }
}

/// Why a request's operation could not be read: answered `400 invalid_request` with this
/// message (write it from your own rules; never echo the request).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OperationError {
    /// What is wrong.
    pub message: Cow<'static, str>,
}

impl OperationError {
    /// An error saying `message`.
    pub fn new(message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

impl std::fmt::Display for OperationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for OperationError {}

/// Layer requiring a token that authorizes the request's operation; see the
/// [module docs](self).
#[derive(Clone)]
pub struct RequireTransaction<F> {
    extract: F,
    level: Cow<'static, str>,
    max_age: Option<Duration>,
    max_body: usize,
    approvals: Option<Arc<dyn TransactionApprovals>>,
}

impl<F> RequireTransaction<F>
where
    F: Fn(&Parts, &[u8]) -> Result<Operation, OperationError>,
{
    /// Requires a token authorizing the operation `extract` reads from the request, at level
    /// `mfa`.
    pub fn new(extract: F) -> Self {
        Self {
            extract,
            level: Cow::Borrowed(level::MFA),
            max_age: None,
            max_body: DEFAULT_MAX_BODY,
            approvals: None,
        }
    }

    /// Adds stepup's own transaction step-up (see the [module docs](self)): an operation the
    /// token does not approve is answered `401` with a `transaction_id`, and a request carrying
    /// a grant for exactly this operation ([`TRANSACTION_HEADER`]) passes, once.
    pub fn with_approvals(mut self, approvals: Arc<dyn TransactionApprovals>) -> Self {
        self.approvals = Some(approvals);
        self
    }

    /// Requires `level` instead of `mfa` (e.g. `phr`).
    pub fn level(mut self, level: impl Into<Cow<'static, str>>) -> Self {
        self.level = level.into();
        self
    }

    /// Requires the authentication (`auth_time`) within `max_age`.
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = Some(max_age);
        self
    }

    /// Reads at most `bytes` of the body (default [`DEFAULT_MAX_BODY`]); `413` beyond.
    pub fn with_max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }
}

impl<F> std::fmt::Debug for RequireTransaction<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequireTransaction")
            .field("level", &self.level)
            .field("max_age", &self.max_age)
            .field("max_body", &self.max_body)
            .field("approvals", &self.approvals.is_some())
            .finish_non_exhaustive()
    }
}

impl<F> RequireTransaction<F> {
    fn requirement(&self) -> AcrRequirement {
        let requirement = AcrRequirement::level(self.level.clone());
        match self.max_age {
            Some(max_age) => requirement.max_age(max_age),
            None => requirement,
        }
    }
}

impl<S, F: Clone> Layer<S> for RequireTransaction<F> {
    type Service = RequireTransactionService<S, F>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireTransactionService {
            inner,
            layer: self.clone(),
        }
    }
}

/// Middleware enforcing a [`RequireTransaction`]; see the [module docs](self).
#[derive(Clone)]
pub struct RequireTransactionService<S, F> {
    inner: S,
    layer: RequireTransaction<F>,
}

impl<S, F> std::fmt::Debug for RequireTransactionService<S, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequireTransactionService")
            .field("layer", &self.layer)
            .finish_non_exhaustive()
    }
}

/// The future of [`RequireTransactionService`]: it reads the body first.
pub type TransactionFuture<B, E> =
    Pin<Box<dyn Future<Output = Result<Response<ResponseBody<B>>, E>> + Send>>;

impl<S, F, ReqBody, ResBody> Service<Request<ReqBody>> for RequireTransactionService<S, F>
where
    S: Service<Request<Full<Bytes>>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Send + 'static,
    ResBody: Send + 'static,
    ReqBody: Body<Data = Bytes> + Send + 'static,
    ReqBody::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    F: Fn(&Parts, &[u8]) -> Result<Operation, OperationError> + Clone + Send + Sync + 'static,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = TransactionFuture<ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // The ready service goes into the future; its clone stays for the next call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let layer = self.layer.clone();
        Box::pin(async move {
            let grpc = is_grpc_request(request.headers());
            let refuse = |rejection: AuthRejection| async move {
                tracing::debug!(reason = rejection.description(), "operation refused");
                ResponseFuture::<std::future::Ready<Result<Response<ResBody>, S::Error>>>::rejected(
                    rejection, grpc,
                )
                .await
            };
            let Some(caller) = request.extensions().get::<AuthContext>().cloned() else {
                return refuse(AuthRejection::MissingToken).await;
            };
            let meets_level = layer.requirement().check(&caller);
            // Without stepup's own approvals the level is asked for first, as RequireAcr does.
            if let (Err(challenge), None) = (&meets_level, &layer.approvals) {
                return refuse(AuthRejection::StepUpRequired(challenge.clone())).await;
            }
            let grant = request
                .headers()
                .get(TRANSACTION_HEADER)
                .map(|value| value.to_str().unwrap_or_default().to_owned());
            let (parts, body) = request.into_parts();
            let Ok(collected) = Limited::new(body, layer.max_body).collect().await else {
                return Ok(invalid(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "the request body is too large or could not be read",
                ));
            };
            let bytes = collected.to_bytes();
            let operation = match (layer.extract)(&parts, &bytes) {
                Ok(operation) => operation,
                Err(error) => return Ok(invalid(StatusCode::BAD_REQUEST, &error.message)),
            };
            let required = Value::Array(vec![operation.to_json()]);
            let by_token =
                meets_level.is_ok() && operation.is_authorized_by(caller.authorization_details());
            if !by_token {
                let Some(approvals) = &layer.approvals else {
                    return refuse(AuthRejection::InsufficientAuthorizationDetails(
                        DetailsChallenge::new(required),
                    ))
                    .await;
                };
                let canonical = operation.canonical();
                if canonical.len() > MAX_OPERATION {
                    // The engine records at most this much: a bad request, not a store outage.
                    return Ok(invalid(
                        StatusCode::BAD_REQUEST,
                        "the operation is too large to approve (at most 4096 bytes)",
                    ));
                }
                let approved = match &grant {
                    Some(grant) if !grant.is_empty() && grant.len() <= MAX_VALUE => {
                        approvals.redeem_approval(&caller, grant, &canonical).await
                    }
                    _ => Ok(false),
                };
                match approved {
                    Ok(true) => {}
                    Ok(false) => {
                        // No grant, or one spent or for another operation: approve this one.
                        let id = match approvals.request_approval(&caller, &canonical).await {
                            Ok(id) => id,
                            Err(Unavailable) => return Ok(temporarily_unavailable(grpc)),
                        };
                        let challenge = StepUpChallenge::new(
                            layer.level.clone(),
                            Some(0),
                            StepUpReason::ApprovalRequired,
                        )
                        .with_transaction(TransactionChallenge {
                            id,
                            authorization_details: required,
                        });
                        return refuse(AuthRejection::StepUpRequired(challenge)).await;
                    }
                    Err(Unavailable) => return Ok(temporarily_unavailable(grpc)),
                }
            }
            let response = inner
                .call(Request::from_parts(parts, Full::new(bytes)))
                .await?;
            Ok(response.map(ResponseBody::from_inner))
        })
    }
}

/// A `400`/`413` JSON answer saying `description`, never cached.
fn invalid<B>(status: StatusCode, description: &str) -> Response<ResponseBody<B>> {
    let body = stepup_core::error_body::error_body("invalid_request", description);
    let mut response = Response::new(ResponseBody::from_rejection(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn amounts_have_one_canonical_form() {
        for (input, canonical) in [
            (json!(125), "125"),
            (json!(125.5), "125.5"),
            (json!("125.00"), "125"),
            (json!("0125.50"), "125.5"),
            (json!("0.00"), "0"),
            (json!("0.05"), "0.05"),
        ] {
            assert_eq!(
                canonical_amount(&input).as_deref(),
                Some(canonical),
                "{input}"
            );
        }
        for refused in [
            json!("-1"),
            json!("1e3"),
            json!(1e300),
            json!("12."),
            json!(".5"),
            json!("1,5"),
            json!(""),
            json!(null),
            json!(true),
            json!(-3),
        ] {
            assert_eq!(canonical_amount(&refused), None, "{refused}");
        }
    }

    #[test]
    fn an_operation_matches_a_token_entry_field_by_field() {
        let payment = Operation::new("payment")
            .with_amount("amount", &json!("125.00"))
            .unwrap()
            .with_currency("currency", &json!("eur"))
            .unwrap()
            .with_text("payee", &json!("ACME Ltd"))
            .unwrap();
        assert_eq!(
            payment.canonical(),
            r#"{"amount":"125","currency":"EUR","payee":"ACME Ltd","type":"payment"}"#
        );
        let entry = |amount: Value, payee: &str| json!([{"type": "payment", "amount": amount, "currency": "EUR", "payee": payee, "extra": 1}]);
        assert!(payment.is_authorized_by(Some(&entry(json!(125), "ACME Ltd"))));
        assert!(payment.is_authorized_by(Some(&entry(json!("125.0"), "ACME Ltd"))));
        assert!(!payment.is_authorized_by(Some(&entry(json!("126.00"), "ACME Ltd"))));
        assert!(!payment.is_authorized_by(Some(&entry(json!(125), "ACME Ltd."))));
        assert!(!payment.is_authorized_by(Some(&entry(json!(125), "acme ltd"))));
        assert!(!payment.is_authorized_by(None));
        assert!(!payment.is_authorized_by(Some(&json!({"type": "payment"}))));
        // Another type with the same fields is another operation.
        let mut other = entry(json!(125), "ACME Ltd");
        other[0]["type"] = json!("refund");
        assert!(!payment.is_authorized_by(Some(&other)));
        // A field missing from the token's entry is not authorized.
        let mut partial = entry(json!(125), "ACME Ltd");
        partial[0].as_object_mut().unwrap().remove("payee");
        assert!(!payment.is_authorized_by(Some(&partial)));
        assert!(Operation::new("x").with_text("type", &json!("y")).is_err());
        // Control characters never reach a message or a mail header.
        for text in ["ACME\r\nBcc: x@evil.example", "ACME\u{7f}", "tab\there"] {
            assert!(
                Operation::new("payment")
                    .with_text("payee", &json!(text))
                    .is_err(),
                "{text:?}"
            );
        }
    }
}
