//! Checkout: single-use consent tokens and what the consent page shows.
//!
//! A session is checked when it is created by running the purchase or change
//! it offers in a savepoint that is rolled back, so the page never offers
//! what cannot be bought. Accepting runs the very same use case
//! (CreateSubscription, ChangePlan or UpdateComponents) under an idempotency
//! key derived from the session, so a double click, a retry, or a crash
//! between the purchase and the session's record makes one subscription.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use billing_domain::catalog::{BillingInterval, Offering};
use billing_domain::checkout::{CheckoutDraft, CheckoutSession, Decided, Decision, Order};
use billing_domain::ids::{CheckoutSessionId, SubscriptionId};
use billing_domain::invoice::InvoiceDraft;
use billing_domain::payment_method::PaymentMethod;
use billing_domain::subscription::{ChangeTiming, Subscription};
use billing_domain::{DomainError, ErrorKind, Money, Reason};
use billing_provider_api::hex::encode as hex;
use billing_storage::{NewEvent, OfferingKey, Store, Tx};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::clock::Clock;
use crate::idempotency::{self, Outcome, RequestContext, Start};
use crate::subscriptions::{OfferingRef, PreviewRequest, PurchaseRequest, subscription_not_found};
use crate::{AppError, Subscriptions};

/// Random bytes in a token: 256 bits, 43 URL-safe characters.
const TOKEN_BYTES: usize = 32;
/// Random bytes in a form nonce.
const NONCE_BYTES: usize = 16;
/// The idempotency scope of accepted checkouts, apart from every caller's.
const CHECKOUT_CALLER: &str = "checkout";

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

/// One priced component line on the consent page.
#[derive(Clone, Debug)]
pub struct ComponentLine {
    pub name: String,
    pub quantity: u32,
    pub unit_price: Money,
    pub amount: Money,
}

/// Everything the consent page shows.
#[derive(Clone, Debug)]
pub struct ConsentPage {
    pub session: CheckoutSession,
    /// Set when the order can no longer go through (the business bought the
    /// family elsewhere, the subscription ended, …): Accept is disabled.
    pub problem: Option<DomainError>,
    /// What is bought or changed to.
    pub offering: Option<Offering>,
    /// For a plan change: the plan it replaces.
    pub current_offering_name: Option<String>,
    pub interval: Option<BillingInterval>,
    /// The plan's price per interval.
    pub plan_price: Option<Money>,
    pub components: Vec<ComponentLine>,
    /// Plan and components per interval.
    pub recurring_total: Option<Money>,
    /// The invoice billed on Accept (PreviewInvoice's); `None` bills nothing.
    pub invoice: Option<InvoiceDraft>,
    pub amount_due_today: Option<Money>,
    pub trial_end_time: Option<DateTime<Utc>>,
    /// When a plan change that waits for the period's end applies.
    pub scheduled_change_time: Option<DateTime<Utc>>,
    pub payment_method: Option<PaymentMethod>,
    /// A paid plan needs a payment method on file before Accept.
    pub needs_payment_method: bool,
    /// The directory's provider is the engine (Maxio): it holds the payment
    /// method and charges.
    pub billed_by_provider: bool,
}

