use crate::common::{HTTPVersion, Header, StatusCode};
use httpdate::HttpDate;
use std::cmp::Ordering;
use std::sync::mpsc::Receiver;

use std::io::Result as IoResult;
use std::io::{self, Cursor, Read, Write};

use std::fs::File;

use std::str::FromStr;
use std::time::SystemTime;

/// Object representing an HTTP response whose purpose is to be given to a `Request`.
///
/// Some headers cannot be changed. Trying to define the value
/// of one of these will have no effect:
///
///  - `Connection`
///  - `Trailer`
///  - `Transfer-Encoding`
///  - `Upgrade`
///
/// Some headers have special behaviors:
///
///  - `Content-Encoding`: If you define this header, the library
///     will assume that the data from the `Read` object has the specified encoding
///     and will just pass-through.
///
///  - `Content-Length`: The length of the data should be set manually
///     using the `Reponse` object's API. Attempting to set the value of this
///     header will be equivalent to modifying the size of the data but the header
///     itself may not be present in the final result.
///
///  - `Content-Type`: You may only set this header to one value at a time. If you
///     try to set it more than once, the existing value will be overwritten. This
///     behavior differs from the default for most headers, which is to allow them to
///     be set multiple times in the same response.
///
pub struct Response<R> {
    reader: R,
    status_code: StatusCode,
    headers: Vec<Header>,
    data_length: Option<usize>,
    chunked_threshold: Option<usize>,
    // pypowerwall-server patch (20): headers written as they are (no parsing, no allocation),
    // and the body as shared bytes for the one-write path.
    // patch (24): the first few in the response itself, not in a `Vec`
    static_headers: StaticHeaders,
    bytes: Option<std::sync::Arc<[u8]>>,
}

/// pypowerwall-server patch (24): `&'static` headers, the first `INLINE` without allocating
/// (every answer of the server has two to five).
#[derive(Clone)]
struct StaticHeaders {
    inline: [(&'static str, &'static str); StaticHeaders::INLINE],
    n: usize,
    more: Vec<(&'static str, &'static str)>,
}

impl StaticHeaders {
    const INLINE: usize = 8;

    const fn new() -> StaticHeaders {
        StaticHeaders {
            inline: [("", ""); StaticHeaders::INLINE],
            n: 0,
            more: Vec::new(),
        }
    }

    fn push(&mut self, header: (&'static str, &'static str)) {
        match self.inline.get_mut(self.n) {
            Some(slot) => {
                *slot = header;
                self.n += 1;
            }
            None => self.more.push(header),
        }
    }

    fn iter(&self) -> impl Iterator<Item = &(&'static str, &'static str)> {
        self.inline[..self.n].iter().chain(self.more.iter())
    }
}

/// pypowerwall-server patch (24): the buffer an answer's head (and small body) is assembled
/// in, kept per thread between answers while it is at most `HEAD_KEEP` bytes.
fn with_head_buffer<T>(f: impl FnOnce(&mut Vec<u8>) -> T) -> T {
    use std::cell::Cell;
    const HEAD_KEEP: usize = 16 * 1024;
    thread_local! {
        static HEAD: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
    }
    let mut buf = HEAD.try_with(Cell::take).unwrap_or_default();
    buf.clear();
    let out = f(&mut buf);
    if buf.capacity() <= HEAD_KEEP {
        let _ = HEAD.try_with(|h| h.set(buf));
    }
    out
}

/// A `Response` without a template parameter.
pub type ResponseBox = Response<Box<dyn Read + Send>>;

/// Transfer encoding to use when sending the message.
/// Note that only *supported* encoding are listed here.
#[derive(Copy, Clone, PartialEq)]
enum TransferEncoding {
    Identity,
    Chunked,
}

impl FromStr for TransferEncoding {
    type Err = ();

    fn from_str(input: &str) -> Result<TransferEncoding, ()> {
        if input.eq_ignore_ascii_case("identity") {
            Ok(TransferEncoding::Identity)
        } else if input.eq_ignore_ascii_case("chunked") {
            Ok(TransferEncoding::Chunked)
        } else {
            Err(())
        }
    }
}

