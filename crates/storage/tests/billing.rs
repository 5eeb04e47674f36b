//! Billing storage, on SQLite and Postgres.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use billing_domain::catalog::{BillingInterval, BundleGraph, MoneyDraft, Offering, OfferingDraft, OfferingType};
use billing_domain::ids::{InvoiceId, OfferingId, SubscriptionId};
use billing_domain::invoice::{Invoice, InvoiceStatus, finalize, period_lines};
use billing_domain::payment_method::PaymentMethod;
use billing_domain::subscription::{Business, CouponChoice, NewSubscription, Subscription, create_subscription};
use billing_domain::text::ExternalId;
use billing_domain::{Currency, Money};
use billing_storage::testing::TestDatabase;
use billing_storage::{Backend, InvoiceFilter};
use chrono::{DateTime, TimeZone, Utc};
use uuid::Uuid;

billing_storage::backend_tests!(
    invoices_are_numbered_stored_and_listed,
    a_business_has_one_payment_method,
    credit_balances_are_per_business_and_currency,
);

fn at(day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, day, 12, 0, 0).unwrap()
}

fn subscribe(business: &str) -> (Subscription, Offering) {
    let draft = OfferingDraft {
        code: "pro".into(),
        display_name: "Pro".into(),
        offering_type: Some(OfferingType::Package),
        prices: vec![MoneyDraft::new("KWD", 12_500)],
        billing_interval: Some(BillingInterval::Month),
        ..OfferingDraft::default()
    };
    let offering = Offering::create(
        &draft,
        &Default::default(),
        &BundleGraph::default(),
        OfferingId::from_uuid(Uuid::now_v7()),
        at(1),
    )
    .unwrap();
    let business = Business {
        business_id: ExternalId::parse(business).unwrap(),
        directory_id: ExternalId::parse("demo").unwrap(),
        create_time: at(1),
    };
    let input = NewSubscription {
        business: &business,
        buyer_id: "buyer",
        offering: &offering,
        currency_code: "KWD",
        components: &[],
        coupon: CouponChoice::None,
        sponsored: false,
        available_in_directory: true,
        family_history: &[],
        bundled_offerings: &[],
        now: at(2),
    };
    let created = create_subscription(&input, || SubscriptionId::from_uuid(Uuid::now_v7())).unwrap();
    (created.subscription, offering)
}

fn kwd() -> Currency {
    Currency::from_code("KWD").unwrap()
}

async fn invoices_are_numbered_stored_and_listed(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let store = db.store().await;
    let (subscription, offering) = subscribe("biz-1");
    let (other, _) = subscribe("biz-2");
    let mut issued = Vec::new();
    for (owner, day) in [(&subscription, 2), (&other, 3), (&subscription, 4)] {
        let tx = store.begin().await.unwrap();
        let number = tx.billing().next_invoice_number().await.unwrap();
        let draft = finalize(kwd(), period_lines(owner, &offering).unwrap(), None, Money::zero(kwd())).unwrap();
        let mut invoice = Invoice::issue(draft, InvoiceId::from_uuid(Uuid::now_v7()), owner, at(day));
        invoice.number = number;
        tx.billing().insert_invoice(&invoice).await.unwrap();
        tx.commit().await.unwrap();
        issued.push(invoice);
    }
    let numbers: Vec<&str> = issued.iter().map(|invoice| invoice.number.as_str()).collect();
    assert_eq!(numbers, ["INV-000001", "INV-000002", "INV-000003"]);
    assert_eq!(issued[0].status, InvoiceStatus::Open);
    assert_eq!(issued[0].draft.amount_due.amount_minor(), 12_500);

    let loaded = store.billing().get_invoice(&issued[0].id).await.unwrap().unwrap();
    assert_eq!(loaded, issued[0]);
    let of_subscription = store
        .billing()
        .list_invoices(&InvoiceFilter::Subscription(subscription.id.clone()), None, 10)
        .await
        .unwrap();
    assert_eq!(of_subscription, [issued[0].clone(), issued[2].clone()]);
    let of_business = store
        .billing()
        .list_invoices(&InvoiceFilter::Business(other.business_id.clone()), None, 10)
        .await
        .unwrap();
    assert_eq!(of_business, [issued[1].clone()]);

    // The newest unpaid invoice; once paid, none.
    let unpaid = store.billing().unpaid_invoice(&subscription.id).await.unwrap().unwrap();
    assert_eq!(unpaid.id, issued[2].id);
    let paid = issued[2].paid(at(5));
    store.billing().update_invoice(&paid).await.unwrap();
    let unpaid = store.billing().unpaid_invoice(&subscription.id).await.unwrap().unwrap();
    assert_eq!(unpaid.id, issued[0].id);
    assert_eq!(
        store.billing().get_invoice(&paid.id).await.unwrap().unwrap().status,
        InvoiceStatus::Paid
    );

    // A number taken in a rolled-back transaction is reused: no gaps.
    {
        let tx = store.begin().await.unwrap();
        assert_eq!(tx.billing().next_invoice_number().await.unwrap(), "INV-000004");
    }
    let tx = store.begin().await.unwrap();
    assert_eq!(tx.billing().next_invoice_number().await.unwrap(), "INV-000004");
}

async fn a_business_has_one_payment_method(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let store = db.store().await;
    let business = ExternalId::parse("biz-1").unwrap();
    assert_eq!(store.billing().get_payment_method(&business).await.unwrap(), None);
    let visa = PaymentMethod {
        provider: billing_domain::Provider::Local,
        reference: "pm_card_visa".into(),
        brand: "visa".into(),
        last4: "4242".into(),
        exp_month: 12,
        exp_year: 2034,
    };
    store
        .billing()
        .put_payment_method(&business, &visa, at(2))
        .await
        .unwrap();
    let mastercard = PaymentMethod {
        reference: "pm_card_mastercard".into(),
        brand: "mastercard".into(),
        last4: "4444".into(),
        ..visa.clone()
    };
    store
        .billing()
        .put_payment_method(&business, &mastercard, at(3))
        .await
        .unwrap();
    let stored = store.billing().get_payment_method(&business).await.unwrap().unwrap();
    assert_eq!(stored.method, mastercard, "attaching another replaces it");
    assert_eq!(stored.create_time, at(3));
    assert!(store.billing().delete_payment_method(&business).await.unwrap());
    assert!(!store.billing().delete_payment_method(&business).await.unwrap());
}

async fn credit_balances_are_per_business_and_currency(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let store = db.store().await;
    let business = ExternalId::parse("biz-1").unwrap();
    let usd = Currency::from_code("USD").unwrap();
    assert_eq!(
        store.billing().credit_balance(&business, usd).await.unwrap(),
        Money::zero(usd)
    );
    store
        .billing()
        .set_credit_balance(&business, Money::new(7002, usd))
        .await
        .unwrap();
    store
        .billing()
        .set_credit_balance(&business, Money::new(5902, usd))
        .await
        .unwrap();
    store
        .billing()
        .set_credit_balance(&business, Money::new(10, kwd()))
        .await
        .unwrap();
    assert_eq!(
        store
            .billing()
            .credit_balance(&business, usd)
            .await
            .unwrap()
            .amount_minor(),
        5902
    );
    assert_eq!(
        store
            .billing()
            .credit_balance(&business, kwd())
            .await
            .unwrap()
            .amount_minor(),
        10
    );
    let other = ExternalId::parse("biz-2").unwrap();
    assert!(store.billing().credit_balance(&other, usd).await.unwrap().is_zero());
}
