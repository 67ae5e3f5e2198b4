//! The functions that write a user or team row (`sql/functions/write_user.sql`,
//! `write_team.sql`), rendered from the field lists of `model::fields`.

use std::fmt::Write;

use crate::model::fields::{Field, TEAM_FIELDS, USER_FIELDS};

/// A mirrored object written by a generated function.
pub struct Written {
    /// `user` writes `stack.users` with `stack_sync.write_user`.
    pub object: &'static str,
    pub fields: &'static [Field],
}

/// The objects whose write functions are generated.
pub const WRITTEN: [Written; 2] = [
    Written {
        object: "user",
        fields: USER_FIELDS,
    },
    Written {
        object: "team",
        fields: TEAM_FIELDS,
    },
];

impl Written {
    /// The definition of `stack_sync.write_<object>`: an update of every field's column from the
    /// validated row, skipped when the row holds the same object already, or an insert when
    /// there is no row.
    pub fn render(&self) -> String {
        let (object, constant) = (self.object, self.object.to_uppercase());
        let columns: Vec<&str> = self.fields.iter().map(Field::column).collect();
        let mut sql = format!(
            "-- Generated from {constant}_FIELDS in src/model/fields.rs; do not edit. After changing the\n\
             -- fields, `BLESS=1 cargo test generated` rewrites this file.\n\
             --\n\
             -- Writes a {object} row from its validated columns (p_row, see model::Row) and Stack's\n\
             -- object as received (p_raw), unless the row holds exactly that object already, and\n\
             -- announces a written row on the feed. Returns 'applied' or 'unchanged'.\n\
             --\n\
             -- An update, then an insert if there is no row: the caller holds the {object}'s lock\n\
             -- (stack_sync.lock_ids), so no other writer can insert it in between. An upsert would\n\
             -- do the same work but lock the existing row first, which costs a WAL record of its own.\n\
             -- When neither writes, the row holds this object already.\n\
             create or replace function stack_sync.write_{object}(\n\
            \x20   p_row jsonb, p_raw jsonb, p_svix_id text\n\
             ) returns text\n\
             language plpgsql as $$\n\
             begin\n\
            \x20   update stack.{object}s as t set\n"
        );
        for column in columns.iter().filter(|column| **column != "id") {
            let _ = writeln!(sql, "        {column} = r.{column},");
        }
        let _ = write!(
            sql,
            "        raw = p_raw,\n        \
             synced_at = now(),\n        \
             svix_id = p_svix_id\n    \
             from jsonb_populate_record(null::stack.{object}s, p_row) as r\n    \
             where t.id = r.id and t.raw is distinct from p_raw;\n    \
             if not found then\n        \
             insert into stack.{object}s (\n"
        );
        for column in &columns {
            let _ = writeln!(sql, "            {column},");
        }
        sql.push_str("            raw, svix_id\n        )\n        select\n");
        for column in &columns {
            let _ = writeln!(sql, "            r.{column},");
        }
        let _ = write!(
            sql,
            "            p_raw, p_svix_id\n        \
             from jsonb_populate_record(null::stack.{object}s, p_row) as r\n        \
             where not exists (select from stack.{object}s where id = r.id);\n        \
             if not found then\n            \
             return 'unchanged';\n        \
             end if;\n    \
             end if;\n    \
             perform stack_sync.notify(\n        \
             jsonb_build_object('table', '{object}s', 'op', 'upsert', 'id', p_row ->> 'id'),\n        \
             p_svix_id\n    \
             );\n    \
             return 'applied';\n\
             end;\n\
             $$;\n"
        );
        sql
    }
}
