//! The HTTP handlers, one module per route family.

pub mod admin;
pub mod health;
pub mod signed_webhook;
pub mod webhooks;
