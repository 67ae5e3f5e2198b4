//! Stack Auth webhook payloads: the `{type, data}` envelope and the typed `data` of each event
//! we mirror. Field lists follow `shared/reference/stack-webhooks.md` section 1.
//!
//! Parsing is tolerant of fields Stack added over time (missing ones become `None`, unknown ones
//! are kept in `raw`) but strict about types: a string where a boolean belongs is an error,
//! because writing a guess into the mirror would be worse than reporting it.

use serde::{Deserialize, Deserializer};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

/// A parsed webhook body.
#[derive(Debug)]
pub struct Envelope {
    /// The payload's `type`, e.g. `user.created`.
    pub event_type: String,
    /// The payload's `data`, as received; the mirror stores it whole as `raw`.
    pub data: Value,
    /// The validated `data`; `None` for `stack.test` and any type we do not know: recorded,
    /// never mirrored.
    pub event: Option<Event>,
}

/// What a webhook asks the mirror to do.
#[derive(Debug)]
pub enum Event {
    /// `user.created` and `user.updated` both carry the full user.
    UserUpserted(Box<User>),
    UserDeleted(UserDeleted),
    /// `team.created` and `team.updated` both carry the full team.
    TeamUpserted(Team),
    TeamDeleted(TeamDeleted),
    MembershipAdded(Membership),
    MembershipRemoved(Membership),
    TeamPermissionGranted(TeamPermission),
    TeamPermissionRevoked(TeamPermission),
    ProjectPermissionGranted(ProjectPermission),
    ProjectPermissionRevoked(ProjectPermission),
}

/// A body that is signed correctly but cannot be applied, and never will be as it stands.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct InvalidPayload {
    /// The `type`, when the body got that far.
    pub event_type: Option<String>,
    pub message: String,
}

/// The `data` of `user.created` / `user.updated`.
#[derive(Debug, Deserialize)]
pub struct User {
    pub id: Uuid,
    pub display_name: Option<String>,
    pub primary_email: Option<String>,
    pub primary_email_verified: Option<bool>,
    pub primary_email_auth_enabled: Option<bool>,
    pub profile_image_url: Option<String>,
    #[serde(default, deserialize_with = "millis")]
    pub signed_up_at_millis: Option<OffsetDateTime>,
    pub client_metadata: Option<Value>,
    pub client_read_only_metadata: Option<Value>,
    pub server_metadata: Option<Value>,
    pub has_password: Option<bool>,
    pub otp_auth_enabled: Option<bool>,
    pub auth_with_email: Option<bool>,
    pub requires_totp_mfa: Option<bool>,
    pub passkey_auth_enabled: Option<bool>,
    pub oauth_providers: Option<Vec<Value>>,
    pub selected_team_id: Option<Uuid>,
    pub selected_team: Option<Value>,
    #[serde(default, deserialize_with = "millis")]
    pub last_active_at_millis: Option<OffsetDateTime>,
    pub is_anonymous: Option<bool>,
    pub is_restricted: Option<bool>,
    pub restricted_reason: Option<Value>,
    pub restricted_by_admin: Option<bool>,
    pub restricted_by_admin_reason: Option<String>,
    pub restricted_by_admin_private_details: Option<String>,
    pub country_code: Option<String>,
    pub risk_scores: Option<Value>,
}

/// The `data` of `team.created` / `team.updated`.
#[derive(Debug, Deserialize)]
pub struct Team {
    pub id: Uuid,
    pub display_name: Option<String>,
    pub profile_image_url: Option<String>,
    #[serde(default, deserialize_with = "millis")]
    pub created_at_millis: Option<OffsetDateTime>,
    pub client_metadata: Option<Value>,
    pub client_read_only_metadata: Option<Value>,
    pub server_metadata: Option<Value>,
}

/// The `data` of `user.deleted`. Its `teams` list is not needed: the mirror knows the
/// memberships, and removes them all.
#[derive(Debug, Deserialize)]
pub struct UserDeleted {
    pub id: Uuid,
}

/// The `data` of `team.deleted`.
#[derive(Debug, Deserialize)]
pub struct TeamDeleted {
    pub id: Uuid,
}

/// The `data` of `team_membership.created` / `.deleted`.
#[derive(Debug, Deserialize)]
pub struct Membership {
    pub team_id: Uuid,
    pub user_id: Uuid,
}

/// The `data` of `team_permission.created` / `.deleted`.
#[derive(Debug, Deserialize)]
pub struct TeamPermission {
    #[serde(rename = "id")]
    pub permission_id: String,
    pub team_id: Uuid,
    pub user_id: Uuid,
}

