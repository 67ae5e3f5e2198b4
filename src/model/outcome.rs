//! What became of a message, as the service answers it, records it and reads it back from SQL.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use sqlx::postgres::{PgTypeInfo, PgValueRef};
use sqlx::{Decode, Postgres, Type};

/// What became of a delivery; sent back as `{"status": ...}` and stored in
/// `stack.webhook_events.outcome` (except `duplicate`, which is never stored).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The mirror now reflects the event.
    Applied,
    /// The mirror already held exactly this (Stack sent the same change twice); nothing written.
    Unchanged,
    /// The mirror already reflects a newer event for the same row, or the row was deleted.
    Stale,
    /// This `svix-id` was received before; nothing changed.
    Duplicate,
    /// A type we do not mirror; recorded only.
    Ignored,
    /// Verified but unusable; recorded with its error for replay after a fix.
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Unchanged => "unchanged",
            Self::Stale => "stale",
            Self::Duplicate => "duplicate",
            Self::Ignored => "ignored",
            Self::Failed => "failed",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A text that names no outcome.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not an outcome")]
pub struct UnknownOutcome(String);

impl FromStr for Outcome {
    type Err = UnknownOutcome;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(match text {
            "applied" => Self::Applied,
            "unchanged" => Self::Unchanged,
            "stale" => Self::Stale,
            "duplicate" => Self::Duplicate,
            "ignored" => Self::Ignored,
            "failed" => Self::Failed,
            other => return Err(UnknownOutcome(other.to_owned())),
        })
    }
}

/// Outcomes cross the SQL boundary as `text`; a text that is no outcome is a decode error.
impl Type<Postgres> for Outcome {
    fn type_info() -> PgTypeInfo {
        <&str as Type<Postgres>>::type_info()
    }

    fn compatible(ty: &PgTypeInfo) -> bool {
        <&str as Type<Postgres>>::compatible(ty)
    }
}

impl<'r> Decode<'r, Postgres> for Outcome {
    fn decode(value: PgValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        Ok(<&str as Decode<Postgres>>::decode(value)?.parse()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_outcome_reads_back_from_its_text() {
        use Outcome::*;
        for outcome in [Applied, Unchanged, Stale, Duplicate, Ignored, Failed] {
            assert_eq!(outcome.as_str().parse::<Outcome>().unwrap(), outcome);
        }
        assert!("done".parse::<Outcome>().is_err());
    }
}
