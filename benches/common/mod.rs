//! What the benchmarks share: their knobs, a scratch database, `user.updated` bodies and a
//! mix of every event type, percentiles, and Postgres's CPU time.

#![allow(dead_code)] // each benchmark uses its own part

use std::time::Duration;

use serde_json::{Value, json};
use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection};
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
            .execute(AssertSqlSafe(format!("create database {name}")))
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
        self.admin.execute(AssertSqlSafe(sql)).await.unwrap();
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

/// The share of each event type in [`event_mix`], per 100 deliveries. An assumption, not a
/// measurement of any project: sign-ups and profile edits dominate, and team invitations bring
/// a membership and a permission each. `BENCHMARKS.md` reports this mix beside the
/// `user.updated`-only worst case.
pub const MIX: [(&str, usize); 12] = [
    ("user.created", 20),
    ("user.updated", 30),
    ("user.deleted", 2),
    ("team.created", 6),
    ("team.updated", 4),
    ("team.deleted", 1),
    ("team_membership.created", 12),
    ("team_membership.deleted", 3),
    ("team_permission.created", 12),
    ("team_permission.deleted", 3),
    ("project_permission.created", 6),
    ("project_permission.deleted", 1),
];

/// `events` deliveries in the proportions of [`MIX`], interleaved, built from the samples; with
/// `only`, the deliveries of that one type the mix would make, each id as the mix would pick it.
/// Updates and links touch `users` existing users and `users / 10` teams; created and deleted
/// users and teams get ids of their own. Message ids are 4 ms apart from `start`.
pub fn event_mix(
    events: usize,
    users: usize,
    start: OffsetDateTime,
    only: Option<&str>,
) -> Vec<(String, Value)> {
    let deck: Vec<&str> = MIX
        .iter()
        .flat_map(|(event_type, count)| std::iter::repeat_n(*event_type, *count))
        .collect();
    assert_eq!(deck.len(), 100);
    assert!(
        only.is_none_or(|only| deck.contains(&only)),
        "{only:?} is not in the mix"
    );
    let teams = (users / 10).max(1);
    let id = |range: u32, n: usize| format!("{range:08}-0000-4000-8000-{n:012}");
    (0..)
        // 37 is prime to 100, so each run of 100 deliveries deals the whole deck, spread out.
        .map(|n| (n, deck[(n * 37) % 100]))
        .filter(|(_, event_type)| only.is_none_or(|only| only == *event_type))
        .take(events)
        .map(|(n, event_type)| {
            let mut event = stack_sync::samples::sample(event_type).unwrap();
            let data = &mut event["data"];
            let (user, team) = (id(0, n % users), id(1, n % teams));
            match event_type {
                "user.created" => data["id"] = json!(id(2, n)),
                "user.updated" => {
                    data["id"] = json!(user);
                    data["display_name"] = json!(format!("user {n} at {start}"));
                }
                "user.deleted" => {
                    data["id"] = json!(id(3, n));
                    data["teams"] = json!([]);
                }
                "team.created" => data["id"] = json!(id(4, n)),
                "team.updated" => {
                    data["id"] = json!(team);
                    data["display_name"] = json!(format!("team {n}"));
                }
                "team.deleted" => data["id"] = json!(id(5, n)),
                _ => {
                    data["user_id"] = json!(user);
                    if data.get("team_id").is_some() {
                        data["team_id"] = json!(team);
                    }
                    if data.get("id").is_some() {
                        data["id"] = json!(format!("permission_{}", n % 5));
                    }
                }
            }
            let at = start + time::Duration::milliseconds(i64::try_from(n).unwrap() * 4);
            (stack_sync::event_time::message_id_at(at), event)
        })
        .collect()
}

/// The `p` quantile (0 to 1) of sorted `latencies`.
pub fn percentile(latencies: &[Duration], p: f64) -> Duration {
    latencies[((latencies.len() as f64 - 1.0) * p) as usize]
}

/// User and system CPU time of every `postgres` process, in seconds.
pub fn postgres_cpu_seconds() -> f64 {
    let mut ticks = 0u64;
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid ... utime stime: fields 14 and 15, counted after the comm.
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        if !head.ends_with("(postgres") {
            continue;
        }
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let field = |n: usize| fields[n - 3].parse::<u64>().unwrap_or(0);
        ticks += field(14) + field(15);
    }
    ticks as f64 / clock_ticks()
}

/// The kernel's clock ticks per second, the unit of the CPU times in `/proc/<pid>/stat`.
pub fn clock_ticks() -> f64 {
    let output = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .unwrap()
}
