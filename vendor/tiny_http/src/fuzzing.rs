//! pypowerwall-server patch: a fuzzing entry point (`#[doc(hidden)]`, not a public API).
//!
//! `request_from_bytes` reads a request head from bytes with the same rules as
//! `ClientConnection` (CRLF lines of at most `MAX_LINE` bytes, at most `MAX_HEADERS` headers,
//! `parse_request_line`, `Header::from_str`, the HTTP-version check) and builds the `Request`
//! with the same `new_request` (Content-Length, chunked, `Expect: 100-continue`, upgrade), the
//! rest of the bytes being the body source. Responses are written to `writer`.

use std::io::{Cursor, Write};
use std::str::FromStr;

use crate::client::{parse_request_line, MAX_HEADERS, MAX_LINE};
use crate::{Header, HTTPVersion, Request};

/// Builds a request from raw bytes, or `Err(status)` with the status `ClientConnection` would
/// answer (0: it would close the connection without an answer).
#[doc(hidden)]
pub fn request_from_bytes<W>(bytes: &[u8], writer: W) -> Result<Request, u16>
where
    W: Write + Send + 'static,
{
    let mut rest = bytes;
    let mut next_line = || -> Result<String, u16> {
        let end = rest.windows(2).position(|w| w == b"\r\n").ok_or(0u16)?;
        if end > MAX_LINE + 1 {
            return Err(0);
        }
        let line = std::str::from_utf8(&rest[..end]).map_err(|_| 0u16)?;
        if !line.is_ascii() {
            return Err(0);
        }
        let line = line.to_string();
        rest = &rest[end + 2..];
        Ok(line)
    };
    let line = next_line()?;
    let (method, path, version) = parse_request_line(line.trim()).map_err(|_| 400u16)?;
    let mut headers = Vec::new();
    loop {
        let line = next_line()?;
        if line.is_empty() {
            break;
        }
        if headers.len() >= MAX_HEADERS {
            return Err(0);
        }
        headers.push(Header::from_str(line.trim()).map_err(|_| 400u16)?);
    }
    let body = Cursor::new(rest.to_vec());
    let rq = crate::request::new_request(
        false,
        method,
        path,
        version,
        headers,
        None,
        body,
        writer,
    )
    .map_err(|e| match e {
        crate::request::RequestCreationError::ExpectationFailed => 417u16,
        crate::request::RequestCreationError::CreationIoError(_) => 0,
    })?;
    if *rq.http_version() > HTTPVersion(1, 1) {
        return Err(505);
    }
    Ok(rq)
}
