//! A ring's records held page by page, shared between the recorder and its published copies.
//!
//! Why: the recorder and the copy readers query used to hold a megabyte of slots each per
//! gateway, most of it empty for months (issue 20: a thousand gateways in one process). Here a
//! page that was never written takes no memory (it reads as the empty record), and a freeze
//! copies only the page pointers: the recorder copies a page (4 KiB) the first time it writes
//! to it after a freeze, and drops its reference to pages cleared for a new lap.

use std::collections::TryReserveError;
use std::sync::Arc;

/// `pages × per` records of `T`; absent pages read as `empty`.
#[derive(Debug, Clone)]
pub(crate) struct Paged<T: Copy> {
    pages: Vec<Option<Arc<Vec<T>>>>,
    per: usize,
    empty: T,
}

impl<T: Copy> Paged<T> {
    /// `pages` empty pages of `per` records, or `Err` when even the page table cannot be had.
    pub fn try_new(pages: usize, per: usize, empty: T) -> Result<Paged<T>, TryReserveError> {
        Ok(Paged {
            pages: super::filled(pages, None)?,
            per,
            empty,
        })
    }

    /// A copy that shares every page (only the page table is allocated).
    pub fn try_clone(&self) -> Result<Paged<T>, TryReserveError> {
        Ok(Paged {
            pages: super::try_copy(&self.pages)?,
            per: self.per,
            empty: self.empty,
        })
    }

    /// Records in all pages.
    pub fn len(&self) -> usize {
        self.pages.len() * self.per
    }

    /// Record `i` (the empty record on a page never written); `None` past the end.
    pub fn get(&self, i: usize) -> Option<&T> {
        let page = self.pages.get(i / self.per)?;
        Some(match page {
            Some(p) => p.get(i % self.per).unwrap_or(&self.empty),
            None => &self.empty,
        })
    }

    /// Record `i` for writing: its page is made (or copied, when a frozen copy shares it).
    pub fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        let (per, empty) = (self.per, self.empty);
        let page = self.pages.get_mut(i / per)?;
        let page = page.get_or_insert_with(|| Arc::new(vec![empty; per]));
        Arc::make_mut(page).get_mut(i % per)
    }

    /// Empties page `page` (its memory is released once no frozen copy holds it).
    pub fn clear_page(&mut self, page: usize) {
        if let Some(p) = self.pages.get_mut(page) {
            *p = None;
        }
    }

    /// The records of page `page`, in order (empty records for a page never written).
    pub fn page(&self, page: usize) -> impl Iterator<Item = &T> + '_ {
        let held = self.pages.get(page).and_then(Option::as_deref);
        (0..self.per).map(move |k| held.and_then(|p| p.get(k)).unwrap_or(&self.empty))
    }

    /// The records of the pages that were written, in order (a page never written holds only
    /// empty records, so filters for real ones lose nothing by skipping it).
    pub fn written(&self) -> impl Iterator<Item = &T> + '_ {
        self.pages.iter().flatten().flat_map(|p| p.iter())
    }

    /// Heap bytes of the pages held (a page shared with a frozen copy counts in both).
    pub fn heap_bytes(&self) -> usize {
        let held = self.pages.iter().flatten().count();
        held * self.per * std::mem::size_of::<T>()
            + self.pages.capacity() * std::mem::size_of::<Option<Arc<Vec<T>>>>()
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
}
