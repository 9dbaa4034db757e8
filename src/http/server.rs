//! The listener and its fixed pool of worker threads.
//!
//! tiny_http (vendored with small patches, see `vendor/tiny_http/PATCHES.md`) reads requests on
//! per-connection threads with socket time-outs, a header deadline and a connection cap; our
//! `workers` threads take finished requests from its queue and answer them from the snapshot.
//! The port is open before any gateway has answered.

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::router::{self, Ctx};

/// A running HTTP server.
pub struct Running {
    pub addr: SocketAddr,
    server: Arc<tiny_http::Server>,
    workers: Vec<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
}

impl Running {
    /// Stops the workers (open connections are dropped).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for _ in &self.workers {
            self.server.unblock();
        }
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }

    /// Waits until the server stops (it normally never does).
    pub fn wait(mut self) {
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if !self.workers.is_empty() {
            self.shutdown();
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

/// Binds `addr` and serves `ctx` with `workers` threads.
pub fn start(addr: &str, ctx: Arc<Ctx>) -> Result<Running, String> {
    let listener = TcpListener::bind(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let local = listener
        .local_addr()
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let s = &ctx.config.server;
    let limits = tiny_http::Limits {
        read_timeout: Some(s.idle_timeout),
        write_timeout: Some(s.idle_timeout.max(Duration::from_secs(5))),
        header_timeout: Some(s.idle_timeout),
        max_connections: s.max_connections,
        tls: ctx.tls.clone(),
    };
    let server = tiny_http::Server::from_listener_with(listener, limits)
        .map_err(|e| format!("cannot start the HTTP server: {e}"))?;
    let server = Arc::new(server);
    let stop = Arc::new(AtomicBool::new(false));
    let workers = (0..s.workers)
        .map(|i| {
            let server = server.clone();
            let ctx = ctx.clone();
            let stop = stop.clone();
            std::thread::Builder::new()
                .name(format!("http-{i}"))
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        match server.recv() {
                            Ok(rq) => router::handle(&ctx, rq),
                            Err(e) => {
                                if stop.load(Ordering::Relaxed) {
                                    break;
                                }
                                log::warn!("http: {e}");
                                std::thread::sleep(Duration::from_millis(50));
                            }
                        }
                    }
                })
                .map_err(|e| format!("cannot start HTTP worker threads: {e}"))
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(Running {
        addr: local,
        server,
        workers,
        stop,
    })
}
