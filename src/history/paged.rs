//! A ring's records held page by page, shared between the recorder and its published copies.
//!
//! Why: the recorder and the copy readers query used to hold a megabyte of slots each per
//! gateway, most of it empty for months (issue 20: a thousand gateways in one process). Here a
//! page that was never written takes no memory (it reads as the empty record), and a freeze
//! copies only the page pointers: the recorder copies the chunk (1 KiB of a 4 KiB page) it
//! writes to the first time after a freeze, and drops its reference to pages cleared for a
//! new lap.

use std::collections::TryReserveError;
use std::sync::Arc;

/// Bytes of records in a chunk, the unit a write allocates or copies.
const CHUNK_BYTES: usize = 1024;

/// A page's chunks; a chunk never written is `None`.
type Page<T> = Arc<Vec<Option<Arc<Vec<T>>>>>;

/// `pages × per` records of `T`; absent pages and chunks read as `empty`.
///
/// Two levels: a page (a file page's records) is a table of chunks of about [`CHUNK_BYTES`].
/// The first write in a page allocates its table (a few pointers) and one chunk, and a write
/// after a freeze copies the table and that chunk only: a recorder writing one slot a minute
/// in each of four rings holds about a kilobyte per ring and copies as much per freeze, where
/// whole pages cost four (issue 20: a thousand gateways in one process).
#[derive(Debug, Clone)]
pub(crate) struct Paged<T: Copy> {
    pages: Vec<Option<Page<T>>>,
    per: usize,
    /// Records per chunk (the last chunk of a page may be shorter).
    chunk: usize,
    empty: T,
}

impl<T: Copy> Paged<T> {
    /// `pages` empty pages of `per` records, or `Err` when even the page table cannot be had.
    pub fn try_new(pages: usize, per: usize, empty: T) -> Result<Paged<T>, TryReserveError> {
        Ok(Paged {
            pages: super::filled(pages, None)?,
            per,
            chunk: (CHUNK_BYTES / std::mem::size_of::<T>().max(1)).clamp(1, per.max(1)),
            empty,
        })
    }

    /// A copy that shares every page (only the page table is allocated).
    pub fn try_clone(&self) -> Result<Paged<T>, TryReserveError> {
        Ok(Paged {
            pages: super::try_copy(&self.pages)?,
            per: self.per,
            chunk: self.chunk,
            empty: self.empty,
        })
    }

    /// Records in all pages.
    pub fn len(&self) -> usize {
        self.pages.len() * self.per
    }

    /// Record `i` (the empty record where nothing was written); `None` past the end.
    pub fn get(&self, i: usize) -> Option<&T> {
        let page = self.pages.get(i / self.per)?;
        Some(self.in_page(page.as_deref(), i % self.per))
    }

    /// Record `off` of a page's chunk table.
    fn in_page<'a>(&'a self, page: Option<&'a Vec<Option<Arc<Vec<T>>>>>, off: usize) -> &'a T {
        page.and_then(|p| p.get(off / self.chunk))
            .and_then(Option::as_deref)
            .and_then(|c| c.get(off % self.chunk))
            .unwrap_or(&self.empty)
    }

