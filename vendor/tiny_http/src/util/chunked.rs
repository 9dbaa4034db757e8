//! pypowerwall-server patch: a `Transfer-Encoding: chunked` body decoder with bounds.
//!
//! Upstream used `chunked_transfer::Decoder`, which collects a chunk-size line of any length.
//! Here a size line (with extensions) is at most [`MAX_SIZE_LINE`] bytes, a size must fit 16
//! hex digits, and trailers are limited like headers. Nothing is allocated from a client-given
//! size: data is copied into the caller's buffer as it arrives.

use std::convert::TryFrom;
use std::io::{Error as IoError, ErrorKind, Read, Result as IoResult};

/// Longest chunk-size line accepted, extensions included.
pub(crate) const MAX_SIZE_LINE: usize = 1024;
/// Most trailer bytes accepted after the last chunk.
const MAX_TRAILERS: usize = 8192;

enum State {
    /// Expecting a chunk-size line.
    Size,
    /// Inside a chunk with this many bytes left.
    Data(u64),
    /// The body ended (or failed: every read then fails).
    Done,
    Failed,
}

pub(crate) struct ChunkedDecoder<R> {
    source: R,
    state: State,
}

fn bad(what: &str) -> IoError {
    IoError::new(ErrorKind::InvalidData, format!("bad chunked body: {what}"))
}

impl<R: Read> ChunkedDecoder<R> {
    pub(crate) fn new(source: R) -> Self {
        ChunkedDecoder {
            source,
            state: State::Size,
        }
    }

    /// True once the final chunk and trailers were read.
    pub(crate) fn finished(&self) -> bool {
        matches!(self.state, State::Done)
    }

    fn byte(&mut self) -> IoResult<u8> {
        let mut b = [0u8];
        loop {
            match self.source.read(&mut b) {
                Ok(0) => {
                    return Err(IoError::new(
                        ErrorKind::UnexpectedEof,
                        "chunked body cut short",
                    ))
                }
                Ok(_) => return Ok(b[0]),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads one line (without CRLF) of at most `max` bytes into a fixed buffer; returns its length.
    fn line(&mut self, out: &mut [u8]) -> IoResult<usize> {
        let mut n = 0;
        loop {
            match self.byte()? {
                b'\r' => {
                    return match self.byte()? {
                        b'\n' => Ok(n),
                        _ => Err(bad("CR without LF")),
                    }
                }
                b => {
                    if n == out.len() {
                        return Err(bad("line too long"));
                    }
                    out[n] = b;
                    n += 1;
                }
            }
        }
    }

    fn size(&mut self) -> IoResult<u64> {
        let mut buf = [0u8; MAX_SIZE_LINE];
        let n = self.line(&mut buf)?;
        let line = &buf[..n];
        let digits = line.split(|&b| b == b';').next().unwrap_or(&[]);
        let digits = std::str::from_utf8(digits).map_err(|_| bad("size is not ASCII"))?;
        let digits = digits.trim();
        if digits.is_empty() || digits.len() > 16 {
            return Err(bad("size missing or over 16 hex digits"));
        }
        u64::from_str_radix(digits, 16).map_err(|_| bad("size is not hexadecimal"))
    }

    fn trailers(&mut self) -> IoResult<()> {
        let mut total = 0;
        let mut buf = [0u8; MAX_SIZE_LINE];
        loop {
            let n = self.line(&mut buf)?;
            if n == 0 {
                return Ok(());
            }
            total += n + 2;
            if total > MAX_TRAILERS {
                return Err(bad("trailers too long"));
            }
        }
    }

    fn step(&mut self, buf: &mut [u8]) -> IoResult<usize> {
        loop {
            match self.state {
                State::Done => return Ok(0),
                State::Failed => return Err(bad("earlier error")),
                State::Size => {
                    let size = self.size()?;
                    if size == 0 {
                        self.trailers()?;
                        self.state = State::Done;
                        return Ok(0);
                    }
                    self.state = State::Data(size);
                }
                State::Data(left) => {
                    if buf.is_empty() {
                        return Ok(0);
                    }
                    let want = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
                    let got = self.source.read(&mut buf[..want])?;
                    if got == 0 {
                        return Err(IoError::new(
                            ErrorKind::UnexpectedEof,
                            "chunked body cut short",
                        ));
                    }
                    let left = left - got as u64;
                    if left == 0 {
                        if self.byte()? != b'\r' || self.byte()? != b'\n' {
                            return Err(bad("chunk not followed by CRLF"));
                        }
                        self.state = State::Size;
                    } else {
                        self.state = State::Data(left);
                    }
                    return Ok(got);
                }
            }
        }
    }
}

impl<R: Read> Read for ChunkedDecoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> IoResult<usize> {
        let r = self.step(buf);
        if r.is_err() {
            self.state = State::Failed;
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(input: &[u8]) -> IoResult<Vec<u8>> {
        let mut out = Vec::new();
        ChunkedDecoder::new(input).read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn decodes_chunks_extensions_and_trailers() {
        let body = b"3\r\nhel\r\nb;ext=1\r\nlo world!!!\r\n0\r\nX-T: 1\r\n\r\n";
        assert_eq!(decode(body).unwrap(), b"hello world!!!");
    }

    #[test]
    fn refuses_absurd_sizes_and_lines() {
        assert!(decode(b"ffffffffffffffffff\r\n").is_err());
        assert!(decode(&[b'1'; 5000]).is_err());
        assert!(decode(b"zz\r\n").is_err());
        assert!(decode(b"\r\n").is_err());
        // A huge but well-formed size only fails when the data runs out.
        assert!(decode(b"ffffffffffffffff\r\nabc").is_err());
        assert!(decode(b"3\r\nabcX").is_err());
    }
}
