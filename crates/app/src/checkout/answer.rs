//! The owner's answer: declining ends the session; accepting runs the very
//! use case the session offers (CreateSubscription, ChangePlan or
//! UpdateComponents) under an idempotency key derived from the session.

use billing_domain::checkout::{CheckoutSession, CheckoutStatus, Decided, Decision};
use billing_domain::ids::SubscriptionId;
use billing_domain::subscription::Subscription;
use billing_domain::{DomainError, ErrorKind, Reason};
use billing_storage::{NewEvent, Tx};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::token::{constant_time_eq, token_hash, unknown_token};
use super::{Checkout, preview_request, session_not_found};
use crate::AppError;
use crate::idempotency::{Outcome, RequestContext};
use crate::subscriptions::PreviewRequest;

/// The idempotency scope of accepted checkouts, apart from every caller's.
const CHECKOUT_CALLER: &str = "checkout";

/// An answered session.
#[derive(Clone, Debug)]
pub struct Completion {
    /// As of now (an expired session reads EXPIRED).
    pub session: CheckoutSession,
    /// The subscription bought or changed, if it went through.
    pub subscription: Option<Subscription>,
    /// `return_url` with the outcome.
    pub redirect_url: String,
}

/// Who answers: the page's form (which must carry the session's nonce) or a
/// headless client through CompleteCheckout.
#[derive(Clone, Copy, Debug)]
pub enum Answerer<'a> {
    Form { nonce: &'a str },
    Api,
}

impl Checkout {
    /// Answers a session: declining ends it at once; accepting runs the
    /// purchase or change and ends it with the outcome. Answering again with
    /// the same decision returns the same outcome.
    pub async fn complete(
        &self,
        token: &str,
        decision: Decision,
        answerer: Answerer<'_>,
    ) -> Result<Completion, AppError> {
        let token_hash = token_hash(token)?;
        let now = self.clock.now();
        let tx = self.store.begin().await?;
        let session = tx
            .checkout()
            .find_by_token_hash(&token_hash, true)
            .await?
            .ok_or_else(unknown_token)?;
        if let Answerer::Form { nonce } = answerer
            && !constant_time_eq(nonce.as_bytes(), session.form_nonce.as_bytes())
        {
            return Err(DomainError::field(
                "csrf",
                Reason::FieldInvalid,
                "the form did not come from this consent page; reload the page and answer again",
            )
            .into());
        }
        let first_answer = session.decision.is_none();
        let session = match session.decide(decision, now)? {
            Decided::Finished => {
                drop(tx);
                return self.completion(session, now).await;
            }
            Decided::Proceed(decided) => decided,
        };
        if first_answer {
            tx.checkout().update_session(&session).await?;
            if decision == Decision::Reject {
                insert_event(&tx, "checkout.rejected", &session, now).await?;
            }
            tx.commit().await?;
        } else {
            drop(tx);
        }
        if decision == Decision::Reject {
            return self.completion(session, now).await;
        }
        // On the first answer the page's promise is checked again: what it
        // showed may have changed since (a card detached, the family bought
        // elsewhere). A repeated answer resumes the purchase as it started.
        let refusal = if first_answer {
            let page = self.assess(session.clone(), now).await?;
            let no_card = !page.can_accept();
            page.problem.or_else(|| {
                no_card.then(|| {
                    DomainError::new(
                        Reason::PaymentMethodRequired,
                        "a paid plan needs a payment method on file: add one, then start a new checkout",
                    )
                })
            })
        } else {
            None
        };
        let outcome = match refusal {
            Some(refusal) => Err(refusal.into()),
            None => self.carry_out(&session).await,
        };
        let finished = match outcome {
            // Made, but its first charge is unsettled: the buyer is told, and
            // the job that settles the charge ends the session.
            Ok(subscription_id) if self.awaits_payment(&subscription_id).await? => session.pending(subscription_id),
            Ok(subscription_id) => session.completed(subscription_id, now),
            Err(error @ (AppError::Rule(_) | AppError::Refused(_))) if error.kind() != ErrorKind::Aborted => {
                session.failed(error.reason(), &error.client_message(), now)
            }
            // Still running elsewhere, or the database is down: the session
            // stays accepted, and answering again resumes it.
            Err(other) => return Err(other),
        };
        self.record(finished, now).await
    }

