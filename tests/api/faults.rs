//! Faults under load, against the real binary: the database dying and coming back, and replicas
//! killed and stopped mid-run. The senders behave like Svix: every delivery not answered 2xx is
//! retried, signed anew, until it is.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use serde_json::{Value, json};
use sqlx::AssertSqlSafe;
use sqlx::PgPool;
use tokio::sync::Mutex;

use crate::support::postgres::{PrivateCluster, TestDb};
use crate::support::serve_process::ServeProcess;
use crate::support::signing::{Signer, now};
use crate::support::{TestApp, example};

/// How long a sender keeps retrying one message before the test gives up on it.
const DELIVERY_DEADLINE: Duration = Duration::from_secs(120);
/// The pause between attempts; Svix waits longer, which would only make the tests slower.
const RETRY_PAUSE: Duration = Duration::from_millis(100);

/// One message: its Svix id and its body.
#[derive(Clone)]
struct Message {
    id: String,
    body: String,
}

/// `count` user sign-ups, with ids created a millisecond apart.
fn signups(count: usize) -> Vec<Message> {
    let start = time::OffsetDateTime::now_utc() - time::Duration::minutes(1);
    (0..count)
        .map(|i| {
            let mut event = example("user.created");
            event["data"]["id"] = json!(uuid::Uuid::new_v4());
            event["data"]["display_name"] = json!(format!("user {i}"));
            Message {
                id: message_id_at(start, i),
                body: event.to_string(),
            }
        })
        .collect()
}

fn message_id_at(start: time::OffsetDateTime, index: usize) -> String {
    let millis = i64::try_from(index).unwrap();
    stack_sync::event_time::message_id_at(start + time::Duration::milliseconds(millis))
}

/// Sends `message` to whatever address `target` holds until it is answered 2xx, signing each
/// attempt anew; returns the outcome the service gave.
async fn deliver_until_accepted(
    client: &reqwest::Client,
    target: &Mutex<String>,
    message: &Message,
) -> String {
    let signer = Signer::default();
    let started = Instant::now();
    loop {
        assert!(
            started.elapsed() < DELIVERY_DEADLINE,
            "message {} was never accepted",
            message.id
        );
        let address = target.lock().await.clone();
        let timestamp = now();
        let attempt = client
            .post(format!("http://{address}/webhooks/stack"))
            .header("svix-id", &message.id)
            .header("svix-timestamp", timestamp.to_string())
            .header(
                "svix-signature",
                signer.signature(&message.id, timestamp, message.body.as_bytes()),
            )
            .timeout(Duration::from_secs(15))
            .body(message.body.clone())
            .send()
            .await;
        if let Ok(response) = attempt
            && response.status().is_success()
            && let Ok(answer) = response.json::<Value>().await
        {
            return answer["status"].as_str().unwrap_or_default().to_owned();
        }
        tokio::time::sleep(RETRY_PAUSE).await;
    }
}

