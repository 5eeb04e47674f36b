//! Processing the inbound webhook inbox: each stored delivery is applied by
//! a job, once. A Stripe payment outcome settles the attempt it names (the
//! same code as a charge the service made itself); a Maxio report moves the
//! mirrored subscription. Anything stale (an attempt already recorded, an
//! event older than the last one applied) is ignored and says why; a failure
//! is retried with backoff and, after the last attempt, left dead for people
//! to look at.

use billing_domain::Provider;
use billing_domain::ids::{InvoiceId, SubscriptionId};
use billing_domain::subscription::{CancelTiming, Report, SubscriptionState, follow_parent, mirror};
use billing_domain::text::{Code, ExternalId};
use billing_provider_api::{ChargeOutcome, InboundEvent};
use billing_storage::{Delivery, InboxStatus, Queue, SubscriptionFilter};
use chrono::{DateTime, Utc};

use super::changes::{Actor, Changes, persist};
use super::fall_back_to_default_package;
use super::worker::JobRunner;
use crate::AppError;
use crate::inbox::Sender;
use crate::queue::{Failure, Lease, Stopping, drain};

/// Attempts before a delivery is dead.
pub const MAX_DELIVERY_ATTEMPTS: i32 = 5;

/// An engine's report about one subscription, as read from its webhook.
struct EngineReport<'a> {
    provider: Provider,
    event_id: &'a str,
    event_type: &'a str,
    /// This service's subscription id, if the subscription is its own.
    reference: Option<&'a str>,
    report: Report,
    /// When the provider says the change happened.
    as_of: DateTime<Utc>,
}

/// What applying a delivery did.
#[derive(Debug)]
enum Applied {
    Changed(String),
    Ignored(String),
}

fn webhook_actor(provider: &str, event_id: &str) -> Actor {
    Actor {
        name: format!("webhook:{provider}"),
        request_id: event_id.to_owned(),
    }
}

impl JobRunner {
    /// Applies every delivery due at `now`, until `stopping`; returns
    /// (applied or ignored, failed).
    pub(crate) async fn process_inbox(
        &self,
        now: DateTime<Utc>,
        stopping: &Stopping<'_>,
    ) -> Result<(usize, usize), AppError> {
        drain(
            self.store(),
            Queue::WebhookInbox,
            MAX_DELIVERY_ATTEMPTS,
            now,
            stopping,
            |delivery| async move {
                let lease = Lease::row(Queue::WebhookInbox, &delivery);
                match self.apply(&delivery, lease, now).await {
                    Ok(Applied::Changed(what)) => Ok((InboxStatus::Processed, what)),
                    Ok(Applied::Ignored(why)) => Ok((InboxStatus::Ignored, why)),
                    Err(error) => Err(Failure::transient(error)),
                }
            },
        )
        .await
    }

    async fn apply(&self, delivery: &Delivery, lease: Lease<'_>, now: DateTime<Utc>) -> Result<Applied, AppError> {
        let provider = match Sender::from_text(&delivery.provider) {
            Some(Sender::Provider(provider)) => provider,
            Some(Sender::Platform) => return self.apply_platform(delivery).await,
            None => return Ok(Applied::Ignored(format!("{:?} sends no webhooks", delivery.provider))),
        };
        let event = self
            .charger()
            .providers()
            .read_webhook(provider, delivery.payload.as_bytes());
        match event {
            None => Ok(Applied::Ignored(format!(
                "not an event of provider {:?}",
                provider.as_str()
            ))),
            Some(InboundEvent::NotActedOn { event_type }) => {
                Ok(Applied::Ignored(format!("{event_type} is not acted on")))
            }
            Some(InboundEvent::Payment {
                event_type,
                charge_key,
                outcome,
            }) => {
                self.apply_payment(&event_type, charge_key.as_deref(), outcome, lease, now)
                    .await
            }
            Some(InboundEvent::Subscription {
                event_id,
                event_type,
                reference,
                report,
                as_of,
            }) => {
                let report = EngineReport {
                    provider,
                    event_id: &event_id,
                    event_type: &event_type,
                    reference: reference.as_deref(),
                    report,
                    as_of: as_of.unwrap_or(delivery.received_time),
                };
                self.apply_engine_report(report, lease, now).await
            }
        }
    }

