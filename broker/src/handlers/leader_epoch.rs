//! The current_leader_epoch check shared by Fetch, ListOffsets and OffsetForLeaderEpoch (KIP-320):
//! a client that knows an older epoch is FENCED_LEADER_EPOCH (it must refresh metadata), one that
//! knows a newer epoch than ours is UNKNOWN_LEADER_EPOCH (we are behind); -1 means "not checked".

use kafka_protocol::error::ResponseError;

pub fn check_current_epoch(client: i32, ours: i32) -> Result<(), ResponseError> {
    match client {
        -1 => Ok(()),
        c if c < ours => Err(ResponseError::FencedLeaderEpoch),
        c if c > ours => Err(ResponseError::UnknownLeaderEpoch),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs() {
        assert_eq!(check_current_epoch(-1, 5), Ok(()));
        assert_eq!(check_current_epoch(5, 5), Ok(()));
        assert_eq!(check_current_epoch(4, 5), Err(ResponseError::FencedLeaderEpoch));
        assert_eq!(check_current_epoch(6, 5), Err(ResponseError::UnknownLeaderEpoch));
    }
}
