//! The agent's global allocator: the system allocator, except that a single request of 1 GiB or
//! more gets address space that the kernel does not reserve up front (`MAP_NORESERVE`).
//!
//! Why: kafka-protocol sizes `Vec::with_capacity(n)` from an array count read off the wire before
//! it has read any element, so a 15-byte request claiming 2^31 elements asks for hundreds of GB.
//! The system allocator refuses and Rust aborts the process: one malformed frame would take the
//! agent down. With lazily backed address space the allocation succeeds without touching memory,
//! the decode then fails on the missing elements, and the mapping is returned. No legitimate
//! allocation of the agent comes near 1 GiB (requests are capped far below that).

use std::alloc::{GlobalAlloc, Layout, System};

const HUGE: usize = 1 << 30;
const PAGE: usize = 4096;

pub struct GuardedAllocator;

fn is_huge(layout: &Layout) -> bool {
    layout.size() >= HUGE && layout.align() <= PAGE
}

// SAFETY: every block is either the system allocator's (small or over-aligned layouts) or an
// anonymous mapping of exactly `layout.size()` bytes; `is_huge` depends only on the layout, which
// Rust passes unchanged to `dealloc`, so each block goes back to the allocator that made it.
unsafe impl GlobalAlloc for GuardedAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !is_huge(&layout) {
            // SAFETY: forwarded with the caller's guarantees.
            return unsafe { System.alloc(layout) };
        }
        // SAFETY: a fresh private anonymous mapping; no existing memory is affected.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                layout.size(),
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED { std::ptr::null_mut() } else { p.cast() }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if is_huge(&layout) {
            // SAFETY: `ptr` came from the mmap above with this very size.
            unsafe { libc::munmap(ptr.cast(), layout.size()) };
        } else {
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if is_huge(&layout) {
            // SAFETY: anonymous mappings are zero-filled.
            unsafe { self.alloc(layout) }
        } else {
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { System.alloc_zeroed(layout) }
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use kafka_protocol::messages::ProduceRequest;
    use streamhouse_protocol::request::decode_body;

    #[test]
    fn a_huge_array_count_fails_to_decode_instead_of_aborting() {
        // transactional_id null, acks 1, timeout 10, then a topic array claiming i32::MAX entries.
        let mut body = Bytes::from_static(&[0xff, 0xff, 0, 1, 0, 0, 0, 10, 0x7f, 0xff, 0xff, 0xff, 0, 1, b'a']);
        assert!(decode_body::<ProduceRequest>(&mut body, 3).is_err());
    }
}
