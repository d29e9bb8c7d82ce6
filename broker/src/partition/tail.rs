//! The tail cache: the most recently committed runs of one partition, as slices of the segment
//! objects just written, so consumers that keep up never touch the object store.

use std::collections::VecDeque;

use bytes::Bytes;

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
}

impl TailCache {
    pub fn new(capacity: usize) -> Self {
        TailCache { runs: VecDeque::new(), bytes: 0, capacity }
    }

    /// Adds a run just committed; runs arrive in offset order. The newest run is kept even if it
    /// alone is over capacity, so a tailing consumer always finds the latest data here.
    pub fn push(&mut self, run: TailRun) {
        self.bytes += run.bytes.len();
        self.runs.push_back(run);
        while self.bytes > self.capacity && self.runs.len() > 1 {
            if let Some(old) = self.runs.pop_front() {
                self.bytes -= old.bytes.len();
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

#[cfg(test)]
mod tests {
    use super::*;

    fn run(base: i64, last: i64, len: usize) -> TailRun {
        TailRun { base_offset: base, last_offset: last, bytes: Bytes::from(vec![0u8; len]) }
    }

    #[test]
    fn serves_only_what_it_reaches() {
        let mut t = TailCache::new(100);
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
        let mut t = TailCache::new(10);
        t.push(run(0, 0, 50));
        assert_eq!(t.from_offset(0).map(|r| r.len()), Some(1));
    }
}