/// pypowerwall-server patch (23): the `Date` value, formatted once per second per thread
/// (it only changes once a second) and written without building a `Header`.
fn with_date(f: impl FnOnce(&[u8]) -> IoResult<()>) -> IoResult<()> {
    use std::cell::RefCell;
    use std::time::UNIX_EPOCH;
    thread_local! {
        static DATE: RefCell<(u64, Vec<u8>)> = const { RefCell::new((u64::MAX, Vec::new())) };
    }
    let now = SystemTime::now();
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    DATE.with(|d| {
        let mut d = d.borrow_mut();
        if d.0 != secs {
            d.1 = HttpDate::from(now).to_string().into_bytes();
            d.0 = secs;
        }
        f(&d.1)
    })
}

/// Largest body sent in the same `write` as the head (patch 19).
const COALESCE_MAX: usize = 64 * 1024;

fn write_message_header<W>(
    mut writer: W,
    http_version: &HTTPVersion,
    status_code: &StatusCode,
    headers: &[Header],
    static_headers: &StaticHeaders,
    date_and_server: (bool, bool),
    content_length: Option<usize>,
) -> IoResult<()>
where
    W: Write,
{
    // writing status line
    write!(
        &mut writer,
        "HTTP/{}.{} {} {}\r\n",
        http_version.0,
        http_version.1,
        status_code.0,
        status_code.default_reason_phrase()
    )?;

    // pypowerwall-server patch (23): `Server` and `Date` first, as upstream inserted them,
    // without a `Header` each
    if date_and_server.1 {
        writer.write_all(b"Server: tiny-http (Rust)\r\n")?;
    }
    if date_and_server.0 {
        with_date(|date| {
            writer.write_all(b"Date: ")?;
            writer.write_all(date)?;
            writer.write_all(b"\r\n")
        })?;
    }

    // writing headers
    // pypowerwall-server patch (19): plain byte writes, not `write!` per piece
    for header in headers.iter() {
        writer.write_all(header.field.as_str().as_ref())?;
        writer.write_all(b": ")?;
        writer.write_all(header.value.as_str().as_ref())?;
        writer.write_all(b"\r\n")?;
    }
    for (field, value) in static_headers.iter() {
        writer.write_all(field.as_bytes())?;
        writer.write_all(b": ")?;
        writer.write_all(value.as_bytes())?;
        writer.write_all(b"\r\n")?;
    }
    if let Some(n) = content_length {
        write!(&mut writer, "Content-Length: {n}\r\n")?;
    }

    // separator between header and data
    writer.write_all(b"\r\n")?;

    Ok(())
}

fn choose_transfer_encoding(
    status_code: StatusCode,
    request_headers: &[Header],
    http_version: &HTTPVersion,
    entity_length: &Option<usize>,
    has_additional_headers: bool,
    chunked_threshold: usize,
) -> TransferEncoding {
    use crate::util;

    // HTTP 1.0 doesn't support other encoding
    if *http_version <= (1, 0) {
        return TransferEncoding::Identity;
    }

    // Per section 3.3.1 of RFC7230:
    // A server MUST NOT send a Transfer-Encoding header field in any response with a status code
    // of 1xx (Informational) or 204 (No Content).
    if status_code.0 < 200 || status_code.0 == 204 {
        return TransferEncoding::Identity;
    }

    // parsing the request's TE header
    let user_request = request_headers
        .iter()
        // finding TE
        .find(|h| h.field.equiv("TE"))
        // getting its value
        .map(|h| h.value.clone())
        // getting the corresponding TransferEncoding
        .and_then(|value| {
            // getting list of requested elements
            let mut parse = util::parse_header_value(value.as_str()); // TODO: remove conversion

            // sorting elements by most priority
            parse.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap_or(Ordering::Equal));

            // trying to parse each requested encoding
            for value in parse.iter() {
                // q=0 are ignored
                if value.1 <= 0.0 {
                    continue;
                }

                if let Ok(te) = TransferEncoding::from_str(value.0) {
                    return Some(te);
                }
            }

            // encoding not found
            None
        });

    if let Some(user_request) = user_request {
        return user_request;
    }

    // if we have additional headers, using chunked
    if has_additional_headers {
        return TransferEncoding::Chunked;
    }

    // if we don't have a Content-Length, or if the Content-Length is too big, using chunks writer
    if entity_length
        .as_ref()
        .map_or(true, |val| *val >= chunked_threshold)
    {
        return TransferEncoding::Chunked;
    }

    // Identity by default
    TransferEncoding::Identity
}

