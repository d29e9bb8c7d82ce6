//! The cluster id: created once, when the store is first opened, and stable afterwards.

use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Row, Type};
use uuid::Uuid;

use super::Queries;
use crate::{MetadataError, Result};

/// The single-row table's key makes a second insert a no-op, so concurrent first opens agree.
const INSERT_IF_MISSING: &str = "INSERT INTO cluster (id, cluster_id) VALUES (1, $1) ON CONFLICT (id) DO NOTHING";
const SELECT: &str = "SELECT cluster_id FROM cluster WHERE id = 1";

impl<DB> Queries<DB>
where
    DB: Database,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> String: Encode<'q, DB> + Decode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
{
    /// Stores `candidate` unless a cluster id exists already.
    pub(crate) async fn ensure_cluster_id(conn: &mut DB::Connection, candidate: &str) -> Result<()> {
        sqlx::query(INSERT_IF_MISSING).bind(candidate).execute(&mut *conn).await?;
        Ok(())
    }

    pub(crate) async fn cluster_id(conn: &mut DB::Connection) -> Result<String> {
        let row = sqlx::query(SELECT).fetch_optional(&mut *conn).await?;
        let row = row.ok_or_else(|| MetadataError::corrupt("cluster table has no row"))?;
        Ok(row.try_get(0)?)
    }
}

/// A fresh id in Kafka's format: a random uuid's 16 bytes in unpadded base64url (22 characters).
pub(crate) fn new_cluster_id() -> String {
    base64url(Uuid::new_v4().as_bytes())
}

fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        // 1 byte -> 2 chars, 2 -> 3, 3 -> 4: no padding.
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 0x3f) as usize]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_matches_rfc4648_vectors() {
        assert_eq!(base64url(b""), "");
        assert_eq!(base64url(b"f"), "Zg");
        assert_eq!(base64url(b"fo"), "Zm8");
        assert_eq!(base64url(b"foo"), "Zm9v");
        assert_eq!(base64url(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
    }

    #[test]
    fn cluster_ids_are_22_chars_and_distinct() {
        let (a, b) = (new_cluster_id(), new_cluster_id());
        assert_eq!(a.len(), 22);
        assert_ne!(a, b);
    }
}
