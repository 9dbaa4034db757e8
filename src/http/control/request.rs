//! What the control routes read of a POST, and the small text rules both request styles share:
//! Python's form decoding, the bearer scheme and a constant-time comparison.

/// A POST as the control routes see it.
pub struct PostReq<'a> {
    pub path: &'a str,
    /// `{id}` of `/api/gateways/{id}/control/{action}`; `None` for `/control/*`.
    pub gateway: Option<&'a str>,
    pub action: &'a str,
    pub content_type: Option<String>,
    pub authorization: Option<String>,
    /// The declared `Content-Length`, when there was one.
    pub content_length: Option<usize>,
    pub body: &'a [u8],
    /// The body was larger than the 4 KB limit (and was not read).
    pub too_big: bool,
    pub remote: String,
}

impl PostReq<'_> {
    /// The JSON style: a bearer token or a JSON body.
    pub fn is_json_style(&self) -> bool {
        self.bearer().is_some()
            || self.content_type.as_deref().is_some_and(|c| {
                let c = c.trim().to_ascii_lowercase();
                let media = c.split(';').next().unwrap_or("").trim();
                media == "application/json" || media.ends_with("+json")
            })
    }

    /// The token of an `Authorization: Bearer <token>` header.
    pub fn bearer(&self) -> Option<&str> {
        self.authorization.as_deref().and_then(bearer_token)
    }
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = (a.len() ^ b.len()) as u64;
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= std::hint::black_box((x ^ y) as u64);
    }
    diff == 0
}

/// Python's `parse_qs(body)[key][0]`: `+` is a space, `%XX` decoded, blank values dropped.
pub fn form_value(body: &str, key: &str) -> String {
    for pair in body.split('&') {
        let Some((k, v)) = pair.split_once('=') else {
            continue;
        };
        if unescape(k) == key {
            let v = unescape(v);
            if !v.is_empty() {
                return v;
            }
        }
    }
    String::new()
}

/// The token of an `Authorization: Bearer <token>` value (scheme in any case). Slices with
/// `get`, so a non-ASCII value cannot split a character.
pub fn bearer_token(authorization: &str) -> Option<&str> {
    let scheme = authorization.get(..7)?;
    let token = authorization.get(7..)?.trim();
    (scheme.eq_ignore_ascii_case("bearer ") && !token.is_empty()).then_some(token)
}

fn unescape(s: &str) -> String {
    fn hex(c: u8) -> Option<u8> {
        (c as char).to_digit(16).map(|d| d as u8)
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'+' {
            out.push(b' ');
        } else if c == b'%' && i + 2 < b.len() {
            match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(c),
            }
        } else {
            out.push(c);
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// ASCII digits only (Python's `isdigit` accepts more, which `int()` then refuses).
pub fn digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_compare() {
        assert!(ct_eq(b"secret", b"secret"));
        assert!(!ct_eq(b"secret", b"secreT"));
        assert!(!ct_eq(b"secret", b"secret1"));
        assert!(!ct_eq(b"", b"x"));
        assert!(ct_eq(b"", b""));
    }

    #[test]
    fn form_values_like_parse_qs() {
        assert_eq!(form_value("value=20&token=a%2Bb", "token"), "a+b");
        assert_eq!(form_value("value=a+b&token=x", "value"), "a b");
        assert_eq!(form_value("value=&value=3", "value"), "3");
        assert_eq!(form_value("token", "token"), "");
        assert_eq!(form_value("v=%zz%4", "v"), "%zz%4");
    }

    #[test]
    fn bearer_scheme() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Beé"), None);
    }
}
