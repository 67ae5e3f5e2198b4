//! Convergence: random histories of Stack changes, delivered as Svix may deliver them
//! (shuffled, retried under the same id, sent twice under a new id, concurrently), leave the
//! mirror equal to Stack's final state.
//!
//! `CONVERGENCE_HISTORIES` sets how many seeded histories run (default 200); a failure names
//! its seed, and `CONVERGENCE_SEED=<seed>` runs that one alone.

use futures::StreamExt;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, RngCore};
use stack_sync::event_time::{message_id_at, source_time};
use time::Duration;

use crate::support::TestApp;
use crate::support::stack_model::{Delivery, mirror_state, random_history};

const STEPS_PER_HISTORY: usize = 30;
const CONCURRENT_DELIVERIES: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_histories_converge_under_reordering_retries_and_duplicates() {
    let app = TestApp::spawn().await;
    for seed in seeds() {
        reset(&app).await;
        let mut rng = StdRng::seed_from_u64(seed);
        let (expected, history) = random_history(&mut rng, STEPS_PER_HISTORY);
        let deliveries = as_svix_delivers(&mut rng, history);

        deliver_concurrently(&app, &deliveries, seed).await;

        let mirrored = mirror_state(&app.db.pool).await;
        assert!(
            mirrored == expected,
            "seed {seed} did not converge; rerun alone with CONVERGENCE_SEED={seed}\n\
             expected: {expected:#?}\nmirrored: {mirrored:#?}"
        );
    }
}

fn seeds() -> Vec<u64> {
    let number = |name| {
        std::env::var(name)
            .ok()
            .map(|v: String| v.parse::<u64>().expect(name))
    };
    if let Some(seed) = number("CONVERGENCE_SEED") {
        return vec![seed];
    }
    let histories = number("CONVERGENCE_HISTORIES").unwrap_or(200);
    // A fresh base each run explores new histories; the failing seed is printed to rerun.
    let base = rand::rng().next_u64() >> 16;
    (base..base + histories).collect()
}

/// Svix's at-least-once, unordered delivery: some messages are retried (same id), some changes
/// are sent twice by Stack (a new id created a moment later), and everything is shuffled.
fn as_svix_delivers(rng: &mut StdRng, history: Vec<Delivery>) -> Vec<Delivery> {
    let mut deliveries = Vec::with_capacity(history.len() * 2);
    for delivery in history {
        if rng.random_bool(0.2) {
            deliveries.push(delivery.clone());
        }
        if rng.random_bool(0.1) {
            let created = source_time(&delivery.svix_id).unwrap() + Duration::milliseconds(1);
            deliveries.push(Delivery {
                svix_id: message_id_at(created),
                body: delivery.body.clone(),
            });
        }
        deliveries.push(delivery);
    }
    deliveries.shuffle(rng);
    deliveries
}

async fn deliver_concurrently(app: &TestApp, deliveries: &[Delivery], seed: u64) {
    futures::stream::iter(deliveries)
        .for_each_concurrent(CONCURRENT_DELIVERIES, |delivery| async move {
            let response = app
                .deliver(&delivery.svix_id, delivery.body.as_bytes())
                .await;
            assert_eq!(response.status(), 200, "seed {seed}: {}", delivery.body);
        })
        .await;
}

async fn reset(app: &TestApp) {
    sqlx::raw_sql(
        "truncate stack.users, stack.teams, stack.team_members, stack.team_permissions,
                  stack.project_permissions, stack.webhook_events, stack_sync.versions",
    )
    .execute(&app.db.pool)
    .await
    .unwrap();
}
