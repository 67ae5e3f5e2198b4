//! A position in the change log: the writing transaction's id and the change's number, as
//! `<xid>/<seq>`. Positions order the log; a reader resumes after the last one it handled.

use std::fmt;
use std::str::FromStr;

/// `<xid>/<seq>`, ordered by transaction id, then by number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Position {
    /// The transaction's 64-bit id (`xid8`).
    pub xid: u64,
    pub seq: i64,
}

impl Position {
    /// Before every change.
    pub const START: Self = Self { xid: 0, seq: 0 };
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.xid, self.seq)
    }
}

/// A text that is not `<xid>/<seq>`.
#[derive(Debug, thiserror::Error)]
#[error("a change log position is <xid>/<seq>, two numbers, e.g. 7412/58 (got {0:?})")]
pub struct BadPosition(String);

impl FromStr for Position {
    type Err = BadPosition;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || BadPosition(text.to_owned());
        let (xid, seq) = text.split_once('/').ok_or_else(bad)?;
        Ok(Self {
            xid: xid.parse().map_err(|_| bad())?,
            seq: seq.parse().map_err(|_| bad())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_read_back_as_written_and_order_by_transaction_first() {
        let position: Position = "7412/58".parse().unwrap();
        assert_eq!(position, Position { xid: 7412, seq: 58 });
        assert_eq!(position.to_string(), "7412/58");
        assert!(Position { xid: 7, seq: 900 } < Position { xid: 8, seq: 1 });
        for bad in ["", "7412", "7412/", "/58", "x/1", "1/2/3", "-1/2"] {
            assert!(bad.parse::<Position>().is_err(), "{bad:?}");
        }
    }
}
