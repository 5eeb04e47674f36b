//! Three `billingd` on one Postgres work ten months of renewals for the same
//! subscriptions while one of them is killed (SIGKILL) and restarted: every
//! renewal happens once, every invoice is paid once, and Stripe sees one
//! charge key per invoice.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use billing_proto::v1 as pb;
use billing_storage::{Store, StoreOptions};
use billing_tests::process::Billingd;
use billing_tests::{
    Backend, attach_card, business_invoices, buy_offering, mount_stripe_customer_and_card,
    mount_stripe_no_earlier_attempt, provider_fixture, provision_business, spawn_stripe_app, stripe_charge_keys,
};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const BUSINESSES: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_renew_everything_once_though_one_is_killed() {
    let stripe = MockServer::start().await;
    mount_stripe_customer_and_card(&stripe).await;
    mount_stripe_no_earlier_attempt(&stripe).await;
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string(provider_fixture("stripe", "payment_intent_succeeded.json"))
                .set_delay(Duration::from_millis(20)),
        )
        .mount(&stripe)
        .await;
    let stripe_url = stripe.uri();
    // Bought on January 1st on a clock that stays there: their renewals of
    // February to November are due on the wall clock the replicas run on.
    let app = spawn_stripe_app(Backend::Postgres, &stripe_url, "2026-01-01T00:00:00Z", |_| {}).await;
    app.load_demo_catalog().await;
    for n in 0..BUSINESSES {
        let business = format!("biz-{n}");
        provision_business(&app, &business).await;
        attach_card(&app, &business, "pm_card_visa").await;
        buy_offering(&app, &business, "pro-monthly").await.unwrap();
    }
    assert_eq!(stripe_charge_keys(&stripe).await.len(), BUSINESSES);

    let env = [
        ("BILLING__PROVIDERS__DEFAULT", "stripe"),
        ("BILLING__PROVIDERS__STRIPE__API_KEY", "sk_test_replicas"),
        ("BILLING__PROVIDERS__STRIPE__WEBHOOK_SECRET", "whsec_replicas"),
        ("BILLING__PROVIDERS__STRIPE__BASE_URL", stripe_url.as_str()),
        ("BILLING__JOBS__LEASE_SECONDS", "3"),
        ("BILLING__JOBS__POLL_INTERVAL_SECONDS", "1"),
    ];
    let mut replicas = Vec::new();
    for _ in 0..3 {
        replicas.push(Billingd::start(app.database_url(), &env).await);
    }
    // Mid-run, one replica dies with whatever it holds, and comes back.
    let started = Instant::now();
    while stripe_charge_keys(&stripe).await.len() < BUSINESSES + 15 {
        assert!(started.elapsed() < Duration::from_secs(60), "renewals did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    replicas.remove(1).kill().await;
    replicas.push(Billingd::start(app.database_url(), &env).await);

    // Everything due gets done (the dead replica's claims after their lease).
    let store = Store::connect(&StoreOptions::new(app.database_url())).await.unwrap();
    let settled = Instant::now();
    loop {
        let sample = store.gauges(chrono::Utc::now()).await.unwrap();
        if sample.jobs_due == 0 && sample.jobs_leased == 0 {
            break;
        }
        assert!(settled.elapsed() < Duration::from_secs(90), "still due: {sample:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Each subscription: its purchase and ten renewals, each paid once.
    let mut invoice_keys = BTreeSet::new();
    for n in 0..BUSINESSES {
        let invoices = business_invoices(&app, &format!("biz-{n}")).await;
        assert_eq!(invoices.len(), 11, "biz-{n}: {invoices:?}");
        for invoice in &invoices {
            assert_eq!(invoice.status(), pb::InvoiceStatus::Paid, "{invoice:?}");
            assert_eq!(invoice.attempt_count, 1, "{invoice:?}");
            invoice_keys.insert(format!("{}:attempt:1", invoice.id));
        }
        let periods: BTreeSet<_> = invoices
            .iter()
            .filter_map(|invoice| invoice.lines.first())
            .map(|line| line.period_start_time.unwrap().seconds)
            .collect();
        assert_eq!(periods.len(), 11, "one invoice per period");
    }
    // One charge key per invoice at Stripe; a key sent twice is the same
    // charge (Stripe answers a repeated key with the first result).
    let posted: BTreeSet<String> = stripe_charge_keys(&stripe).await.into_iter().collect();
    assert_eq!(posted, invoice_keys);

    for replica in replicas {
        replica.terminate();
        let (exit, _) = replica.wait(Duration::from_secs(20)).await;
        assert_eq!(exit.code(), Some(0));
    }
}
