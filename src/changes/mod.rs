//! The change log's consumers inside the service: switching the log on for every writer,
//! `stack-sync changes` (reading and following it), and the forwarder to NATS JetStream
//! ([`forward`]). The log itself is written by the SQL functions (`stack_sync.notify`).

pub mod forward;

use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgListener;

use crate::model::Position;
use crate::store::changes::{self, LoggedChange};

/// How long a follower waits for a notification before looking anyway.
const FOLLOW_POLL: Duration = Duration::from_secs(1);

/// Changes read per query.
const BATCH: i64 = 500;

/// Sets `stack_sync.change_log` to `enabled`, retrying until the database takes it.
pub async fn switch_log(pool: PgPool, enabled: bool) {
    let mut wait = Duration::from_secs(1);
    loop {
        match changes::set_enabled(&pool, enabled).await {
            Ok(()) => return,
            Err(err) => {
                tracing::warn!(error = %err, enabled, "setting changes.enabled in the database failed; retrying");
            }
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(30));
    }
}

/// Hands every settled change after `from` to `each`, in order; with `feed_channel`, keeps
/// following: woken by the change feed's notifications, and looking every second regardless
/// (a notification may be missed while reconnecting, or the feed be off).
pub async fn read(
    pool: &PgPool,
    from: Position,
    follow: Option<Option<&str>>,
    mut each: impl FnMut(&LoggedChange),
) -> Result<(), sqlx::Error> {
    let mut listener = match follow.flatten() {
        Some(channel) => {
            let mut listener = PgListener::connect_with(pool).await?;
            listener.listen(channel).await?;
            Some(listener)
        }
        None => None,
    };
    let mut after = from;
    loop {
        let batch = changes::after(pool, after, BATCH).await?;
        for change in &batch {
            each(change);
            after = change.position();
        }
        if batch.len() as i64 == BATCH {
            continue;
        }
        if follow.is_none() {
            return Ok(());
        }
        match &mut listener {
            Some(listener) => {
                let _ = tokio::time::timeout(FOLLOW_POLL, listener.try_recv()).await;
            }
            None => tokio::time::sleep(FOLLOW_POLL).await,
        }
    }
}
