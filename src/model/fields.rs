//! The one definition of what the mirror keeps of a Stack user and team: each field of Stack's
//! object, how it is checked, and the column that holds it. The rest follows from these lists:
//! validation (here), the column values written (`Row`, filled into the table's row type with
//! `jsonb_populate_record`), the SQL write functions (generated from them, see
//! `store::generated`), and tests that hold `stack.users` and `stack.teams` to them.
//!
//! Field names and types are those of Stack's server-side user and team objects, the same in
//! webhooks and in the REST API (see `docs/stack.md`).

use serde::Deserialize;
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

/// How a field is checked, and the Postgres type of its column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    Uuid,
    Text,
    Boolean,
    /// Integer milliseconds since the Unix epoch, kept as `timestamptz` in a column named
    /// without the `_millis` suffix.
    Millis,
    /// Any JSON value, kept as `jsonb`.
    Json,
    /// A JSON array, kept as `jsonb`.
    JsonArray,
}

impl FieldType {
    /// The column's type, as `information_schema.columns.data_type` names it.
    pub fn column_type(self) -> &'static str {
        match self {
            Self::Uuid => "uuid",
            Self::Text => "text",
            Self::Boolean => "boolean",
            Self::Millis => "timestamp with time zone",
            Self::Json | Self::JsonArray => "jsonb",
        }
    }
}

/// One field of a Stack object and its column.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// The name in Stack's object.
    pub name: &'static str,
    pub field_type: FieldType,
}

impl Field {
    const fn new(name: &'static str, field_type: FieldType) -> Self {
        Self { name, field_type }
    }

    /// The column that holds the field.
    pub fn column(&self) -> &'static str {
        match self.field_type {
            FieldType::Millis => self.name.strip_suffix("_millis").unwrap_or(self.name),
            _ => self.name,
        }
    }
}

use FieldType::{Boolean, Json, JsonArray, Millis, Text};

/// Stack's user object. The first field, `id`, is the primary key and required.
pub const USER_FIELDS: &[Field] = &[
    Field::new("id", FieldType::Uuid),
    Field::new("display_name", Text),
    // Stack trims and lower-cases emails before storing them.
    Field::new("primary_email", Text),
    Field::new("primary_email_verified", Boolean),
    Field::new("primary_email_auth_enabled", Boolean),
    Field::new("profile_image_url", Text),
    Field::new("signed_up_at_millis", Millis),
    Field::new("client_metadata", Json),
    Field::new("client_read_only_metadata", Json),
    Field::new("server_metadata", Json),
    Field::new("has_password", Boolean),
    Field::new("otp_auth_enabled", Boolean),
    Field::new("auth_with_email", Boolean),
    Field::new("requires_totp_mfa", Boolean),
    Field::new("passkey_auth_enabled", Boolean),
    Field::new("oauth_providers", JsonArray),
    // `[{id}]` for users created through external authentication (Hexclave, April 2026).
    Field::new("external_auth_providers", JsonArray),
    Field::new("selected_team_id", FieldType::Uuid),
    Field::new("selected_team", Json),
    Field::new("last_active_at_millis", Millis),
    Field::new("is_anonymous", Boolean),
    Field::new("is_restricted", Boolean),
    Field::new("restricted_reason", Json),
    Field::new("restricted_by_admin", Boolean),
    Field::new("restricted_by_admin_reason", Text),
    Field::new("restricted_by_admin_private_details", Text),
    Field::new("country_code", Text),
    Field::new("risk_scores", Json),
];

/// Stack's team object. The first field, `id`, is the primary key and required.
pub const TEAM_FIELDS: &[Field] = &[
    Field::new("id", FieldType::Uuid),
    Field::new("display_name", Text),
    Field::new("profile_image_url", Text),
    Field::new("created_at_millis", Millis),
    Field::new("client_metadata", Json),
    Field::new("client_read_only_metadata", Json),
    Field::new("server_metadata", Json),
];

/// The columns every user and team row has besides its fields, filled by the write itself.
pub const BOOKKEEPING_COLUMNS: [&str; 3] = ["raw", "synced_at", "svix_id"];

/// A validated user or team: column name to value, in the JSON form `jsonb_populate_record`
/// reads into the table's row type. Absent and null fields are left out (they become null).
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub id: Uuid,
    pub columns: Map<String, Value>,
}