async fn outcomes(pool: &PgPool) -> BTreeMap<String, i64> {
    sqlx::query_as::<_, (String, i64)>(
        "select outcome, count(*) from stack.webhook_events group by outcome",
    )
    .fetch_all(pool)
    .await
    .unwrap()
    .into_iter()
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_under_load_loses_nothing_and_applies_nothing_twice() {
    let cluster = PrivateCluster::start();
    let service = ServeProcess::start_with_url(
        &cluster.url(),
        &[("STACK_SYNC_DATABASE__ACQUIRE_TIMEOUT_SECS", "1")],
    );
    let target = Mutex::new(service.address.clone());
    let messages = signups(300);
    let accepted = AtomicUsize::new(0);
    let answers = Mutex::new(Vec::new());

    let senders = futures::stream::iter(&messages).for_each_concurrent(8, |message| async {
        let outcome = deliver_until_accepted(&service.client, &target, message).await;
        answers.lock().await.push(outcome);
        accepted.fetch_add(1, Ordering::SeqCst);
    });
    let outage = async {
        while accepted.load(Ordering::SeqCst) < messages.len() / 3 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        cluster.stop_hard();
        let probe = signups(1).remove(0);
        let (probe_status, probe_took) = timed_probe(&service, &probe).await;
        let ready = service.status_of("/readyz").await;
        // Deliveries that committed just before the crash are still being answered; after
        // that, nothing may be.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let during = accepted.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_secs(3)).await;
        let accepted_while_down = accepted.load(Ordering::SeqCst) - during;
        cluster.resume();
        (probe_status, probe_took, ready, accepted_while_down)
    };
    let ((), (probe_status, probe_took, ready_during, accepted_while_down)) =
        tokio::join!(senders, outage);

    assert_eq!(probe_status, 503, "a delivery during the outage");
    // Svix gives up on an attempt after 15 s; an answer must come well before.
    assert!(
        probe_took < Duration::from_secs(5),
        "503 took {probe_took:?}"
    );
    assert_eq!(ready_during, 503, "/readyz during the outage");
    assert_eq!(
        accepted_while_down, 0,
        "nothing is accepted without a database"
    );
    assert_eq!(service.status_of("/readyz").await, 200, "ready again");
    let pool = PgPool::connect(&cluster.url()).await.unwrap();
    let recorded = outcomes(&pool).await;
    assert_eq!(recorded, BTreeMap::from([("applied".to_owned(), 300)]));
    let users: i64 = sqlx::query_scalar("select count(*) from stack.users")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(users, 300);
    let answers = answers.into_inner();
    let applied = answers
        .iter()
        .filter(|outcome| *outcome == "applied")
        .count();
    let duplicate = answers
        .iter()
        .filter(|outcome| *outcome == "duplicate")
        .count();
    assert_eq!(applied + duplicate, 300, "{answers:?}");
    eprintln!("outage: 300 messages, {applied} answered applied, {duplicate} duplicate");
    pool.close().await;
}

/// A signed delivery of `message` to `service`: its status and how long the answer took.
async fn timed_probe(service: &ServeProcess, message: &Message) -> (u16, Duration) {
    let timestamp = now();
    let signature = Signer::default().signature(&message.id, timestamp, message.body.as_bytes());
    let started = Instant::now();
    let response = service
        .post(&message.id, timestamp, &signature, &message.body)
        .await;
    (response.status().as_u16(), started.elapsed())
}

/// A project's life as webhooks, ids a millisecond apart: sign-ups, teams, memberships,
/// permissions, renames, removals and deletions. Every message changes what it is about, so the
/// final tables do not depend on which of two equal writes came last.
fn project_history(seed: u64) -> Vec<Message> {
    let mut rng = StdRng::seed_from_u64(seed);
    let users: Vec<String> = (0..30).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    let teams: Vec<String> = (0..10).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    let mut events = Vec::new();
    for (i, user) in users.iter().enumerate() {
        events.push(event(
            "user.created",
            json!({ "id": user, "display_name": format!("user {i}") }),
        ));
    }
    for (i, team) in teams.iter().enumerate() {
        events.push(event(
            "team.created",
            json!({ "id": team, "display_name": format!("team {i}") }),
        ));
    }
    let mut members = Vec::new();
    while members.len() < 40 {
        let pair = (
            teams.choose(&mut rng).unwrap(),
            users.choose(&mut rng).unwrap(),
        );
        if !members.contains(&pair) {
            members.push(pair);
            events.push(event(
                "team_membership.created",
                json!({ "team_id": pair.0, "user_id": pair.1 }),
            ));
        }
    }
    for (team, user) in &members[..20] {
        events.push(event(
            "team_permission.created",
            json!({ "id": "team_member", "team_id": team, "user_id": user }),
        ));
    }
    for user in &users[..15] {
        events.push(event(
            "project_permission.created",
            json!({ "id": "read_secret_info", "user_id": user }),
        ));
    }
    for (i, user) in users[..20].iter().enumerate() {
        events.push(event(
            "user.updated",
            json!({ "id": user, "display_name": format!("renamed {i}") }),
        ));
    }
    for (team, user) in &members[30..] {
        events.push(event(
            "team_membership.deleted",
            json!({ "team_id": team, "user_id": user }),
        ));
    }
    for user in &users[25..] {
        events.push(event("user.deleted", json!({ "id": user, "teams": [] })));
    }
    for team in &teams[8..] {
        events.push(event("team.deleted", json!({ "id": team })));
    }
    let start = time::OffsetDateTime::now_utc() - time::Duration::minutes(1);
    events
        .into_iter()
        .enumerate()
        .map(|(i, body)| Message {
            id: message_id_at(start, i),
            body: body.to_string(),
        })
        .collect()
}

/// An event of `event_type` whose data is the example's, with `fields` over it.
fn event(event_type: &str, fields: Value) -> Value {
    let mut event = example(event_type);
    for (key, value) in fields.as_object().unwrap() {
        event["data"][key] = value.clone();
    }
    event
}

/// Every mirror table and view, each row without `synced_at` (the only column that says when
/// rather than what), in a stable order.
async fn mirror_snapshot(pool: &PgPool) -> Value {
    let mut snapshot = serde_json::Map::new();
    for table in [
        "users",
        "teams",
        "team_members",
        "team_permissions",
        "project_permissions",
        "deleted_users",
        "deleted_teams",
    ] {
        let rows: Value = sqlx::query_scalar(AssertSqlSafe(format!(
            "select coalesce(jsonb_agg(r order by r::text), '[]')
             from (select to_jsonb(t) - 'synced_at' as r from stack.{table} t) rows"
        )))
        .fetch_one(pool)
        .await
        .unwrap();
        snapshot.insert(table.to_owned(), rows);
    }
    Value::Object(snapshot)
}

/// How a replica is interrupted once its sender has had this share of messages accepted.
#[derive(Clone, Copy, PartialEq)]
enum Interruption {
    None,
    Kill,
    Terminate,
}

/// One replica's run: its process (replaced when restarted) and the address its sender uses.
struct Replica {
    process: Mutex<ServeProcess>,
    address: Mutex<String>,
    accepted: AtomicUsize,
}

impl Replica {
    fn start(db: &TestDb) -> Self {
        let process = ServeProcess::start(db, &[]);
        Self {
            address: Mutex::new(process.address.clone()),
            process: Mutex::new(process),
            accepted: AtomicUsize::new(0),
        }
    }

    /// Interrupts the process once `after` messages were accepted, waits a second, and starts
    /// a new one in its place.
    async fn interrupt(&self, db: &TestDb, how: Interruption, after: usize) {
        if how == Interruption::None {
            return;
        }
        while self.accepted.load(Ordering::SeqCst) < after {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let mut process = self.process.lock().await;
        let signal = if how == Interruption::Kill {
            "-KILL"
        } else {
            "-TERM"
        };
        let pid = process.child.id().to_string();
        assert!(
            std::process::Command::new("kill")
                .args([signal, &pid])
                .status()
                .unwrap()
                .success()
        );
        let _ = process.child.wait();
        tokio::time::sleep(Duration::from_secs(1)).await;
        *process = ServeProcess::start(db, &[]);
        *self.address.lock().await = process.address.clone();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_killed_and_stopped_mid_run_record_each_message_once() {
    let messages = project_history(7);
    let reference = TestApp::spawn().await;
    for message in &messages {
        let response = reference
            .deliver(&message.id, message.body.as_bytes())
            .await;
        assert_eq!(response.status(), 200);
    }
    let expected = mirror_snapshot(&reference.db.pool).await;

    let db = TestDb::new().await;
    let replicas = [
        Replica::start(&db),
        Replica::start(&db),
        Replica::start(&db),
    ];
    let interruptions = [
        Interruption::None,
        Interruption::Kill,
        Interruption::Terminate,
    ];
    let early_answers = AtomicUsize::new(0);
    let runs = replicas
        .iter()
        .zip(interruptions)
        .enumerate()
        .map(|(index, (replica, how))| {
            let mut order = messages.clone();
            order.shuffle(&mut StdRng::seed_from_u64(index as u64));
            let client = reqwest::Client::new();
            let (db, early_answers) = (&db, &early_answers);
            let sender = async move {
                futures::stream::iter(order)
                    .for_each_concurrent(4, |message| {
                        let client = client.clone();
                        async move {
                            deliver_until_accepted(&client, &replica.address, &message).await;
                            if !is_recorded(&db.pool, &message.id).await {
                                early_answers.fetch_add(1, Ordering::SeqCst);
                            }
                            replica.accepted.fetch_add(1, Ordering::SeqCst);
                        }
                    })
                    .await;
            };
            let after = messages.len() / (index + 1);
            async move { tokio::join!(sender, replica.interrupt(db, how, after / 2)) }
        });
    futures::future::join_all(runs).await;

    assert_eq!(
        early_answers.load(Ordering::SeqCst),
        0,
        "2xx before the commit"
    );
    let recorded: i64 = sqlx::query_scalar("select count(*) from stack.webhook_events")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(
        recorded,
        messages.len() as i64,
        "each message recorded once"
    );
    assert_eq!(mirror_snapshot(&db.pool).await, expected);
    eprintln!(
        "replicas: {} messages x 3 replicas, 1 killed, 1 stopped",
        messages.len()
    );
}

async fn is_recorded(pool: &PgPool, id: &str) -> bool {
    sqlx::query_scalar("select exists (select 1 from stack.webhook_events where svix_id = $1)")
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap()
}
