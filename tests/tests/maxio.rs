//! Maxio end to end, on SQLite and Postgres: a directory billed by a
//! wiremock Maxio. Subscriptions are created, changed and canceled there
//! (through the provider outbox), and Maxio's signed webhooks move them here.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use billing_proto::v1 as pb;
use billing_provider_maxio::webhook::{SIGNATURE_HEADER, sign};
use billing_server::config::ClockMode;
use billing_tests::{
    Backend, TestApp, advance_clock as advance, backend_tests, business_invoices, buy_offering, get_subscription,
    provider_fixture, provision_business, spawn_app_with,
};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

backend_tests!(
    a_purchase_is_created_at_maxio_and_billed_there,
    changes_and_cancels_are_sent_to_maxio,
    an_outage_at_create_is_repaired_by_the_job,
    a_create_maxio_refuses_is_left_dead_and_visible,
    a_plan_change_is_previewed_by_maxio,
    maxio_webhooks_drive_dunning_and_the_end,
    bad_or_repeated_maxio_deliveries_do_nothing_more,
    older_maxio_events_are_ignored,
);

const SHARED_KEY: &str = "maxio-site-shared-key";
const MAXIO_ID: &str = "15236915";

fn fixture(name: &str) -> String {
    provider_fixture("maxio", name)
}

async fn maxio_app(backend: Backend, maxio: &MockServer) -> TestApp {
    let base_url = maxio.uri();
    let app = spawn_app_with(backend, |settings| {
        settings.clock.mode = ClockMode::Manual;
        settings.clock.start_time = Some("2026-03-10T09:00:00Z".parse().unwrap());
        settings
            .providers
            .by_directory
            .insert("demo".into(), billing_domain::Provider::Maxio);
        settings.providers.maxio.base_url = Some(base_url);
        settings.providers.maxio.api_key = Some("maxio_key".to_owned().into());
        settings.providers.maxio.webhook_secret = Some(SHARED_KEY.to_owned().into());
        settings.providers.timeout_seconds = std::time::Duration::from_secs(1);
        settings.providers.max_attempts = 2;
    })
    .await;
    app.load_demo_catalog().await;
    for code in ["pro-monthly", "plus-monthly", "bookings"] {
        let mut offering = pb::Offering::default();
        offering.provider_refs.insert("maxio".into(), code.into());
        app.catalog()
            .update_offering(pb::UpdateOfferingRequest {
                lookup: Some(pb::update_offering_request::Lookup::Code(code.into())),
                offering: Some(offering),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["provider_refs".into()],
                }),
            })
            .await
            .unwrap();
    }
    provision_business(&app, "biz-1").await;
    app
}

async fn mount_create(maxio: &MockServer) {
    Mock::given(method("POST"))
        .and(path("/subscriptions.json"))
        .respond_with(ResponseTemplate::new(201).set_body_string(fixture("subscription.json")))
        .mount(maxio)
        .await;
}

async fn buy(app: &TestApp, offering_code: &str) -> pb::Subscription {
    buy_offering(app, "biz-1", offering_code)
        .await
        .unwrap()
        .subscription
        .unwrap()
}

async fn requests_to(maxio: &MockServer, verb: &str, url_path: &str) -> Vec<serde_json::Value> {
    maxio
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|request| request.method.as_str() == verb && request.url.path() == url_path)
        .map(|request| serde_json::from_slice(&request.body).unwrap_or(serde_json::Value::Null))
        .collect()
}

fn state(subscription: &pb::Subscription) -> pb::SubscriptionState {
    pb::SubscriptionState::try_from(subscription.state).unwrap()
}

fn payment(subscription: &pb::Subscription) -> pb::PaymentStatus {
    pb::PaymentStatus::try_from(subscription.payment_status).unwrap()
}

