//! Rebuilds the crate when a migration is added or changed: `sqlx::migrate!` embeds the
//! `migrations/` folder, but on stable Rust the compiler cannot track a folder by itself.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
