//! Every SQL statement the service runs, each one round trip. The caller chooses the connection
//! or transaction it runs on.
//!
//! Applying an event is one call of the `stack_sync.apply_event` function
//! (`migrations/0002_convergence.sql`): it takes per-user and per-team locks, skips a message
//! already recorded, guards against stale and deleted rows, changes the mirror and records the
//! message, all in one transaction.

pub mod mirror;
pub mod reconcile;
pub mod webhook_events;
