//! Connections to the provider reset mid-request (a TCP RST after the
//! request was sent, so the charge's fate is unknown): the purchase answers
//! OK as INCOMPLETE, entitled to nothing; once the network heals, the job
//! looks the attempt up and charges it, once.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use billing_proto::v1 as pb;
use billing_tests::{
    Backend, attach_card, backend_tests, business_invoices, buy_offering, get_subscription,
    mount_stripe_customer_and_card, mount_stripe_no_earlier_attempt, provider_fixture, provision_business,
    spawn_stripe_app, stripe_charge_keys, timestamp,
};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

backend_tests!(connection_resets_leave_a_purchase_incomplete_then_charged_once);

/// A TCP hop in front of the fake Stripe: forwards connections, or, while
/// resetting, answers each request (and ends each open connection) with a
/// reset.
struct ResettingHop {
    address: String,
    resetting: tokio::sync::watch::Sender<bool>,
    resets: Arc<AtomicUsize>,
}

/// Closes `stream` with RST rather than FIN.
fn reset(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}

impl ResettingHop {
    async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        let (resetting, watching) = tokio::sync::watch::channel(false);
        let resets = Arc::new(AtomicUsize::new(0));
        let counted = resets.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                let upstream = upstream.clone();
                let (mut watching, counted) = (watching.clone(), counted.clone());
                tokio::spawn(async move {
                    if *watching.borrow_and_update() {
                        let mut request = [0_u8; 1024];
                        let _ = inbound.read(&mut request).await;
                        counted.fetch_add(1, Ordering::SeqCst);
                        reset(inbound);
                        return;
                    }
                    let Ok(mut outbound) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        // Pooled connections die too once resets begin.
                        _ = watching.wait_for(|resetting| *resetting) => reset(inbound),
                    }
                });
            }
        });
        ResettingHop {
            address,
            resetting,
            resets,
        }
    }
}

async fn connection_resets_leave_a_purchase_incomplete_then_charged_once(backend: Backend) {
    let stripe = MockServer::start().await;
    mount_stripe_customer_and_card(&stripe).await;
    mount_stripe_no_earlier_attempt(&stripe).await;
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .respond_with(
            ResponseTemplate::new(200).set_body_string(provider_fixture("stripe", "payment_intent_succeeded.json")),
        )
        .mount(&stripe)
        .await;
    let hop = ResettingHop::start(stripe.address().to_string()).await;
    let app = spawn_stripe_app(backend, &hop.address, "2026-03-10T09:00:00Z", |settings| {
        settings.providers.timeout_seconds = Duration::from_secs(2);
    })
    .await;
    app.load_demo_catalog().await;
    provision_business(&app, "biz-1").await;
    attach_card(&app, "biz-1", "pm_card_visa").await;

    hop.resetting.send_replace(true);
    let bought = buy_offering(&app, "biz-1", "pro-monthly")
        .await
        .expect("a purchase whose charge met resets is an outcome, not an error");
    let pro = bought.subscription.unwrap();
    assert_eq!(pro.payment_status(), pb::PaymentStatus::Incomplete);
    assert!(
        hop.resets.load(Ordering::SeqCst) >= 1,
        "the provider's connection was reset"
    );
    assert!(stripe_charge_keys(&stripe).await.is_empty(), "nothing reached Stripe");

    hop.resetting.send_replace(false);
    app.test_clock()
        .advance_clock(pb::AdvanceClockRequest {
            to_time: Some(timestamp("2026-03-10T09:30:00Z")),
        })
        .await
        .unwrap();
    let paid = get_subscription(&app, &pro.id).await;
    assert_eq!(paid.payment_status(), pb::PaymentStatus::Ok);
    let invoices = business_invoices(&app, "biz-1").await;
    assert_eq!(invoices.len(), 1);
    assert_eq!(invoices[0].status(), pb::InvoiceStatus::Paid);
    assert_eq!(
        stripe_charge_keys(&stripe).await,
        [format!("{}:attempt:{}", invoices[0].id, invoices[0].attempt_count)],
        "one charge, with the attempt's key"
    );
}