impl ConsentPage {
    pub fn can_accept(&self) -> bool {
        self.problem.is_none() && (self.payment_method.is_some() || !self.needs_payment_method)
    }
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
        let (tx, key) = match idempotency::start(&self.store, context, "CreateCheckoutSession", now).await? {
            Start::Replay(response) => return self.reissue(&response, now).await,
            Start::Run(tx, key) => (tx, key),
        };
        let result = self.open_in(&tx, draft, checked, now).await;
        let encode = |(session, _): &(CheckoutSession, String)| session.id.as_str().as_bytes().to_vec();
        match idempotency::finish(&self.store, tx, key, result, encode, now).await? {
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
            form_nonce: hex(&random_bytes::<NONCE_BYTES>()?),
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

    /// What the consent page shows for `token`: an open session, priced now.
    pub async fn consent_page(&self, token: &str) -> Result<ConsentPage, AppError> {
        let token_hash = token_hash(token)?;
        let now = self.clock.now();
        let session = self
            .store
            .checkout()
            .find_by_token_hash(&token_hash, false)
            .await?
            .ok_or_else(unknown_token)?;
        session.check_open(now)?;
        self.assess(session, now).await
    }

    /// Prices the session's order now, in a transaction that is rolled back.
    async fn assess(&self, session: CheckoutSession, now: DateTime<Utc>) -> Result<ConsentPage, AppError> {
        let tx = self.store.begin().await?;
        let payment_method = tx
            .billing()
            .get_payment_method(&session.business_id)
            .await?
            .map(|stored| stored.method);
        let mut page = ConsentPage {
            session,
            problem: None,
            offering: None,
            current_offering_name: None,
            interval: None,
            plan_price: None,
            components: Vec::new(),
            recurring_total: None,
            invoice: None,
            amount_due_today: None,
            trial_end_time: None,
            scheduled_change_time: None,
            payment_method,
            needs_payment_method: false,
            billed_by_provider: false,
        };
        let current_offering_name = match page.session.order.subscription_id() {
            Some(id) => tx
                .subscriptions()
                .get_subscription(id)
                .await?
                .map(|subscription| subscription.display_name),
            None => None,
        };
        let previewed = {
            let savepoint = tx.savepoint().await?;
            self.subscriptions
                .preview_in(&savepoint, &preview_request(&page.session), now)
                .await
        };
        let previewed = match previewed {
            Ok(previewed) => previewed,
            Err(AppError::Rule(problem)) => {
                page.problem = Some(problem);
                return Ok(page);
            }
            Err(other) => return Err(other),
        };
        let after = &previewed.subscription;
        let offering_key = match &page.session.order {
            Order::PlanChange { offering_code, .. } => OfferingKey::Code(offering_code),
            Order::Purchase { .. } | Order::Components { .. } => OfferingKey::Id(&after.offering_id),
        };
        let offering = tx
            .catalog()
            .get_offering(offering_key)
            .await?
            .ok_or_else(|| AppError::fault("the previewed offering vanished"))?;
        drop(tx);
        let mut previewed = previewed;
        // A plan change billed by an engine provider is priced by it, now
        // that no transaction is open.
        if let Order::PlanChange {
            subscription_id,
            offering_code,
        } = &page.session.order
            && let Some(draft) = self
                .subscriptions
                .engine_plan_preview(subscription_id.as_str(), offering_code.as_str())
                .await?
        {
            previewed.invoice = Some(draft);
        }
        let after = &previewed.subscription;
        let currency = after.purchase_price.currency();
        // A plan change prices the target plan; a purchase or components
        // update the subscription's own (grandfathered) price.
        let plan_price = match &page.session.order {
            Order::PlanChange { .. } => offering.prices.price_in(currency).unwrap_or(after.purchase_price),
            Order::Purchase { .. } | Order::Components { .. } => after.purchase_price,
        };
        let mut recurring_total = plan_price;
        for held in &after.components {
            let Some(component) = offering.components.iter().find(|c| c.code == held.component_code) else {
                continue;
            };
            let unit_price = component
                .unit_prices
                .price_in(currency)
                .unwrap_or(Money::zero(currency));
            let amount = unit_price
                .checked_mul(i64::from(held.quantity))
                .map_err(DomainError::from)?;
            recurring_total = recurring_total.checked_add(amount).map_err(DomainError::from)?;
            page.components.push(ComponentLine {
                name: component.display_name.clone(),
                quantity: held.quantity,
                unit_price,
                amount,
            });
        }
        let amount_due_today = previewed
            .invoice
            .as_ref()
            .map_or(Money::zero(currency), |invoice| invoice.amount_due);
        if let Order::PlanChange { .. } = page.session.order {
            // Applied now, the subscription is on the new plan already; a
            // change that waits stays pending until `effective_time`.
            if after.offering_id != offering.id {
                page.scheduled_change_time = previewed.effective_time;
            }
            page.current_offering_name = current_offering_name;
        }
        page.billed_by_provider = after.provider == "maxio";
        page.needs_payment_method =
            !page.billed_by_provider && (!amount_due_today.is_zero() || !recurring_total.is_zero());
        page.trial_end_time = after.trial_end_time.filter(|end| *end > now);
        page.interval = Some(offering.billing_interval);
        page.plan_price = Some(plan_price);
        page.recurring_total = Some(recurring_total);
        page.amount_due_today = Some(amount_due_today);
        page.invoice = previewed.invoice;
        page.offering = Some(offering);
        Ok(page)
    }

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
        let outcome = match &session.order {
            Order::Purchase { .. } => {
                let PreviewRequest::Purchase(request) = preview_request(session) else {
                    return Err(AppError::fault("a purchase that is not one"));
                };
                self.subscriptions
                    .create_subscription(&context, &request, |purchase| encode(&purchase.subscription.id))
                    .await?
                    .map(|purchase| purchase.subscription.id)
            }
            Order::PlanChange {
                subscription_id,
                offering_code,
            } => self
                .subscriptions
                .change_plan(
                    &context,
                    subscription_id.as_str(),
                    offering_code.as_str(),
                    ChangeTiming::Default,
                    true,
                    "",
                    |changed| encode(&changed.subscription.id),
                )
                .await?
                .map(|changed| changed.subscription.id),
            Order::Components {
                subscription_id,
                components,
            } => self
                .subscriptions
                .update_components(&context, subscription_id.as_str(), components, "", |updated| {
                    encode(&updated.subscription.id)
                })
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
        if stored.status != billing_domain::checkout::CheckoutStatus::Open {
            drop(tx);
            return self.completion(stored, now).await;
        }
        tx.checkout().update_session(&finished).await?;
        if finished.status == billing_domain::checkout::CheckoutStatus::Completed {
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
        } => PreviewRequest::PlanChange {
            subscription_id: subscription_id.to_string(),
            offering_code: offering_code.to_string(),
            timing: ChangeTiming::Default,
            prorate: true,
        },
        Order::Components {
            subscription_id,
            components,
        } => PreviewRequest::Components {
            subscription_id: subscription_id.to_string(),
            components: components.clone(),
        },
    }
}

/// Ends the checkout sessions that waited on `subscription`'s first charge,
/// now that it settled: completed if it is paid and active, failed
/// (`INCOMPLETE_EXPIRED`) if it ended. In the settling transaction.
pub(crate) async fn settle_pending_sessions(
    tx: &Tx,
    subscription: &billing_domain::subscription::Subscription,
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
        if ended.status == billing_domain::checkout::CheckoutStatus::Completed {
            insert_event(tx, "checkout.completed", &ended, now).await?;
        }
    }
    Ok(())
}

