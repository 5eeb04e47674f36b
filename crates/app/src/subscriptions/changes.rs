//! Writing a decided change: every affected subscription, its audit entry,
//! its outbox events, its next job, and the business's entitlements, all in
//! the caller's transaction.

use std::collections::{BTreeSet, HashMap};

use billing_domain::catalog::{Offering, OfferingType};
use billing_domain::ids::{InvoiceId, OfferingId, SubscriptionId};
use billing_domain::invoice::{Invoice, InvoiceStatus};
use billing_domain::subscription::{
    Business, CouponChoice, Created, EventType, NewSubscription, Subscription, SubscriptionState, create_subscription,
    entitlements,
};
use billing_domain::text::{Code, ExternalId};
use billing_storage::{AuditEntry, NewEvent, Tx};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::AppError;

/// Who caused a change: a request (caller and key) or a job.
#[derive(Clone, Debug)]
pub(crate) struct Actor {
    pub name: String,
    pub request_id: String,
}

/// Everything one decision changed.
#[derive(Debug, Default)]
pub(crate) struct Changes {
    pub inserted: Vec<Subscription>,
    pub updated: Vec<Subscription>,
    pub events: Vec<(EventType, SubscriptionId)>,
    pub invoices_inserted: Vec<Invoice>,
    pub invoices_updated: Vec<Invoice>,
    /// `invoice.created`, `invoice.paid`, `invoice.payment_failed`.
    pub invoice_events: Vec<(&'static str, InvoiceId)>,
    /// What the payment provider said about the charge this decision
    /// records, in its own words, kept in the audit.
    pub provider_said: Option<String>,
}

impl Changes {
    /// Keeps the provider's own words about a charge for the audit.
    pub fn record_charge_outcome(&mut self, outcome: &billing_provider_api::ChargeOutcome) {
        self.provider_said = Some(match outcome {
            billing_provider_api::ChargeOutcome::Succeeded { reference } => format!("charged ({reference})"),
            billing_provider_api::ChargeOutcome::Declined { code, message } => format!("declined ({code}): {message}"),
        });
    }

    pub fn record_created(&mut self, created: Created) {
        self.updated.extend(created.replaced);
        self.inserted.push(created.subscription);
        self.inserted.extend(created.bundled);
        self.events.extend(created.events);
    }

    pub fn record_update(&mut self, subscription: Subscription, events: &[EventType]) {
        if events.is_empty() {
            return;
        }
        self.events
            .extend(events.iter().map(|event| (*event, subscription.id.clone())));
        self.updated.push(subscription);
    }

    /// Records a subscription that changed even without an event (a failed
    /// dunning retry).
    pub fn record_changed(&mut self, subscription: Subscription, events: &[EventType]) {
        self.events
            .extend(events.iter().map(|event| (*event, subscription.id.clone())));
        self.updated.push(subscription);
    }

    pub fn record_new_invoice(&mut self, invoice: Invoice) {
        self.invoice_events.push(("invoice.created", invoice.id.clone()));
        if invoice.status == InvoiceStatus::Paid {
            self.invoice_events.push(("invoice.paid", invoice.id.clone()));
        }
        self.invoices_inserted.push(invoice);
    }

    /// `invoice` as `persist` wrote it: a new invoice with its number.
    pub fn issued(&self, invoice: Option<Invoice>) -> Option<Invoice> {
        let invoice = invoice?;
        Some(
            self.invoices_inserted
                .iter()
                .find(|written| written.id == invoice.id)
                .cloned()
                .unwrap_or(invoice),
        )
    }

    pub fn record_invoice_update(&mut self, invoice: Invoice, event: &'static str) {
        self.invoice_events.push((event, invoice.id.clone()));
        self.invoices_updated.push(invoice);
    }

