//! Secrets read from files: `DATABASE_URL_FILE=/run/secrets/db` instead of `DATABASE_URL=…`, as
//! the official Postgres image and others accept, and as Docker and Kubernetes mount secrets.
//! Resolved into the environment map before anything reads it, so the rest of the settings
//! never know where a secret came from.

use std::collections::HashMap;
use std::path::PathBuf;

/// The variables that hold a secret, each of which may instead name a file with `_FILE`.
const SECRET_VARIABLES: [&str; 8] = [
    "DATABASE_URL",
    "STACK_WEBHOOK_SECRET",
    "HEXCLAVE_SECRET_SERVER_KEY",
    "STACK_SECRET_SERVER_KEY",
    "STACK_SYNC_DATABASE__URL",
    "STACK_SYNC_WEBHOOK__SECRET",
    "STACK_SYNC_STACK__SECRET_SERVER_KEY",
    "STACK_SYNC_ADMIN__TOKEN",
];

/// A `_FILE` variable that cannot stand for its secret. Messages name the variable and the
/// path, never what the file holds.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretFileError {
    #[error("{variable} and {variable}_FILE are both set: keep one")]
    Both { variable: &'static str },
    #[error("{variable}_FILE: cannot read {path}: {reason}")]
    Unreadable {
        variable: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("{variable}_FILE: {path} is empty")]
    Empty {
        variable: &'static str,
        path: PathBuf,
    },
}

/// `env` with each `<SECRET>_FILE` replaced by `<SECRET>` holding the file's content, without
/// its trailing line breaks (what `echo` and editors leave). The first problem stops it.
pub fn resolve(env: &HashMap<String, String>) -> Result<HashMap<String, String>, SecretFileError> {
    let mut resolved = env.clone();
    for variable in SECRET_VARIABLES {
        let Some(path) = resolved.remove(&format!("{variable}_FILE")) else {
            continue;
        };
        if env.contains_key(variable) {
            return Err(SecretFileError::Both { variable });
        }
        let path = PathBuf::from(path);
        let content =
            std::fs::read_to_string(&path).map_err(|err| SecretFileError::Unreadable {
                variable,
                path: path.clone(),
                reason: err.kind().to_string(),
            })?;
        let secret = content.trim_end_matches(['\n', '\r']);
        if secret.trim().is_empty() {
            return Err(SecretFileError::Empty { variable, path });
        }
        resolved.insert(variable.to_owned(), secret.to_owned());
    }
    Ok(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file under the temp folder holding `content`, removed when dropped.
    struct SecretFile(PathBuf);

    impl SecretFile {
        fn new(name: &str, content: &str) -> Self {
            let path = std::env::temp_dir()
                .join(format!("stack-sync-secret-{}-{name}", std::process::id()));
            std::fs::write(&path, content).unwrap();
            Self(path)
        }

        fn path(&self) -> String {
            self.0.display().to_string()
        }
    }

    impl Drop for SecretFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_file_stands_for_its_variable_without_trailing_line_breaks() {
        let file = SecretFile::new("url", "postgres://app:s3cret@db/app\r\n\n");
        let resolved = resolve(&env(&[("DATABASE_URL_FILE", &file.path())])).unwrap();
        assert_eq!(
            resolved.get("DATABASE_URL").map(String::as_str),
            Some("postgres://app:s3cret@db/app")
        );
        assert!(!resolved.contains_key("DATABASE_URL_FILE"));
    }

    #[test]
    fn every_secret_variable_takes_a_file() {
        for variable in SECRET_VARIABLES {
            let file = SecretFile::new(variable, "value\n");
            let name = format!("{variable}_FILE");
            let resolved = resolve(&env(&[(&name, &file.path())])).unwrap();
            assert_eq!(resolved[variable], "value", "{variable}");
        }
    }

    #[test]
    fn a_variable_and_its_file_together_are_refused() {
        let file = SecretFile::new("both", "whsec_x");
        let both = env(&[
            ("STACK_WEBHOOK_SECRET", "whsec_y"),
            ("STACK_WEBHOOK_SECRET_FILE", &file.path()),
        ]);
        assert_eq!(
            resolve(&both).unwrap_err().to_string(),
            "STACK_WEBHOOK_SECRET and STACK_WEBHOOK_SECRET_FILE are both set: keep one"
        );
    }

    #[test]
    fn a_missing_or_empty_file_is_named_without_its_content() {
        let missing = env(&[("STACK_SECRET_SERVER_KEY_FILE", "/nonexistent/key")]);
        assert_eq!(
            resolve(&missing).unwrap_err().to_string(),
            "STACK_SECRET_SERVER_KEY_FILE: cannot read /nonexistent/key: entity not found"
        );
        let blank = SecretFile::new("blank", " \n\n");
        let empty = env(&[("STACK_SECRET_SERVER_KEY_FILE", &blank.path())]);
        assert_eq!(
            resolve(&empty).unwrap_err().to_string(),
            format!("STACK_SECRET_SERVER_KEY_FILE: {} is empty", blank.path())
        );
    }

    #[test]
    fn a_folder_is_unreadable_as_a_secret() {
        let folder = std::env::temp_dir();
        let vars = env(&[("DATABASE_URL_FILE", folder.to_str().unwrap())]);
        assert!(matches!(
            resolve(&vars),
            Err(SecretFileError::Unreadable { .. })
        ));
    }
}
