//! For operators: the background work that keeps failing (jobs, webhook
//! deliveries, provider operations), listed across all three and retried on
//! demand.

use std::sync::Arc;

use billing_domain::{DomainError, Reason};
use billing_storage::{FailingWork, Store, WorkKind};

use crate::AppError;
use crate::clock::Clock;
use crate::paging::{Page, PageParams, PageRequest};

#[derive(Clone, Debug)]
pub struct Operations {
    store: Store,
    clock: Arc<dyn Clock>,
}

/// A listed item and its key in the one order of the list: kind, then id.
struct Keyed {
    key: String,
    work: FailingWork,
}

impl Operations {
    pub fn new(store: Store, clock: Arc<dyn Clock>) -> Self {
        Operations { store, clock }
    }

    /// Failing work of `kind` (every kind when `None`): jobs, then webhook
    /// deliveries, then provider operations, each by id.
    pub async fn list_failing(
        &self,
        kind: Option<WorkKind>,
        params: &PageParams,
    ) -> Result<Page<FailingWork>, AppError> {
        let request = PageRequest::parse(params, format!("failing-work:{kind:?}"))?;
        let resume = match &request.after {
            Some(after) => Some(parse_key(after)?),
            None => None,
        };
        let limit = request.fetch_limit();
        let mut rows: Vec<Keyed> = Vec::new();
        for candidate in WorkKind::ALL {
            if kind.is_some_and(|only| only != candidate) {
                continue;
            }
            let after = match &resume {
                Some((resumed, _)) if candidate < *resumed => continue,
                Some((resumed, id)) if candidate == *resumed => Some(id.as_str()),
                _ => None,
            };
            let wanted = limit - rows.len() as u64;
            for work in self.store.failing_work(candidate, after, wanted).await? {
                rows.push(Keyed {
                    key: key_of(&work),
                    work,
                });
            }
            if rows.len() as u64 >= limit {
                break;
            }
        }
        let page = request.page(rows, |row| row.key.as_str());
        Ok(Page {
            items: page.items.into_iter().map(|row| row.work).collect(),
            next_page_token: page.next_page_token,
        })
    }

    /// Makes one piece of failing work due now; `None` when it is not
    /// failing (any more) or a worker holds it right now.
    pub async fn retry(&self, kind: WorkKind, id: &str) -> Result<Option<FailingWork>, AppError> {
        let now = self.clock.now();
        let retried = self.store.retry_work(kind, id, now).await?;
        if retried.is_some() {
            tracing::info!(?kind, id, "failing work retried by an operator");
        }
        Ok(retried)
    }
}

fn key_of(work: &FailingWork) -> String {
    let rank = WorkKind::ALL.iter().position(|kind| *kind == work.kind).unwrap_or(0);
    format!("{rank}:{}", work.id)
}

fn parse_key(key: &str) -> Result<(WorkKind, String), AppError> {
    key.split_once(':')
        .and_then(|(rank, id)| {
            let kind = WorkKind::ALL.get(rank.parse::<usize>().ok()?)?;
            Some((*kind, id.to_owned()))
        })
        .ok_or_else(|| {
            DomainError::field(
                "page_token",
                Reason::PageTokenInvalid,
                "is not a token this list issued",
            )
            .into()
        })
}