impl<R> Response<R>
where
    R: Read,
{
    /// Creates a new Response object.
    ///
    /// The `additional_headers` argument is a receiver that
    ///  may provide headers even after the response has been sent.
    ///
    /// All the other arguments are straight-forward.
    pub fn new(
        status_code: StatusCode,
        headers: Vec<Header>,
        data: R,
        data_length: Option<usize>,
        additional_headers: Option<Receiver<Header>>,
    ) -> Response<R> {
        let mut response = Response {
            reader: data,
            status_code,
            // patch (23): no allocation for a response without parsed headers
            headers: Vec::with_capacity(headers.len()),
            data_length,
            chunked_threshold: None,
            static_headers: StaticHeaders::new(),
            bytes: None,
        };

        for h in headers {
            response.add_header(h)
        }

        // dummy implementation
        if let Some(additional_headers) = additional_headers {
            for h in additional_headers.iter() {
                response.add_header(h)
            }
        }

        response
    }

    /// Set a threshold for `Content-Length` where we chose chunked
    /// transfer. Notice that chunked transfer might happen regardless of
    /// this threshold, for instance when the request headers indicate
    /// it is wanted or when there is no `Content-Length`.
    pub fn with_chunked_threshold(mut self, length: usize) -> Response<R> {
        self.chunked_threshold = Some(length);
        self
    }

    /// Convert the response into the underlying `Read` type.
    ///
    /// This is mainly useful for testing as it must consume the `Response`.
    pub fn into_reader(self) -> R {
        self.reader
    }

    /// The current `Content-Length` threshold for switching over to
    /// chunked transfer. The default is 32768 bytes. Notice that
    /// chunked transfer is mutually exclusive with sending a
    /// `Content-Length` header as per the HTTP spec.
    pub fn chunked_threshold(&self) -> usize {
        self.chunked_threshold.unwrap_or(32768)
    }

    /// Adds a header to the list.
    /// Does all the checks.
    pub fn add_header<H>(&mut self, header: H)
    where
        H: Into<Header>,
    {
        let header = header.into();

        // ignoring forbidden headers
        if header.field.equiv("Connection")
            || header.field.equiv("Trailer")
            || header.field.equiv("Transfer-Encoding")
            || header.field.equiv("Upgrade")
        {
            return;
        }

        // if the header is Content-Length, setting the data length
        if header.field.equiv("Content-Length") {
            if let Ok(val) = usize::from_str(header.value.as_str()) {
                self.data_length = Some(val)
            }

            return;
        // if the header is Content-Type and it's already set, overwrite it
        } else if header.field.equiv("Content-Type") {
            if let Some(content_type_header) = self
                .headers
                .iter_mut()
                .find(|h| h.field.equiv("Content-Type"))
            {
                content_type_header.value = header.value;
                return;
            }
        }

        self.headers.push(header);
    }

    /// Returns the same request, but with an additional header.
    ///
    /// Some headers cannot be modified and some other have a
    ///  special behavior. See the documentation above.
    #[inline]
    pub fn with_header<H>(mut self, header: H) -> Response<R>
    where
        H: Into<Header>,
    {
        self.add_header(header.into());
        self
    }

    /// pypowerwall-server patch (20): a header written as it is, without parsing or
    /// allocating. For fixed names and values the caller knows to be valid; never
    /// `Connection`, `Content-Length`, `Date`, `Server`, `Trailer` or `Transfer-Encoding`,
    /// which the response sets itself (`Upgrade` only on a 426, not on an upgrade).
    pub fn with_static_header(mut self, field: &'static str, value: &'static str) -> Response<R> {
        debug_assert!(![
            "Connection",
            "Content-Length",
            "Date",
            "Server",
            "Trailer",
            "Transfer-Encoding"
        ]
        .iter()
        .any(|f| f.eq_ignore_ascii_case(field)));
        self.static_headers.push((field, value));
        self
    }

    /// pypowerwall-server patch (20): the body's bytes, the same as the reader yields: the
    /// one-write path copies them instead of reading the reader into zeroed memory.
    pub fn with_shared_bytes(mut self, bytes: std::sync::Arc<[u8]>) -> Response<R> {
        self.bytes = Some(bytes);
        self
    }

    /// Returns the same request, but with a different status code.
    #[inline]
    pub fn with_status_code<S>(mut self, code: S) -> Response<R>
    where
        S: Into<StatusCode>,
    {
        self.status_code = code.into();
        self
    }

    /// Returns the same request, but with different data.
    pub fn with_data<S>(self, reader: S, data_length: Option<usize>) -> Response<S>
    where
        S: Read,
    {
        Response {
            reader,
            headers: self.headers,
            status_code: self.status_code,
            data_length,
            chunked_threshold: self.chunked_threshold,
            static_headers: self.static_headers,
            bytes: None,
        }
    }

    /// Prints the HTTP response to a writer.
    ///
    /// This function is the one used to send the response to the client's socket.
    /// Therefore you shouldn't expect anything pretty-printed or even readable.
    ///
    /// The HTTP version and headers passed as arguments are used to
    ///  decide which features (most notably, encoding) to use.
    ///
    /// Note: does not flush the writer.
    pub fn raw_print<W: Write>(
        mut self,
        mut writer: W,
        http_version: HTTPVersion,
        request_headers: &[Header],
        do_not_send_body: bool,
        upgrade: Option<&str>,
    ) -> IoResult<()> {
        let mut transfer_encoding = Some(choose_transfer_encoding(
            self.status_code,
            request_headers,
            &http_version,
            &self.data_length,
            false, /* TODO */
            self.chunked_threshold(),
        ));

        // add `Date` and `Server` if not in the headers (written by `write_message_header`)
        let date_and_server = (
            !self.headers.iter().any(|h| h.field.equiv("Date")),
            !self.headers.iter().any(|h| h.field.equiv("Server")),
        );

        // handling upgrade
        if let Some(upgrade) = upgrade {
            self.headers.insert(
                0,
                Header::from_bytes(&b"Upgrade"[..], upgrade.as_bytes()).unwrap(),
            );
            self.headers.insert(
                0,
                Header::from_bytes(&b"Connection"[..], &b"upgrade"[..]).unwrap(),
            );
            transfer_encoding = None;
        }

        // if the transfer encoding is identity, the content length must be known ; therefore if
        // we don't know it, we buffer the entire response first here
        // while this is an expensive operation, it is only ever needed for clients using HTTP 1.0
        // pypowerwall-server patch (24): the reader borrowed, not boxed
        let mut buffered;
        let (mut reader, data_length): (&mut dyn Read, _) =
            match (self.data_length, transfer_encoding) {
                (Some(l), _) => (&mut self.reader, Some(l)),
                (None, Some(TransferEncoding::Identity)) => {
                    let mut buf = Vec::new();
                    self.reader.read_to_end(&mut buf)?;
                    let l = buf.len();
                    buffered = Cursor::new(buf);
                    (&mut buffered, Some(l))
                }
                _ => (&mut self.reader, None),
            };

        // checking whether to ignore the body of the response
        let do_not_send_body = do_not_send_body
            || match self.status_code.0 {
                // status code 1xx, 204 and 304 MUST not include a body
                100..=199 | 204 | 304 => true,
                _ => false,
            };

        // preparing headers for transfer
        match transfer_encoding {
            Some(TransferEncoding::Chunked) => self
                .headers
                .push(Header::from_bytes(&b"Transfer-Encoding"[..], &b"chunked"[..]).unwrap()),

            // patch (23): `Content-Length` is written by `write_message_header`
            Some(TransferEncoding::Identity) => {
                assert!(data_length.is_some());
            }

            _ => (),
        };

        // pypowerwall-server patch (19): the head and a body of at most `COALESCE_MAX` bytes
        // (the server's own answer: its length is ours, never the client's) leave in one
        // `write`. Upstream wrote the head through a 1 KiB buffer and the body in 8 KiB copies:
        // two or three system calls (and TCP segments) per answer.
        let coalesce = !do_not_send_body
            && transfer_encoding == Some(TransferEncoding::Identity)
            && data_length.is_some_and(|l| l <= COALESCE_MAX);
        // patch (24): in this thread's reused buffer, not a new one per answer
        let (headers, static_headers, bytes) = (&self.headers, &self.static_headers, &self.bytes);
        let status_code = self.status_code;
        let written = with_head_buffer(|head| -> IoResult<bool> {
            head.reserve(
                256 + headers.len() * 32 + if coalesce { data_length.unwrap_or(0) } else { 0 },
            );
            write_message_header(
                &mut *head,
                &http_version,
                &status_code,
                headers,
                static_headers,
                date_and_server,
                match transfer_encoding {
                    Some(TransferEncoding::Identity) => data_length,
                    _ => None,
                },
            )?;
            if coalesce {
                let l = data_length.unwrap_or(0);
                match bytes {
                    // patch (20): a copy, not a read into zeroed spare capacity
                    Some(b) if b.len() >= l => head.extend_from_slice(&b[..l]),
                    _ => {
                        (&mut reader).take(l as u64).read_to_end(head)?;
                    }
                }
            }
            writer.write_all(head)?;
            Ok(coalesce)
        })?;
        if written {
            return Ok(());
        }

        // sending the body
        if !do_not_send_body {
            match transfer_encoding {
                Some(TransferEncoding::Chunked) => {
                    use chunked_transfer::Encoder;

                    let mut writer = Encoder::new(writer);
                    io::copy(&mut reader, &mut writer)?;
                }

                Some(TransferEncoding::Identity) => {
                    assert!(data_length.is_some());
                    let data_length = data_length.unwrap();

                    if data_length >= 1 {
                        io::copy(&mut reader, &mut writer)?;
                    }
                }

                _ => (),
            }
        }

        Ok(())
    }

    /// Retrieves the current value of the `Response` status code
    pub fn status_code(&self) -> StatusCode {
        self.status_code
    }

    /// Retrieves the current value of the `Response` data length
    pub fn data_length(&self) -> Option<usize> {
        self.data_length
    }

    /// Retrieves the current list of `Response` headers
    pub fn headers(&self) -> &[Header] {
        &self.headers
    }
}

