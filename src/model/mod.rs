//! The mirror's vocabulary, shared by every layer and depending on none: what identifies a
//! mirrored row, the fields of users and teams with the columns that hold them, the change a
//! Stack object asks for, and what became of a message.

pub mod change;
pub mod fields;
pub mod key;
pub mod outcome;
pub mod position;

pub use change::{Change, InvalidObject};
pub use fields::Row;
pub use key::{Key, KeyPart, Kind, KindInfo};
pub use outcome::Outcome;
pub use position::Position;
