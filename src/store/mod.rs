//! Every SQL statement the service runs. Each function is one statement, so one round trip; the
//! caller chooses the connection or transaction it runs on.
//!
//! A webhook is applied by one statement whose first CTE records the message in
//! `stack.webhook_events` and whose later CTEs change the mirror only if that insert happened.
//! A single statement is a transaction of its own, so the record and the change commit together
//! or not at all, and a second delivery of the same `svix-id` (even a concurrent one, which
//! waits on the primary key) finds the record and changes nothing.

pub mod links;
pub mod teams;
pub mod users;
pub mod webhook_events;

/// The Svix message a mirror change belongs to.
#[derive(Debug, Clone, Copy)]
pub struct MessageRecord<'a> {
    pub svix_id: &'a str,
    pub event_type: &'a str,
    /// The raw request body.
    pub payload: &'a [u8],
}

/// Whether a statement wrote anything, or found the message already recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    New,
    AlreadySeen,
}

impl From<Option<String>> for Recorded {
    fn from(returned_id: Option<String>) -> Self {
        match returned_id {
            Some(_) => Self::New,
            None => Self::AlreadySeen,
        }
    }
}

/// The opening of every mirror statement: records the message as applied, unless it is known.
/// Parameters $1..$3 are the message's id, type and raw body; the statement's own start at $4.
/// Every later CTE must read `event` so that it changes nothing for a known message.
macro_rules! record_message {
    () => {
        "with event as (
            insert into stack.webhook_events (svix_id, event_type, outcome, payload)
            values ($1, $2, 'applied', $3)
            on conflict (svix_id) do nothing
            returning svix_id
        )"
    };
}
pub(crate) use record_message;

/// Starts a query on `sql` with the message's three parameters bound.
pub(crate) fn message_query<'q>(
    sql: &'q str,
    message: &MessageRecord<'q>,
) -> sqlx::query::QueryScalar<'q, sqlx::Postgres, String, sqlx::postgres::PgArguments> {
    sqlx::query_scalar(sql)
        .bind(message.svix_id)
        .bind(message.event_type)
        .bind(message.payload)
}