/// The `data` of `project_permission.created` / `.deleted`.
#[derive(Debug, Deserialize)]
pub struct ProjectPermission {
    #[serde(rename = "id")]
    pub permission_id: String,
    pub user_id: Uuid,
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
        let RawEnvelope { event_type, data } =
            serde_json::from_slice(body).map_err(|err| InvalidPayload {
                event_type: None,
                message: format!("body is not a Stack webhook envelope: {err}"),
            })?;
        match Event::from_data(&event_type, &data) {
            Ok(event) => Ok(Self {
                event_type,
                data,
                event,
            }),
            Err(err) => Err(InvalidPayload {
                message: format!("{event_type}: {err}"),
                event_type: Some(event_type),
            }),
        }
    }
}

type DataError = serde_path_to_error::Error<serde_json::Error>;

impl Event {
    fn from_data(event_type: &str, data: &Value) -> Result<Option<Self>, DataError> {
        Ok(Some(match event_type {
            "user.created" | "user.updated" => Self::UserUpserted(Box::new(typed(data)?)),
            "user.deleted" => Self::UserDeleted(typed(data)?),
            "team.created" | "team.updated" => Self::TeamUpserted(typed(data)?),
            "team.deleted" => Self::TeamDeleted(typed(data)?),
            "team_membership.created" => Self::MembershipAdded(typed(data)?),
            "team_membership.deleted" => Self::MembershipRemoved(typed(data)?),
            "team_permission.created" => Self::TeamPermissionGranted(typed(data)?),
            "team_permission.deleted" => Self::TeamPermissionRevoked(typed(data)?),
            "project_permission.created" => Self::ProjectPermissionGranted(typed(data)?),
            "project_permission.deleted" => Self::ProjectPermissionRevoked(typed(data)?),
            _ => return Ok(None),
        }))
    }
}

/// Deserializes `data` into `T`, naming the offending field on error (`data.has_password: ...`).
fn typed<'a, T: Deserialize<'a>>(data: &'a Value) -> Result<T, DataError> {
    serde_path_to_error::deserialize(data)
}

/// Stack sends times as integer milliseconds since the Unix epoch.
fn millis<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<OffsetDateTime>, D::Error> {
    let Some(millis) = Option::<i64>::deserialize(deserializer)? else {
        return Ok(None);
    };
    let nanos = i128::from(millis) * 1_000_000;
    OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .map(Some)
        .map_err(|_| serde::de::Error::custom(format!("{millis} ms is out of range")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example(name: &str) -> Vec<u8> {
        let path = format!("{}/tests/payloads/{name}.json", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|err| panic!("{path}: {err}"))
    }

    #[test]
    fn every_example_payload_parses_to_its_event() {
        for (name, expect) in [
            ("user.created", "UserUpserted"),
            ("user.updated", "UserUpserted"),
            ("user.deleted", "UserDeleted"),
            ("team.created", "TeamUpserted"),
            ("team.updated", "TeamUpserted"),
            ("team.deleted", "TeamDeleted"),
            ("team_membership.created", "MembershipAdded"),
            ("team_membership.deleted", "MembershipRemoved"),
            ("team_permission.created", "TeamPermissionGranted"),
            ("team_permission.deleted", "TeamPermissionRevoked"),
            ("project_permission.created", "ProjectPermissionGranted"),
            ("project_permission.deleted", "ProjectPermissionRevoked"),
            ("stack.test", "None"),
        ] {
            let envelope = Envelope::parse(&example(name)).unwrap();
            assert_eq!(envelope.event_type, name);
            let debug = format!("{:?}", envelope.event);
            let debug = debug.strip_prefix("Some(").unwrap_or(&debug);
            assert!(debug.starts_with(expect), "{name} parsed as {debug}");
        }
    }

    #[test]
    fn user_times_are_converted_from_milliseconds() {
        let Some(Event::UserUpserted(user)) =
            Envelope::parse(&example("user.updated")).unwrap().event
        else {
            panic!("not a user")
        };
        // 1776690123456 ms = 2026-04-20T13:02:03.456Z
        let expected = time::macros::datetime!(2026-04-20 13:02:03.456 UTC);
        assert_eq!(user.last_active_at_millis, Some(expected));
    }

    #[test]
    fn missing_optional_fields_are_tolerated_and_unknown_ones_kept() {
        let body = br#"{"type":"user.created","data":{"id":"3241a285-8329-4d69-8f3d-316e08cf140c","future_field":1}}"#;
        let envelope = Envelope::parse(body).unwrap();
        let Some(Event::UserUpserted(user)) = envelope.event else {
            panic!("not a user")
        };
        assert_eq!(user.has_password, None);
        assert_eq!(envelope.data["future_field"], 1);
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
        assert!(Envelope::parse(body).unwrap().event.is_none());
    }
}