/// A field that does not have its documented type.
#[derive(Debug, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl Row {
    /// Checks every field of `data` against `fields` and converts each to its column's value.
    pub fn validate(fields: &[Field], data: &Value) -> Result<Self, FieldError> {
        let object = data.as_object().ok_or_else(|| FieldError {
            field: "data".to_owned(),
            message: format!("expected an object, found {}", kind_of(data)),
        })?;
        let id = match object.get("id") {
            Some(id) if !id.is_null() => Uuid::deserialize(id).map_err(|err| FieldError {
                field: "id".to_owned(),
                message: err.to_string(),
            })?,
            _ => {
                return Err(FieldError {
                    field: "id".to_owned(),
                    message: "missing".to_owned(),
                });
            }
        };
        let mut columns = Map::new();
        for field in fields {
            let value = object.get(field.name).unwrap_or(&Value::Null);
            let column = column_value(field.field_type, value).map_err(|message| FieldError {
                field: field.name.to_owned(),
                message,
            })?;
            if let Some(column_value) = column {
                columns.insert(field.column().to_owned(), column_value);
            }
        }
        Ok(Self { id, columns })
    }
}

/// The column value of one field, `None` for null; an error says what is wrong.
fn column_value(field_type: FieldType, value: &Value) -> Result<Option<Value>, String> {
    if value.is_null() {
        return Ok(None);
    }
    // serde's own messages, e.g. `invalid type: string "yes", expected a boolean`.
    let typed = |result: Result<Value, serde_json::Error>| result.map_err(|err| err.to_string());
    let column = match field_type {
        FieldType::Uuid => typed(Uuid::deserialize(value).map(|id| Value::from(id.to_string())))?,
        FieldType::Text => typed(String::deserialize(value).map(Value::from))?,
        FieldType::Boolean => typed(bool::deserialize(value).map(Value::from))?,
        FieldType::Millis => Value::from(millis_to_rfc3339(whole_millis(value)?)?),
        FieldType::Json => value.clone(),
        FieldType::JsonArray => typed(Vec::<Value>::deserialize(value).map(Value::from))?,
    };
    Ok(Some(column))
}

/// A count of milliseconds: a JSON integer that fits an i64.
fn whole_millis(value: &Value) -> Result<i64, String> {
    // Numbers keep their text (serde_json's arbitrary_precision), so the check is explicit.
    match value {
        Value::Number(number) => number
            .as_i64()
            .ok_or_else(|| format!("expected i64 milliseconds, found {number}")),
        other => Err(format!(
            "expected i64 milliseconds, found {}",
            kind_of(other)
        )),
    }
}

fn millis_to_rfc3339(millis: i64) -> Result<String, String> {
    let out_of_range = || format!("{millis} ms is out of range");
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
        .ok()
        .and_then(|time| time.format(&Rfc3339).ok())
        .ok_or_else(out_of_range)
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const USER_ID: &str = "3241a285-8329-4d69-8f3d-316e08cf140c";

    #[test]
    fn millis_become_times_in_the_column_without_the_suffix() {
        // 1776690123456 ms = 2026-04-20T13:02:03.456Z
        let data = json!({ "id": USER_ID, "last_active_at_millis": 1776690123456_i64 });
        let row = Row::validate(USER_FIELDS, &data).unwrap();
        assert_eq!(row.columns["last_active_at"], "2026-04-20T13:02:03.456Z");
        assert!(!row.columns.contains_key("last_active_at_millis"));
    }

    #[test]
    fn null_and_missing_fields_are_left_out_and_unknown_ones_ignored() {
        let data = json!({ "id": USER_ID, "display_name": null, "future_field": 1 });
        let row = Row::validate(USER_FIELDS, &data).unwrap();
        assert_eq!(
            row.columns,
            json!({ "id": USER_ID }).as_object().unwrap().clone()
        );
    }

    #[test]
    fn a_wrong_type_names_the_field() {
        for (field, value, expected) in [
            ("has_password", json!("yes"), "expected a boolean"),
            ("display_name", json!(5), "expected a string"),
            ("selected_team_id", json!("not-a-uuid"), "UUID"),
            ("oauth_providers", json!({}), "expected a sequence"),
            ("signed_up_at_millis", json!(1.5), "expected i64"),
            ("signed_up_at_millis", json!(i64::MAX), "out of range"),
        ] {
            let data = json!({ "id": USER_ID, field: value });
            let err = Row::validate(USER_FIELDS, &data).unwrap_err();
            assert_eq!(err.field, field);
            assert!(err.to_string().contains(expected), "{field}: {err}");
        }
    }

    #[test]
    fn the_id_is_required() {
        let err = Row::validate(TEAM_FIELDS, &json!({ "display_name": "x" })).unwrap_err();
        assert_eq!(err.to_string(), "id: missing");
        let err = Row::validate(TEAM_FIELDS, &json!([1])).unwrap_err();
        assert_eq!(err.to_string(), "data: expected an object, found an array");
    }

    #[test]
    fn columns_are_named_once_per_object() {
        for fields in [USER_FIELDS, TEAM_FIELDS] {
            let mut columns: Vec<&str> = fields.iter().map(Field::column).collect();
            columns.extend(BOOKKEEPING_COLUMNS);
            let count = columns.len();
            columns.sort_unstable();
            columns.dedup();
            assert_eq!(columns.len(), count);
            assert_eq!(fields[0].name, "id");
        }
    }
}
