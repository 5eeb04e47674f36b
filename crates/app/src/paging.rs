//! Keyset pagination.
//!
//! A page token is opaque to clients: URL-safe base64 of the last key served
//! and the list (with its filters) it belongs to. Keys are ids, which sort by
//! creation time, so rows inserted while a client pages never shift a page
//! boundary: no row is served twice or skipped.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use billing_domain::{DomainError, Reason};
use serde::{Deserialize, Serialize};

use crate::AppError;

pub const DEFAULT_PAGE_SIZE: u64 = 50;
pub const MAX_PAGE_SIZE: u64 = 500;

/// Paging fields as a client sent them.
#[derive(Clone, Debug, Default)]
pub struct PageParams {
    /// 0 = the default (50); at most 500.
    pub page_size: i32,
    /// Empty = the first page.
    pub page_token: String,
}

/// A checked page request for one list.
#[derive(Debug)]
pub(crate) struct PageRequest {
    pub size: u64,
    pub after: Option<String>,
    scope: String,
}

#[derive(Serialize, Deserialize)]
struct Token {
    /// The list and filters the token was issued for.
    s: String,
    /// The last key served.
    a: String,
}

impl PageRequest {
    /// `scope` names the list and its filters; a token from another scope is
    /// refused rather than silently misapplied.
    pub fn parse(params: &PageParams, scope: String) -> Result<Self, AppError> {
        let size = match u64::try_from(params.page_size) {
            Ok(0) => DEFAULT_PAGE_SIZE,
            Ok(size) if size <= MAX_PAGE_SIZE => size,
            _ => {
                return Err(DomainError::field(
                    "page_size",
                    Reason::PageSizeInvalid,
                    format!(
                        "must be between 0 and {MAX_PAGE_SIZE} (0 = {DEFAULT_PAGE_SIZE}), got {}",
                        params.page_size
                    ),
                )
                .into());
            }
        };
        if params.page_token.is_empty() {
            return Ok(PageRequest {
                size,
                after: None,
                scope,
            });
        }
        let invalid = || -> AppError {
            DomainError::field(
                "page_token",
                Reason::PageTokenInvalid,
                "is not a token this list issued; repeat the request that returned it, with the same filters",
            )
            .into()
        };
        let bytes = URL_SAFE_NO_PAD.decode(&params.page_token).map_err(|_| invalid())?;
        let token: Token = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
        if token.s != scope {
            return Err(invalid());
        }
        Ok(PageRequest {
            size,
            after: Some(token.a),
            scope,
        })
    }

    /// How many rows to fetch: one more than the page, to learn whether
    /// another page follows.
    pub fn fetch_limit(&self) -> u64 {
        self.size + 1
    }

    /// Cuts the fetched rows to a page and issues the token for the next one.
    pub fn page<T>(&self, mut rows: Vec<T>, key: impl Fn(&T) -> &str) -> Page<T> {
        let size = usize::try_from(self.size).unwrap_or(usize::MAX);
        if rows.len() <= size {
            return Page {
                items: rows,
                next_page_token: String::new(),
            };
        }
        rows.truncate(size);
        let next_page_token = rows
            .last()
            .map(|last| {
                let token = Token {
                    s: self.scope.clone(),
                    a: key(last).to_owned(),
                };
                URL_SAFE_NO_PAD.encode(serde_json::to_vec(&token).unwrap_or_default())
            })
            .unwrap_or_default();
        Page {
            items: rows,
            next_page_token,
        }
    }
}

/// One page of a list.
#[derive(Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Empty on the last page.
    pub next_page_token: String,
}

impl<T> Page<T> {
    /// No items and no further page.
    pub fn empty() -> Self {
        Page {
            items: Vec::new(),
            next_page_token: String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(page_size: i32, page_token: &str) -> PageParams {
        PageParams {
            page_size,
            page_token: page_token.to_owned(),
        }
    }

    #[test]
    fn sizes_default_and_cap() {
        assert_eq!(PageRequest::parse(&params(0, ""), "x".into()).unwrap().size, 50);
        assert_eq!(PageRequest::parse(&params(500, ""), "x".into()).unwrap().size, 500);
        for bad in [-1, 501, 10_000] {
            let error = PageRequest::parse(&params(bad, ""), "x".into()).unwrap_err();
            assert_eq!(error.reason(), Reason::PageSizeInvalid, "{bad}");
            assert_eq!(error.violations()[0].field, "page_size");
        }
    }

    #[test]
    fn tokens_resume_after_the_last_key() {
        let request = PageRequest::parse(&params(2, ""), "list".into()).unwrap();
        assert_eq!(request.fetch_limit(), 3);
        let page = request.page(vec!["a", "b", "c"], |s| s);
        assert_eq!(page.items, ["a", "b"]);
        let next = PageRequest::parse(&params(2, &page.next_page_token), "list".into()).unwrap();
        assert_eq!(next.after.as_deref(), Some("b"));
        let last = next.page(vec!["c"], |s| s);
        assert_eq!(last.next_page_token, "");
    }

    #[test]
    fn tokens_are_bound_to_their_list_and_filters() {
        let page = PageRequest::parse(&params(1, ""), "offerings|dir=a".into())
            .unwrap()
            .page(vec!["x", "y"], |s| s);
        let error = PageRequest::parse(&params(1, &page.next_page_token), "offerings|dir=b".into()).unwrap_err();
        assert_eq!(error.reason(), Reason::PageTokenInvalid);
        for garbage in ["%%%", "bm90IGpzb24"] {
            let error = PageRequest::parse(&params(1, garbage), "x".into()).unwrap_err();
            assert_eq!(error.reason(), Reason::PageTokenInvalid, "{garbage}");
        }
    }
}