    /// Runs the accepted order as its own RPC would, keyed by the session.
    async fn carry_out(&self, session: &CheckoutSession) -> Result<SubscriptionId, AppError> {
        let context = RequestContext {
            caller: CHECKOUT_CALLER.to_owned(),
            request_id: session.id.to_string(),
            request_hash: session.id.to_string(),
        };
        let encode = |id: &SubscriptionId| id.as_str().as_bytes().to_vec();
        let outcome = match preview_request(session) {
            PreviewRequest::Purchase(request) => self
                .subscriptions
                .create_subscription(&context, &request, |purchase| encode(&purchase.subscription.id))
                .await?
                .map(|purchase| purchase.subscription.id),
            PreviewRequest::PlanChange(request) => self
                .subscriptions
                .change_plan(&context, &request, |changed| encode(&changed.subscription.id))
                .await?
                .map(|changed| changed.subscription.id),
            PreviewRequest::Components(request) => self
                .subscriptions
                .update_components(&context, &request, |updated| encode(&updated.subscription.id))
                .await?
                .map(|updated| updated.subscription.id),
        };
        match outcome {
            Outcome::Done(id) => Ok(id),
            Outcome::Replayed(bytes) => std::str::from_utf8(&bytes)
                .ok()
                .and_then(|text| SubscriptionId::parse(text).ok())
                .ok_or_else(|| AppError::fault("a stored checkout outcome could not be read")),
        }
    }

    /// Stores an accepted session's outcome and its event, unless a
    /// concurrent answer stored it first (then that one is the answer).
    async fn record(&self, finished: CheckoutSession, now: DateTime<Utc>) -> Result<Completion, AppError> {
        let tx = self.store.begin().await?;
        let stored = tx
            .checkout()
            .get_session(&finished.id, true)
            .await?
            .ok_or_else(|| session_not_found(&finished.id))?;
        if stored.status != CheckoutStatus::Open {
            drop(tx);
            return self.completion(stored, now).await;
        }
        tx.checkout().update_session(&finished).await?;
        if finished.status == CheckoutStatus::Completed {
            insert_event(&tx, "checkout.completed", &finished, now).await?;
        }
        tx.commit().await?;
        self.completion(finished, now).await
    }

    async fn completion(&self, session: CheckoutSession, now: DateTime<Utc>) -> Result<Completion, AppError> {
        let subscription = match &session.result_subscription_id {
            Some(id) => self.store.subscriptions().get_subscription(id).await?,
            None => None,
        };
        Ok(Completion {
            redirect_url: session.redirect_url().unwrap_or_default(),
            session: session.as_of(now),
            subscription,
        })
    }

    async fn awaits_payment(&self, subscription_id: &SubscriptionId) -> Result<bool, AppError> {
        let subscription = self.store.subscriptions().get_subscription(subscription_id).await?;
        Ok(subscription.as_ref().is_some_and(awaits_payment))
    }
}

/// Ends the checkout sessions that waited on `subscription`'s first charge,
/// now that it settled: completed if it is paid and active, failed
/// (`INCOMPLETE_EXPIRED`) if it ended. In the settling transaction.
pub(crate) async fn settle_pending_sessions(
    tx: &Tx,
    subscription: &Subscription,
    paid: bool,
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    if awaits_payment(subscription) {
        return Ok(());
    }
    for session in tx.checkout().pending_for(&subscription.id).await? {
        let ended = match (paid, subscription.is_active()) {
            (true, true) => session.completed(subscription.id.clone(), now),
            (_, false) => session.failed(
                Reason::IncompleteExpired,
                "the first payment did not go through; nothing was bought",
                now,
            ),
            (false, true) => session.failed(
                Reason::PaymentDeclined,
                "the payment did not go through; the subscription stays as it was",
                now,
            ),
        };
        tx.checkout().update_session(&ended).await?;
        if ended.status == CheckoutStatus::Completed {
            insert_event(tx, "checkout.completed", &ended, now).await?;
        }
    }
    Ok(())
}

/// Whether what a checkout asked for still waits for its payment: a
/// purchase not yet paid, or a change held for its charge.
fn awaits_payment(subscription: &Subscription) -> bool {
    (subscription.is_incomplete() && subscription.is_active()) || subscription.awaits_change_payment()
}

async fn insert_event(
    tx: &Tx,
    event_type: &str,
    session: &CheckoutSession,
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    let subscription_id = session
        .result_subscription_id
        .as_ref()
        .or(session.order.subscription_id())
        .map(ToString::to_string)
        .unwrap_or_default();
    tx.insert_event(&NewEvent {
        id: format!("evt_{}", Uuid::now_v7().simple()),
        event_type: event_type.to_owned(),
        business_id: session.business_id.to_string(),
        subscription_id,
        occur_time: now,
        payload: snapshot(session),
    })
    .await?;
    Ok(())
}

/// The resource snapshot a checkout event carries (never the token).
fn snapshot(session: &CheckoutSession) -> serde_json::Value {
    serde_json::json!({
        "id": session.id.as_str(),
        "business_id": session.business_id.as_str(),
        "buyer_id": session.buyer_id.as_str(),
        "kind": session.order.kind().as_str(),
        "status": session.status.as_str(),
        "subscription_id": session.order.subscription_id().map(SubscriptionId::as_str),
        "result_subscription_id": session.result_subscription_id.as_ref().map(SubscriptionId::as_str),
        "error_reason": session.failure.as_ref().map(|failure| failure.reason.as_str()),
        "create_time": session.create_time.to_rfc3339(),
        "complete_time": session.complete_time.map(|time| time.to_rfc3339()),
    })
}
