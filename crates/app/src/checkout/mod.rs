//! Checkout: single-use consent tokens and what the consent page shows.
//!
//! A session is checked when it is created by running the purchase or change
//! it offers in a savepoint that is rolled back, so the page never offers
//! what cannot be bought. Accepting runs the very same use case
//! (CreateSubscription, ChangePlan or UpdateComponents) under an idempotency
//! key derived from the session, so a double click, a retry, or a crash
//! between the purchase and the session's record makes one subscription.
//!
//! `page` prices what the consent page shows, `answer` carries out the
//! owner's decision, `token` makes and checks the single-use links.

mod answer;
mod page;
mod token;

use std::sync::Arc;

use billing_domain::checkout::{CheckoutDraft, CheckoutSession, Order};
use billing_domain::ids::CheckoutSessionId;
use billing_domain::subscription::ChangeTiming;
use billing_domain::{DomainError, Reason};
use billing_storage::{Store, Tx};
use chrono::{DateTime, Utc};
use uuid::Uuid;

pub(crate) use self::answer::settle_pending_sessions;
pub use self::answer::{Answerer, Completion};
pub use self::page::{ComponentLine, ConsentPage};
use self::token::{NONCE_BYTES, new_token, random_bytes};
pub(crate) use self::token::{token_hash, unknown_token};
use crate::clock::Clock;
use crate::idempotency::{self, Outcome, RequestContext};
use crate::subscriptions::{
    ComponentsRequest, PlanChangeRequest, PreviewRequest, PurchaseRequest, subscription_not_found,
};
use crate::{AppError, OfferingRef, Subscriptions};

/// How checkout behaves.
#[derive(Clone, Debug)]
pub struct CheckoutSettings {
    /// How long a token may be used (on the service clock).
    pub token_ttl: chrono::Duration,
    /// Hosts `return_url` may point at (`*.example.com` for subdomains).
    pub allowed_return_hosts: Vec<String>,
    /// Base of consent-page URLs, without a trailing slash.
    pub public_url: String,
}

/// A new session and the only copy of its token.
#[derive(Clone, Debug)]
pub struct OpenedSession {
    pub session: CheckoutSession,
    /// Empty when a repeated request finds its session already answered.
    pub token: String,
    /// The consent page; empty with the token.
    pub url: String,
}

#[derive(Clone)]
pub struct Checkout {
    store: Store,
    clock: Arc<dyn Clock>,
    subscriptions: Subscriptions,
    settings: Arc<CheckoutSettings>,
}

impl std::fmt::Debug for Checkout {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Checkout")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Checkout {
    pub fn new(store: Store, clock: Arc<dyn Clock>, subscriptions: Subscriptions, settings: CheckoutSettings) -> Self {
        Checkout {
            store,
            clock,
            subscriptions,
            settings: Arc::new(settings),
        }
    }

    /// Opens a session after checking everything the purchase or change
    /// would check. The same `request_id` again returns the same session
    /// with a fresh token (the earlier one stops working), since tokens are
    /// kept only as hashes.
    pub async fn create_session(
        &self,
        context: &RequestContext,
        draft: &CheckoutDraft,
    ) -> Result<OpenedSession, AppError> {
        let checked = draft.check(&self.settings.allowed_return_hosts)?;
        let now = self.clock.now();
        let encode = |(session, _): &(CheckoutSession, String)| session.id.as_str().as_bytes().to_vec();
        let outcome = idempotency::run(
            &self.store,
            context,
            "CreateCheckoutSession",
            now,
            encode,
            async |tx: &Tx| self.open_in(tx, draft, checked, now).await,
        )
        .await?;
        match outcome {
            Outcome::Done((session, token)) => Ok(OpenedSession {
                url: self.page_url(&token),
                session,
                token,
            }),
            Outcome::Replayed(response) => self.reissue(&response, now).await,
        }
    }

