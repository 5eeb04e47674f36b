//! `billingd` killed (SIGKILL) at random points under mixed load —
//! purchases, plan changes (upgrades charged now, downgrades), cancels,
//! reactivations, and the renewals and charges its
//! worker runs — and restarted, twenty times over one Postgres. Afterwards:
//! every acknowledged request answers again with its outcome, no key is
//! left without one, every job settles, and charges and paid invoices match
//! one to one at the fake Stripe.
//!
//! The seed is printed; `KILL_TEST_SEED=<n>` replays a run.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stdout)]

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use billing_proto::v1 as pb;
use billing_proto::v1::subscription_service_client::SubscriptionServiceClient;
use billing_storage::{Store, StoreOptions};
use billing_tests::process::Billingd;
use billing_tests::{
    Backend, TestApp, attach_card, business_invoices, buy_offering, mount_stripe_customer_and_card, provider_fixture,
    provision_business, spawn_stripe_app, stripe_charge_keys,
};
use tonic::Code;
use tonic::transport::Channel;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Respond, ResponseTemplate};

const CYCLES: usize = 20;
const BUSINESSES: usize = 12;
/// Bought on January 1st: their renewals are due on the wall clock.
const OLD_PURCHASES: usize = 4;

/// A request that was answered, and what it answered.
#[derive(Debug)]
enum Acknowledged {
    Bought {
        request: pb::CreateSubscriptionRequest,
        subscription_id: String,
    },
    Canceled {
        request: pb::CancelRequest,
    },
    Reactivated {
        request: pb::ReactivateRequest,
    },
    Changed {
        request: pb::ChangePlanRequest,
    },
}

/// The paid plans the load moves between (Plus has a first-time trial).
const PLANS: [&str; 2] = ["pro-monthly", "plus-monthly"];

/// A fake Stripe that remembers: every charge it was sent succeeds (even
/// when its sender dies before the answer), and a search by charge key finds
/// it, as the real one would.
#[derive(Clone, Default)]
struct Charges(Arc<Mutex<BTreeSet<String>>>);

