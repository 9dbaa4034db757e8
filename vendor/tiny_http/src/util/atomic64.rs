//! pypowerwall-server patch: `AtomicU64` for targets without 64-bit atomics (32-bit MIPS and
//! PowerPC: `mips(el)-unknown-linux-musl`). The standard type where the CPU has them; elsewhere a
//! mutex-guarded `u64` with the two methods [`super::deadline`] uses. Orderings are accepted and
//! ignored by the fallback (a mutex is at least as strong).

#[cfg(target_has_atomic = "64")]
pub(crate) use std::sync::atomic::AtomicU64;

#[cfg(not(target_has_atomic = "64"))]
pub(crate) use self::fallback::AtomicU64;

#[cfg_attr(target_has_atomic = "64", allow(dead_code))]
pub(crate) mod fallback {
    use std::sync::atomic::Ordering;
    use std::sync::Mutex;

    pub(crate) struct AtomicU64(Mutex<u64>);

    impl AtomicU64 {
        pub(crate) const fn new(v: u64) -> AtomicU64 {
            AtomicU64(Mutex::new(v))
        }

        pub(crate) fn load(&self, _: Ordering) -> u64 {
            *self.0.lock().unwrap_or_else(|e| e.into_inner())
        }

        pub(crate) fn store(&self, v: u64, _: Ordering) {
            *self.0.lock().unwrap_or_else(|e| e.into_inner()) = v;
        }
    }

    #[cfg(test)]
    mod tests {
        use std::sync::atomic::Ordering::Relaxed;

        #[test]
        fn load_store() {
            let a = super::AtomicU64::new(u64::MAX);
            assert_eq!(a.load(Relaxed), u64::MAX);
            a.store(1 << 40, Relaxed);
            assert_eq!(a.load(Relaxed), 1 << 40);
        }
    }
}