/// Whether what a checkout asked for still waits for its payment: a
/// purchase not yet paid, or a change held for its charge.
fn awaits_payment(subscription: &billing_domain::subscription::Subscription) -> bool {
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

/// A fresh token and the hash it is stored as.
fn new_token() -> Result<(String, String), AppError> {
    let token = URL_SAFE_NO_PAD.encode(random_bytes::<TOKEN_BYTES>()?);
    let hash = hex(&Sha256::digest(token.as_bytes()));
    Ok((token, hash))
}

/// The stored hash of a token a client sent, after checking its shape.
pub(crate) fn token_hash(token: &str) -> Result<String, AppError> {
    if token.is_empty() {
        return Err(DomainError::field("token", Reason::CheckoutTokenMissing, "no checkout token was sent").into());
    }
    let decodes = URL_SAFE_NO_PAD
        .decode(token)
        .is_ok_and(|bytes| bytes.len() == TOKEN_BYTES);
    if !decodes {
        return Err(unknown_token());
    }
    Ok(hex(&Sha256::digest(token.as_bytes())))
}

fn random_bytes<const N: usize>() -> Result<[u8; N], AppError> {
    let mut bytes = [0_u8; N];
    getrandom::fill(&mut bytes)
        .map_err(|error| AppError::fault(format!("the system's random source failed: {error}")))?;
    Ok(bytes)
}

fn constant_time_eq(left: &[u8], right: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    left.len() == right.len() && bool::from(left.ct_eq(right))
}

pub(crate) fn unknown_token() -> AppError {
    DomainError::new(
        Reason::CheckoutTokenInvalid,
        "this checkout link is not valid; ask the app for a new one",
    )
    .into()
}

pub(crate) fn session_not_found(id: &CheckoutSessionId) -> AppError {
    DomainError::new(
        Reason::CheckoutSessionNotFound,
        format!("checkout session {id} does not exist"),
    )
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_256_random_bits_stored_as_their_hash() {
        let (token, hash) = new_token().unwrap();
        assert_eq!(token.len(), 43);
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(token_hash(&token).unwrap(), hash);
        assert_eq!(hash.len(), 64);
        assert_ne!(new_token().unwrap().0, token);
    }

    #[test]
    fn malformed_tokens_are_invalid_and_empty_ones_missing() {
        assert_eq!(token_hash("").unwrap_err().reason(), Reason::CheckoutTokenMissing);
        for bad in ["short", "!".repeat(43).as_str(), "a".repeat(44).as_str()] {
            assert_eq!(
                token_hash(bad).unwrap_err().reason(),
                Reason::CheckoutTokenInvalid,
                "{bad}"
            );
        }
    }

    #[test]
    fn nonces_compare_whole() {
        assert!(constant_time_eq(b"abcd", b"abcd"));
        assert!(!constant_time_eq(b"abcd", b"abce"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"", b"abcd"));
    }
}
