//! The SQL that follows from the Rust that describes the data: the functions that write a user
//! or team row (from the field lists of `model::fields`) and the per-kind functions (from
//! `Kind::info`). They are kept as ordinary files under `sql/functions/` so that a reader sees
//! the statement that runs, and a test holds each file to what is rendered;
//! `BLESS=1 cargo test generated` rewrites them after a change.

pub mod kinds;
pub mod write;

/// Every generated function: file name (without `.sql`) and definition.
pub fn rendered() -> Vec<(String, String)> {
    let written = write::WRITTEN
        .iter()
        .map(|written| (format!("write_{}", written.object), written.render()));
    let per_kind = kinds::rendered()
        .into_iter()
        .map(|(name, sql)| (name.to_owned(), sql));
    written.chain(per_kind).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_functions_match_what_renders_them() {
        let bless = std::env::var_os("BLESS").is_some();
        for (name, rendered) in rendered() {
            let path = format!("{}/sql/functions/{name}.sql", env!("CARGO_MANIFEST_DIR"));
            if bless {
                std::fs::write(&path, &rendered).unwrap();
            }
            let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                on_disk == rendered,
                "{path} is not what renders it; run BLESS=1 cargo test generated"
            );
        }
    }
}