impl Respond for Charges {
    fn respond(&self, request: &wiremock::Request) -> ResponseTemplate {
        if request.method.as_str() == "POST" {
            let key = request.headers["Idempotency-Key"].to_str().unwrap().to_owned();
            self.0.lock().unwrap().insert(key);
            return ResponseTemplate::new(200)
                .set_body_string(provider_fixture("stripe", "payment_intent_succeeded.json"))
                .set_delay(Duration::from_millis(15));
        }
        let query: String = request
            .url
            .query_pairs()
            .find(|(name, _)| name == "query")
            .map(|(_, value)| value.into_owned())
            .unwrap_or_default();
        let found = self
            .0
            .lock()
            .unwrap()
            .iter()
            .find(|key| query.contains(key.as_str()))
            .cloned();
        match found {
            Some(key) => ResponseTemplate::new(200).set_body_string(
                provider_fixture("stripe", "payment_intent_search.json")
                    .replace("inv_0193a5b0c3e47d1a9f2b6c8d0e1f2a3b:attempt:1", &key),
            ),
            None => ResponseTemplate::new(200).set_body_string(r#"{"object": "search_result", "data": []}"#),
        }
    }
}

async fn mount_stripe(stripe: &MockServer) {
    mount_stripe_customer_and_card(stripe).await;
    let charges = Charges::default();
    Mock::given(method("GET"))
        .and(path("/v1/payment_intents/search"))
        .respond_with(charges.clone())
        .mount(stripe)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .respond_with(charges)
        .mount(stripe)
        .await;
}

async fn subscriptions_of(channel: &Channel, business: &str) -> Vec<pb::Subscription> {
    SubscriptionServiceClient::new(channel.clone())
        .list_subscriptions(pb::ListSubscriptionsRequest {
            business_id: business.into(),
            ..Default::default()
        })
        .await
        .map(|response| response.into_inner().subscriptions)
        .unwrap_or_default()
        .into_iter()
        .filter(|subscription| PLANS.contains(&subscription.offering_code.as_str()))
        .collect()
}

/// One step of load; the answer is kept only if it came.
async fn step(channel: &Channel, rng: &mut fastrand::Rng, serial: usize, acknowledged: &mut Vec<Acknowledged>) {
    let business = format!("biz-{}", rng.usize(0..BUSINESSES));
    let mut client = SubscriptionServiceClient::new(channel.clone());
    let held = subscriptions_of(channel, &business).await;
    let live = held.iter().find(|subscription| subscription.active);
    let answer = match live {
        None => {
            let request = pb::CreateSubscriptionRequest {
                request_id: format!("buy-{serial}"),
                business_id: business.clone(),
                buyer_id: "owner".into(),
                offering: Some(pb::create_subscription_request::Offering::OfferingCode(
                    PLANS[rng.usize(0..PLANS.len())].into(),
                )),
                currency_code: "USD".into(),
                ..Default::default()
            };
            client
                .create_subscription(request.clone())
                .await
                .map(|response| Acknowledged::Bought {
                    request,
                    subscription_id: response.into_inner().subscription.unwrap().id,
                })
        }
        Some(subscription) if subscription.state() == pb::SubscriptionState::Canceled => {
            let request = pb::ReactivateRequest {
                request_id: format!("reactivate-{serial}"),
                subscription_id: subscription.id.clone(),
                etag: String::new(),
            };
            client
                .reactivate(request.clone())
                .await
                .map(|_| Acknowledged::Reactivated { request })
        }
        Some(subscription) if rng.bool() => {
            let other = PLANS.iter().find(|plan| **plan != subscription.offering_code).unwrap();
            let request = pb::ChangePlanRequest {
                request_id: format!("change-{serial}"),
                subscription_id: subscription.id.clone(),
                offering_code: (*other).into(),
                timing: if rng.bool() {
                    pb::ChangeTiming::Unspecified
                } else {
                    pb::ChangeTiming::Immediate
                }
                .into(),
                ..Default::default()
            };
            client
                .change_plan(request.clone())
                .await
                .map(|_| Acknowledged::Changed { request })
        }
        Some(subscription) => {
            let request = pb::CancelRequest {
                request_id: format!("cancel-{serial}"),
                subscription_id: subscription.id.clone(),
                timing: if rng.bool() {
                    pb::CancelTiming::Unspecified
                } else {
                    pb::CancelTiming::Immediate
                }
                .into(),
                reason: "load".into(),
                etag: String::new(),
            };
            client
                .cancel(request.clone())
                .await
                .map(|_| Acknowledged::Canceled { request })
        }
    };
    match answer {
        Ok(acknowledged_now) => acknowledged.push(acknowledged_now),
        // A rule's refusal after a crash changed what this client knew.
        Err(status) if matches!(status.code(), Code::FailedPrecondition | Code::Aborted) => {}
        // The server died mid-call.
        Err(status) if matches!(status.code(), Code::Unavailable | Code::Unknown | Code::Cancelled) => {}
        Err(status) => panic!("{status:?}"),
    }
}

async fn setup(stripe: &MockServer) -> TestApp {
    let stripe_url = stripe.uri();
    let app = spawn_stripe_app(Backend::Postgres, &stripe_url, "2026-01-01T00:00:00Z", |_| {}).await;
    app.load_demo_catalog().await;
    for n in 0..BUSINESSES {
        let business = format!("biz-{n}");
        provision_business(&app, &business).await;
        attach_card(&app, &business, "pm_card_visa").await;
        if n < OLD_PURCHASES {
            buy_offering(&app, &business, "pro-monthly").await.unwrap();
        }
    }
    app
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_twenty_times_under_load_nothing_acknowledged_is_lost() {
    let seed = std::env::var("KILL_TEST_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    println!("KILL_TEST_SEED={seed}");
    let mut rng = fastrand::Rng::with_seed(seed);
    let stripe = MockServer::start().await;
    mount_stripe(&stripe).await;
    let app = setup(&stripe).await;
    let stripe_url = stripe.uri();
    let env = [
        ("BILLING__PROVIDERS__DEFAULT", "stripe"),
        ("BILLING__PROVIDERS__STRIPE__API_KEY", "sk_test_kill"),
        ("BILLING__PROVIDERS__STRIPE__WEBHOOK_SECRET", "whsec_kill"),
        ("BILLING__PROVIDERS__STRIPE__BASE_URL", stripe_url.as_str()),
        ("BILLING__JOBS__LEASE_SECONDS", "3"),
    ];

    let mut acknowledged = Vec::new();
    let mut serial = 0;
    for _ in 0..CYCLES {
        let server = Billingd::start(app.database_url(), &env).await;
        let channel = server.channel().await;
        let kill_at = Instant::now() + Duration::from_millis(rng.u64(50..400));
        while Instant::now() < kill_at {
            serial += 1;
            // The kill lands wherever this step is.
            let until_kill = kill_at.saturating_duration_since(Instant::now());
            let _ = tokio::time::timeout(until_kill, step(&channel, &mut rng, serial, &mut acknowledged)).await;
        }
        server.kill().await;
    }

    // One more start, to let everything due settle (a dead process's
    // claims after their lease).
    let server = Billingd::start(app.database_url(), &env).await;
    let channel = server.channel().await;
    let store = Store::connect(&StoreOptions::new(app.database_url())).await.unwrap();
    let settling = Instant::now();
    loop {
        let sample = store.gauges(chrono::Utc::now()).await.unwrap();
        if sample.jobs_due == 0 && sample.jobs_leased == 0 {
            break;
        }
        assert!(
            settling.elapsed() < Duration::from_secs(60),
            "jobs never settled: {sample:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        acknowledged.len() >= CYCLES / 2,
        "the load ran: {} answers",
        acknowledged.len()
    );
    assert!(
        acknowledged
            .iter()
            .any(|answered| matches!(answered, Acknowledged::Changed { .. })),
        "the load changed plans"
    );

    // Every acknowledged request answers again with its outcome.
    let mut client = SubscriptionServiceClient::new(channel.clone());
    for answered in &acknowledged {
        match answered {
            Acknowledged::Bought {
                request,
                subscription_id,
            } => {
                let again = client.create_subscription(request.clone()).await.unwrap().into_inner();
                assert_eq!(&again.subscription.unwrap().id, subscription_id, "{request:?}");
            }
            Acknowledged::Canceled { request } => {
                client.cancel(request.clone()).await.unwrap();
            }
            Acknowledged::Reactivated { request } => {
                client.reactivate(request.clone()).await.unwrap();
            }
            Acknowledged::Changed { request } => {
                client.change_plan(request.clone()).await.unwrap();
            }
        }
    }
    // No key is left without an outcome (a purchase's process that died
    // left its answer as committed).
    let without_outcome = app
        .count_in_database(
            "SELECT COUNT(*) AS n FROM idempotency_keys \
             WHERE response IS NULL AND error IS NULL AND provisional_response IS NULL",
        )
        .await;
    assert_eq!(without_outcome, 0);

    // Charges and paid invoices, one to one; nothing open is left due.
    let mut paid_keys = BTreeSet::new();
    for n in 0..BUSINESSES {
        for invoice in business_invoices(&app, &format!("biz-{n}")).await {
            match invoice.status() {
                // Paid by account credit (a downgrade's, spent by an
                // upgrade): nothing to charge.
                pb::InvoiceStatus::Paid if invoice.amount_due.as_ref().is_some_and(|due| due.amount_minor == 0) => {}
                pb::InvoiceStatus::Paid => {
                    paid_keys.insert(format!("{}:attempt:{}", invoice.id, invoice.attempt_count));
                }
                pb::InvoiceStatus::Void => {}
                other => {
                    let subscription = billing_tests::get_subscription(&app, &invoice.subscription_id).await;
                    let job = |column: &str| {
                        format!(
                            "SELECT COUNT(*) AS n FROM jobs WHERE subscription_id = '{}' AND {column}",
                            invoice.subscription_id
                        )
                    };
                    let jobs = app.count_in_database(&job("TRUE")).await;
                    let failing = app.count_in_database(&job("last_error <> ''")).await;
                    let charged = stripe_charge_keys(&stripe)
                        .await
                        .into_iter()
                        .filter(|key| key.starts_with(&invoice.id))
                        .collect::<Vec<_>>();
                    panic!(
                        "{other:?} invoice left after settling: {invoice:?}\n{subscription:?}\n\
                         job rows: {jobs}, failing: {failing}; charges at Stripe: {charged:?}"
                    )
                }
            }
        }
    }
    let charged: BTreeSet<String> = stripe_charge_keys(&stripe).await.into_iter().collect();
    assert_eq!(charged, paid_keys, "a charge without a paid invoice, or the reverse");
    let changes = acknowledged
        .iter()
        .filter(|answered| matches!(answered, Acknowledged::Changed { .. }))
        .count();
    println!(
        "{CYCLES} kills; {} requests acknowledged ({changes} plan changes), {} charges = {} paid invoices",
        acknowledged.len(),
        charged.len(),
        paid_keys.len()
    );
    server.terminate();
    let (exit, _) = server.wait(Duration::from_secs(20)).await;
    assert_eq!(exit.code(), Some(0));
}
