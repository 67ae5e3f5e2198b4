//! Shared test support: databases, a running service, signed deliveries, example payloads.

pub mod app;
pub mod command;
pub mod fake_stack;
pub mod nats;
pub mod payloads;
pub mod pgbouncer;
pub mod postgres;
pub mod serve_process;
pub mod signing;
pub mod stack_model;

pub use app::TestApp;
pub use payloads::example;
pub use signing::{SECRET, message_id};

/// The first SQL block of the README after `marker`, as a user would copy it.
pub fn readme_sql_after(marker: &str) -> &'static str {
    let readme = include_str!("../../../README.md");
    let section = readme
        .split(marker)
        .nth(1)
        .unwrap_or_else(|| panic!("the README has {marker}"));
    section
        .split("```sql")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("an SQL block after it")
}
