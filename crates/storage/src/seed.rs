//! Many subscriptions written straight into the store, all due for renewal
//! at one moment: for the renewal benchmark and the worker-pool tests.

#![allow(clippy::expect_used)]

use billing_domain::Provider;
use billing_domain::catalog::{BillingInterval, BundleGraph, MoneyDraft, Offering, OfferingDraft, OfferingType};
use billing_domain::ids::{OfferingId, SubscriptionId};
use billing_domain::payment_method::PaymentMethod;
use billing_domain::subscription::{Business, CouponChoice, NewSubscription, create_subscription};
use billing_domain::text::ExternalId;
use chrono::{DateTime, Utc};

use crate::{StorageError, Store};

/// Businesses written per transaction.
const BATCH: usize = 1_000;

/// `count` businesses `bench-0…` in directory `bench`, each with a good
/// card of the local provider and a monthly USD 10 subscription bought at
/// `start`, whose renewal jobs are all due one month later.
pub async fn due_renewals(
    store: &Store,
    count: usize,
    start: DateTime<Utc>,
) -> Result<Vec<SubscriptionId>, StorageError> {
    let draft = OfferingDraft {
        code: "bench-monthly".into(),
        display_name: "Bench".into(),
        offering_type: Some(OfferingType::App),
        prices: vec![MoneyDraft::new("USD", 1000)],
        billing_interval: Some(BillingInterval::Month),
        ..OfferingDraft::default()
    };
    let offering = Offering::create(
        &draft,
        &Default::default(),
        &BundleGraph::default(),
        OfferingId::from_uuid(uuid::Uuid::now_v7()),
        start,
    )
    .expect("a valid offering");
    store.catalog().insert_offering(&offering).await?;
    let card = PaymentMethod {
        provider: Provider::Local,
        reference: "pm_card_visa".into(),
        brand: "visa".into(),
        last4: "4242".into(),
        exp_month: 12,
        exp_year: 2034,
    };
    let directory_id = ExternalId::parse("bench").expect("a valid id");
    let mut ids = Vec::with_capacity(count);
    for batch_start in (0..count).step_by(BATCH) {
        let tx = store.begin().await?;
        for index in batch_start..(batch_start + BATCH).min(count) {
            let business = Business {
                business_id: ExternalId::parse(&format!("bench-{index}")).expect("a valid id"),
                directory_id: directory_id.clone(),
                create_time: start,
            };
            tx.subscriptions().insert_business(&business).await?;
            tx.billing()
                .put_payment_method(&business.business_id, &card, start)
                .await?;
            let input = NewSubscription {
                business: &business,
                buyer_id: "owner",
                offering: &offering,
                currency_code: "USD",
                components: &[],
                coupon: CouponChoice::None,
                sponsored: false,
                available_in_directory: true,
                family_history: &[],
                bundled_offerings: &[],
                now: start,
            };
            let subscription = create_subscription(&input, || SubscriptionId::from_uuid(uuid::Uuid::now_v7()))
                .expect("a valid subscription")
                .subscription;
            tx.subscriptions().insert_subscription(&subscription).await?;
            tx.jobs()
                .schedule(&subscription.id, Some(subscription.current_period.end_time()))
                .await?;
            ids.push(subscription.id);
        }
        tx.commit().await?;
    }
    Ok(ids)
}
