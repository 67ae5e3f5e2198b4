//! What the benchmarks share: their knobs, a scratch database, `user.updated` bodies, and
//! percentiles.

#![allow(dead_code)] // each benchmark uses its own part

use std::time::Duration;

use serde_json::{Value, json};
use sqlx::{Connection, Executor, PgConnection};
use time::OffsetDateTime;

/// The value of the environment variable `name`, or `default`.
pub fn knob(name: &str, default: usize) -> usize {
    std::env::var(name).map_or(default, |v| v.parse().expect(name))
}

/// A database of its own on the server named by `DATABASE_URL`, dropped by [`Scratch::drop_it`].
pub struct Scratch {
    admin: PgConnection,
    name: String,
    pub url: String,
}

impl Scratch {
    pub async fn create(prefix: &str) -> Self {
        let server = std::env::var("DATABASE_URL").expect("set DATABASE_URL to a Postgres server");
        let name = format!("{prefix}_{}", std::process::id());
        let mut admin = PgConnection::connect(&server).await.unwrap();
        admin
            .execute(format!("create database {name}").as_str())
            .await
            .unwrap();
        let mut url = url::Url::parse(&server).unwrap();
        url.set_path(&name);
        Self {
            admin,
            name,
            url: url.to_string(),
        }
    }

    pub async fn drop_it(mut self) {
        let sql = format!("drop database {} with (force)", self.name);
        self.admin.execute(sql.as_str()).await.unwrap();
    }
}

/// `events` user.updated `(message id, body)` pairs over `users` users, each with a distinct
/// display name and a message id created 4 ms after the previous one, from `start`.
pub fn user_updates(events: usize, users: usize, start: OffsetDateTime) -> Vec<(String, Value)> {
    let template = stack_sync::samples::sample("user.updated").unwrap();
    let ids: Vec<String> = (0..users)
        .map(|n| format!("00000000-0000-4000-8000-{n:012}"))
        .collect();
    (0..events)
        .map(|n| {
            let mut event = template.clone();
            event["data"]["id"] = json!(ids[n % users]);
            event["data"]["display_name"] = json!(format!("user {n} at {start}"));
            let at = start + time::Duration::milliseconds(i64::try_from(n).unwrap() * 4);
            (stack_sync::event_time::message_id_at(at), event)
        })
        .collect()
}

/// The `p` quantile (0 to 1) of sorted `latencies`.
pub fn percentile(latencies: &[Duration], p: f64) -> Duration {
    latencies[((latencies.len() as f64 - 1.0) * p) as usize]
}
