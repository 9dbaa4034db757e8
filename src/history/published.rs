//! The read-only copy of a recorder that the poller publishes with its snapshot once per
//! completed step, so requests query history without ever locking the recorder or waiting on
//! a flush's `fsync`.

use super::query::Status;
use super::{HistoryError, Recorder, Storage};

/// A frozen recorder (memory only, no file handle) with the status it had when frozen.
pub struct Published {
    /// Query it with [`Recorder::today`], [`Recorder::daily`], [`Recorder::trend`], ….
    pub rec: Recorder,
    /// The live recorder's status at the freeze (storage health included).
    pub status: Status,
    /// Increases with every freeze of this gateway (cache key for rendered bodies).
    pub seq: u64,
    /// The data is simulated (`--demo`).
    pub simulated: bool,
}

impl std::fmt::Debug for Published {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Published")
            .field("seq", &self.seq)
            .field("simulated", &self.simulated)
            .finish_non_exhaustive()
    }
}

impl Recorder {
    /// A copy of the data for readers: the same archives and days, no file (`flush` on it is a
    /// no-op), about [`Recorder::heap_bytes`] of memory; the error when that memory cannot be
    /// had (never an abort).
    pub fn freeze(&self) -> Result<Recorder, HistoryError> {
        let oom = |_| HistoryError::OutOfMemory {
            bytes: self.layout.file_bytes(),
        };
        let mut archives = Vec::new();
        archives
            .try_reserve_exact(self.archives.len())
            .map_err(oom)?;
        for a in &self.archives {
            archives.push(a.try_clone().map_err(oom)?);
        }
        Ok(Recorder {
            spec: self.spec.clone(),
            layout: self.layout.clone(),
            zone: self.zone.clone(),
            archives,
            days: self.days.try_clone().map_err(oom)?,
            cache: self.cache,
            cursor: self.cursor,
            state_dirty: false,
            storage: Storage::Memory,
            store: None,
            failing: self.failing.clone(),
            opened: self.opened.clone(),
            owns_file: false,
            counters: self.counters.clone(),
        })
    }

    /// [`Recorder::freeze`] with its status, numbered `seq`.
    pub fn publish(&self, seq: u64, simulated: bool) -> Result<Published, HistoryError> {
        Ok(Published {
            rec: self.freeze()?,
            status: self.status(),
            seq,
            simulated,
        })
    }

    /// The base step (s).
    pub fn step(&self) -> u32 {
        self.spec.step
    }
}