impl<R> Response<R>
where
    R: Read + Send + 'static,
{
    /// Turns this response into a `Response<Box<Read + Send>>`.
    pub fn boxed(self) -> ResponseBox {
        Response {
            reader: Box::new(self.reader) as Box<dyn Read + Send>,
            status_code: self.status_code,
            headers: self.headers,
            data_length: self.data_length,
            chunked_threshold: self.chunked_threshold,
            static_headers: self.static_headers,
            bytes: self.bytes,
        }
    }
}

impl Response<File> {
    /// Builds a new `Response` from a `File`.
    ///
    /// The `Content-Type` will **not** be automatically detected,
    ///  you must set it yourself.
    pub fn from_file(file: File) -> Response<File> {
        let file_size = file.metadata().ok().map(|v| v.len() as usize);

        Response::new(
            StatusCode(200),
            Vec::with_capacity(0),
            file,
            file_size,
            None,
        )
    }
}

impl Response<Cursor<Vec<u8>>> {
    pub fn from_data<D>(data: D) -> Response<Cursor<Vec<u8>>>
    where
        D: Into<Vec<u8>>,
    {
        let data = data.into();
        let data_len = data.len();

        Response::new(
            StatusCode(200),
            Vec::with_capacity(0),
            Cursor::new(data),
            Some(data_len),
            None,
        )
    }

