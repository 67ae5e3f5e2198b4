//! The version and tombstone functions of `sql/functions/`, called directly: what each returns
//! and what it leaves in `stack_sync.versions` and the mirror.

use sqlx::AssertSqlSafe;
use sqlx::PgPool;
use stack_sync::model::Key;
use time::OffsetDateTime;
use time::macros::datetime;
use uuid::Uuid;

use crate::support::postgres::TestDb;

const EARLY: OffsetDateTime = datetime!(2026-04-20 13:00:00 UTC);
const LATE: OffsetDateTime = datetime!(2026-04-20 13:00:01 UTC);
const LATER: OffsetDateTime = datetime!(2026-04-20 13:00:02 UTC);

/// A version row: source time, deleted, removed_at, svix_id.
type Version = (OffsetDateTime, bool, Option<OffsetDateTime>, String);

async fn version(pool: &PgPool, kind: &str, key: &str) -> Option<Version> {
    sqlx::query_as(
        "select source_time, deleted, removed_at, svix_id from stack_sync.versions
         where kind = $1 and key = $2",
    )
    .bind(kind)
    .bind(key)
    .fetch_optional(pool)
    .await
    .unwrap()
}

async fn advance(pool: &PgPool, key: &str, at: OffsetDateTime, deleted: bool, id: &str) -> bool {
    sqlx::query_scalar("select stack_sync.advance('team_member', $1, $2, $3, $4)")
        .bind(key)
        .bind(at)
        .bind(deleted)
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn bury(pool: &PgPool, key: &str, at: OffsetDateTime, id: &str) -> bool {
    sqlx::query_scalar("select stack_sync.bury('user', $1, $2, $3)")
        .bind(key)
        .bind(at)
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// `stack_sync.change_link` for a team permission or membership of `user` in `team`.
async fn change_link(
    pool: &PgPool,
    kind: &str,
    removed: bool,
    (team, user): (Uuid, Uuid),
    at: OffsetDateTime,
    id: &str,
) -> String {
    let permission = (kind == "team_permission").then_some("team_admin");
    sqlx::query_scalar(
        "select stack_sync.change_link(
             row($1::stack_sync.kind, $2, $3, $4, $5, null, null)::stack_sync.change, $6, $7
         )",
    )
    .bind(kind)
    .bind(removed)
    .bind(user)
    .bind(team)
    .bind(permission)
    .bind(at)
    .bind(id)
    .fetch_one(pool)
    .await
    .unwrap()
}

async fn count(pool: &PgPool, table: &str) -> i64 {
    sqlx::query_scalar(AssertSqlSafe(format!("select count(*) from stack.{table}")))
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn advance_moves_only_forward_and_ties_go_to_the_later_arrival() {
    let db = TestDb::new().await;
    let pool = &db.pool;

    assert!(advance(pool, "k", LATE, false, "first").await);
    assert!(!advance(pool, "k", EARLY, false, "older").await);
    assert_eq!(
        version(pool, "team_member", "k").await,
        Some((LATE, false, None, "first".to_owned()))
    );
    assert!(advance(pool, "k", LATE, true, "same time").await);
    assert_eq!(
        version(pool, "team_member", "k").await,
        Some((LATE, true, Some(LATE), "same time".to_owned()))
    );
}

#[tokio::test]
async fn advance_notes_a_stale_removal_without_moving() {
    let db = TestDb::new().await;
    let pool = &db.pool;

    assert!(advance(pool, "k", LATER, false, "re-added").await);
    assert!(!advance(pool, "k", LATE, true, "old removal").await);
    assert_eq!(
        version(pool, "team_member", "k").await,
        Some((LATER, false, Some(LATE), "re-added".to_owned()))
    );
    // An even older removal does not move the noted one back.
    assert!(!advance(pool, "k", EARLY, true, "older removal").await);
    let (_, _, removed_at, _) = version(pool, "team_member", "k").await.unwrap();
    assert_eq!(removed_at, Some(LATE));
}

/// The version row's `xmin`: it changes whenever the row is written.
async fn row_version(pool: &PgPool, key: &str) -> String {
    sqlx::query_scalar("select xmin::text from stack_sync.versions where key = $1")
        .bind(key)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_stale_event_writes_no_version() {
    let db = TestDb::new().await;
    let pool = &db.pool;
    assert!(advance(pool, "k", LATER, false, "newer").await);
    assert!(!advance(pool, "k", LATE, true, "removal").await);
    let written = row_version(pool, "k").await;

    assert!(!advance(pool, "k", EARLY, false, "older grant").await);
    assert!(!advance(pool, "k", EARLY, true, "older removal").await);

    assert_eq!(
        row_version(pool, "k").await,
        written,
        "the row was rewritten"
    );
}

#[tokio::test]
async fn the_message_a_version_holds_still_moves_it_when_replayed_with_an_earlier_time() {
    // Replay takes the earlier of the id's time and the arrival; the version is still its own.
    let db = TestDb::new().await;
    let pool = &db.pool;
    assert!(advance(pool, "k", LATE, false, "message").await);

    assert!(advance(pool, "k", EARLY, false, "message").await);
    assert!(!advance(pool, "k", EARLY, false, "another").await);
    assert_eq!(
        version(pool, "team_member", "k").await,
        Some((LATE, false, None, "message".to_owned()))
    );
}

#[tokio::test]
async fn bury_is_final_whatever_the_time_and_happens_once() {
    let db = TestDb::new().await;
    let pool = &db.pool;
    let key = Uuid::new_v4().to_string();

    sqlx::query("select stack_sync.advance('user', $1, $2, false, 'update')")
        .bind(&key)
        .bind(LATE)
        .execute(pool)
        .await
        .unwrap();
    // Older than the last update, as an asynchronously sent deletion can be: it still buries.
    assert!(bury(pool, &key, EARLY, "deletion").await);
    assert_eq!(
        version(pool, "user", &key).await,
        Some((LATE, true, Some(EARLY), "deletion".to_owned()))
    );
    assert!(!bury(pool, &key, LATER, "deletion again").await);
    let (_, deleted, _, svix_id) = version(pool, "user", &key).await.unwrap();
    assert!(deleted);
    assert_eq!(svix_id, "deletion");
}

#[tokio::test]
async fn change_link_grants_removes_and_guards_each_link() {
    let db = TestDb::new().await;
    let pool = &db.pool;
    let ids = (Uuid::new_v4(), Uuid::new_v4());

    let grant = |kind, at, id| change_link(pool, kind, false, ids, at, id);
    assert_eq!(grant("team_member", EARLY, "m1").await, "applied");
    assert_eq!(grant("team_permission", EARLY, "p1").await, "applied");
    assert_eq!(grant("team_member", EARLY, "m1 again").await, "unchanged");
    assert_eq!(count(pool, "team_permissions").await, 1);

    // Removing the member takes the permission granted before, as Stack does silently.
    let removal = change_link(pool, "team_member", true, ids, LATE, "m2").await;
    assert_eq!(removal, "applied");
    assert_eq!(count(pool, "team_members").await, 0);
    assert_eq!(count(pool, "team_permissions").await, 0);
    // A grant older than that removal went with the membership.
    assert_eq!(grant("team_permission", EARLY, "p0").await, "stale");
    assert_eq!(count(pool, "team_permissions").await, 0);
    assert_eq!(grant("team_member", LATER, "m3").await, "applied");
}

#[tokio::test]
async fn change_link_leaves_links_of_a_buried_user_alone() {
    let db = TestDb::new().await;
    let pool = &db.pool;
    let ids = (Uuid::new_v4(), Uuid::new_v4());
    assert!(bury(pool, &ids.1.to_string(), EARLY, "deleted").await);

    let grant = change_link(pool, "team_member", false, ids, LATE, "m1").await;
    let removal = change_link(pool, "team_member", true, ids, LATE, "m2").await;

    assert_eq!((grant.as_str(), removal.as_str()), ("stale", "unchanged"));
    assert_eq!(count(pool, "team_members").await, 0);
}

#[tokio::test]
async fn a_kind_the_functions_do_not_know_is_a_data_exception() {
    let db = TestDb::new().await;
    let result: Result<String, _> = sqlx::query_scalar(
        "select stack_sync.change_mirror(
             row('session', false, null, null, null, null, null)::stack_sync.change, now(), 'm'
         )",
    )
    .fetch_one(&db.pool)
    .await;
    let err = result.unwrap_err();
    let code = err.as_database_error().and_then(|db| db.code());
    // 22P02 now: the kind is a Postgres enum, which refuses the label before any function runs.
    assert!(
        code.as_deref().is_some_and(|code| code.starts_with("22")),
        "{err}"
    );
}

#[tokio::test]
async fn keys_are_spelled_alike_in_sql_and_rust() {
    let db = TestDb::new().await;
    let (team, user) = (Uuid::new_v4(), Uuid::new_v4());
    let permission = "a/b:c".to_owned();
    for key in [
        Key::User(user),
        Key::Team(team),
        Key::TeamMember {
            team_id: team,
            user_id: user,
        },
        Key::TeamPermission {
            team_id: team,
            user_id: user,
            permission_id: permission.clone(),
        },
        Key::ProjectPermission {
            user_id: user,
            permission_id: permission.clone(),
        },
    ] {
        let in_sql: String = sqlx::query_scalar("select stack_sync.key_of($1, $2, $3, $4)")
            .bind(key.kind())
            .bind(key.user_id())
            .bind(key.team_id())
            .bind(key.permission_id())
            .fetch_one(&db.pool)
            .await
            .unwrap();
        assert_eq!(in_sql, key.to_string(), "{key:?}");
    }
}