    fn latest(&self) -> HashMap<&SubscriptionId, &Subscription> {
        self.inserted
            .iter()
            .chain(&self.updated)
            .map(|subscription| (&subscription.id, subscription))
            .collect()
    }
}

pub(crate) fn new_subscription_id() -> SubscriptionId {
    SubscriptionId::from_uuid(Uuid::now_v7())
}

/// When lifecycle work is next due for a subscription: its expiry once
/// canceled, its next dunning retry, its period end while it renews.
/// Bundled children have no jobs of their own; they follow their parent's.
pub(crate) fn next_due(subscription: &Subscription) -> Option<DateTime<Utc>> {
    if subscription.bundled_from_subscription_id.is_some() {
        return None;
    }
    match subscription.state {
        SubscriptionState::Canceled => subscription.expiration_time,
        // Billed by an engine provider: it renews; only a cancel's expiry is due here.
        SubscriptionState::Purchased if subscription.provider.is_engine() => None,
        SubscriptionState::Purchased => match &subscription.dunning {
            // While past due, the next retry comes first.
            Some(dunning) => dunning.next_retry_time.or_else(|| subscription.next_renewal_time()),
            None => subscription.next_renewal_time(),
        },
        SubscriptionState::Expired => None,
    }
}

/// When the subscription's job is due: its next lifecycle step, or earlier
/// when one of its invoices waits for a charge attempt (a renewal's whose
/// process died, a held change's, an incomplete purchase's), whatever
/// else changed meanwhile. An ended subscription with an invoice still open
/// is due now: the job asks the provider whether a charge for it went
/// through, then records it paid or voids it.
pub(crate) async fn job_due(
    tx: &Tx,
    subscription: &Subscription,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, AppError> {
    job_due_with(tx, subscription, &[], now).await
}

/// [`job_due`] for a change whose `new_invoices` are not written yet: the
/// newest invoice is the one a charge waits for, if it waits.
async fn job_due_with(
    tx: &Tx,
    subscription: &Subscription,
    new_invoices: &[Invoice],
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, AppError> {
    let lifecycle = next_due(subscription);
    if subscription.bundled_from_subscription_id.is_some() {
        return Ok(lifecycle);
    }
    let waiting = new_invoices
        .iter()
        .filter(|invoice| invoice.subscription_id == subscription.id && invoice.is_unpaid())
        .max_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
    let unpaid = match waiting {
        Some(invoice) => Some(invoice.clone()),
        None => tx.billing().unpaid_invoice(&subscription.id).await?,
    };
    let Some(unpaid) = unpaid else {
        return Ok(lifecycle);
    };
    if !subscription.is_active() {
        return Ok(Some(now));
    }
    Ok(lifecycle.into_iter().chain(unpaid.next_attempt_time).min())
}

/// Writes `changes` with their audit entries, events, jobs and entitlements,
/// and numbers the invoices it issued.
///
/// The numbers come from one counter row that every issuing transaction
/// locks until it commits, so they are taken after every other write that
/// does not need them: only the invoices, the audit entries and the events,
/// which name them, follow.
pub(crate) async fn persist(
    tx: &Tx,
    changes: &mut Changes,
    action: &str,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    let store = tx.subscriptions();
    for subscription in &changes.inserted {
        store.insert_subscription(subscription).await?;
    }
    for subscription in &changes.updated {
        store.update_subscription(subscription).await?;
    }
    for invoice in &changes.invoices_updated {
        tx.billing().update_invoice(invoice).await?;
    }
    // The new invoices are numbered below, once nothing else is left to
    // write; until then they are out of `changes`.
    let mut issued = std::mem::take(&mut changes.invoices_inserted);
    let latest = changes.latest();
    // Prices freeze once anything uses the offering, or is scheduled to move
    // to it, so a renewal can always price what it applies.
    let offerings_in_use: Vec<&OfferingId> = latest
        .values()
        .flat_map(|subscription| {
            std::iter::once(&subscription.offering_id)
                .chain(subscription.pending_change.as_ref().map(|change| &change.offering_id))
        })
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    tx.catalog()
        .mark_offerings_have_subscriptions(&offerings_in_use)
        .await?;
    let businesses: BTreeSet<&ExternalId> = latest.values().map(|subscription| &subscription.business_id).collect();
    for subscription in latest.values() {
        let due = job_due_with(tx, subscription, &issued, now).await?;
        tx.jobs().schedule(&subscription.id, due).await?;
    }
    for business_id in businesses {
        refresh_entitlements(tx, business_id).await?;
    }

    for invoice in issued.iter_mut().filter(|invoice| !invoice.is_numbered()) {
        invoice.number = tx.billing().next_invoice_number().await?;
    }
    for invoice in &issued {
        tx.billing().insert_invoice(invoice).await?;
    }
    let mut history = Vec::with_capacity(latest.len());
    for subscription in latest.values() {
        let invoices: Vec<&Invoice> = issued
            .iter()
            .chain(&changes.invoices_updated)
            .filter(|invoice| invoice.subscription_id == subscription.id)
            .collect();
        let invoice_events = changes.invoice_events.iter().filter_map(|(event, id)| {
            invoices
                .iter()
                .find(|invoice| &invoice.id == id)
                .map(|invoice| format!("{event} {}", invoice.number))
        });
        let happened: Vec<String> = changes
            .events
            .iter()
            .filter(|(_, id)| id == &subscription.id)
            .map(|(event, _)| event.as_str().to_owned())
            .chain(invoice_events)
            .collect();
        history.push(AuditEntry {
            id: format!("aud_{}", Uuid::now_v7().simple()),
            subscription_id: subscription.id.clone(),
            business_id: subscription.business_id.clone(),
            action: action.to_owned(),
            actor: actor.name.clone(),
            request_id: actor.request_id.clone(),
            detail: match &changes.provider_said {
                Some(said) => format!("{}; provider: {said}", describe(subscription, &happened)),
                None => describe(subscription, &happened),
            },
            create_time: now,
        });
    }
    store.insert_audit_entries(&history).await?;
    let mut events = Vec::with_capacity(changes.events.len() + changes.invoice_events.len());
    for (event, id) in &changes.events {
        let Some(subscription) = latest.get(id) else {
            continue;
        };
        // A purchase that was never paid never started: it has no start,
        // so no cancel or end either (the START/END pair stays a pair).
        if subscription.is_incomplete() {
            continue;
        }
        events.push(NewEvent {
            id: format!("evt_{}", Uuid::now_v7().simple()),
            event_type: event.as_str().to_owned(),
            business_id: subscription.business_id.to_string(),
            subscription_id: subscription.id.to_string(),
            occur_time: now,
            payload: snapshot(subscription),
        });
    }
    for (event, id) in &changes.invoice_events {
        let Some(invoice) = issued
            .iter()
            .chain(&changes.invoices_updated)
            .rev()
            .find(|invoice| &invoice.id == id)
        else {
            continue;
        };
        events.push(NewEvent {
            id: format!("evt_{}", Uuid::now_v7().simple()),
            event_type: (*event).to_owned(),
            business_id: invoice.business_id.to_string(),
            subscription_id: invoice.subscription_id.to_string(),
            occur_time: now,
            payload: invoice_snapshot(invoice),
        });
    }
    tx.insert_events(&events).await?;
    changes.invoices_inserted = issued;
    Ok(())
}

/// One line for people reading a subscription's history.
fn describe(subscription: &Subscription, events: &[String]) -> String {
    let mut text = format!(
        "{}: {} on {}, period {}..{}",
        events.join(", "),
        subscription.state.as_str(),
        subscription.offering_code,
        subscription.current_period.start,
        subscription.current_period.end
    );
    if let Some(expiration) = subscription.expiration_time {
        text.push_str(&format!(", expires {}", expiration.to_rfc3339()));
    }
    if let Some(pending) = &subscription.pending_change {
        text.push_str(&format!(
            ", changes to {} at {}",
            pending.offering_code,
            pending.effective_time.to_rfc3339()
        ));
    }
    if let Some(held) = &subscription.held_change {
        text.push_str(&format!(
            ", {} with {} component(s) waits for invoice {} to be paid",
            held.plan.offering_code,
            held.plan.components.len(),
            held.invoice_id
        ));
    }
    text
}

/// The resource snapshot carried by an event.
pub(crate) fn snapshot(subscription: &Subscription) -> serde_json::Value {
    serde_json::json!({
        "id": subscription.id.as_str(),
        "business_id": subscription.business_id.as_str(),
        "directory_id": subscription.directory_id.as_str(),
        "offering_code": subscription.offering_code.as_str(),
        "family": subscription.family.as_str(),
        "state": subscription.state.as_str(),
        "payment_type": subscription.payment_type.as_str(),
        "purchase_price": {
            "currency_code": subscription.purchase_price.currency().code(),
            "amount_minor": subscription.purchase_price.amount_minor(),
        },
        "current_period_start_time": subscription.current_period.start_time().to_rfc3339(),
        "current_period_end_time": subscription.current_period.end_time().to_rfc3339(),
        "expiration_time": subscription.expiration_time.map(|time| time.to_rfc3339()),
        "bundled_from_subscription_id": subscription.bundled_from_subscription_id.as_ref().map(SubscriptionId::as_str),
        "version": subscription.version,
    })
}

/// The invoice snapshot carried by an invoice event.
fn invoice_snapshot(invoice: &Invoice) -> serde_json::Value {
    let money = |amount: billing_domain::Money| serde_json::json!({"currency_code": amount.currency().code(), "amount_minor": amount.amount_minor()});
    serde_json::json!({
        "id": invoice.id.as_str(),
        "number": invoice.number,
        "subscription_id": invoice.subscription_id.as_str(),
        "business_id": invoice.business_id.as_str(),
        "status": invoice.status.as_str(),
        "total": money(invoice.draft.total),
        "amount_due": money(invoice.draft.amount_due),
        "attempt_count": invoice.attempt_count,
    })
}

/// Recomputes a business's entitlements from all its subscriptions.
pub(crate) async fn refresh_entitlements(tx: &Tx, business_id: &ExternalId) -> Result<(), AppError> {
    // One rewrite of a business at a time, each reading after the one
    // before committed: two jobs of one business on two workers would
    // otherwise each write a view missing the other's change.
    tx.lock(&format!("entitlements:{business_id}")).await?;
    let subscriptions = tx.subscriptions().business_subscriptions(business_id).await?;
    let offering_ids: Vec<_> = subscriptions
        .iter()
        .map(|subscription| subscription.offering_id.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let offerings = tx.catalog().offerings_by_ids(&offering_ids).await?;
    let products: HashMap<_, &[Code]> = offerings
        .iter()
        .map(|offering| (&offering.id, offering.product_codes.as_slice()))
        .collect();
    let pairs = subscriptions.iter().map(|subscription| {
        (
            subscription,
            products.get(&subscription.offering_id).copied().unwrap_or(&[]),
        )
    });
    let view = entitlements(pairs);
    tx.replace_entitlements(business_id, &view).await?;
    Ok(())
}

/// The free subscriptions a business gets from its directory's defaults
/// (`only_packages`: just the default PACKAGE, after a package ended).
/// Families the business already holds are skipped.
pub(crate) async fn default_subscriptions(
    tx: &Tx,
    business: &Business,
    buyer_id: &str,
    only_packages: bool,
    now: DateTime<Utc>,
) -> Result<Changes, AppError> {
    let defaults = tx.catalog().directory_default_offerings(&business.directory_id).await?;
    let mut history = tx.subscriptions().business_subscriptions(&business.business_id).await?;
    let mut changes = Changes::default();
    let holds_package = history
        .iter()
        .any(|held| held.is_active() && held.offering_type == OfferingType::Package);
    for offering in defaults {
        if only_packages && (offering.offering_type != OfferingType::Package || holds_package) {
            continue;
        }
        if history
            .iter()
            .any(|held| held.is_active() && held.family == offering.family)
        {
            continue;
        }
        let Some(created) = create_default(business, buyer_id, &offering, &history, now)? else {
            continue;
        };
        history.push(created.subscription.clone());
        history.extend(created.bundled.iter().cloned());
        changes.record_created(created);
    }
    Ok(changes)
}

fn create_default(
    business: &Business,
    buyer_id: &str,
    offering: &Offering,
    history: &[Subscription],
    now: DateTime<Utc>,
) -> Result<Option<Created>, AppError> {
    // A default is free, so any of its currencies will do.
    let Some(currency) = offering.prices.currencies().next() else {
        return Ok(None);
    };
    let input = NewSubscription {
        business,
        buyer_id,
        offering,
        currency_code: currency.code(),
        components: &[],
        coupon: CouponChoice::None,
        sponsored: false,
        available_in_directory: true,
        family_history: history,
        bundled_offerings: &[],
        now,
    };
    Ok(Some(create_subscription(&input, new_subscription_id)?))
}
