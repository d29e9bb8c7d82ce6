//! Object key layout. This is the only module that knows how keys are spelled; everything else stores the key
//! it was given (in the segment index) and passes it back.
//!
//! ```text
//! segments/{agent_id}/{created_ms:020}-{uuid}.seg
//! segments/7/00000001767225600000-4f0c6b1e9a2d4c3b8e5f6a7b8c9d0e1f.seg
//! ```
//!
//! - `agent_id` groups an agent's objects, so one agent's output can be listed (and swept) on its own.
//! - `created_ms` is milliseconds since the Unix epoch, zero-padded to 20 digits (the width of `u64::MAX`), so
//!   a lexicographic listing of one agent's directory is in write order.
//! - `uuid` is a random v4 UUID in simple form. Clocks can repeat or go backwards across restarts, and two
//!   flushes can share a millisecond; the UUID alone makes every key unique, which matters because a key is
//!   never written twice.

/// Every segment object lives under this prefix.
pub const SEGMENTS_PREFIX: &str = "segments/";

const SEGMENT_SUFFIX: &str = ".seg";

/// A fresh, unique key for a segment object created at `created_ms`, by the metadata store's clock
/// (the one the sweeper judges age by).
pub fn segment_key_at(agent_id: i32, created_ms: u64) -> String {
    let id = uuid::Uuid::new_v4().simple();
    format!("{SEGMENTS_PREFIX}{agent_id}/{created_ms:020}-{id}{SEGMENT_SUFFIX}")
}

/// The prefix under which `agent_id`'s segment objects are listed.
pub fn agent_segments_prefix(agent_id: i32) -> String {
    format!("{SEGMENTS_PREFIX}{agent_id}/")
}

/// The creation time encoded in a segment key, or `None` if `key` is not a segment key. Lets the sweeper judge
/// an object's age without trusting backend modification times.
pub fn segment_created_ms(key: &str) -> Option<u64> {
    let (_agent, file) = key.strip_prefix(SEGMENTS_PREFIX)?.split_once('/')?;
    let (millis, _id) = file.strip_suffix(SEGMENT_SUFFIX)?.split_once('-')?;
    if millis.len() != 20 {
        return None;
    }
    millis.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_layout() {
        let key = segment_key_at(7, 1_767_225_600_000);
        let file = key.strip_prefix("segments/7/").unwrap();
        let (millis, rest) = file.split_once('-').unwrap();
        assert_eq!(millis, "00000001767225600000");
        assert_eq!(rest.len(), 32 + ".seg".len());
        assert!(rest.ends_with(".seg"));
        assert!(key.starts_with(&agent_segments_prefix(7)));
        assert_eq!(segment_created_ms(&key), Some(1_767_225_600_000));
    }

    #[test]
    fn keys_are_unique_within_a_millisecond() {
        assert_ne!(segment_key_at(1, 5), segment_key_at(1, 5));
    }

    #[test]
    fn keys_sort_by_time() {
        let earlier = segment_key_at(3, 999);
        let later = segment_key_at(3, 1_000);
        assert!(earlier < later);
        assert!(segment_key_at(3, 1_001) > later);
    }

    #[test]
    fn agents_do_not_share_prefixes() {
        assert!(!segment_key_at(10, 1).starts_with(&agent_segments_prefix(1)));
        assert!(segment_key_at(-1, 1).starts_with("segments/-1/"));
    }

    #[test]
    fn foreign_keys_have_no_creation_time() {
        assert_eq!(segment_created_ms("segments/1/abc.seg"), None);
        assert_eq!(segment_created_ms("other/1/00000000000000000001-x.seg"), None);
        assert_eq!(segment_created_ms("segments/1/00000000000000000001-x.tmp"), None);
    }
}
