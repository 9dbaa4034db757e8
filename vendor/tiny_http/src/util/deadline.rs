//! pypowerwall-server patch: one overall deadline per request, enforced below TLS.
//!
//! A [`Deadline`] is shared by a connection's reader ([`ClientConnection`]) and its socket
//! ([`TimedConnection`]). The connection sets it: at accept (it covers the TLS handshake and the
//! first request), when a later request's first byte arrives (head and body), and to the idle
//! time-out while waiting for the next request. Every socket read gives up once it has passed,
//! however the peer trickles its bytes, so a slow client holds a connection for one deadline at
//! most. The socket's `SO_RCVTIMEO` is only lowered when the deadline is nearer than it, and
//! a read that timed out early is retried, so the fast path makes no extra system call.
//!
//! [`ClientConnection`]: crate::client::ClientConnection

use std::convert::TryFrom;
use std::io::{Error as IoError, ErrorKind, Read, Result as IoResult, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::atomic64::AtomicU64;
use crate::connection::Connection;

/// No deadline.
const NONE: u64 = u64::MAX;
/// A socket time-out this much longer than the time left is lowered before reading.
const SLACK: Duration = Duration::from_millis(50);

/// What a connection is doing, for choosing one to close when the table is full.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Phase {
    /// Waiting for the next request (keep-alive).
    Idle = 0,
    /// Reading a request head (or the TLS handshake).
    Head = 1,
    /// Answering (the body, if any, was read to its end).
    Busy = 2,
    /// Closed to make room; not chosen again.
    Evicted = 3,
    /// A body that has not been read to its end yet.
    Body = 4,
}

/// When the current request (or idle wait) must be over.
pub(crate) struct Deadline {
    phase: AtomicU8,
    base: Instant,
    /// Nanoseconds after `base`, or `NONE`.
    at: AtomicU64,
    /// The socket read time-out last set, in nanoseconds (0: unknown).
    applied: AtomicU64,
}

impl Deadline {
    pub(crate) fn new() -> Arc<Deadline> {
        Arc::new(Deadline {
            phase: AtomicU8::new(Phase::Head as u8),
            base: Instant::now(),
            at: AtomicU64::new(NONE),
            applied: AtomicU64::new(0),
        })
    }

    /// Sets the deadline `within` from now (`None`: no deadline).
    pub(crate) fn start(&self, within: Option<Duration>) {
        let at = match within {
            Some(d) => {
                let n = (self.base.elapsed() + d).as_nanos();
                u64::try_from(n).unwrap_or(NONE - 1)
            }
            None => NONE,
        };
        self.at.store(at, Ordering::Relaxed);
    }

    pub(crate) fn set_phase(&self, p: Phase) {
        self.phase.store(p as u8, Ordering::Relaxed);
    }

    pub(crate) fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Relaxed) {
            0 => Phase::Idle,
            1 => Phase::Head,
            2 => Phase::Busy,
            4 => Phase::Body,
            _ => Phase::Evicted,
        }
    }

    /// The deadline as an instant (`None`: none). Comparable across connections: `at` is
    /// counted from this connection's own `base`, so raw `at`s of two connections are not
    /// (a newer connection's looked earlier, and the eviction closed fresh clients first).
    pub(crate) fn order_key(&self) -> Option<Instant> {
        let at = self.at.load(Ordering::Relaxed);
        (at != NONE).then(|| self.base + Duration::from_nanos(at))
    }

    /// Time left (`Some(ZERO)`: passed), or `None` without a deadline.
    pub(crate) fn remaining(&self) -> Option<Duration> {
        let at = self.at.load(Ordering::Relaxed);
        if at == NONE {
            return None;
        }
        Some(Duration::from_nanos(at).saturating_sub(self.base.elapsed()))
    }
}

fn passed() -> IoError {
    IoError::new(ErrorKind::TimedOut, "request deadline passed")
}

/// A socket whose reads end at the connection's [`Deadline`]; writes pass through (they are
/// bounded by the socket's write time-out).
pub(crate) struct TimedConnection {
    conn: Connection,
    deadline: Arc<Deadline>,
}

impl TimedConnection {
    pub(crate) fn new(conn: Connection, deadline: Arc<Deadline>) -> TimedConnection {
        TimedConnection { conn, deadline }
    }

    pub(crate) fn peer_addr(&mut self) -> IoResult<Option<SocketAddr>> {
        self.conn.peer_addr()
    }

    pub(crate) fn shutdown(&self, how: Shutdown) -> IoResult<()> {
        self.conn.shutdown(how)
    }

    pub(crate) fn try_clone(&self) -> IoResult<TimedConnection> {
        Ok(TimedConnection {
            conn: self.conn.try_clone()?,
            deadline: self.deadline.clone(),
        })
    }
}

impl Read for TimedConnection {
    fn read(&mut self, buf: &mut [u8]) -> IoResult<usize> {
        loop {
            let Some(left) = self.deadline.remaining() else {
                return self.conn.read(buf);
            };
            if left.is_zero() {
                return Err(passed());
            }
            let applied = Duration::from_nanos(self.deadline.applied.load(Ordering::Relaxed));
            if applied.is_zero() || applied > left + SLACK {
                let t = left.max(Duration::from_millis(1));
                self.conn.set_read_timeout(Some(t))?;
                let nanos = u64::try_from(t.as_nanos()).unwrap_or(NONE);
                self.deadline.applied.store(nanos, Ordering::Relaxed);
            }
            match self.conn.read(buf) {
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    // The socket time-out may be shorter than the time left: set it again.
                    self.deadline.applied.store(0, Ordering::Relaxed);
                }
                other => return other,
            }
        }
    }
}

impl Write for TimedConnection {
    fn write(&mut self, buf: &[u8]) -> IoResult<usize> {
        self.conn.write(buf)
    }

    fn flush(&mut self) -> IoResult<()> {
        self.conn.flush()
    }
}

/// Marks the connection [`Phase::Busy`] once its request body was read to the end.
pub(crate) struct BusyAtEof<R> {
    pub(crate) inner: R,
    pub(crate) deadline: Arc<Deadline>,
}

impl<R: Read> Read for BusyAtEof<R> {
    fn read(&mut self, buf: &mut [u8]) -> IoResult<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() && self.deadline.phase() == Phase::Body {
            self.deadline.set_phase(Phase::Busy);
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadline_counts_down() {
        let d = Deadline::new();
        assert_eq!(d.remaining(), None);
        d.start(Some(Duration::from_secs(5)));
        let left = d.remaining().unwrap();
        assert!(left > Duration::from_secs(4) && left <= Duration::from_secs(5));
        d.start(Some(Duration::ZERO));
        assert_eq!(d.remaining(), Some(Duration::ZERO));
        d.start(None);
        assert_eq!(d.remaining(), None);
    }
}
