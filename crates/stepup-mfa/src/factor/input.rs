//! Reading a client's JSON into a typed request, with errors that name the field from the
//! server's own schema (`missing field code`) and never echo the client's values.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{InvalidInput, MfaError};

/// `input` as a `T`, or `400 invalid_request` naming what is wrong: `missing field code`,
/// `field credential.response has the wrong type`. Only field names of `T`'s schema appear,
/// never a value the client sent.
///
/// ```
/// use serde::Deserialize;
/// use serde_json::json;
/// use stepup_mfa::factor::parse_input;
///
/// #[derive(Deserialize)]
/// struct Code { code: String }
///
/// let error = parse_input::<Code>(&json!({"cod": "123456"})).err().unwrap();
/// assert_eq!(error.description(), "missing field code");
/// let error = parse_input::<Code>(&json!({"code": 123456})).err().unwrap();
/// assert_eq!(error.description(), "field code has the wrong type");
/// ```
pub fn parse_input<T: DeserializeOwned>(input: &Value) -> Result<T, MfaError> {
    serde_path_to_error::deserialize(input).map_err(|error| {
        let path = error.path().to_string();
        MfaError::InvalidInput(describe(&path, &error.inner().to_string()))
    })
}

/// `bytes` (a request body) as a `T`, with [`parse_input`]'s errors; `the body is not valid
/// JSON` when it is not JSON at all.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, MfaError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let parsed: Result<T, _> = serde_path_to_error::deserialize(&mut deserializer);
    match parsed {
        Ok(value) => deserializer
            .end()
            .map(|()| value)
            .map_err(|_| MfaError::invalid_input("the body is not valid JSON")),
        Err(error) => {
            let inner = error.inner();
            if inner.is_syntax() || inner.is_eof() || inner.is_io() {
                return Err(MfaError::invalid_input("the body is not valid JSON"));
            }
            let path = error.path().to_string();
            Err(MfaError::InvalidInput(describe(&path, &inner.to_string())))
        }
    }
}

/// What is wrong at `path`, from the deserializer's `message`: only the field name of a missing
/// field is taken from it (it comes from the schema); any other message is replaced by a fixed
/// one, since it may quote the client's value.
fn describe(path: &str, message: &str) -> InvalidInput {
    let path = safe_path(path);
    if let Some(field) = missing_field(message) {
        let full = match path.as_deref() {
            Some(parent) => format!("{parent}.{field}"),
            None => field.to_owned(),
        };
        return InvalidInput::new(format!("missing field {full}"));
    }
    match path {
        Some(path) => InvalidInput::new(format!("field {path} has the wrong type")),
        None => InvalidInput::new("the body must be a JSON object of the documented shape"),
    }
}

/// The field of serde's "missing field `name`" message, if it is one and the name is plain.
fn missing_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("missing field `")?;
    let name = &rest[..rest.find('`')?];
    is_plain(name).then_some(name)
}

/// The path if every segment is a plain field name (a schema's, not a map key a client chose);
/// `.` for the root is no path.
fn safe_path(path: &str) -> Option<String> {
    if path.is_empty() || path == "." {
        return None;
    }
    let plain = path
        .split('.')
        .all(|segment| is_plain(segment) || segment.parse::<usize>().is_ok());
    plain.then(|| path.to_owned())
}

fn is_plain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Outer {
        token: String,
        inner: Inner,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        count: u32,
    }

    #[test]
    fn missing_and_mistyped_fields_are_named_from_the_schema() {
        let error = parse_input::<Outer>(&json!({"inner": {"count": 1}})).unwrap_err();
        assert_eq!(error.description(), "missing field token");
        let error = parse_input::<Outer>(&json!({"token": "t", "inner": {}})).unwrap_err();
        assert_eq!(error.description(), "missing field inner.count");
        let error =
            parse_input::<Outer>(&json!({"token": "t", "inner": {"count": "SECRET"}})).unwrap_err();
        assert_eq!(error.description(), "field inner.count has the wrong type");
        assert!(!error.description().contains("SECRET"));
    }

    #[test]
    fn a_body_that_is_not_an_object_says_so_without_echoing() {
        let error = parse_input::<Outer>(&json!("SECRET")).unwrap_err();
        assert!(!error.description().contains("SECRET"));
        assert_eq!(error.code(), "invalid_request");
    }

    #[test]
    fn bytes_that_are_not_json_are_named_as_such() {
        let error = parse_json::<Outer>(b"{not json").unwrap_err();
        assert_eq!(error.description(), "the body is not valid JSON");
        let error =
            parse_json::<Outer>(br#"{"token":"t","inner":{"count":1}} trailing"#).unwrap_err();
        assert_eq!(error.description(), "the body is not valid JSON");
        let parsed = parse_json::<Outer>(br#"{"token":"t","inner":{"count":1}}"#).unwrap();
        assert_eq!(parsed.inner.count, 1);
    }
}
