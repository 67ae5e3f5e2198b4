//! How a message's body is kept in `stack.webhook_events`: as received, or compressed with zstd
//! (`payload_encoding = 'zstd'`) when it is long enough for that to pay. Either way, reading it
//! back gives the body byte for byte as it was signed.

use std::borrow::Cow;

/// Bodies shorter than this are kept as received. Membership and permission events (about
/// 150 bytes) shrink by under 10 % with zstd, so compressing them would buy nothing worth the
/// CPU; user and team objects (400 bytes and up) shrink by 30 to 50 %.
const COMPRESS_FROM_BYTES: usize = 256;

/// zstd's fastest level. On bodies this short the levels hardly differ in size: the 1,421-byte
/// compact `samples/user.updated.json` becomes 700, 710, 686 and 691 bytes at levels 1, 3, 9
/// and 19 (zstd 1.5.4's command line), so only the CPU cost differs.
const LEVEL: i32 = 1;

/// The name of the one encoding, as `stack.webhook_events.payload_encoding` holds it.
pub const ZSTD: &str = "zstd";

/// A body as it is stored: its bytes, and how they are encoded (`None`: as received).
#[derive(Debug)]
pub struct StoredBody<'a> {
    pub bytes: Cow<'a, [u8]>,
    pub encoding: Option<&'static str>,
}

/// How to store `body`: compressed if it is long enough and compression makes it shorter.
pub fn encode(body: &[u8]) -> StoredBody<'_> {
    let as_received = StoredBody {
        bytes: Cow::Borrowed(body),
        encoding: None,
    };
    if body.len() < COMPRESS_FROM_BYTES {
        return as_received;
    }
    match zstd::bulk::compress(body, LEVEL) {
        Ok(compressed) if compressed.len() < body.len() => StoredBody {
            bytes: Cow::Owned(compressed),
            encoding: Some(ZSTD),
        },
        // Compressing a slice into a vector cannot fail short of memory; keeping the body as
        // received is correct either way.
        _ => as_received,
    }
}

/// The body as received, from what `stack.webhook_events` holds.
pub fn decode(bytes: Vec<u8>, encoding: Option<&str>) -> Result<Vec<u8>, DecodeError> {
    match encoding {
        None => Ok(bytes),
        Some(ZSTD) => zstd::stream::decode_all(bytes.as_slice()).map_err(DecodeError::Zstd),
        Some(other) => Err(DecodeError::Unknown(other.to_owned())),
    }
}

/// A stored body that cannot be read back.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("the recorded body is not valid zstd: {0}")]
    Zstd(std::io::Error),
    /// Written by a newer stack-sync.
    #[error("the recorded body has an encoding this stack-sync does not know: {0}")]
    Unknown(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_body(event_type: &str) -> Vec<u8> {
        crate::samples::sample(event_type)
            .unwrap()
            .to_string()
            .into_bytes()
    }

    fn assert_kept_as_received(body: &[u8]) {
        let stored = encode(body);
        assert_eq!(stored.encoding, None);
        assert_eq!(stored.bytes, body);
    }

    #[test]
    fn a_user_object_is_stored_compressed_and_read_back_byte_for_byte() {
        let body = sample_body("user.updated");

        let stored = encode(&body);

        assert_eq!(stored.encoding, Some(ZSTD));
        assert!(
            stored.bytes.len() < body.len() * 2 / 3,
            "{}",
            stored.bytes.len()
        );
        assert_eq!(
            decode(stored.bytes.into_owned(), stored.encoding).unwrap(),
            body
        );
    }

    #[test]
    fn short_bodies_are_kept_as_received() {
        assert_kept_as_received(&sample_body("team_membership.created"));
    }

    #[test]
    fn a_body_that_does_not_shrink_is_kept_as_received() {
        // Bytes with no repetition to find (xorshift64): zstd's frame would only add to them.
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let body: Vec<u8> = (0..2048)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state.to_le_bytes()[0]
            })
            .collect();

        assert_kept_as_received(&body);
    }

    #[test]
    fn a_damaged_or_unknown_encoding_is_an_error_not_a_body() {
        let mut stored = encode(&sample_body("user.updated")).bytes.into_owned();
        stored.truncate(stored.len() / 2);

        assert!(matches!(
            decode(stored, Some(ZSTD)),
            Err(DecodeError::Zstd(_))
        ));
        assert!(matches!(
            decode(b"{}".to_vec(), Some("brotli")),
            Err(DecodeError::Unknown(name)) if name == "brotli"
        ));
    }
}