async fn a_purchase_is_created_at_maxio_and_billed_there(backend: Backend) {
    let maxio = MockServer::start().await;
    mount_create(&maxio).await;
    let app = maxio_app(backend, &maxio).await;
    // No card here: Maxio keeps the payment methods and bills.
    let bought = buy(&app, "pro-monthly").await;
    let created = requests_to(&maxio, "POST", "/subscriptions.json").await;
    assert_eq!(created.len(), 1);
    assert_eq!(
        created[0],
        json!({"subscription": {
            "product_handle": "pro-monthly",
            "customer_reference": "biz-1",
            "reference": bought.id,
        }})
    );
    let mirrored = get_subscription(&app, &bought.id).await;
    assert_eq!(mirrored.provider, "maxio");
    assert_eq!(mirrored.provider_subscription_id, MAXIO_ID);
    assert_eq!(state(&mirrored), pb::SubscriptionState::Purchased);
    let invoices = business_invoices(&app, "biz-1").await;
    assert!(invoices.is_empty(), "Maxio bills, not this service: {invoices:?}");
    // The period end passes: Maxio renews it, not the job.
    advance(&app, "2026-04-10T10:00:00Z").await;
    assert!(requests_to(&maxio, "POST", "/subscriptions.json").await.len() == 1);
    let operations = app.provider_operations("maxio").await;
    assert_eq!(operations.len(), 1);
    assert_eq!(operations[0].status, "PROCESSED");
}

