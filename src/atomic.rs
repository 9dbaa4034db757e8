//! `AtomicU64` for every target: the standard one where the CPU has 64-bit atomics (x86_64,
//! aarch64, armv7), a mutex-guarded `u64` with the same methods where it has not (32-bit MIPS and
//! PowerPC routers: `mips(el)-unknown-linux-musl` has 32-bit atomics only).
//!
//! The counters behind it are bumped a few times per poll tick, never in a hot loop, so an
//! uncontended lock costs nothing measurable there. The `Ordering` argument is accepted and
//! ignored by the fallback: a mutex is at least as strong as any ordering.

#[cfg(target_has_atomic = "64")]
pub use std::sync::atomic::AtomicU64;

#[cfg(not(target_has_atomic = "64"))]
pub use fallback::AtomicU64;

/// The fallback, built on every target so its tests run on x86_64 too.
#[cfg_attr(target_has_atomic = "64", allow(dead_code))]
pub(crate) mod fallback {
    use std::sync::atomic::Ordering;
    use std::sync::{Mutex, MutexGuard};

    /// A `u64` behind a mutex, with the subset of `std::sync::atomic::AtomicU64`'s API this
    /// crate uses.
    #[derive(Debug, Default)]
    pub struct AtomicU64(Mutex<u64>);

    impl AtomicU64 {
        pub const fn new(v: u64) -> AtomicU64 {
            AtomicU64(Mutex::new(v))
        }

        fn lock(&self) -> MutexGuard<'_, u64> {
            // A panic while holding the lock cannot leave a half-written u64.
            self.0.lock().unwrap_or_else(|e| e.into_inner())
        }

        pub fn load(&self, _: Ordering) -> u64 {
            *self.lock()
        }

        pub fn store(&self, v: u64, _: Ordering) {
            *self.lock() = v;
        }

        /// Adds `v` (wrapping, like the standard type) and returns the previous value.
        pub fn fetch_add(&self, v: u64, _: Ordering) -> u64 {
            let mut g = self.lock();
            let old = *g;
            *g = old.wrapping_add(v);
            old
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fallback::AtomicU64 as Fallback;
    use std::sync::atomic::Ordering::{Relaxed, SeqCst};
    use std::sync::Arc;

    #[test]
    fn fallback_matches_std() {
        static N: Fallback = Fallback::new(u64::MAX - 1);
        let s = std::sync::atomic::AtomicU64::new(u64::MAX - 1);
        for _ in 0..3 {
            assert_eq!(N.fetch_add(1, Relaxed), s.fetch_add(1, Relaxed));
        }
        assert_eq!(N.load(SeqCst), s.load(SeqCst));
        N.store(1 << 40, SeqCst);
        s.store(1 << 40, SeqCst);
        assert_eq!(N.load(Relaxed), s.load(Relaxed));
    }

    #[test]
    fn fallback_counts_across_threads() {
        let n = Arc::new(Fallback::new(0));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let n = n.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        n.fetch_add(1, Relaxed);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(n.load(SeqCst), 4000);
    }
}
