//! The events `trigger` sends, built from the samples with fresh ids that chain: a later event
//! names the users and teams an earlier one created.

use rand::Rng;
use rand::rngs::StdRng;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::samples;

/// Makes the ids and names of one run; seeded, the same every time.
pub struct Maker {
    rng: StdRng,
}

impl Maker {
    pub fn new(rng: StdRng) -> Self {
        Self { rng }
    }

    /// A fresh Stack-style id (users and teams have UUIDs).
    pub fn id(&mut self) -> String {
        uuid::Builder::from_random_bytes(self.rng.random())
            .into_uuid()
            .to_string()
    }

    pub fn rng(&mut self) -> &mut StdRng {
        &mut self.rng
    }

    /// The sample of `event_type` with `fields` of its `data` replaced.
    pub fn event(&self, event_type: &str, fields: &[(&str, Value)]) -> Value {
        let mut event = samples::sample(event_type).expect("a sample of every event sent");
        for (field, value) in fields {
            event["data"][*field] = value.clone();
        }
        event
    }

    /// `event_type` with fresh ids in every id field, and a name made from the user's or team's id.
    pub fn fresh(&mut self, event_type: &str) -> Option<Value> {
        let mut event = samples::sample(event_type)?;
        let data = &mut event["data"];
        let (user, team) = (self.id(), self.id());
        let object_id = if event_type.starts_with("team.") {
            &team
        } else {
            &user
        };
        if data
            .get("id")
            .is_some_and(|id| Uuid::parse_str(id.as_str().unwrap_or("")).is_ok())
        {
            data["id"] = json!(object_id);
            if data.get("display_name").is_some() {
                data["display_name"] = json!(format!("Sample {}", &object_id[..8]));
            }
        }
        for (field, id) in [("user_id", &user), ("team_id", &team)] {
            if data.get(field).is_some() {
                data[field] = json!(id);
            }
        }
        if data.get("selected_team_id").is_some() {
            data["selected_team_id"] = Value::Null;
            data["selected_team"] = Value::Null;
        }
        if let Some(teams) = data.get_mut("teams") {
            *teams = json!([]);
        }
        Some(event)
    }
}

/// `field=value` as given to `--set`: the value as JSON when it parses (`true`, `3`, `null`,
/// `{"plan":"pro"}`), else as a string.
pub fn parse_set(assignment: &str) -> Result<(String, Value), String> {
    let (field, value) = assignment
        .split_once('=')
        .ok_or_else(|| format!("--set {assignment:?}: expected FIELD=VALUE"))?;
    if field.is_empty() {
        return Err(format!("--set {assignment:?}: the field name is empty"));
    }
    let value = serde_json::from_str(value).unwrap_or_else(|_| Value::from(value));
    Ok((field.to_owned(), value))
}

/// The ids an event names, for printing: `user=… team=… permission=…`.
pub fn ids_of(event: &Value) -> String {
    let data = &event["data"];
    let event_type = event["type"].as_str().unwrap_or_default();
    let object = event_type.split('.').next().unwrap_or_default();
    let mut ids = Vec::new();
    let mut push = |name: &str, value: &Value| {
        if let Some(value) = value.as_str() {
            ids.push(format!("{name}={value}"));
        }
    };
    match object {
        "user" => push("user", &data["id"]),
        "team" => push("team", &data["id"]),
        _ => {
            push("team", &data["team_id"]);
            push("user", &data["user_id"]);
            push("permission", &data["id"]);
        }
    }
    ids.join(" ")
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn fresh_events_get_new_ids_and_a_seed_repeats_them() {
        let mut maker = Maker::new(StdRng::seed_from_u64(7));
        let first = maker.fresh("team_permission.created").unwrap();
        let again = Maker::new(StdRng::seed_from_u64(7))
            .fresh("team_permission.created")
            .unwrap();
        let sample = samples::sample("team_permission.created").unwrap();
        assert_eq!(first, again);
        assert_ne!(first["data"]["user_id"], sample["data"]["user_id"]);
        assert_eq!(
            first["data"]["id"], "team_member",
            "a permission id is not a uuid"
        );
    }

    #[test]
    fn set_values_are_json_when_they_parse() {
        assert_eq!(parse_set("has_password=true").unwrap().1, json!(true));
        assert_eq!(
            parse_set("display_name=Ada King").unwrap().1,
            json!("Ada King")
        );
        assert_eq!(parse_set("a=b=c").unwrap(), ("a".to_owned(), json!("b=c")));
        assert!(parse_set("novalue").is_err());
    }
}