    /// A gateway's payment settled: it settles the attempt its charge key
    /// names, as a charge the service made itself would.
    async fn apply_payment(
        &self,
        event_type: &str,
        charge_key: Option<&str>,
        outcome: Option<ChargeOutcome>,
        lease: Lease<'_>,
        now: DateTime<Utc>,
    ) -> Result<Applied, AppError> {
        let Some(key) = charge_key else {
            return Ok(Applied::Ignored("the payment was not made by this service".to_owned()));
        };
        let Some(invoice_id) = key.split(":attempt:").next().and_then(|id| InvoiceId::parse(id).ok()) else {
            return Ok(Applied::Ignored(format!("charge key {key:?} names no invoice")));
        };
        let Some(invoice) = self.store().billing().get_invoice(&invoice_id).await? else {
            return Ok(Applied::Ignored(format!("invoice {invoice_id} does not exist")));
        };
        if invoice.next_attempt_time.is_none() || invoice.attempt_key() != key {
            return Ok(Applied::Ignored(format!(
                "stale: attempt {key} of {} was recorded already ({})",
                invoice.number,
                invoice.status.as_str()
            )));
        }
        let Some(outcome) = outcome else {
            return Ok(Applied::Ignored("the payment is still processing".to_owned()));
        };
        self.record(&invoice, &outcome, now, lease).await?;
        Ok(Applied::Changed(format!("{} settled by {event_type}", invoice.number)))
    }

    /// An engine reports a change: the mirrored subscription moves with it,
    /// unless the report is older than the last one applied.
    async fn apply_engine_report(
        &self,
        event: EngineReport<'_>,
        lease: Lease<'_>,
        now: DateTime<Utc>,
    ) -> Result<Applied, AppError> {
        let EngineReport {
            provider,
            event_id,
            event_type,
            reference,
            report,
            as_of,
        } = event;
        let Some(subscription_id) = reference.and_then(|id| SubscriptionId::parse(id).ok()) else {
            return Ok(Applied::Ignored(
                "the subscription was not made by this service".to_owned(),
            ));
        };
        let tx = self.store().begin().await?;
        if !lease.holds(&tx).await? {
            return Ok(Applied::Ignored(
                "the claim was lost: another worker applies it".to_owned(),
            ));
        }
        let Some(subscription) = tx.subscriptions().get_subscription_for_update(&subscription_id).await? else {
            return Ok(Applied::Ignored(format!(
                "subscription {subscription_id} does not exist"
            )));
        };
        if subscription.provider != provider {
            return Ok(Applied::Ignored(format!(
                "subscription {subscription_id} is not billed by {provider}"
            )));
        }
        if let Some(last) = tx.subscriptions().last_provider_event_time(&subscription_id).await?
            && as_of < last
        {
            return Ok(Applied::Ignored(format!(
                "stale: {} is from {}, the subscription was updated at {}",
                event_type,
                as_of.to_rfc3339(),
                last.to_rfc3339()
            )));
        }
        let transition = mirror(&subscription, report, now);
        tx.subscriptions()
            .set_last_provider_event_time(&subscription_id, provider.as_str(), as_of)
            .await?;
        if !transition.changed() {
            tx.commit().await?;
            return Ok(Applied::Ignored(format!("{event_type} changes nothing")));
        }
        let actor = webhook_actor(provider.as_str(), event_id);
        let parent = transition.subscription.clone();
        let mut changes = Changes::default();
        for child in tx.subscriptions().children_for_update(&parent.id).await? {
            let followed = follow_parent(&child, &parent, now);
            changes.record_update(followed.subscription, &followed.events);
        }
        let happened: Vec<&str> = transition.events.iter().map(|event| event.as_str()).collect();
        let what = format!("{event_type} → {}", happened.join(", "));
        changes.record_update(transition.subscription, &transition.events);
        persist(&tx, &mut changes, &format!("webhook:{event_type}"), &actor, now).await?;
        if parent.state == SubscriptionState::Expired {
            fall_back_to_default_package(&tx, &parent, &actor, now).await?;
        }
        tx.commit().await?;
        Ok(Applied::Changed(what))
    }
}

