//! `stack-sync replay`: re-applies recorded messages through the same path and guards as live
//! delivery, for example failed ones after a fix, and reports what each did.

use crate::model::Outcome;
use crate::store::RetryLater;
use crate::store::webhook_events::{StoredSelection, load_stored, select_stored};
use crate::sync::{Message, Mirror};

/// What replaying one message did.
#[derive(Debug)]
pub struct Replayed {
    pub svix_id: String,
    /// The payload's `type`, when it had one.
    pub event_type: Option<String>,
    /// The outcome recorded before the replay.
    pub previous: Outcome,
    pub outcome: Outcome,
}

/// Replays the messages `selection` picks, oldest change first, calling `report` after each.
/// Ids asked for by name but never recorded are returned.
pub async fn replay(
    mirror: &Mirror,
    selection: &StoredSelection,
    mut report: impl FnMut(&Replayed),
) -> Result<Vec<String>, RetryLater> {
    let ids = select_stored(&mirror.pool, selection).await?;
    for svix_id in &ids {
        // Loaded one at a time: a time range may cover many large bodies.
        let Some(stored) = load_stored(&mirror.pool, svix_id).await? else {
            continue; // pruned meanwhile
        };
        let message = Message {
            svix_id: &stored.svix_id,
            body: &stored.payload,
            replay: true,
            // It had been created when it was first received.
            created_by: stored.received_at,
        };
        let processed = mirror.process(message).await?;
        report(&Replayed {
            svix_id: stored.svix_id,
            event_type: processed.event_type,
            previous: stored.outcome,
            outcome: processed.outcome,
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
