//! The `WWW-Authenticate` plumbing shared by the challenges: the RFC 9728 metadata URL named as
//! `resource_metadata="…"` ([`ResourceMetadataUrl`]), the check of a configured URL before it
//! enters a header, and the scanner that finds where a challenge's parameters end.

use std::sync::Arc;

use http::header::WWW_AUTHENTICATE;
use http::{HeaderMap, HeaderValue};

use crate::Error;

/// The URL of a protected resource's metadata (RFC 9728 §5.1), named as
/// `resource_metadata="…"` in the resource's `WWW-Authenticate` challenges so that a client
/// (an MCP client, say) finds the authorization server from a `401` alone. Cheap to clone.
///
/// ```
/// use stepup_core::ResourceMetadataUrl;
///
/// let url = ResourceMetadataUrl::new("https://api.example.com/.well-known/oauth-protected-resource")?;
/// assert_eq!(
///     url.add_to_challenge("Bearer error=\"invalid_token\", error_description=\"…\"").unwrap(),
///     "Bearer error=\"invalid_token\", error_description=\"…\", \
///      resource_metadata=\"https://api.example.com/.well-known/oauth-protected-resource\""
/// );
/// assert_eq!(
///     url.add_to_challenge("Bearer").unwrap(),
///     "Bearer resource_metadata=\"https://api.example.com/.well-known/oauth-protected-resource\""
/// );
/// # Ok::<(), stepup_core::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ResourceMetadataUrl {
    url: Arc<str>,
}

impl ResourceMetadataUrl {
    /// Checks `url`: an absolute `https` URL (plain `http` only to a loopback host, for
    /// development), visible ASCII without `"`, `\\` or a fragment.
    pub fn new(url: impl Into<String>) -> Result<Self, Error> {
        let url = url.into();
        check_url(&url)?;
        Ok(Self { url: url.into() })
    }

    /// The URL.
    pub fn as_str(&self) -> &str {
        &self.url
    }

    /// `challenge` with `resource_metadata="<url>"` added, when it is a `Bearer` challenge that
    /// names none yet: at the end of the Bearer challenge's parameters (after the scheme alone
    /// when it has none). `None` for another scheme, a challenge that already names a
    /// `resource_metadata`, or one that cannot take parameters (a token68).
    pub fn add_to_challenge(&self, challenge: &str) -> Option<String> {
        let (end, has_parameters) = bearer_parameters_end(challenge)?;
        let (head, tail) = challenge.split_at(end);
        let separator = if has_parameters { ", " } else { " " };
        Some(format!(
            "{head}{separator}resource_metadata=\"{}\"{tail}",
            self.url
        ))
    }

    /// `challenge` with `resource_metadata="<url>"` added at the end of its first challenge's
    /// parameters, when that challenge is `DPoP` (RFC 9449) and names none yet.
    pub fn add_to_dpop_challenge(&self, challenge: &str) -> Option<String> {
        let found = first_challenge(challenge, "dpop", Some("resource_metadata"))?;
        let (head, tail) = challenge.split_at(found.end);
        let separator = if found.has_parameters { ", " } else { " " };
        Some(format!(
            "{head}{separator}resource_metadata=\"{}\"{tail}",
            self.url
        ))
    }

    /// Adds the parameter to every `WWW-Authenticate` Bearer challenge in `headers` that lacks
    /// one (see [`add_to_challenge`](Self::add_to_challenge)); other values stay as they are.
    pub fn add_to_headers(&self, headers: &mut HeaderMap) {
        if !headers.contains_key(WWW_AUTHENTICATE) {
            return;
        }
        let values: Vec<HeaderValue> = headers.get_all(WWW_AUTHENTICATE).iter().cloned().collect();
        let mut changed = false;
        let values: Vec<HeaderValue> = values
            .into_iter()
            .map(|value| {
                let added = value
                    .to_str()
                    .ok()
                    .and_then(|text| self.add_to_challenge(text))
                    .and_then(|text| HeaderValue::from_str(&text).ok());
                changed |= added.is_some();
                added.unwrap_or(value)
            })
            .collect();
        if !changed {
            return;
        }
        headers.remove(WWW_AUTHENTICATE);
        for value in values {
            headers.append(WWW_AUTHENTICATE, value);
        }
    }
}

impl std::fmt::Debug for ResourceMetadataUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ResourceMetadataUrl")
            .field(&self.url)
            .finish()
    }
}

impl std::fmt::Display for ResourceMetadataUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.url)
    }
}

