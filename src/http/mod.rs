//! The HTTP side: one listener, a fixed pool of workers, routes grouped by family.
pub mod legacy;
