//! The tail cache: the most recently committed runs of one partition, so consumers that keep up
//! never touch the object store.
//!
//! Memory stays within what is configured under any partition mix: each partition keeps at most
//! --tail-cache-bytes, all partitions together at most --tail-cache-total-bytes (a shared
//! [`TailBudget`]; a partition that pushes past it gives up its own oldest runs), and a run that is
//! a small part of its flush object is copied out of it (`run_bytes`), so a cold partition never
//! pins a whole multi-megabyte object for a few hundred bytes.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;

/// Bytes held by every partition's tail cache together, against a cap.
#[derive(Debug)]
pub struct TailBudget {
    used: AtomicUsize,
    cap: usize,
}

impl TailBudget {
    pub fn new(cap: usize) -> Arc<Self> {
        Arc::new(TailBudget { used: AtomicUsize::new(0), cap })
    }

    pub fn used(&self) -> usize {
        self.used.load(Ordering::SeqCst)
    }

    fn over(&self) -> bool {
        self.used() > self.cap
    }
}

/// What a committed run is cached as: a slice of its object when it is most of it, else a copy, so
/// the cache never holds much more memory than it counts.
pub fn run_bytes(object: &Bytes, range: std::ops::Range<usize>) -> Bytes {
    if range.len() * 2 >= object.len() { object.slice(range) } else { Bytes::copy_from_slice(&object[range]) }
}

#[derive(Debug, Clone)]
pub struct TailRun {
    pub base_offset: i64,
    pub last_offset: i64,
    pub bytes: Bytes,
}

#[derive(Debug)]
pub struct TailCache {
    runs: VecDeque<TailRun>,
    bytes: usize,
    capacity: usize,
    budget: Arc<TailBudget>,
}

impl TailCache {
    pub fn new(capacity: usize, budget: Arc<TailBudget>) -> Self {
        TailCache { runs: VecDeque::new(), bytes: 0, capacity, budget }
    }

    /// Adds a run just committed; runs arrive in offset order. The newest run is kept even if it
    /// alone is over capacity, so a tailing consumer always finds the latest data here.
    pub fn push(&mut self, run: TailRun) {
        self.bytes += run.bytes.len();
        self.budget.used.fetch_add(run.bytes.len(), Ordering::SeqCst);
        self.runs.push_back(run);
        while (self.bytes > self.capacity || self.budget.over()) && self.runs.len() > 1 {
            if let Some(old) = self.runs.pop_front() {
                self.bytes -= old.bytes.len();
                self.budget.used.fetch_sub(old.bytes.len(), Ordering::SeqCst);
            }
        }
    }

    /// The runs holding `offset` and after, if the cache reaches back that far.
    pub fn from_offset(&self, offset: i64) -> Option<Vec<TailRun>> {
        let first = self.runs.front()?;
        if offset < first.base_offset {
            return None;
        }
        Some(self.runs.iter().filter(|r| r.last_offset >= offset).cloned().collect())
    }
}

impl Drop for TailCache {
    /// A partition let go of hands its share of the budget back.
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.bytes, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(capacity: usize) -> TailCache {
        TailCache::new(capacity, TailBudget::new(usize::MAX))
    }

    fn run(base: i64, last: i64, len: usize) -> TailRun {
        TailRun { base_offset: base, last_offset: last, bytes: Bytes::from(vec![0u8; len]) }
    }

    #[test]
    fn serves_only_what_it_reaches() {
        let mut t = cache(100);
        t.push(run(0, 9, 40));
        t.push(run(10, 19, 40));
        assert_eq!(t.from_offset(12).map(|r| r.len()), Some(1));
        assert_eq!(t.from_offset(0).map(|r| r.len()), Some(2));
        t.push(run(20, 29, 40));
        assert!(t.from_offset(5).is_none(), "evicted past capacity");
        assert_eq!(t.from_offset(30).map(|r| r.len()), Some(0));
    }

    #[test]
    fn keeps_an_oversized_newest_run() {
        let mut t = cache(10);
        t.push(run(0, 0, 50));
        assert_eq!(t.from_offset(0).map(|r| r.len()), Some(1));
    }

    #[test]
    fn all_partitions_together_stay_within_the_budget() {
        let budget = TailBudget::new(100);
        let mut a = TailCache::new(1000, Arc::clone(&budget));
        let mut b = TailCache::new(1000, Arc::clone(&budget));
        a.push(run(0, 0, 40));
        a.push(run(1, 1, 40));
        b.push(run(0, 0, 40));
        assert_eq!(budget.used(), 120, "over the budget, but each partition keeps its newest run");
        b.push(run(1, 1, 40));
        assert_eq!(budget.used(), 120, "b's push past the budget dropped b's oldest run");
        assert!(b.from_offset(0).is_none());
        drop(a);
        assert_eq!(budget.used(), 40, "a dropped partition hands its bytes back");
    }

    #[test]
    fn a_small_run_is_copied_out_of_its_object() {
        let object = Bytes::from(vec![7u8; 1000]);
        let small = run_bytes(&object, 10..60);
        let object_span = object.as_ptr() as usize..object.as_ptr() as usize + object.len();
        assert!(!object_span.contains(&(small.as_ptr() as usize)), "copied, not a slice pinning the object");
        let big = run_bytes(&object, 0..600);
        assert_eq!(big.as_ptr(), object.as_ptr(), "most of the object: sliced, no copy");
    }
}