    pub fn from_string<S>(data: S) -> Response<Cursor<Vec<u8>>>
    where
        S: Into<String>,
    {
        let data = data.into();
        let data_len = data.len();

        Response::new(
            StatusCode(200),
            vec![
                Header::from_bytes(&b"Content-Type"[..], &b"text/plain; charset=UTF-8"[..])
                    .unwrap(),
            ],
            Cursor::new(data.into_bytes()),
            Some(data_len),
            None,
        )
    }
}

impl Response<io::Empty> {
    /// Builds an empty `Response` with the given status code.
    pub fn empty<S>(status_code: S) -> Response<io::Empty>
    where
        S: Into<StatusCode>,
    {
        Response::new(
            status_code.into(),
            Vec::with_capacity(0),
            io::empty(),
            Some(0),
            None,
        )
    }

    /// DEPRECATED. Use `empty` instead.
    pub fn new_empty(status_code: StatusCode) -> Response<io::Empty> {
        Response::empty(status_code)
    }
}

impl Clone for Response<io::Empty> {
    fn clone(&self) -> Response<io::Empty> {
        Response {
            reader: io::empty(),
            status_code: self.status_code,
            headers: self.headers.clone(),
            data_length: self.data_length,
            chunked_threshold: self.chunked_threshold,
            static_headers: self.static_headers.clone(),
            bytes: None,
        }
    }
}
