//! Example Stack payloads (the service's samples, one per event type) and variations of them.

use serde_json::Value;

/// The example body of event type `name`, e.g. `user.created`.
pub fn example(name: &str) -> Value {
    stack_sync::samples::sample(name).unwrap_or_else(|| panic!("no sample of {name}"))
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
