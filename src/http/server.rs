//! The listener and the bound on how many requests are answered at once.
//!
//! tiny_http (vendored with small patches, see `vendor/tiny_http/PATCHES.md`) reads requests on
//! per-connection threads with socket time-outs, one deadline per request (`PW_IDLE_TIMEOUT`:
//! TLS handshake, head and body alike) and a connection cap that closes the slowest reader when
//! full. Nothing a client declares sizes an allocation: unread bodies are skipped up to 64 KiB
//! or the connection is closed, heads are capped (414/431). Each
//! request is answered right there, on its connection's thread, once it holds one of `workers`
//! permits: the worker pool is a fixed number of permits rather than a fixed set of threads.
//! Handing every request to a separate worker thread cost two context switches per request;
//! answering in place measured 59k instead of 34k requests/s on /aggregates (benches/run.sh,
//! 50 connections, 2 cores). The port is open before any gateway has answered.

use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use super::router::{self, Ctx};

/// A running HTTP server; dropping it closes the listener.
pub struct Running {
    pub addr: SocketAddr,
    server: Option<tiny_http::Server>,
    done: Arc<(Mutex<bool>, Condvar)>,
}

impl Running {
    /// Closes the listener (open connections finish their current request).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.server.take();
        let (lock, cv) = &*self.done;
        *lock.lock().unwrap_or_else(|e| e.into_inner()) = true;
        cv.notify_all();
    }

    /// Waits at most `d` for the server to stop; true when it has.
    pub fn stopped_within(&self, d: Duration) -> bool {
        let (lock, cv) = &*self.done;
        let done = lock.lock().unwrap_or_else(|e| e.into_inner());
        if *done {
            return true;
        }
        let (done, _) = cv.wait_timeout(done, d).unwrap_or_else(|e| e.into_inner());
        *done
    }

    /// Serves until the server is stopped (normally: until the process is killed).
    pub fn wait(self) {
        let (lock, cv) = &*self.done;
        let mut done = lock.lock().unwrap_or_else(|e| e.into_inner());
        while !*done {
            done = cv.wait(done).unwrap_or_else(|e| e.into_inner());
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.server.is_some() {
            self.shutdown();
        }
    }
}

/// A counting semaphore: at most `n` requests are being answered at once.
pub struct Permits {
    free: Mutex<Free>,
    cv: Condvar,
}

/// Permits not held, and threads waiting for one (a release wakes one only when some wait:
/// a condvar notification is a system call even when nobody waits).
struct Free {
    permits: usize,
    waiting: usize,
}

/// One held permit; released on drop.
pub struct Permit<'a>(&'a Permits);

impl Permits {
    pub fn new(n: usize) -> Permits {
        Permits {
            free: Mutex::new(Free {
                permits: n.max(1),
                waiting: 0,
            }),
            cv: Condvar::new(),
        }
    }

    pub fn acquire(&self) -> Permit<'_> {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        while free.permits == 0 {
            free.waiting += 1;
            free = self.cv.wait(free).unwrap_or_else(|e| e.into_inner());
            free.waiting -= 1;
        }
        free.permits -= 1;
        Permit(self)
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let mut free = self.0.free.lock().unwrap_or_else(|e| e.into_inner());
        free.permits += 1;
        let wake = free.waiting > 0;
        drop(free);
        if wake {
            self.0.cv.notify_one();
        }
    }
}

/// Caps glibc's malloc at one arena. Each connection reader is a thread, and glibc gives busy
/// threads arenas of their own that are never returned: with 50 busy connections RSS grew from
/// 5.9 to 8.8 MB with the default, 8.6 MB with two arenas and 7.1 MB with one (benches/run.sh),
/// for about a fifth less peak throughput. (musl, our release target, has no arenas.)
pub fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning; called once at start-up.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// Raises the soft open-file limit to the hard limit (routers often start at 1024).
pub fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            let want = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                log::debug!("open-file limit raised to {}", lim.rlim_max);
            }
        }
    }
}

/// Binds `addr` and serves `ctx` (which bounds how many requests are answered at once).
pub fn start(addr: &str, ctx: Arc<Ctx>) -> Result<Running, String> {
    let listener = TcpListener::bind(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let local = listener
        .local_addr()
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let s = &ctx.config.server;
    let handler_ctx = ctx.clone();
    let limits = tiny_http::Limits {
        read_timeout: Some(s.idle_timeout),
        write_timeout: Some(s.idle_timeout.max(Duration::from_secs(5))),
        // One budget for a whole request (handshake, head, body), the same as for idling.
        request_timeout: Some(s.idle_timeout),
        max_connections: s.max_connections,
        tls: ctx.tls.clone(),
        inline: Some(Arc::new(move |rq| router::handle(&handler_ctx, rq))),
    };
    let server = tiny_http::Server::from_listener_with(listener, limits)
        .map_err(|e| format!("cannot start the HTTP server: {e}"))?;
    Ok(Running {
        addr: local,
        server: Some(server),
        done: Arc::new((Mutex::new(false), Condvar::new())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permits_bound_concurrency() {
        let p = Arc::new(Permits::new(2));
        let busy = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let peak = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (p, busy, peak) = (p.clone(), busy.clone(), peak.clone());
                std::thread::spawn(move || {
                    let _g = p.acquire();
                    let now = busy.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                    peak.fetch_max(now, std::sync::atomic::Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(20));
                    busy.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(peak.load(std::sync::atomic::Ordering::SeqCst), 2);
    }
}
