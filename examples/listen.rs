//! Listens to stack-sync's change feed and prints each change: what an app does to react to its
//! users, teams, memberships and permissions changing.
//!
//! `DATABASE_URL=postgres://... cargo run --example listen [channel]` (the channel defaults to
//! `stack_sync`, the service's `feed.channel`; the service needs `feed.enabled = true`).
//!
//! The feed is a hint, the tables are the truth: notifications sent while this program was not
//! connected are gone, so after every (re)connection it re-reads what it needs from `stack.*`.

use serde::Deserialize;
use sqlx::PgPool;
use sqlx::postgres::PgListener;

/// One notification's payload.
#[derive(Debug, Deserialize)]
struct FeedChange {
    table: String,
    /// `upsert` or `delete` for users and teams, `insert` or `delete` for links.
    op: String,
    id: Option<String>,
    team_id: Option<String>,
    user_id: Option<String>,
    permission_id: Option<String>,
    /// `webhook` (with `svix_id`) or `reconcile` (with `run_id`).
    source: String,
}

#[tokio::main]
async fn main() -> Result<(), sqlx::Error> {
    let url = std::env::var("DATABASE_URL").expect("set DATABASE_URL to the mirror's database");
    let channel = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "stack_sync".to_owned());
    let pool = PgPool::connect(&url).await?;
    let mut listener = PgListener::connect_with(&pool).await?;
    listener.listen(&channel).await?;
    println!("listening on {channel}");
    catch_up(&pool).await?;
    loop {
        // `try_recv` answers `None` when the connection was lost; the listener reconnects and
        // listens again by itself on the next call, but what was sent meanwhile is lost.
        match listener.try_recv().await? {
            Some(notification) => {
                match serde_json::from_str::<FeedChange>(notification.payload()) {
                    Ok(change) => react(&change),
                    Err(err) => eprintln!("unexpected payload {:?}: {err}", notification.payload()),
                }
            }
            None => {
                println!("reconnected: notifications may have been missed");
                catch_up(&pool).await?;
            }
        }
    }
}

/// What an app does on a change; here, print it.
fn react(change: &FeedChange) {
    let ids: Vec<&str> = [
        &change.id,
        &change.team_id,
        &change.user_id,
        &change.permission_id,
    ]
    .into_iter()
    .flatten()
    .map(String::as_str)
    .collect();
    println!(
        "{} {} {} (from {})",
        change.table,
        change.op,
        ids.join(" "),
        change.source
    );
}

/// Re-reads the state the app keeps in step with, since notifications may have been missed.
/// A real app would, for example, reprovision users created since its last known `synced_at`
/// and purge data of everyone in `stack.deleted_users`.
async fn catch_up(pool: &PgPool) -> Result<(), sqlx::Error> {
    let (users, deleted): (i64, i64) = sqlx::query_as(
        "select (select count(*) from stack.users), (select count(*) from stack.deleted_users)",
    )
    .fetch_one(pool)
    .await?;
    println!("caught up: {users} users mirrored, {deleted} deleted");
    Ok(())
}