async fn changes_and_cancels_are_sent_to_maxio(backend: Backend) {
    let maxio = MockServer::start().await;
    mount_create(&maxio).await;
    for (verb, url_path) in [
        ("PUT", format!("/subscriptions/{MAXIO_ID}.json")),
        ("POST", format!("/subscriptions/{MAXIO_ID}/migrations.json")),
        ("POST", format!("/subscriptions/{MAXIO_ID}/delayed_cancel.json")),
        ("DELETE", format!("/subscriptions/{MAXIO_ID}/delayed_cancel.json")),
        (
            "POST",
            format!("/subscriptions/{MAXIO_ID}/components/handle:seat/allocations.json"),
        ),
        ("DELETE", format!("/subscriptions/{MAXIO_ID}.json")),
    ] {
        Mock::given(method(verb))
            .and(path(url_path))
            .respond_with(ResponseTemplate::new(200).set_body_string(fixture("subscription.json")))
            .mount(&maxio)
            .await;
    }
    let app = maxio_app(backend, &maxio).await;
    let pro = buy(&app, "pro-monthly").await;

    // A downgrade waits for the renewal, there as here.
    app.subscriptions()
        .change_plan(pb::ChangePlanRequest {
            subscription_id: pro.id.clone(),
            offering_code: "plus-monthly".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let delayed = requests_to(&maxio, "PUT", &format!("/subscriptions/{MAXIO_ID}.json")).await;
    assert_eq!(
        delayed,
        [json!({"subscription": {"product_handle": "plus-monthly", "product_change_delayed": true}})]
    );
    // Cancel at the period end, then take it back.
    app.subscriptions()
        .cancel(pb::CancelRequest {
            subscription_id: pro.id.clone(),
            reason: "too expensive".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        requests_to(
            &maxio,
            "POST",
            &format!("/subscriptions/{MAXIO_ID}/delayed_cancel.json")
        )
        .await,
        [json!({"cancellation_message": "too expensive"})]
    );
    app.subscriptions()
        .reactivate(pb::ReactivateRequest {
            subscription_id: pro.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        requests_to(
            &maxio,
            "DELETE",
            &format!("/subscriptions/{MAXIO_ID}/delayed_cancel.json")
        )
        .await
        .len(),
        1
    );

    // Seats are allocations; an upgrade is an immediate migration.
    let bookings = buy(&app, "bookings").await;
    app.subscriptions()
        .update_components(pb::UpdateComponentsRequest {
            subscription_id: bookings.id.clone(),
            components: vec![pb::ComponentQuantity {
                component_code: "seat".into(),
                quantity: 4,
            }],
            ..Default::default()
        })
        .await
        .unwrap();
    let allocations = requests_to(
        &maxio,
        "POST",
        &format!("/subscriptions/{MAXIO_ID}/components/handle:seat/allocations.json"),
    )
    .await;
    assert_eq!(allocations.len(), 1);
    assert_eq!(allocations[0]["allocation"]["quantity"], 4);
    // Canceled now: canceled there now.
    app.subscriptions()
        .cancel(pb::CancelRequest {
            subscription_id: bookings.id.clone(),
            timing: pb::CancelTiming::Immediate.into(),
            reason: "closing the shop".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        requests_to(&maxio, "DELETE", &format!("/subscriptions/{MAXIO_ID}.json")).await,
        [json!({"cancellation_message": "closing the shop"})]
    );
    let operations = app.provider_operations("maxio").await;
    assert!(operations.iter().all(|op| op.status == "PROCESSED"), "{operations:?}");
    assert_eq!(operations.len(), 7);
}

async fn an_outage_at_create_is_repaired_by_the_job(backend: Backend) {
    let maxio = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/subscriptions.json"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&maxio)
        .await;
    let app = maxio_app(backend, &maxio).await;
    // Committed here; owed to Maxio.
    let pro = buy(&app, "pro-monthly").await;
    let pending = get_subscription(&app, &pro.id).await;
    assert_eq!(pending.provider_subscription_id, "");
    let operations = app.provider_operations("maxio").await;
    assert_eq!(operations[0].status, "PENDING");
    assert!(
        operations[0].last_error.as_deref().unwrap().contains("503"),
        "{operations:?}"
    );

    // Maxio took the first create after all (its answer was lost) and is up
    // again: the retry is refused as a repeat and the first one is found.
    maxio.reset().await;
    Mock::given(method("POST"))
        .and(path("/subscriptions.json"))
        .respond_with(ResponseTemplate::new(422).set_body_string(fixture("reference_taken.json")))
        .mount(&maxio)
        .await;
    Mock::given(method("GET"))
        .and(path("/subscriptions/lookup.json"))
        .respond_with(ResponseTemplate::new(200).set_body_string(fixture("subscription.json")))
        .mount(&maxio)
        .await;
    advance(&app, "2026-03-10T09:05:00Z").await;
    assert_eq!(get_subscription(&app, &pro.id).await.provider_subscription_id, MAXIO_ID);
    assert_eq!(app.provider_operations("maxio").await[0].status, "PROCESSED");
}

async fn a_create_maxio_refuses_is_left_dead_and_visible(backend: Backend) {
    let maxio = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/subscriptions.json"))
        .respond_with(ResponseTemplate::new(422).set_body_string(fixture("product_not_found.json")))
        .expect(1)
        .mount(&maxio)
        .await;
    let app = maxio_app(backend, &maxio).await;
    let pro = buy(&app, "pro-monthly").await;
    // Retrying a refusal cannot help: dead at once, with Maxio's words.
    advance(&app, "2026-03-10T12:00:00Z").await;
    let operations = app.provider_operations("maxio").await;
    assert_eq!(operations.len(), 1);
    assert_eq!(operations[0].status, "DEAD");
    assert!(
        operations[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("'no-such-plan' does not exist"),
        "{operations:?}"
    );
    assert_eq!(get_subscription(&app, &pro.id).await.provider_subscription_id, "");
}

async fn a_plan_change_is_previewed_by_maxio(backend: Backend) {
    let maxio = MockServer::start().await;
    mount_create(&maxio).await;
    Mock::given(method("POST"))
        .and(path(format!("/subscriptions/{MAXIO_ID}/migrations/preview.json")))
        .respond_with(ResponseTemplate::new(200).set_body_string(fixture("migration_preview.json")))
        .expect(1)
        .mount(&maxio)
        .await;
    let app = maxio_app(backend, &maxio).await;
    let plus = buy(&app, "plus-monthly").await;
    let change = pb::preview_invoice_request::Change::ChangePlan(pb::ChangePlanRequest {
        subscription_id: plus.id.clone(),
        offering_code: "pro-monthly".into(),
        ..Default::default()
    });
    let invoice = app
        .subscriptions()
        .preview_invoice(pb::PreviewInvoiceRequest { change: Some(change) })
        .await
        .unwrap()
        .into_inner()
        .invoice
        .unwrap();
    let amounts: Vec<i64> = invoice
        .lines
        .iter()
        .map(|line| line.amount.as_ref().unwrap().amount_minor)
        .collect();
    assert_eq!(amounts, [-1016, 2032]);
    assert_eq!(invoice.amount_due.unwrap().amount_minor, 1016);
    let asked = requests_to(
        &maxio,
        "POST",
        &format!("/subscriptions/{MAXIO_ID}/migrations/preview.json"),
    )
    .await;
    assert_eq!(asked[0]["migration"]["product_handle"], "pro-monthly");
}

fn webhook(name: &str, id: &str, reference: &str, updated_at: &str) -> String {
    fixture(name)
        .replacen("id=1417650", &format!("id={id}"), 1)
        .replace("sub_0193a5b0c3e47d1a9f2b6c8d0e1f2a3b", reference)
        .replace(
            "payload[subscription][updated_at]=2026-04-10%2009%3A00%3A05%20-0500",
            &format!("payload[subscription][updated_at]={updated_at}"),
        )
        .replace(
            "payload[subscription][updated_at]=2026-04-10%2009%3A00%3A07%20-0500",
            &format!("payload[subscription][updated_at]={updated_at}"),
        )
}

fn with_event(body: &str, event: &str, state: &str) -> String {
    let mut fields: Vec<String> = body.split('&').map(str::to_owned).collect();
    for field in &mut fields {
        if field.starts_with("event=") {
            *field = format!("event={event}");
        }
        if field.starts_with("payload[subscription][state]=") {
            *field = format!("payload[subscription][state]={state}");
        }
    }
    fields.join("&")
}

async fn deliver(app: &TestApp, body: &str, signature: Option<String>) -> reqwest::StatusCode {
    let mut request = reqwest::Client::new()
        .post(format!("{}/webhooks/maxio", app.http_base()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_owned());
    if let Some(signature) = signature {
        request = request.header(SIGNATURE_HEADER, signature);
    }
    request.send().await.unwrap().status()
}

async fn deliver_signed(app: &TestApp, body: &str) {
    let signature = sign(body.as_bytes(), SHARED_KEY);
    assert_eq!(deliver(app, body, Some(signature)).await, reqwest::StatusCode::OK);
}

async fn maxio_webhooks_drive_dunning_and_the_end(backend: Backend) {
    let maxio = MockServer::start().await;
    mount_create(&maxio).await;
    let app = maxio_app(backend, &maxio).await;
    let pro = buy(&app, "pro-monthly").await;

    let failed = webhook(
        "webhook_payment_failure.txt",
        "9001",
        &pro.id,
        "2026-03-11%2009%3A00%3A00%20%2B0000",
    );
    deliver_signed(&app, &failed).await;
    advance(&app, "2026-03-11T09:00:00Z").await;
    let past_due = get_subscription(&app, &pro.id).await;
    assert_eq!(payment(&past_due), pb::PaymentStatus::PastDue);
    assert_eq!(state(&past_due), pb::SubscriptionState::Purchased);

    let paid = with_event(
        &webhook(
            "webhook_payment_failure.txt",
            "9002",
            &pro.id,
            "2026-03-12%2009%3A00%3A00%20%2B0000",
        ),
        "payment_success",
        "active",
    );
    deliver_signed(&app, &paid).await;
    advance(&app, "2026-03-12T09:00:00Z").await;
    assert_eq!(payment(&get_subscription(&app, &pro.id).await), pb::PaymentStatus::Ok);

    // Maxio renewed it: the next period, from Maxio's dates.
    let renewed = with_event(
        &webhook(
            "webhook_payment_failure.txt",
            "9004",
            &pro.id,
            "2026-03-12%2010%3A00%3A00%20%2B0000",
        ),
        "renewal_success",
        "active",
    )
    .replace(
        "payload[subscription][current_period_started_at]=2026-04-10%2009%3A00%3A00%20-0500",
        "payload[subscription][current_period_started_at]=2026-04-10%2009%3A00%3A00%20%2B0000",
    )
    .replace(
        "payload[subscription][current_period_ends_at]=2026-05-10%2009%3A00%3A00%20-0500",
        "payload[subscription][current_period_ends_at]=2026-05-10%2009%3A00%3A00%20%2B0000",
    );
    deliver_signed(&app, &renewed).await;
    advance(&app, "2026-03-12T10:00:00Z").await;
    let rolled = get_subscription(&app, &pro.id).await;
    assert_eq!(
        rolled.current_period_start_time.unwrap().seconds,
        chrono::DateTime::parse_from_rfc3339("2026-04-10T00:00:00Z")
            .unwrap()
            .timestamp()
    );

    let ended = webhook(
        "webhook_state_change.txt",
        "9003",
        &pro.id,
        "2026-03-13%2009%3A00%3A00%20%2B0000",
    );
    deliver_signed(&app, &ended).await;
    advance(&app, "2026-03-13T09:00:00Z").await;
    assert_eq!(
        state(&get_subscription(&app, &pro.id).await),
        pb::SubscriptionState::Expired
    );
    // Back on the free package, as when any package ends.
    let active = app
        .subscriptions()
        .list_subscriptions(pb::ListSubscriptionsRequest {
            business_id: "biz-1".into(),
            active_only: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .subscriptions;
    assert_eq!(
        active.iter().map(|s| s.offering_code.as_str()).collect::<Vec<_>>(),
        ["free"]
    );
    let events = app.event_types("biz-1").await;
    for expected in [
        "subscription.past_due",
        "subscription.recovered",
        "subscription.renewed",
        "subscription.ended",
    ] {
        assert!(events.iter().any(|event| event == expected), "{expected}: {events:?}");
    }
}

async fn bad_or_repeated_maxio_deliveries_do_nothing_more(backend: Backend) {
    let maxio = MockServer::start().await;
    mount_create(&maxio).await;
    let app = maxio_app(backend, &maxio).await;
    let pro = buy(&app, "pro-monthly").await;
    let failed = webhook(
        "webhook_payment_failure.txt",
        "9101",
        &pro.id,
        "2026-03-11%2009%3A00%3A00%20%2B0000",
    );
    assert_eq!(deliver(&app, &failed, None).await, reqwest::StatusCode::UNAUTHORIZED);
    assert_eq!(
        deliver(&app, &failed, Some(sign(failed.as_bytes(), "wrong-key"))).await,
        reqwest::StatusCode::UNAUTHORIZED
    );
    let tampered = failed.replace("past_due", "active");
    assert_eq!(
        deliver(&app, &tampered, Some(sign(failed.as_bytes(), SHARED_KEY))).await,
        reqwest::StatusCode::UNAUTHORIZED
    );
    let malformed = "payload[subscription][id]=1";
    assert_eq!(
        deliver(&app, malformed, Some(sign(malformed.as_bytes(), SHARED_KEY))).await,
        reqwest::StatusCode::BAD_REQUEST
    );
    assert!(app.deliveries("maxio").await.is_empty());

    for _ in 0..3 {
        deliver_signed(&app, &failed).await;
    }
    advance(&app, "2026-03-11T09:00:00Z").await;
    let deliveries = app.deliveries("maxio").await;
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].status, "PROCESSED");
    let past_due_events = app
        .event_types("biz-1")
        .await
        .into_iter()
        .filter(|event| event == "subscription.past_due")
        .count();
    assert_eq!(past_due_events, 1);
}

async fn older_maxio_events_are_ignored(backend: Backend) {
    let maxio = MockServer::start().await;
    mount_create(&maxio).await;
    let app = maxio_app(backend, &maxio).await;
    let pro = buy(&app, "pro-monthly").await;
    // The recovery (newer) arrives first, the failure it recovered from after.
    let paid = with_event(
        &webhook(
            "webhook_payment_failure.txt",
            "9201",
            &pro.id,
            "2026-03-12%2009%3A00%3A00%20%2B0000",
        ),
        "payment_success",
        "active",
    );
    let failed = webhook(
        "webhook_payment_failure.txt",
        "9202",
        &pro.id,
        "2026-03-11%2009%3A00%3A00%20%2B0000",
    );
    deliver_signed(&app, &paid).await;
    advance(&app, "2026-03-12T09:00:00Z").await;
    deliver_signed(&app, &failed).await;
    advance(&app, "2026-03-12T09:00:01Z").await;
    assert_eq!(payment(&get_subscription(&app, &pro.id).await), pb::PaymentStatus::Ok);
    let deliveries = app.deliveries("maxio").await;
    assert_eq!(deliveries.len(), 2);
    assert_eq!(deliveries[1].status, "IGNORED");
    assert!(
        deliveries[1].outcome.as_deref().unwrap().starts_with("stale"),
        "{deliveries:?}"
    );
}
