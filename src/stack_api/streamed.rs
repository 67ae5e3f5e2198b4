//! A list's `items` read as its body arrives, a chunk at a time: a whole project's grants are
//! never held in memory at once, only the chunk being handed on.

use std::io::Read;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// Why reading stopped early: the receiver of the chunks is gone.
const STOPPED: &str = "stack-sync stopped reading the list";

/// Reads `{"items": [...], ...}` from `body`, handing `deliver` the items `chunk_len` at a time
/// in order (the last chunk may be shorter; an empty list hands nothing). Stops without error
/// when `deliver` returns false. Blocking: run it where blocking is allowed.
pub fn for_each_chunk(
    body: impl Read,
    chunk_len: usize,
    mut deliver: impl FnMut(Vec<Value>) -> bool,
) -> Result<(), serde_json::Error> {
    let mut stopped = false;
    let mut deserializer = serde_json::Deserializer::from_reader(body);
    let list = List {
        chunk_len,
        deliver: &mut deliver,
        stopped: &mut stopped,
    };
    match list.deserialize(&mut deserializer) {
        Err(_) if stopped => Ok(()),
        Err(err) => Err(err),
        Ok(()) => deserializer.end(),
    }
}

/// The list object: its `items` handed on, every other field skipped unread.
struct List<'a, F> {
    chunk_len: usize,
    deliver: &'a mut F,
    stopped: &'a mut bool,
}

impl<'de, F: FnMut(Vec<Value>) -> bool> DeserializeSeed<'de> for List<'_, F> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de, F: FnMut(Vec<Value>) -> bool> Visitor<'de> for List<'_, F> {
    type Value = ();

    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("a list object with `items`")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut items = Some(Items {
            chunk_len: self.chunk_len,
            deliver: self.deliver,
            stopped: self.stopped,
        });
        while let Some(key) = map.next_key::<String>()? {
            match (key.as_str(), items.take()) {
                ("items", Some(seed)) => map.next_value_seed(seed)?,
                ("items", None) => return Err(de::Error::duplicate_field("items")),
                (_, seed) => {
                    items = seed;
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        match items {
            Some(_) => Err(de::Error::missing_field("items")),
            None => Ok(()),
        }
    }
}

/// The `items` array, handed on in chunks.
struct Items<'a, F> {
    chunk_len: usize,
    deliver: &'a mut F,
    stopped: &'a mut bool,
}

impl<'de, F: FnMut(Vec<Value>) -> bool> DeserializeSeed<'de> for Items<'_, F> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de, F: FnMut(Vec<Value>) -> bool> Visitor<'de> for Items<'_, F> {
    type Value = ();

    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("an array of items")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut chunk = Vec::with_capacity(self.chunk_len);
        while let Some(item) = seq.next_element::<Value>()? {
            chunk.push(item);
            if chunk.len() == self.chunk_len {
                let full = std::mem::replace(&mut chunk, Vec::with_capacity(self.chunk_len));
                if !(self.deliver)(full) {
                    *self.stopped = true;
                    return Err(de::Error::custom(STOPPED));
                }
            }
        }
        if !chunk.is_empty() && !(self.deliver)(chunk) {
            *self.stopped = true;
            return Err(de::Error::custom(STOPPED));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks_of(body: &str, chunk_len: usize) -> Result<Vec<Vec<Value>>, serde_json::Error> {
        let mut chunks = Vec::new();
        for_each_chunk(body.as_bytes(), chunk_len, |chunk| {
            chunks.push(chunk);
            true
        })?;
        Ok(chunks)
    }

    #[test]
    fn items_come_in_chunks_in_order_whatever_the_other_fields() {
        let body = r#"{"is_paginated": false, "items": [1, 2, 3, 4, 5], "pagination": {"x": [9]}}"#;
        let chunks = chunks_of(body, 2).unwrap();
        let expected: Vec<Vec<Value>> = vec![
            vec![1.into(), 2.into()],
            vec![3.into(), 4.into()],
            vec![5.into()],
        ];
        assert_eq!(chunks, expected);
        assert!(chunks_of(r#"{"items": []}"#, 2).unwrap().is_empty());
    }

    #[test]
    fn a_body_that_is_not_a_list_is_an_error() {
        for body in [
            r#"{"is_paginated": false}"#,
            r#"{"items": [1, 2}"#,
            r#"{"items": [1], "items": [2]}"#,
            r#"{"items": [1]} trailing"#,
            r#"[1, 2]"#,
        ] {
            assert!(chunks_of(body, 2).is_err(), "{body} was taken");
        }
    }

    #[test]
    fn a_receiver_that_stops_ends_the_reading_without_an_error() {
        let mut handed = 0;
        let outcome = for_each_chunk(r#"{"items": [1, 2, 3, 4, 5]}"#.as_bytes(), 2, |_| {
            handed += 1;
            false
        });
        assert!(outcome.is_ok());
        assert_eq!(handed, 1, "nothing is handed on after the receiver stops");
    }
}
