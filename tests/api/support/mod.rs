//! Shared test support: databases, a running service, signed deliveries, example payloads.

pub mod app;
pub mod fake_stack;
pub mod payloads;
pub mod postgres;
pub mod stack_model;

pub use app::{SECRET, TestApp, message_id};
pub use payloads::example;
