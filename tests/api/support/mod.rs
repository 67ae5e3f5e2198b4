//! Shared test support: databases, a running service, signed deliveries, example payloads.

pub mod app;
pub mod command;
pub mod fake_stack;
pub mod payloads;
pub mod postgres;
pub mod serve_process;
pub mod signing;
pub mod stack_model;

pub use app::TestApp;
pub use payloads::example;
pub use signing::{SECRET, message_id};
