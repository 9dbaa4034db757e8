//! The keep-alive request path allocates nothing (issue 20): a GET of a pre-rendered body on an
//! open connection is answered without touching the heap (tiny_http patch 24 and the router's
//! borrowed path and headers), so the allocator (musl's, in the release binary) is not on the
//! hot path. Counted with a global allocator over this test binary; the client allocates
//! nothing in the measured loop either.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};

use common::*;
use pypowerwall_server::sim::Fixture;

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is passed to the system allocator unchanged; only a counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

/// Reads one answer into `buf` (no allocation); returns its status.
fn read_answer(s: &mut TcpStream, buf: &mut [u8]) -> u16 {
    let mut have = 0;
    loop {
        let n = s.read(&mut buf[have..]).expect("answer");
        assert!(n > 0, "connection closed");
        have += n;
        let Some(end) = buf[..have].windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = std::str::from_utf8(&buf[..end]).expect("ASCII head");
        let len: usize = head
            .split("\r\n")
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .and_then(|v| v.parse().ok())
            .expect("Content-Length");
        let status = head[9..12].parse().expect("status");
        while have < end + 4 + len {
            let n = s.read(&mut buf[have..]).expect("body");
            assert!(n > 0, "connection closed");
            have += n;
        }
        assert_eq!(have, end + 4 + len, "one answer per request");
        return status;
    }
}

#[test]
fn keep_alive_get_of_a_rendered_body_allocates_nothing() {
    let sim = start_sim(Fixture::Pw2, true);
    let app = start_server(&sim.addr().to_string(), &[("PW_CACHE_EXPIRE", "60")]);
    wait_online(&app);
    let mut s = TcpStream::connect(app.addr()).expect("connect");
    // What browsers and Telegraf send, more or less: the headers the router reads and some it
    // does not.
    let request = b"GET /aggregates?x=1 HTTP/1.1\r\nHost: localhost\r\nUser-Agent: test\r\n\
        Accept: */*\r\nAccept-Encoding: gzip\r\nIf-None-Match: \"x\"\r\n\r\n";
    let mut buf = vec![0u8; 256 * 1024];
    for _ in 0..20 {
        s.write_all(request).expect("request");
        assert_eq!(read_answer(&mut s, &mut buf), 200);
    }
    let n = 2000;
    let before = ALLOCS.load(Ordering::Relaxed);
    for _ in 0..n {
        s.write_all(request).expect("request");
        read_answer(&mut s, &mut buf);
    }
    let allocs = ALLOCS.load(Ordering::Relaxed) - before;
    // Before patch 24: 35 per request with these headers (18 with wrk's). A few may come
    // from the poller or the once-a-second `Date` value while the loop runs.
    assert!(
        allocs < n / 20,
        "{allocs} allocations for {n} keep-alive requests"
    );
    app.stop();
}
