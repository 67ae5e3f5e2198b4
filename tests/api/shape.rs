//! `stack.users` and `stack.teams` hold exactly the fields the service defines, each filled from
//! its field: checked over every column of the tables as the database has them.

use sqlx::AssertSqlSafe;
use std::collections::BTreeMap;

use serde_json::{Value, json};
use stack_sync::model::fields::{BOOKKEEPING_COLUMNS, Field, TEAM_FIELDS, USER_FIELDS};

use crate::support::payloads::new_id;
use crate::support::{TestApp, example};

/// Column name to `information_schema` data type, as the migrations left the table.
async fn columns_of(app: &TestApp, table: &str) -> BTreeMap<String, String> {
    sqlx::query_as(
        "select column_name::text, data_type::text from information_schema.columns
         where table_schema = 'stack' and table_name = $1",
    )
    .bind(table)
    .fetch_all(&app.db.pool)
    .await
    .unwrap()
    .into_iter()
    .collect()
}

#[tokio::test]
async fn every_column_of_users_and_teams_is_a_field_of_its_type_and_back() {
    let app = TestApp::spawn().await;
    for (table, fields) in [("users", USER_FIELDS), ("teams", TEAM_FIELDS)] {
        let mut expected: BTreeMap<String, String> = fields
            .iter()
            .map(|f| (f.column().to_owned(), f.field_type.column_type().to_owned()))
            .collect();
        let in_table = columns_of(&app, table).await;
        for column in BOOKKEEPING_COLUMNS {
            expected.insert(column.to_owned(), in_table[column].clone());
        }
        assert_eq!(in_table, expected, "stack.{table}");
    }
}

/// A value of the column's type for a field the example leaves null, so that every column of
/// the written row must hold something.
fn filler(field: &Field) -> Value {
    match field.field_type.column_type() {
        "uuid" => json!(new_id()),
        "text" => json!(format!("some {}", field.name)),
        "boolean" => json!(true),
        "timestamp with time zone" => json!(1_700_000_000_123_i64),
        _ => json!([{ "filled": field.name }]),
    }
}

/// The example `data` of `event_type` with every field the service knows set.
fn fully_set(event_type: &str, fields: &[Field]) -> Value {
    let mut event = example(event_type);
    for field in fields {
        if event["data"][field.name].is_null() {
            event["data"][field.name] = filler(field);
        }
    }
    event
}

/// The columns of the row `id` of `table` whose value is not what `raw` holds for its field
/// (`<column>`, or `<column>_millis` as a time).
async fn columns_differing_from_raw(app: &TestApp, table: &str, id: &str) -> Vec<String> {
    let sql = format!(
        "select c.key
         from stack.{table} t,
              jsonb_each(to_jsonb(t) - 'raw' - 'synced_at' - 'svix_id') as c
         where t.id = $1::uuid
           and (c.value = 'null'
                or c.value is distinct from coalesce(
                    t.raw -> c.key,
                    to_jsonb(timestamptz 'epoch'
                             + (t.raw ->> (c.key || '_millis'))::bigint * interval '1 ms')))
         order by c.key"
    );
    sqlx::query_scalar(AssertSqlSafe(sql.as_str()))
        .bind(id)
        .fetch_all(&app.db.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn every_column_is_filled_from_its_field() {
    let app = TestApp::spawn().await;
    for (event_type, table, fields) in [
        ("user.updated", "users", USER_FIELDS),
        ("team.updated", "teams", TEAM_FIELDS),
    ] {
        let event = fully_set(event_type, fields);
        let (_, status) = app.deliver_event(&event).await;
        assert_eq!(status, "applied", "{event_type}");

        let id = event["data"]["id"].as_str().unwrap();
        let differing = columns_differing_from_raw(&app, table, id).await;
        assert_eq!(differing, Vec::<String>::new(), "stack.{table}");
    }
}
