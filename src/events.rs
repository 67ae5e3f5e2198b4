//! Stack Auth webhook payloads: the `{type, data}` envelope, and which change of the mirror each
//! event type asks for. The event types and their `data` are summarised in `docs/stack.md`.
//!
//! Parsing is tolerant of fields Stack added over time (missing ones become null, unknown ones
//! are kept in `raw`) but strict about types: a string where a boolean belongs is an error,
//! because writing a guess into the mirror would be worse than reporting it.

use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use crate::model::{Change, Kind};

/// A parsed webhook body.
#[derive(Debug)]
pub struct Envelope {
    /// The payload's `type`, e.g. `user.created`.
    pub event_type: String,
    /// The validated change; `None` for `stack.test` and any type we do not know: recorded,
    /// never mirrored.
    pub change: Option<Change>,
}

/// A body that is signed correctly but cannot be applied, and never will be as it stands.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct InvalidPayload {
    /// The `type`, when the body got that far.
    pub event_type: Option<String>,
    pub message: String,
}

#[derive(Deserialize)]
struct RawEnvelope {
    #[serde(rename = "type")]
    event_type: String,
    #[serde(default)]
    data: Value,
}

impl Envelope {
    /// Parses a webhook body. Fails only for bodies that no retry could make usable.
    pub fn parse(body: &[u8]) -> Result<Self, InvalidPayload> {
        // Checked first: serde_json skips the fields it ignores without checking their UTF-8, so
        // a body with bad bytes in an unknown field would pass, and could not be read back as
        // text from `stack.webhook_events.payload`. Found by fuzzing (see RELIABILITY.md).
        let text = std::str::from_utf8(body).map_err(|err| InvalidPayload {
            event_type: None,
            message: format!("body is not a Stack webhook envelope: not UTF-8 ({err})"),
        })?;
        let RawEnvelope { event_type, data } =
            serde_json::from_str(text).map_err(|err| InvalidPayload {
                event_type: None,
                message: format!("body is not a Stack webhook envelope: {err}"),
            })?;
        // No event type has control characters; Postgres could not even store a NUL in one.
        if event_type.chars().any(char::is_control) {
            return Err(InvalidPayload {
                event_type: None,
                message: "body is not a Stack webhook envelope: its type has control characters"
                    .to_owned(),
            });
        }
        let Some((kind, removed)) = mirrored_event(&event_type) else {
            return Ok(Self {
                event_type,
                change: None,
            });
        };
        match Change::parse(kind, removed, data) {
            Ok(change) => Ok(Self {
                event_type,
                change: Some(change),
            }),
            Err(err) => Err(InvalidPayload {
                message: format!("{event_type}: {err}"),
                event_type: Some(event_type),
            }),
        }
    }
}

/// The user and team a message is about, as far as its body can be read: recorded with every
/// message that changes nothing, so that deleting the user or team erases that body too, even
/// one that failed to parse as its event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Subject {
    pub user_id: Option<Uuid>,
    pub team_id: Option<Uuid>,
}

impl Subject {
    /// Reads the ids leniently: a user's or team's own `id` for `user.*` and `team.*`, the
    /// `user_id` and `team_id` of anything else; whatever is missing or not a UUID is `None`.
    pub fn of(body: &[u8]) -> Self {
        #[derive(Deserialize)]
        struct Ids {
            id: Option<Value>,
            user_id: Option<Value>,
            team_id: Option<Value>,
        }
        #[derive(Deserialize)]
        struct Lenient {
            #[serde(rename = "type")]
            event_type: Option<Value>,
            data: Option<Ids>,
        }
        fn uuid(value: Option<&Value>) -> Option<Uuid> {
            value?.as_str()?.parse().ok()
        }
        let Ok(Lenient {
            event_type,
            data: Some(data),
        }) = serde_json::from_slice(body)
        else {
            return Self::default();
        };
        match event_type.as_ref().and_then(Value::as_str) {
            Some(t) if t.starts_with("user.") => Self {
                user_id: uuid(data.id.as_ref()),
                team_id: None,
            },
            Some(t) if t.starts_with("team.") => Self {
                user_id: None,
                team_id: uuid(data.id.as_ref()),
            },
            _ => Self {
                user_id: uuid(data.user_id.as_ref()),
                team_id: uuid(data.team_id.as_ref()),
            },
        }
    }
}

/// Whether a type is known and will never be mirrored, so that no replay could ever make use
/// of its body: Svix's test event, and Hexclave's error-tracking events (`issue.*`), whose
/// bodies hold exception messages and URLs that may quote personal data. Unknown types are not
/// among them: a later stack-sync may mirror them, and a kept body can then be replayed.
pub fn is_never_mirrored(event_type: &str) -> bool {
    event_type == "stack.test" || event_type.starts_with("issue.")
}

