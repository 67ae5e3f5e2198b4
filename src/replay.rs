//! `stack-sync replay`: re-applies recorded messages through the same path and guards as live
//! delivery, for example failed ones after a fix, and reports what each did.

use crate::delivery::{Message, Mirror};
use crate::model::Outcome;
use crate::store::RetryLater;
use crate::store::webhook_events::{RecordedBody, StoredSelection, load_stored, select_stored};

/// What replaying one message did.
#[derive(Debug)]
pub struct Replayed {
    pub svix_id: String,
    /// The payload's `type`, when it had one.
    pub event_type: Option<String>,
    /// The outcome recorded before the replay.
    pub previous: Outcome,
    /// The outcome now, or why the message could not be replayed: it has no body.
    pub outcome: Result<Outcome, String>,
}

/// Replays the messages `selection` picks, oldest change first, calling `report` after each.
/// Ids asked for by name but never recorded are returned.
pub async fn replay(
    mirror: &Mirror,
    selection: &StoredSelection,
    mut report: impl FnMut(&Replayed),
) -> Result<Vec<String>, RetryLater> {
    let ids = select_stored(&mirror.pool, selection)
        .await
        .map_err(RetryLater)?;
    for svix_id in &ids {
        // Loaded one at a time: a time range may cover many large bodies.
        let stored = load_stored(&mirror.pool, svix_id)
            .await
            .map_err(RetryLater)?;
        let Some(stored) = stored else {
            continue; // pruned meanwhile
        };
        let RecordedBody::Kept(body) = &stored.body else {
            let because = stored.body.missing_because().unwrap_or_default();
            report(&Replayed {
                svix_id: stored.svix_id,
                event_type: stored.event_type,
                previous: stored.outcome,
                outcome: Err(because),
            });
            continue;
        };
        let processed = mirror.process(Message::replayed(&stored, body)).await?;
        report(&Replayed {
            svix_id: stored.svix_id,
            event_type: processed.event_type,
            previous: stored.outcome,
            outcome: Ok(processed.outcome),
        });
    }
    let missing = selection
        .ids
        .iter()
        .flatten()
        .filter(|id| !ids.contains(id))
        .cloned()
        .collect();
    Ok(missing)
}
