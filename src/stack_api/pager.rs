//! Walks a list endpoint page by page, the way both of Stack's pagination behaviours allow:
//! the cursor is passed back exactly as received (older Stack returns the cursor row as the
//! first item of the next page, newer Stack excludes it), and an empty page after a cursor is
//! treated as what it is in Stack, a cursor row deleted meanwhile, not as the end.

use serde_json::Value;
use time::OffsetDateTime;

use crate::stack_api::{ApiError, ListPage, StackApi};

/// A page of objects and when it was asked for: Stack's state is at least that new.
pub struct Page {
    pub items: Vec<Value>,
    pub fetched_at: OffsetDateTime,
}

/// The listing could not be completed.
#[derive(Debug, thiserror::Error)]
pub enum PagingError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error(
        "listing {path} came back empty after a cursor, and resuming from the previous page \
         failed too; run again"
    )]
    Broken { path: String },
}

pub struct Pager<'a> {
    api: &'a StackApi,
    path: String,
    query: Vec<(&'static str, String)>,
    cursor: Option<String>,
    /// The ids of the last page, to resume from if its cursor row disappears.
    previous_ids: Vec<String>,
    done: bool,
}

impl<'a> Pager<'a> {
    pub fn new(api: &'a StackApi, path: &str, query: Vec<(&'static str, String)>) -> Self {
        Self {
            api,
            path: path.to_owned(),
            query,
            cursor: None,
            previous_ids: Vec::new(),
            done: false,
        }
    }

    /// The next page, or `None` after the last one.
    pub async fn next_page(&mut self) -> Result<Option<Page>, PagingError> {
        if self.done {
            return Ok(None);
        }
        let cursor = self.cursor.clone();
        let Some((mut list, mut fetched_at)) = self.fetch(cursor.as_deref()).await? else {
            self.done = true; // the listed object (e.g. a team) is gone
            return Ok(None);
        };
        if list.items.is_empty() && cursor.is_some() {
            tracing::warn!(path = %self.path, "empty page after a cursor; resuming from the previous page");
            (list, fetched_at) = self.resume().await?;
        }
        self.previous_ids = list
            .items
            .iter()
            .filter_map(|item| item["id"].as_str().map(str::to_owned))
            .collect();
        self.cursor = list.next_cursor().map(str::to_owned);
        self.done = self.cursor.is_none();
        Ok(Some(Page {
            items: list.items,
            fetched_at,
        }))
    }

    /// Asks again from the previous page's ids, newest first: the first that still exists
    /// restarts the walk (repeated objects are deduplicated by the caller).
    async fn resume(&self) -> Result<(ListPage, OffsetDateTime), PagingError> {
        for id in self.previous_ids.iter().rev() {
            if let Some((list, fetched_at)) = self.fetch(Some(id)).await?
                && !list.items.is_empty()
            {
                return Ok((list, fetched_at));
            }
        }
        Err(PagingError::Broken {
            path: self.path.clone(),
        })
    }

    async fn fetch(
        &self,
        cursor: Option<&str>,
    ) -> Result<Option<(ListPage, OffsetDateTime)>, ApiError> {
        let mut query: Vec<(&str, &str)> =
            self.query.iter().map(|(k, v)| (*k, v.as_str())).collect();
        if let Some(cursor) = cursor {
            query.push(("cursor", cursor));
        }
        let fetched_at = OffsetDateTime::now_utc();
        let list = self.api.list(&self.path, &query).await?;
        Ok(list.map(|list| (list, fetched_at)))
    }
}