/// The platform's `app_subscription.cancel`.
#[derive(Debug, serde::Deserialize)]
struct PlatformCancel {
    business_id: String,
    #[serde(default)]
    subscription_id: String,
    #[serde(default)]
    offering_code: String,
    /// `period_end` (the default) or `immediately`.
    #[serde(default)]
    when: String,
    #[serde(default)]
    reason: String,
}

impl JobRunner {
    /// The platform cancels an app subscription: the Cancel use case, keyed
    /// by the delivery's `webhook-id`, so a replay has one effect.
    async fn apply_platform(&self, delivery: &Delivery) -> Result<Applied, AppError> {
        #[derive(serde::Deserialize)]
        struct Envelope {
            data: PlatformCancel,
        }
        let Ok(Envelope { data }) = serde_json::from_str::<Envelope>(&delivery.payload) else {
            return Ok(Applied::Ignored(
                "not an app_subscription.cancel with its data".to_owned(),
            ));
        };
        let timing = match data.when.as_str() {
            "" | "period_end" => CancelTiming::EndOfPeriod,
            "immediately" => CancelTiming::Immediate,
            other => return Ok(Applied::Ignored(format!("unknown \"when\": {other:?}"))),
        };
        let Some(subscription) = self.platform_target(&data).await? else {
            return Ok(Applied::Ignored(format!(
                "business {} has no such active subscription",
                data.business_id
            )));
        };
        let subscriptions =
            super::Subscriptions::new(self.store().clone(), self.clock().clone(), self.charger().clone());
        let context = crate::idempotency::RequestContext {
            caller: "webhook:platform".to_owned(),
            request_id: delivery.event_id.clone(),
            request_hash: delivery.event_id.clone(),
        };
        let reason = if data.reason.is_empty() {
            "canceled by the platform".to_owned()
        } else {
            data.reason
        };
        // Boxed: the use case's future is large, and this one runs deep in
        // the worker's.
        let canceled =
            Box::pin(subscriptions.cancel(&context, subscription.as_str(), timing, &reason, "", |_| Vec::new())).await;
        match canceled {
            Ok(_) => Ok(Applied::Changed(format!("{subscription} canceled ({timing:?})"))),
            Err(AppError::Rule(refusal)) => Ok(Applied::Ignored(format!("{subscription}: {}", refusal.message()))),
            Err(other) => Err(other),
        }
    }

    /// The subscription a platform cancel names: by id (of that business),
    /// or the business's active one of the offering.
    async fn platform_target(&self, data: &PlatformCancel) -> Result<Option<SubscriptionId>, AppError> {
        let Ok(business_id) = ExternalId::parse(&data.business_id) else {
            return Ok(None);
        };
        if !data.subscription_id.is_empty() {
            let Ok(id) = SubscriptionId::parse(&data.subscription_id) else {
                return Ok(None);
            };
            let found = self.store().subscriptions().get_subscription(&id).await?;
            return Ok(found
                .filter(|subscription| subscription.business_id == business_id)
                .map(|subscription| subscription.id));
        }
        let Ok(offering_code) = Code::parse(&data.offering_code) else {
            return Ok(None);
        };
        let filter = SubscriptionFilter {
            business_id: Some(business_id),
            offering_code: Some(offering_code),
            active_only: true,
            ..SubscriptionFilter::default()
        };
        let found = self
            .store()
            .subscriptions()
            .list_subscriptions(&filter, None, 1)
            .await?;
        Ok(found.into_iter().next().map(|subscription| subscription.id))
    }
}
