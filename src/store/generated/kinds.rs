//! The functions that follow from the kinds of row (`Kind::info`): what names a row, where it
//! lives, and how a membership or permission is added, removed and announced. One branch per
//! kind, rendered into a template, so that a new kind is a new entry in `Kind::info` and a
//! bless, not five hand-written branches.

use crate::model::{KeyPart, Kind};

/// Every function rendered here: file name (without `.sql`) and definition.
pub fn rendered() -> [(&'static str, String); 5] {
    [
        ("key_of", key_of()),
        ("mirrored", mirrored()),
        ("insert_link", insert_link()),
        ("delete_link", delete_link()),
        ("notify_link", notify_link()),
    ]
}

const HEADER: &str = "-- Generated from Kind::info in src/model/key.rs; do not edit. After changing the kinds,\n\
                      -- `BLESS=1 cargo test generated` rewrites this file.\n";

/// `template` with `{branches}` replaced by one rendering of `branch` per kind in `kinds`,
/// the last as `else`, so that the branches cover every value (plpgsql_check holds it).
fn render(template: &str, kinds: &[Kind], branch: impl Fn(Kind) -> String) -> String {
    let mut branches = String::new();
    for (index, kind) in kinds.iter().enumerate() {
        let label = if index + 1 == kinds.len() {
            format!("else -- {}", kind.as_str())
        } else {
            format!("when '{}' then", kind.as_str())
        };
        branches.push_str(&format!("    {label}\n{}", branch(*kind)));
    }
    format!("{HEADER}{}", template.replace("{branches}", &branches))
}

fn links() -> Vec<Kind> {
    Kind::ALL
        .into_iter()
        .filter(|kind| kind.is_link())
        .collect()
}

/// `column = p_change.field and ...` for a row's key.
fn key_matches(key: &[KeyPart], qualifier: &str) -> String {
    key.iter()
        .map(|part| format!("{qualifier}{} = p_change.{}", part.column, part.field))
        .collect::<Vec<_>>()
        .join(" and ")
}

fn key_of() -> String {
    // A plain SQL case, not plpgsql: the planner inlines it into the queries that compute keys
    // over whole tables (reconcile's deletion candidates).
    let branches: String = Kind::ALL
        .iter()
        .map(|kind| {
            let parts: Vec<String> = kind
                .info()
                .key
                .iter()
                .map(|part| format!("p_{}", part.field))
                .collect();
            let text = match parts.as_slice() {
                [one] => format!("{one}::text"),
                many => many.join(" || '/' || "),
            };
            format!("        when '{}' then {text}\n", kind.as_str())
        })
        .collect();
    format!(
        "{HEADER}-- The key of a mirrored row in stack_sync.versions and stack_sync.reconcile_seen: its ids joined
-- with '/', team before user before permission. Uuids have a fixed length, so a permission id
-- may contain anything. Rust's `model::Key` prints the same text. PL/pgSQL rather than SQL:
-- Postgres 15 parses and plans a SQL function's body on every call that is not inlined, and
-- the pinned search_path keeps it from being inlined.
create or replace function stack_sync.key_of(
    p_kind stack_sync.kind, p_user_id uuid, p_team_id uuid, p_permission_id text
) returns text
language plpgsql immutable as $$
begin
    return case p_kind
{branches}    end;
end;
$$;
"
    )
}

fn mirrored() -> String {
    render(
        "-- Whether the mirror holds the row a change names (reconcile tells created from updated).
create or replace function stack_sync.mirrored(p_change stack_sync.change) returns boolean
language plpgsql stable as $$
begin
    case p_change.kind
{branches}    end case;
end;
$$;
",
        &Kind::ALL,
        |kind| {
            let info = kind.info();
            format!(
                "        return exists (\n            select 1 from stack.{}\n            where {}\n        );\n",
                info.table,
                key_matches(info.key, "")
            )
        },
    )
}

fn insert_link() -> String {
    render(
        &"-- Adds a membership or permission unless it is there, announcing it on the feed; returns the
-- number of rows added. Not `on conflict do nothing`, which costs a WAL record more for every
-- row it adds: the caller holds the locks of the link's user and team, so nobody adds it between
-- the check and the insert.
create or replace function stack_sync.insert_link(
    p_change stack_sync.change, p_svix_id text
) returns integer
language plpgsql as $$
declare
    v_inserted integer;
begin
    case p_change.kind
{branches}    end case;
{announce}end;
$$;
"
        .replace("{announce}", &announce("v_inserted", "insert")),
        &links(),
        |kind| {
            let info = kind.info();
            let columns: Vec<&str> = info.key.iter().map(|part| part.column).collect();
            let values: Vec<String> = info
                .key
                .iter()
                .map(|part| format!("p_change.{}", part.field))
                .collect();
            format!(
                "        insert into stack.{table} ({columns}, svix_id)\n        \
                 select {values}, p_svix_id\n        \
                 where not exists (\n            \
                 select from stack.{table}\n            \
                 where {matches}\n        );\n",
                table = info.table,
                columns = columns.join(", "),
                values = values.join(", "),
                matches = key_matches(info.key, ""),
            )
        },
    )
}

/// The end of `insert_link` and `delete_link`: the rows the branch changed, counted in `counter`,
/// announced on the feed as `op`, and returned.
fn announce(counter: &str, op: &str) -> String {
    format!(
        "    get diagnostics {counter} = row_count;
    if {counter} > 0 then
        perform stack_sync.notify_link(
            p_change.kind, '{op}', p_change.user_id, p_change.team_id, p_change.permission_id,
            p_svix_id
        );
    end if;
    return {counter};
"
    )
}

fn delete_link() -> String {
    render(
        &"-- Removes a membership or permission, announcing it on the feed; returns the number of rows
-- removed.
create or replace function stack_sync.delete_link(
    p_change stack_sync.change, p_svix_id text
) returns integer
language plpgsql as $$
declare
    v_deleted integer;
begin
    case p_change.kind
{branches}    end case;
{announce}end;
$$;
"
        .replace("{announce}", &announce("v_deleted", "delete")),
        &links(),
        |kind| {
            let info = kind.info();
            format!(
                "        delete from stack.{} as t\n        where {};\n",
                info.table,
                key_matches(info.key, "t.")
            )
        },
    )
}

fn notify_link() -> String {
    render(
        "-- The change feed's notification for a membership or permission: p_op is 'insert' or 'delete';
-- the feed names the row by its table.
create or replace function stack_sync.notify_link(
    p_kind stack_sync.kind, p_op text, p_user_id uuid, p_team_id uuid, p_permission_id text,
    p_svix_id text
) returns void
language plpgsql as $$
declare
    v_table text;
begin
    case p_kind
{branches}    end case;
    perform stack_sync.notify(
        jsonb_strip_nulls(jsonb_build_object(
            'table', v_table,
            'op', p_op,
            'team_id', p_team_id,
            'user_id', p_user_id,
            'permission_id', p_permission_id
        )),
        p_svix_id
    );
end;
$$;
",
        &links(),
        |kind| format!("        v_table := '{}';\n", kind.info().table),
    )
}