/// The kind of row a mirrored event type is about, and whether it removes that row.
fn mirrored_event(event_type: &str) -> Option<(Kind, bool)> {
    Some(match event_type {
        // `*.created` and `*.updated` of users and teams both carry the whole object.
        "user.created" | "user.updated" => (Kind::User, false),
        "user.deleted" => (Kind::User, true),
        "team.created" | "team.updated" => (Kind::Team, false),
        "team.deleted" => (Kind::Team, true),
        "team_membership.created" => (Kind::TeamMember, false),
        "team_membership.deleted" => (Kind::TeamMember, true),
        "team_permission.created" => (Kind::TeamPermission, false),
        "team_permission.deleted" => (Kind::TeamPermission, true),
        "project_permission.created" => (Kind::ProjectPermission, false),
        "project_permission.deleted" => (Kind::ProjectPermission, true),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Key;

    fn example(name: &str) -> Vec<u8> {
        crate::samples::sample(name)
            .unwrap()
            .to_string()
            .into_bytes()
    }

    #[test]
    fn bad_utf8_in_a_field_nobody_reads_is_still_refused() {
        let body = b"{\"type\": \"user.exploded\", \"unread\": \"\x96\"}";

        let err = Envelope::parse(body).unwrap_err();

        assert!(err.message.contains("not UTF-8"), "{err}");
    }

    /// The kind of change and of row an event parsed to, e.g. `("Grant", Kind::TeamMember)`.
    fn shape(change: &Change) -> (&'static str, Kind) {
        let verb = match change {
            Change::Upsert { .. } => "Upsert",
            Change::Grant(_) => "Grant",
            Change::Remove(_) => "Remove",
        };
        (verb, change.key().kind())
    }

    #[test]
    fn every_example_payload_parses_to_its_event() {
        for (name, expect) in [
            ("user.created", Some(("Upsert", Kind::User))),
            ("user.updated", Some(("Upsert", Kind::User))),
            ("user.deleted", Some(("Remove", Kind::User))),
            ("team.created", Some(("Upsert", Kind::Team))),
            ("team.updated", Some(("Upsert", Kind::Team))),
            ("team.deleted", Some(("Remove", Kind::Team))),
            ("team_membership.created", Some(("Grant", Kind::TeamMember))),
            (
                "team_membership.deleted",
                Some(("Remove", Kind::TeamMember)),
            ),
            (
                "team_permission.created",
                Some(("Grant", Kind::TeamPermission)),
            ),
            (
                "team_permission.deleted",
                Some(("Remove", Kind::TeamPermission)),
            ),
            (
                "project_permission.created",
                Some(("Grant", Kind::ProjectPermission)),
            ),
            (
                "project_permission.deleted",
                Some(("Remove", Kind::ProjectPermission)),
            ),
            ("stack.test", None),
        ] {
            let envelope = Envelope::parse(&example(name)).unwrap();
            assert_eq!(envelope.event_type, name);
            assert_eq!(envelope.change.as_ref().map(shape), expect, "{name}");
        }
    }

    #[test]
    fn user_times_are_converted_from_milliseconds() {
        let Some(Change::Upsert { row, .. }) =
            Envelope::parse(&example("user.updated")).unwrap().change
        else {
            panic!("not an upsert")
        };
        // 1776690123456 ms = 2026-04-20T13:02:03.456Z
        assert_eq!(row.columns["last_active_at"], "2026-04-20T13:02:03.456Z");
    }

    #[test]
    fn missing_optional_fields_are_tolerated_and_unknown_ones_kept() {
        let body = br#"{"type":"user.created","data":{"id":"3241a285-8329-4d69-8f3d-316e08cf140c","future_field":1}}"#;
        let envelope = Envelope::parse(body).unwrap();
        let Some(Change::Upsert { key, row, data }) = envelope.change else {
            panic!("not an upsert")
        };
        assert_eq!(key, Key::User(row.id));
        assert!(!row.columns.contains_key("has_password"));
        assert_eq!(data["future_field"], 1);
    }

    #[test]
    fn a_wrong_type_is_reported_with_its_field() {
        let body = br#"{"type":"user.updated","data":{"id":"3241a285-8329-4d69-8f3d-316e08cf140c","has_password":"yes"}}"#;
        let err = Envelope::parse(body).unwrap_err();
        assert_eq!(err.event_type.as_deref(), Some("user.updated"));
        assert!(
            err.message
                .starts_with("user.updated: has_password: invalid type"),
            "{err}"
        );
    }

    #[test]
    fn a_body_that_is_not_an_envelope_has_no_type() {
        for body in [&b"not json"[..], b"[]", b"{\"data\":{}}", b"{\"type\":5}"] {
            let err = Envelope::parse(body).unwrap_err();
            assert_eq!(err.event_type, None, "{err}");
        }
    }

    #[test]
    fn unknown_types_are_ignored_whatever_their_data() {
        let body = br#"{"type":"session.created","data":{"anything":[1,2]}}"#;
        assert!(Envelope::parse(body).unwrap().change.is_none());
    }

    #[test]
    fn a_subject_is_read_from_any_body_that_names_one() {
        let user = Uuid::from_u128(1);
        let team = Uuid::from_u128(2);
        let subject = |body: serde_json::Value| Subject::of(body.to_string().as_bytes());

        assert_eq!(
            subject(serde_json::json!({"type": "user.updated", "data": {"id": user, "x": 5}})),
            Subject {
                user_id: Some(user),
                team_id: None
            }
        );
        assert_eq!(
            subject(serde_json::json!({"type": "team.deleted", "data": {"id": team}})),
            Subject {
                user_id: None,
                team_id: Some(team)
            }
        );
        assert_eq!(
            subject(serde_json::json!({"type": "team_permission.created",
                                       "data": {"id": "admin", "user_id": user, "team_id": team}})),
            Subject {
                user_id: Some(user),
                team_id: Some(team)
            }
        );
        assert_eq!(
            subject(serde_json::json!({"type": "user.created", "data": {"id": 7}})),
            Subject::default()
        );
        assert_eq!(Subject::of(b"not json"), Subject::default());
    }

    #[test]
    fn test_and_issue_events_are_never_mirrored_unknown_ones_may_be() {
        assert!(is_never_mirrored("stack.test"));
        assert!(is_never_mirrored("issue.created"));
        assert!(!is_never_mirrored("session.created"));
        assert!(!is_never_mirrored("user.created"));
    }
}
