//! Old recorded messages are pruned in small batches without holding up delivery.

use std::time::Duration;

use stack_sync::retention::prune;

use crate::support::{TestApp, example};

async fn insert_events(app: &TestApp, count: i32, age_days: i32) {
    sqlx::query(
        "insert into stack.webhook_events (svix_id, event_type, outcome, payload, received_at)
         select 'msg_old_' || $2 || '_' || n, 'stack.test', 'ignored', '', now() - make_interval(days => $2)
         from generate_series(1, $1) as n",
    )
    .bind(count)
    .bind(age_days)
    .execute(&app.db.pool)
    .await
    .unwrap();
}

#[tokio::test]
async fn only_messages_older_than_the_window_are_pruned_batch_by_batch() {
    let app = TestApp::spawn().await;
    insert_events(&app, 2500, 31).await;
    insert_events(&app, 10, 29).await;

    let pruned = prune(&app.db.pool, 30, 1000).await.unwrap();

    assert_eq!(pruned, 2500);
    assert_eq!(app.count("webhook_events").await, 10);
}

#[tokio::test]
async fn pruning_skips_rows_in_use_instead_of_waiting() {
    let app = TestApp::spawn().await;
    insert_events(&app, 3, 40).await;
    let mut holder = app.db.pool.begin().await.unwrap();
    sqlx::query("select 1 from stack.webhook_events where svix_id = 'msg_old_40_1' for update")
        .execute(&mut *holder)
        .await
        .unwrap();

    let pruned = tokio::time::timeout(Duration::from_secs(10), prune(&app.db.pool, 30, 1000))
        .await
        .expect("pruning must not wait for the locked row")
        .unwrap();

    assert_eq!(pruned, 2);
    holder.rollback().await.unwrap();
    assert_eq!(app.count("webhook_events").await, 1);
}

#[tokio::test]
async fn serve_prunes_in_the_background() {
    let app = TestApp::spawn_with(|s| {
        s.retention.days = Some(30);
        s.retention.interval = Duration::from_secs(1);
    })
    .await;
    insert_events(&app, 5, 60).await;
    let (recent, _) = app.deliver_event(&example("stack.test")).await;

    let mut left = app.count("webhook_events").await;
    for _ in 0..100 {
        if left == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        left = app.count("webhook_events").await;
    }

    assert_eq!(left, 1, "the old messages were pruned within 10 s");
    assert!(app.recorded_outcome(&recent).await.is_some());
}

#[tokio::test]
async fn versions_of_links_removed_before_the_window_go_and_tombstones_stay() {
    let app = TestApp::spawn().await;
    sqlx::raw_sql(
        "insert into stack_sync.versions (kind, key, source_time, deleted, removed_at, svix_id) values
           ('team_member', 'old-removed', now() - interval '31 days', true, now() - interval '31 days', 'm1'),
           ('team_permission', 'recently-removed', now() - interval '29 days', true, now() - interval '29 days', 'm2'),
           ('project_permission', 'old-granted', now() - interval '31 days', false, null, 'm3'),
           ('user', 'old-deleted-user', now() - interval '400 days', true, null, 'm4'),
           ('team', 'old-deleted-team', now() - interval '400 days', true, null, 'm5')",
    )
    .execute(&app.db.pool)
    .await
    .unwrap();

    let pruned = stack_sync::retention::prune_removed_links(&app.db.pool, 30, 1)
        .await
        .unwrap();

    assert_eq!(pruned, 1);
    let left: Vec<String> = sqlx::query_scalar("select key from stack_sync.versions order by key")
        .fetch_all(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(
        left,
        [
            "old-deleted-team",
            "old-deleted-user",
            "old-granted",
            "recently-removed"
        ]
    );
}
