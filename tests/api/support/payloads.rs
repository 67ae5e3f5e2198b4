//! Example Stack payloads (`tests/payloads/`, one per event type) and variations of them.

use serde_json::Value;

/// The example body of event type `name`, e.g. `user.created`.
pub fn example(name: &str) -> Value {
    let path = format!("{}/tests/payloads/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{path}: {err}"));
    serde_json::from_str(&text).unwrap()
}

/// The example body of `name` with `data` fields replaced.
pub fn example_with(name: &str, fields: &[(&str, Value)]) -> Value {
    let mut event = example(name);
    for (field, value) in fields {
        event["data"][*field] = value.clone();
    }
    event
}

/// A fresh Stack-style id (users and teams have UUIDs).
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}
