//! The one shape of every error stepup answers: `{"error": code, "error_description": text}`
//! (RFC 6749 §5.2), and `Retry-After` seconds rounded up.

use std::time::Duration;

use serde_json::{Map, Value};

/// The JSON object `{"error": code, "error_description": description}`, to extend with more
/// fields where a protocol asks for them.
///
/// ```
/// let body = stepup_core::error_body::error_object("invalid_request", "the body is not JSON");
/// assert_eq!(
///     serde_json::Value::Object(body).to_string(),
///     r#"{"error":"invalid_request","error_description":"the body is not JSON"}"#
/// );
/// ```
pub fn error_object(code: &str, description: &str) -> Map<String, Value> {
    let mut body = Map::new();
    body.insert("error".into(), code.into());
    body.insert("error_description".into(), description.into());
    body
}

/// The code of every `503` stepup answers: a store, provider or pool could not answer, so it
/// fails closed.
pub const UNAVAILABLE_CODE: &str = "temporarily_unavailable";
/// The description of every `503` stepup answers.
pub const UNAVAILABLE_DESCRIPTION: &str = "the service cannot answer this now; try again shortly";

/// The error body as JSON text.
pub fn error_body(code: &str, description: &str) -> String {
    Value::Object(error_object(code, description)).to_string()
}

/// Whole seconds for `Retry-After`, rounded up and at least 1, so a client never retries early.
///
/// ```
/// use std::time::Duration;
/// use stepup_core::error_body::retry_after_seconds;
///
/// assert_eq!(retry_after_seconds(Duration::from_millis(1500)), 2);
/// assert_eq!(retry_after_seconds(Duration::ZERO), 1);
/// ```
pub fn retry_after_seconds(wait: Duration) -> u64 {
    wait.as_secs()
        .saturating_add(u64::from(wait.subsec_nanos() > 0))
        .max(1)
}
