//! Recorder tests on real files.
