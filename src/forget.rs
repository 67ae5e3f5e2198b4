//! `stack-sync forget` and `POST /forget/…`: erasing a user or team from the mirror on request,
//! with every recorded body about them, whether or not Stack has deleted them.

use uuid::Uuid;

use crate::events::Subject;
use crate::model::Kind;
use crate::store::erasure::{self, Forgotten};
use crate::store::stored_body;

/// Forgets `id` (a user or a team): `stack_sync.forget`, then the bodies that did not name
/// their subject when recorded, read one by one for `id`.
pub async fn forget(
    pool: &sqlx::PgPool,
    kind: Kind,
    id: Uuid,
    feed_channel: Option<&str>,
) -> Result<Forgotten, sqlx::Error> {
    let mut forgotten = erasure::forget(pool, kind, id, feed_channel).await?;
    let about_id: Vec<String> = erasure::unattributed_bodies(pool)
        .await?
        .into_iter()
        .filter(|row| {
            // A body that cannot be decoded cannot be read for ids either; it stays.
            stored_body::decode(row.payload.clone(), row.payload_encoding.as_deref())
                .is_ok_and(|body| names(Subject::of(&body), kind, id))
        })
        .map(|row| row.svix_id)
        .collect();
    let erased = erasure::erase_forgotten(pool, &about_id).await?;
    forgotten.bodies_erased += i64::try_from(erased).unwrap_or(i64::MAX);
    Ok(forgotten)
}

fn names(subject: Subject, kind: Kind, id: Uuid) -> bool {
    match kind {
        Kind::User => subject.user_id == Some(id),
        Kind::Team => subject.team_id == Some(id),
        _ => false,
    }
}