    async fn open_in(
        &self,
        tx: &Tx,
        draft: &CheckoutDraft,
        checked: billing_domain::checkout::CheckedDraft,
        now: DateTime<Utc>,
    ) -> Result<(CheckoutSession, String), AppError> {
        if let Some(subscription_id) = checked.order.subscription_id() {
            // A business answers for its own subscriptions only; another's
            // is not found, not a hint that it exists.
            let subscription = tx
                .subscriptions()
                .get_subscription(subscription_id)
                .await?
                .filter(|subscription| subscription.business_id == checked.business_id)
                .ok_or_else(|| subscription_not_found(subscription_id))?;
            if !draft.currency_code.is_empty() && draft.currency_code != subscription.purchase_price.currency().code() {
                return Err(DomainError::field(
                    "currency_code",
                    Reason::FieldInvalid,
                    format!(
                        "subscription {subscription_id} is billed in {}; its currency never changes",
                        subscription.purchase_price.currency()
                    ),
                )
                .into());
            }
        }
        let session = CheckoutSession {
            id: CheckoutSessionId::from_uuid(Uuid::now_v7()),
            token_hash: String::new(),
            form_nonce: hex::encode(random_bytes::<NONCE_BYTES>()?),
            business_id: checked.business_id,
            buyer_id: checked.buyer_id,
            order: checked.order,
            return_url: checked.return_url,
            status: billing_domain::checkout::CheckoutStatus::Open,
            decision: None,
            result_subscription_id: None,
            failure: None,
            create_time: now,
            expire_time: now + self.settings.token_ttl,
            decide_time: None,
            complete_time: None,
        };
        {
            // The purchase or change itself, undone with its savepoint: every
            // rule it would apply now applies to the session.
            let savepoint = tx.savepoint().await?;
            self.subscriptions
                .preview_in(&savepoint, &preview_request(&session), now)
                .await?;
        }
        let (token, token_hash) = new_token()?;
        let session = CheckoutSession { token_hash, ..session };
        tx.checkout().insert_session(&session).await?;
        Ok((session, token))
    }

    /// The answer to a repeated CreateCheckoutSession: its session, with a
    /// new token while it is still open.
    async fn reissue(&self, response: &[u8], now: DateTime<Utc>) -> Result<OpenedSession, AppError> {
        let id = std::str::from_utf8(response)
            .ok()
            .and_then(|text| CheckoutSessionId::parse(text).ok())
            .ok_or_else(|| AppError::fault("a stored checkout response could not be read"))?;
        let tx = self.store.begin().await?;
        let session = tx
            .checkout()
            .get_session(&id, true)
            .await?
            .ok_or_else(|| session_not_found(&id))?;
        if session.check_open(now).is_err() {
            return Ok(OpenedSession {
                session: session.as_of(now),
                token: String::new(),
                url: String::new(),
            });
        }
        let (token, token_hash) = new_token()?;
        let session = CheckoutSession { token_hash, ..session };
        tx.checkout().update_session(&session).await?;
        tx.commit().await?;
        Ok(OpenedSession {
            url: self.page_url(&token),
            session,
            token,
        })
    }

    pub async fn get_session(&self, session_id: &str) -> Result<CheckoutSession, AppError> {
        let id = CheckoutSessionId::parse(session_id).map_err(|error| error.prefixed("session_id"))?;
        let session = self
            .store
            .checkout()
            .get_session(&id, false)
            .await?
            .ok_or_else(|| session_not_found(&id))?;
        Ok(session.as_of(self.clock.now()))
    }

    fn page_url(&self, token: &str) -> String {
        format!("{}/checkout/{token}", self.settings.public_url.trim_end_matches('/'))
    }
}

/// The use-case request an order stands for.
fn preview_request(session: &CheckoutSession) -> PreviewRequest {
    match &session.order {
        Order::Purchase {
            offering_code,
            currency_code,
            components,
            coupon_code,
        } => PreviewRequest::Purchase(PurchaseRequest {
            business_id: session.business_id.to_string(),
            buyer_id: session.buyer_id.to_string(),
            offering: OfferingRef::Code(offering_code.to_string()),
            currency_code: currency_code.clone(),
            components: components.clone(),
            coupon_code: coupon_code.as_ref().map(ToString::to_string).unwrap_or_default(),
            sponsored: false,
        }),
        Order::PlanChange {
            subscription_id,
            offering_code,
        } => PreviewRequest::PlanChange(PlanChangeRequest {
            subscription_id: subscription_id.to_string(),
            offering_code: offering_code.to_string(),
            timing: ChangeTiming::Default,
            prorate: true,
            etag: String::new(),
        }),
        Order::Components {
            subscription_id,
            components,
        } => PreviewRequest::Components(ComponentsRequest {
            subscription_id: subscription_id.to_string(),
            components: components.clone(),
            etag: String::new(),
        }),
    }
}

pub(crate) fn session_not_found(id: &CheckoutSessionId) -> AppError {
    DomainError::new(
        Reason::CheckoutSessionNotFound,
        format!("checkout session {id} does not exist"),
    )
    .into()
}
