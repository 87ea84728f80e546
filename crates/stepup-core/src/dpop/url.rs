//! The comparison of a proof's `htu` with the request's URL (RFC 9449 §4.3: query and fragment
//! ignored, RFC 3986 §6.2.2 and §6.2.3 normalization): scheme and host compared without case, a
//! default port dropped, percent-encodings compared without case, an empty path as `/`.

/// `scheme://host[:port]` followed by the path, normalized; `None` for anything that is not an
/// absolute `http`/`https` URL with a host (user info refused).
pub(super) fn normalize_htu(url: &str) -> Option<String> {
    let url = url.split(['#', '?']).next().unwrap_or_default();
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => ":443",
        "http" => ":80",
        _ => return None,
    };
    let (authority, path) = match rest.find('/') {
        Some(at) => rest.split_at(at),
        None => (rest, "/"),
    };
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let authority = authority.to_ascii_lowercase();
    let authority = authority.strip_suffix(default_port).unwrap_or(&authority);
    Some(format!(
        "{scheme}://{authority}{}",
        normalize_path_encoding(path)
    ))
}

/// The configured origin, normalized, without a trailing `/` (the request's path starts with
/// one); `None` when it has a query or a fragment.
pub(super) fn normalize_origin(origin: &str) -> Option<String> {
    if origin.contains(['?', '#']) {
        return None;
    }
    let normalized = normalize_htu(origin)?;
    Some(normalized.trim_end_matches('/').to_owned())
}

/// Percent-encodings in upper case (`%2f` → `%2F`), so that two spellings of one URL compare equal.
pub(super) fn normalize_path_encoding(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] == b'%'
            && at + 2 < bytes.len()
            && bytes[at + 1].is_ascii_hexdigit()
            && bytes[at + 2].is_ascii_hexdigit()
        {
            out.push('%');
            out.push(char::from(bytes[at + 1].to_ascii_uppercase()));
            out.push(char::from(bytes[at + 2].to_ascii_uppercase()));
            at += 3;
        } else {
            let ch = text[at..].chars().next().unwrap_or_default();
            out.push(ch);
            at += ch.len_utf8().max(1);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_compare_after_normalization() {
        for (given, expected) in [
            ("https://API.example.com/a/b", "https://api.example.com/a/b"),
            ("HTTPS://api.example.com:443/a", "https://api.example.com/a"),
            (
                "https://api.example.com:8443/a",
                "https://api.example.com:8443/a",
            ),
            ("http://localhost:80/a?x=1#f", "http://localhost/a"),
            ("https://api.example.com", "https://api.example.com/"),
            (
                "https://api.example.com/a%2fb",
                "https://api.example.com/a%2Fb",
            ),
            ("https://api.example.com/é", "https://api.example.com/é"),
        ] {
            assert_eq!(normalize_htu(given).as_deref(), Some(expected), "{given}");
        }
        for refused in [
            "ftp://api.example.com/",
            "/relative",
            "https:///path",
            "https://user@api.example.com/",
            "",
        ] {
            assert_eq!(normalize_htu(refused), None, "{refused}");
        }
        assert_eq!(
            normalize_origin("https://Example.com/api/").as_deref(),
            Some("https://example.com/api")
        );
        assert_eq!(
            normalize_origin("https://example.com").as_deref(),
            Some("https://example.com")
        );
        assert_eq!(normalize_origin("https://example.com/?a"), None);
    }
}
