//! Integration tests: the real service over HTTP on loopback, against a real PostgreSQL, with
//! requests signed as Svix signs them.

mod binary;
mod changes;
mod connections;
mod convergence;
mod delivery;
mod deployment;
mod failures;
mod faults;
mod feed;
mod forward;
mod healthcheck;
mod hostile_inputs;
mod least_privilege;
mod mirror;
mod operations;
mod ordering;
mod personal_data;
mod poolers;
mod read_access;
mod reconcile;
mod recorded_bodies;
mod refresh;
mod rejections;
mod replay;
mod retention;
mod schema_guards;
mod shape;
mod shared_database;
mod sql_functions;
mod support;
mod tls;
mod trigger;