    /// Record `i` for writing: its page table and chunk are made (or copied, when a frozen
    /// copy shares them).
    pub fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        let (per, chunk, empty) = (self.per, self.chunk, self.empty);
        let page = self.pages.get_mut(i / per)?;
        let off = i % per;
        let page = page.get_or_insert_with(|| Arc::new(vec![None; per.div_ceil(chunk)]));
        let c = off / chunk;
        let slot = Arc::make_mut(page).get_mut(c)?;
        let len = chunk.min(per - c * chunk);
        let records = slot.get_or_insert_with(|| Arc::new(vec![empty; len]));
        Arc::make_mut(records).get_mut(off % chunk)
    }

    /// Empties page `page` (its memory is released once no frozen copy holds it).
    pub fn clear_page(&mut self, page: usize) {
        if let Some(p) = self.pages.get_mut(page) {
            *p = None;
        }
    }

    /// The records of page `page`, in order (empty records where nothing was written).
    pub fn page(&self, page: usize) -> impl Iterator<Item = &T> + '_ {
        let held = self.pages.get(page).and_then(Option::as_deref);
        (0..self.per).map(move |k| self.in_page(held, k))
    }

    /// The records of the chunks that were written, in order (a chunk never written holds only
    /// empty records, so filters for real ones lose nothing by skipping it).
    pub fn written(&self) -> impl Iterator<Item = &T> + '_ {
        self.pages
            .iter()
            .flatten()
            .flat_map(|p| p.iter().flatten().flat_map(|c| c.iter()))
    }

    /// Heap bytes of the chunks and tables held (one shared with a frozen copy counts in both).
    pub fn heap_bytes(&self) -> usize {
        let (mut tables, mut records) = (0, 0);
        for p in self.pages.iter().flatten() {
            tables += p.capacity();
            records += p.iter().flatten().map(|c| c.capacity()).sum::<usize>();
        }
        records * std::mem::size_of::<T>()
            + tables * std::mem::size_of::<Option<Arc<Vec<T>>>>()
            + self.pages.capacity() * std::mem::size_of::<Option<Page<T>>>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_made_on_write_and_copied_only_when_shared() {
        let mut a = Paged::try_new(3, 4, 0u32).unwrap();
        assert_eq!((a.len(), a.get(5), a.get(12)), (12, Some(&0), None));
        assert_eq!(a.heap_bytes(), 3 * 8);
        *a.get_mut(5).unwrap() = 7;
        assert_eq!((a.get(5), a.written().count()), (Some(&7), 4));
        let frozen = a.try_clone().unwrap();
        *a.get_mut(6).unwrap() = 8;
        // The copy kept the page as it was; the recorder's write went to its own copy.
        assert_eq!(
            (frozen.get(6), a.get(6), a.get(5)),
            (Some(&0), Some(&8), Some(&7))
        );
        a.clear_page(1);
        assert_eq!((a.get(5), frozen.get(5)), (Some(&0), Some(&7)));
        assert_eq!(frozen.page(1).copied().collect::<Vec<_>>(), [0, 7, 0, 0]);
        assert_eq!(frozen.page(2).count(), 4);
        assert!(a.get_mut(12).is_none());
    }

    #[test]
    fn a_write_after_a_freeze_copies_one_chunk() {
        // 128-byte records: chunks of 8, so a page of 20 is chunks of 8, 8 and 4.
        let mut a = Paged::try_new(2, 20, [0u64; 16]).unwrap();
        assert_eq!(a.chunk, 8);
        a.get_mut(3).unwrap()[0] = 1;
        a.get_mut(17).unwrap()[0] = 2;
        assert_eq!(
            a.written().count(),
            8 + 4,
            "only the chunks written are held"
        );
        let frozen = a.try_clone().unwrap();
        a.get_mut(18).unwrap()[0] = 3;
        let chunk = |p: &Paged<[u64; 16]>, c: usize| p.pages[0].as_ref().unwrap()[c].clone();
        assert!(Arc::ptr_eq(
            &chunk(&a, 0).unwrap(),
            &chunk(&frozen, 0).unwrap()
        ));
        assert!(!Arc::ptr_eq(
            &chunk(&a, 2).unwrap(),
            &chunk(&frozen, 2).unwrap()
        ));
        assert_eq!((frozen.get(18).unwrap()[0], a.get(18).unwrap()[0]), (0, 3));
        let firsts: Vec<u64> = a.page(0).map(|r| r[0]).collect();
        assert_eq!(
            (firsts.len(), firsts[3], firsts[17], firsts[18]),
            (20, 1, 2, 3)
        );
        assert_eq!(a.get(39).map(|r| r[0]), Some(0));
        assert!(a.get(40).is_none());
        // Three chunk pointers, 12 records of 128 bytes, two page pointers.
        assert_eq!(a.heap_bytes(), 3 * 8 + 12 * 128 + 2 * 8);
    }
}
