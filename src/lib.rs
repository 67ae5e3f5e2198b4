//! stack-sync: receives Stack Auth webhooks through Svix and mirrors users, teams, memberships
//! and permissions into Postgres tables in the `stack` schema.

/// The change log's readers: `stack-sync changes` and the forwarder to NATS.
pub mod changes;
/// Settings from defaults, a file and the environment.
pub mod config;
/// Connecting to the app's database: TLS, time limits, and why a connection failed.
pub mod database;
/// One delivery of a message: what it changes, and whether it is retried or failed.
pub mod delivery;
/// The HTTP error type and the responses it becomes.
pub mod error;
/// When a Svix message was created, from its id.
pub mod event_time;
/// Stack Auth webhook payloads.
pub mod events;
/// `forget`: erasing a user or team, and every recorded body about them, on request.
pub mod forget;
/// `stack-sync healthcheck`: readiness of a running service, for containers.
pub mod health_check;
/// Prometheus metrics on their own listener.
pub mod metrics;
/// The mirror's vocabulary: keys, fields, changes, outcomes.
pub mod model;
/// `stack-sync reconcile`: repairing the mirror from Stack's REST API.
pub mod reconcile;
/// Freshness: fetching a user or team from Stack's API after a webhook about it.
pub mod refresh;
/// `stack-sync replay`: re-applying recorded messages.
pub mod replay;
/// Pruning old recorded messages.
pub mod retention;
/// HTTP handlers.
pub mod routes;
/// Sample webhook bodies, one per event type.
pub mod samples;
/// The HTTP server loop: connection cap, timeouts, graceful shutdown.
pub mod server;
/// Svix signature verification, framework-free.
pub mod signature;
/// A client for Stack's server REST API.
pub mod stack_api;
/// Router, middleware stack, server lifecycle.
pub mod startup;
/// `stack-sync status`: the state of the mirror, from the database.
pub mod status;
/// Every SQL statement.
pub mod store;
/// Logging setup.
pub mod telemetry;
/// `stack-sync trigger`: signed sample events for trying the service locally.
pub mod trigger;
