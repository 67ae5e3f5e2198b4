//! The keys a settings file and the `STACK_SYNC_*` variables may name. Anything else is refused
//! with the closest known key: a misspelt key would otherwise be ignored, and the default it
//! meant to change silently used.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use config::{Config, File, Value, ValueKind};
use serde_aux::serde_introspection::serde_introspect;

use super::{
    AdminSettings, ChangesSettings, ENV_PREFIX, ForwardSettings, LogSettings, MetricsSettings,
    RawDatabase, RawFeed, RawReconcile, RawRefresh, RawRetention, RawServer, RawStack, RawWebhook,
};

/// The variable that names the settings file (`--config`): not a setting itself.
pub(super) const CONFIG_VARIABLE: &str = "STACK_SYNC_CONFIG";

/// Each section and its keys, as the settings structs read them: derived from the structs, so
/// that a new field is known as soon as it exists.
fn sections() -> [(&'static str, &'static [&'static str]); 13] {
    [
        ("server", serde_introspect::<RawServer>()),
        ("database", serde_introspect::<RawDatabase>()),
        ("webhook", serde_introspect::<RawWebhook>()),
        ("retention", serde_introspect::<RawRetention>()),
        ("stack", serde_introspect::<RawStack>()),
        ("reconcile", serde_introspect::<RawReconcile>()),
        ("refresh", serde_introspect::<RawRefresh>()),
        ("changes", serde_introspect::<ChangesSettings>()),
        ("forward", serde_introspect::<ForwardSettings>()),
        ("feed", serde_introspect::<RawFeed>()),
        ("metrics", serde_introspect::<MetricsSettings>()),
        ("admin", serde_introspect::<AdminSettings>()),
        ("log", serde_introspect::<LogSettings>()),
    ]
}

/// Every known key, `section.key`.
fn known_keys() -> Vec<String> {
    sections()
        .iter()
        .flat_map(|(section, keys)| keys.iter().map(move |key| format!("{section}.{key}")))
        .collect()
}

fn is_known(key: &str) -> bool {
    known_keys().iter().any(|known| known == key)
}

/// The variable that sets `key` (`retention.days` → `STACK_SYNC_RETENTION__DAYS`).
pub(super) fn variable_for(key: &str) -> String {
    format!("{ENV_PREFIX}_{}", key.replace('.', "__")).to_uppercase()
}

/// The key a `STACK_SYNC_*` variable sets, as the environment source reads it.
fn key_for(variable: &str) -> String {
    variable[ENV_PREFIX.len() + 1..]
        .to_lowercase()
        .replace("__", ".")
}

/// A name that is not a setting, with the closest one that is.
#[derive(Debug, PartialEq, Eq)]
pub struct UnknownName {
    /// As the user wrote it: `STACK_SYNC_RETENTON__DAYS`, or `retention.day` in a file.
    pub name: String,
    pub closest: Option<String>,
}

impl fmt::Display for UnknownName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name)?;
        match &self.closest {
            Some(closest) => write!(f, " (did you mean {closest}?)"),
            None => Ok(()),
        }
    }
}

/// `names` as one line: "unknown setting A (did you mean B?)", or "unknown settings: A, C".
pub(super) fn describe(names: &[UnknownName]) -> String {
    let listed: Vec<String> = names.iter().map(ToString::to_string).collect();
    match listed.as_slice() {
        [one] => format!("unknown setting {one}"),
        many => format!("unknown settings: {}", many.join(", ")),
    }
}

/// The `STACK_SYNC_*` variables in `env` that set nothing, in name order.
pub(super) fn unknown_variables(env: &HashMap<String, String>) -> Vec<UnknownName> {
    let prefix = format!("{ENV_PREFIX}_");
    let mut unknown: Vec<UnknownName> = env
        .keys()
        .filter(|name| name.starts_with(&prefix) && *name != CONFIG_VARIABLE)
        .filter(|name| !is_known(&key_for(name)))
        .map(|name| UnknownName {
            name: name.clone(),
            closest: closest(&key_for(name)).map(|key| variable_for(&key)),
        })
        .collect();
    unknown.sort_by(|a, b| a.name.cmp(&b.name));
    unknown
}

/// The keys of the settings file at `path` that set nothing, sorted.
pub(super) fn unknown_in_file(path: &Path) -> Result<Vec<UnknownName>, config::ConfigError> {
    let mut unknown = Vec::new();
    let mut top: Vec<(String, Value)> = Config::builder()
        .add_source(File::from(path).required(true))
        .build()?
        .try_deserialize::<HashMap<String, Value>>()?
        .into_iter()
        .collect();
    top.sort_by(|a, b| a.0.cmp(&b.0));
    for (section, value) in top {
        let keys = match value.kind {
            ValueKind::Table(table) => table
                .into_keys()
                .map(|key| format!("{section}.{key}"))
                .collect(),
            // A section that is not a table is the deserializer's to refuse, with its type.
            _ => vec![section],
        };
        for key in keys {
            if !is_known(&key) {
                unknown.push(UnknownName {
                    closest: closest(&key).map(|known| format!("`{known}`")),
                    name: format!("`{key}` in {}", path.display()),
                });
            }
        }
    }
    Ok(unknown)
}

/// The known key most like `key`, if any is like it at all.
fn closest(key: &str) -> Option<String> {
    known_keys()
        .into_iter()
        .map(|known| (strsim::jaro_winkler(key, &known), known))
        .filter(|(likeness, _)| *likeness >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, known)| known)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sections_are_the_settings_structs_fields() {
        let names: Vec<&str> = sections().iter().map(|(section, _)| *section).collect();
        assert_eq!(names, serde_introspect::<super::super::Raw>());
    }

    #[test]
    fn a_misspelt_variable_is_named_with_the_one_meant() {
        let env: HashMap<String, String> = [
            ("STACK_SYNC_RETENTON__DAYS", "7"),
            ("STACK_SYNC_RETENTION__DAYS", "7"),
            ("STACK_SYNC_CONFIG", "/etc/stack-sync.toml"),
            ("STACK_WEBHOOK_SECRET", "not ours to check"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        assert_eq!(
            unknown_variables(&env),
            [UnknownName {
                name: "STACK_SYNC_RETENTON__DAYS".to_owned(),
                closest: Some("STACK_SYNC_RETENTION__DAYS".to_owned()),
            }]
        );
    }

    #[test]
    fn a_name_like_no_key_has_no_suggestion() {
        assert_eq!(closest("zzzz.qqqq"), None);
        assert_eq!(
            closest("database.ssl_mode").as_deref(),
            Some("database.sslmode")
        );
    }
}
