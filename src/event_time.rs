//! When Svix created a message, read from its id.
//!
//! A Svix message id is `msg_` followed by a 27-character KSUID in Svix's millisecond variant
//! (svix-ksuid `KsuidMs`: 4 bytes of seconds since the KSUID epoch 1400000000 and one byte of
//! 1/256 s, then random bytes). Stack creates each message right after committing the change,
//! so this time orders the events of one row. Payloads carry no version of their own.

use std::str::FromStr;

use svix_ksuid::{KsuidLike, KsuidMs};
use time::OffsetDateTime;

const MESSAGE_ID_PREFIX: &str = "msg_";

/// The creation time encoded in a Svix message id, or `None` for an id of another form
/// (then the event is ordered by arrival).
pub fn source_time(svix_id: &str) -> Option<OffsetDateTime> {
    let ksuid = svix_id.strip_prefix(MESSAGE_ID_PREFIX)?;
    KsuidMs::from_str(ksuid).ok().map(|id| id.timestamp())
}

/// A Svix-style message id created at `at`, for tests and tools that simulate Svix.
pub fn message_id_at(at: OffsetDateTime) -> String {
    format!("{MESSAGE_ID_PREFIX}{}", KsuidMs::new(Some(at), None))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn official_svix_ids_decode_to_the_time_they_were_signed_at() {
        // Test vectors of the svix libraries pair real message ids with the timestamp they were
        // signed at, right after creation: the Rust library's `test_sign` vector, and a derived
        // vector built on a realistic id (see docs/svix.md).
        for (id, signed_at) in [
            ("msg_27UH4WbU6Z5A5EzD8u03UvzRbpk", 1649367553),
            ("msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", 1674087231),
        ] {
            assert_eq!(source_time(id).unwrap().unix_timestamp(), signed_at, "{id}");
        }
    }

    #[test]
    fn generated_ids_round_trip_to_a_few_milliseconds() {
        let at = datetime!(2026-04-20 13:02:03.456 UTC);
        let decoded = source_time(&message_id_at(at)).unwrap();
        assert!(
            (decoded - at).abs() < time::Duration::milliseconds(4),
            "{decoded}"
        );
    }

    #[test]
    fn later_ids_decode_to_later_times() {
        let earlier = message_id_at(datetime!(2026-04-20 13:02:03.000 UTC));
        let later = message_id_at(datetime!(2026-04-20 13:02:03.010 UTC));
        assert!(source_time(&earlier) < source_time(&later));
    }

    #[test]
    fn ids_of_another_form_have_no_time() {
        for id in [
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            "evt_2xk1V9wq8rT3yZ1bH5nJ7pQ0aLm",
            "",
            "msg_",
            "msg_!!!!!!!!!!!!!!!!!!!!!!!!!!!",
        ] {
            assert_eq!(source_time(id), None, "{id}");
        }
    }
}