/// An absolute `https` URL (or `http` to a loopback host) of visible ASCII, with no character
/// that needs escaping in a quoted-string and no fragment.
pub(crate) fn check_url(url: &str) -> Result<(), Error> {
    let rest = if let Some(rest) = url.strip_prefix("https://") {
        rest
    } else if let Some(rest) = url.strip_prefix("http://") {
        let host = rest.split(['/', '?']).next().unwrap_or_default();
        let host = match host.rsplit_once(':') {
            Some((host, port)) if !port.contains(']') => host,
            _ => host,
        };
        let loopback = host.eq_ignore_ascii_case("localhost")
            || host == "[::1]"
            || host
                .parse::<std::net::Ipv4Addr>()
                .is_ok_and(|ip| ip.is_loopback());
        if !loopback {
            return Err(Error::Config(
                "a resource URL must be https (plain http only to a loopback host)",
            ));
        }
        rest
    } else {
        return Err(Error::Config(
            "a resource URL must be https (plain http only to a loopback host)",
        ));
    };
    let host = rest.split(['/', '?']).next().unwrap_or_default();
    if host.is_empty() || host.contains('@') {
        return Err(Error::Config(
            "a resource URL needs a host (and no user info)",
        ));
    }
    if !url
        .bytes()
        .all(|byte| byte.is_ascii_graphic() && byte != b'"' && byte != b'\\')
    {
        return Err(Error::Config(
            "a resource URL must be visible ASCII without quotes or backslashes",
        ));
    }
    if url.contains('#') {
        return Err(Error::Config("a resource URL has no fragment"));
    }
    Ok(())
}

/// Where a `resource_metadata` parameter goes in `challenge`, and whether the Bearer challenge
/// has parameters before it: the end of the first challenge's parameters, when that challenge is
/// `Bearer`, takes parameters, and names no `resource_metadata` yet (RFC 9110 §11.3 syntax).
fn bearer_parameters_end(challenge: &str) -> Option<(usize, bool)> {
    let found = first_challenge(challenge, "bearer", Some("resource_metadata"))?;
    Some((found.end, found.has_parameters))
}

/// Where the first challenge of a `WWW-Authenticate` value sits, when its scheme is the one asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FirstChallenge {
    /// Where the scheme's name ends.
    pub(crate) scheme_end: usize,
    /// Where its parameters end (the scheme's end when it has none).
    pub(crate) end: usize,
    /// Whether it has parameters.
    pub(crate) has_parameters: bool,
}

/// The first challenge of `challenge` when its scheme is `scheme` (case-insensitive) and it
/// takes parameters, none of them named `refused` (RFC 9110 §11.3 syntax).
pub(crate) fn first_challenge(
    challenge: &str,
    scheme: &str,
    refused: Option<&str>,
) -> Option<FirstChallenge> {
    let (end, has_parameters, scheme_end) = parameters_end(challenge, scheme, refused)?;
    Some(FirstChallenge {
        scheme_end,
        end,
        has_parameters,
    })
}

fn parameters_end(
    challenge: &str,
    scheme: &str,
    refused: Option<&str>,
) -> Option<(usize, bool, usize)> {
    let bytes = challenge.as_bytes();
    let start = skip_spaces(bytes, 0);
    let scheme_end = start + token_len(&bytes[start..]);
    if !challenge[start..scheme_end].eq_ignore_ascii_case(scheme) {
        return None;
    }
    let first = skip_spaces(bytes, scheme_end);
    match bytes.get(first) {
        // `Bearer` alone, or followed by another challenge.
        None | Some(b',') => return Some((scheme_end, false, scheme_end)),
        _ if first == scheme_end => return None,
        _ => {}
    }
    let mut at = first;
    let mut end = scheme_end;
    loop {
        // auth-param = token BWS "=" BWS ( token / quoted-string )
        let name_end = at + token_len(&bytes[at..]);
        let equals = skip_spaces(bytes, name_end);
        if name_end == at || bytes.get(equals) != Some(&b'=') {
            // A token68 right after the scheme takes no parameters; anything later is the
            // scheme of the next challenge, which ends Bearer's parameters.
            return (at != first).then_some((end, true, scheme_end));
        }
        if refused.is_some_and(|refused| challenge[at..name_end].eq_ignore_ascii_case(refused)) {
            return None;
        }
        at = skip_spaces(bytes, equals + 1);
        if bytes.get(at) == Some(&b'"') {
            at += 1;
            loop {
                match bytes.get(at)? {
                    b'\\' => at += 2,
                    b'"' => break,
                    _ => at += 1,
                }
            }
            at += 1;
        } else {
            let value_len = token_len(&bytes[at..]);
            if value_len == 0 {
                return None;
            }
            at += value_len;
        }
        end = at;
        at = skip_spaces(bytes, at);
        match bytes.get(at) {
            None => return Some((end, true, scheme_end)),
            Some(b',') => {
                // Empty list elements are allowed: `a=b, , c=d`.
                while matches!(bytes.get(at), Some(b',' | b' ' | b'\t')) {
                    at += 1;
                }
                if at == bytes.len() {
                    return Some((end, true, scheme_end));
                }
            }
            Some(_) => return None,
        }
    }
}

fn skip_spaces(bytes: &[u8], mut at: usize) -> usize {
    while matches!(bytes.get(at), Some(b' ' | b'\t')) {
        at += 1;
    }
    at
}

/// The length of the RFC 9110 token at the start of `bytes`.
fn token_len(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .take_while(|byte| byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(byte))
        .count()
}
