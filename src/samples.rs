//! Sample Stack webhook bodies, one per event type the service knows (`samples/*.json`),
//! embedded in the binary. `stack-sync trigger` builds its deliveries from them and the tests
//! their fixtures, so both stay in step with what the service parses.

use serde_json::Value;

macro_rules! samples {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../samples/", $name, ".json")))),*]
    };
}

/// Every event type with a sample: event type and body.
const SAMPLES: &[(&str, &str)] = samples![
    "user.created",
    "user.updated",
    "user.deleted",
    "team.created",
    "team.updated",
    "team.deleted",
    "team_membership.created",
    "team_membership.deleted",
    "team_permission.created",
    "team_permission.deleted",
    "project_permission.created",
    "project_permission.deleted",
    "stack.test",
];

/// The event types that have a sample, in a stable order.
pub fn event_types() -> impl Iterator<Item = &'static str> {
    SAMPLES.iter().map(|(name, _)| *name)
}

/// The sample body of `event_type` (`{"type": ..., "data": ...}`), if there is one.
pub fn sample(event_type: &str) -> Option<Value> {
    let (_, body) = SAMPLES.iter().find(|(name, _)| *name == event_type)?;
    Some(serde_json::from_str(body).expect("samples are valid JSON"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sample_file_is_listed_and_typed_as_named() {
        let folder = concat!(env!("CARGO_MANIFEST_DIR"), "/samples");
        let mut files: Vec<String> = std::fs::read_dir(folder)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .filter_map(|name| name.strip_suffix(".json").map(str::to_owned))
            .collect();
        files.sort();
        let mut listed: Vec<String> = event_types().map(str::to_owned).collect();
        listed.sort();
        assert_eq!(files, listed);
        for event_type in event_types() {
            assert_eq!(sample(event_type).unwrap()["type"], event_type);
        }
    }
}
