//! Outgoing webhooks against a real HTTP receiver that verifies every
//! delivery with the Standard Webhooks reference implementation (the
//! `standardwebhooks` crate): signed, in order per subscription, retried on
//! the schedule as the service clock moves, FAILED after the last retry and
//! sent again on request; endpoint URLs checked; a directory's endpoint
//! gets its own directory's events only.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

use billing_proto::v1 as pb;
use billing_tests::{
    Backend, TestApp, assert_status, attach_card, backend_tests, business_token, buy_offering, directory_token,
    provision_business, spawn_jwt_app, spawn_manual_app, timestamp,
};
use tonic::Code;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Respond, ResponseTemplate};

backend_tests!(
    deliveries_are_signed_complete_and_in_order,
    a_receiver_that_is_down_is_retried_on_schedule_then_failed_and_redelivered,
    a_rotated_secret_signs_beside_the_old_one_for_a_day,
    urls_outside_the_allowed_hosts_are_refused,
    a_directory_endpoint_receives_its_own_directory_only,
    the_platform_cancels_an_app_subscription_by_webhook,
    a_later_event_waits_for_an_earlier_one_of_its_subscription,
);

const START: &str = "2026-03-10T09:00:00Z";

/// One verified delivery.
#[derive(Clone, Debug)]
struct Received {
    id: String,
    event_type: String,
    subscription_id: String,
    signatures: usize,
}

/// A receiver: answers with `status`, and records each delivery after
/// verifying it with every secret in `secrets` (a delivery that fails
/// verification fails the test).
#[derive(Clone, Default)]
struct Receiver {
    secrets: Arc<Mutex<Vec<String>>>,
    received: Arc<Mutex<Vec<Received>>>,
    attempts: Arc<Mutex<usize>>,
    status: Arc<AtomicU16>,
}

impl Respond for Receiver {
    fn respond(&self, request: &wiremock::Request) -> ResponseTemplate {
        *self.attempts.lock().unwrap() += 1;
        for secret in self.secrets.lock().unwrap().iter() {
            standardwebhooks::Webhook::new(secret)
                .unwrap()
                .verify(&request.body, &request.headers)
                .unwrap_or_else(|error| panic!("a delivery does not verify with {secret}: {error}"));
        }
        let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
        assert!(body["timestamp"].is_string() && body["data"].is_object(), "{body}");
        let subscription_id = body["data"]["subscription_id"]
            .as_str()
            .or(body["data"]["id"].as_str())
            .unwrap_or_default()
            .to_owned();
        // Subscription and invoice events link to the subscription.
        if !body["type"].as_str().unwrap().starts_with("checkout.") {
            let url = body["data"]["subscription_url"].as_str().unwrap_or_default();
            assert!(url.ends_with(&format!("/v1/subscriptions/{subscription_id}")), "{body}");
        }
        let status = self.status.load(Ordering::SeqCst);
        if (200..300).contains(&status) {
            self.received.lock().unwrap().push(Received {
                id: request.headers["webhook-id"].to_str().unwrap().to_owned(),
                event_type: body["type"].as_str().unwrap().to_owned(),
                subscription_id,
                signatures: request.headers["webhook-signature"]
                    .to_str()
                    .unwrap()
                    .split(' ')
                    .count(),
            });
        }
        ResponseTemplate::new(status)
    }
}

impl Receiver {
    async fn start(status: u16) -> (MockServer, Receiver) {
        let server = MockServer::start().await;
        let receiver = Receiver::default();
        receiver.status.store(status, Ordering::SeqCst);
        Mock::given(method("POST"))
            .and(path("/hooks"))
            .respond_with(receiver.clone())
            .mount(&server)
            .await;
        (server, receiver)
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    fn attempts(&self) -> usize {
        *self.attempts.lock().unwrap()
    }
}

async fn endpoint(app: &TestApp, server: &MockServer, receiver: &Receiver, types: &[&str]) -> pb::WebhookEndpoint {
    let created = app
        .events()
        .create_webhook_endpoint(pb::CreateWebhookEndpointRequest {
            request_id: "endpoint-1".into(),
            url: format!("{}/hooks", server.uri()),
            event_types: types.iter().map(|kind| (*kind).to_owned()).collect(),
            description: "the test receiver".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(created.signing_secret.starts_with("whsec_"));
    receiver.secrets.lock().unwrap().push(created.signing_secret);
    created.endpoint.unwrap()
}

async fn advance(app: &TestApp, to: &str) {
    app.test_clock()
        .advance_clock(pb::AdvanceClockRequest {
            to_time: Some(timestamp(to)),
        })
        .await
        .unwrap();
}

async fn deliveries(app: &TestApp, endpoint_id: &str, status: pb::DeliveryStatus) -> Vec<pb::Delivery> {
    app.events()
        .list_deliveries(pb::ListDeliveriesRequest {
            endpoint_id: endpoint_id.into(),
            status: status.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .deliveries
}

async fn last_sequence(app: &TestApp) -> i64 {
    app.events()
        .list_events(pb::ListEventsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .events
        .last()
        .map_or(0, |event| event.sequence)
}

async fn app_with_card(backend: Backend) -> TestApp {
    // Events kept a year: the tests move the clock by months.
    let app = billing_tests::spawn_app_with(backend, |settings| {
        settings.clock.mode = billing_server::config::ClockMode::Manual;
        settings.clock.start_time = Some(START.parse().unwrap());
        settings.events.retention_days = 365;
    })
    .await;
    app.load_demo_catalog().await;
    provision_business(&app, "biz-1").await;
    attach_card(&app, "biz-1", "pm_card_visa").await;
    app
}

async fn deliveries_are_signed_complete_and_in_order(backend: Backend) {
    let (server, receiver) = Receiver::start(200).await;
    let app = app_with_card(backend).await;
    let before = last_sequence(&app).await;
    let hook = endpoint(&app, &server, &receiver, &[]).await;
    let pro = buy_offering(&app, "biz-1", "pro-monthly")
        .await
        .unwrap()
        .subscription
        .unwrap();
    advance(&app, "2026-04-10T01:00:00Z").await;
    app.subscriptions()
        .cancel(pb::CancelRequest {
            request_id: "cancel-1".into(),
            subscription_id: pro.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    advance(&app, "2026-05-11T00:00:00Z").await;

    // Everything published since the endpoint was made, once, in order.
    let published = app
        .events()
        .list_events(pb::ListEventsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .events;
    let since: Vec<&pb::Event> = published.iter().filter(|event| event.sequence > before).collect();
    let received = receiver.received();
    let mut got: Vec<&str> = received.iter().map(|delivery| delivery.id.as_str()).collect();
    got.sort_unstable();
    let mut expected: Vec<&str> = since.iter().map(|event| event.id.as_str()).collect();
    expected.sort_unstable();
    assert_eq!(got, expected, "every event once");
    // In the stream's order per subscription (the event's subscription, as
    // the stream names it).
    let owner: std::collections::HashMap<&str, &str> = since
        .iter()
        .map(|event| (event.id.as_str(), event.subscription_id.as_str()))
        .collect();
    for subscription in owner.values() {
        let delivered: Vec<&str> = received
            .iter()
            .map(|delivery| delivery.id.as_str())
            .filter(|id| owner[id] == *subscription)
            .collect();
        let published: Vec<&str> = since
            .iter()
            .filter(|event| event.subscription_id == *subscription)
            .map(|event| event.id.as_str())
            .collect();
        assert_eq!(delivered, published, "{subscription} out of order");
    }
    let of_pro: Vec<&str> = received
        .iter()
        .filter(|delivery| delivery.subscription_id == pro.id && delivery.event_type.starts_with("subscription."))
        .map(|delivery| delivery.event_type.as_str())
        .collect();
    assert_eq!(
        of_pro,
        [
            "subscription.started",
            "subscription.renewed",
            "subscription.canceled",
            "subscription.ended"
        ]
    );
    assert!(received.iter().any(|delivery| delivery.event_type == "invoice.paid"));
    assert!(deliveries(&app, &hook.id, pb::DeliveryStatus::Pending).await.is_empty());
    let delivered = deliveries(&app, &hook.id, pb::DeliveryStatus::Delivered).await;
    assert_eq!(delivered.len(), received.len());
    assert!(
        delivered
            .iter()
            .all(|delivery| delivery.response_status == 200 && delivery.attempts == 1)
    );

    // Repeating the create answers the same endpoint; no second one.
    let again = app
        .events()
        .create_webhook_endpoint(pb::CreateWebhookEndpointRequest {
            request_id: "endpoint-1".into(),
            url: format!("{}/hooks", server.uri()),
            description: "the test receiver".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.endpoint.unwrap().id, hook.id);
    let listed = app
        .events()
        .list_webhook_endpoints(pb::ListWebhookEndpointsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .endpoints;
    assert_eq!(listed.len(), 1);
}

async fn a_receiver_that_is_down_is_retried_on_schedule_then_failed_and_redelivered(backend: Backend) {
    let (server, receiver) = Receiver::start(503).await;
    let app = app_with_card(backend).await;
    let hook = endpoint(&app, &server, &receiver, &["subscription.started"]).await;
    buy_offering(&app, "biz-1", "pro-monthly").await.unwrap();
    advance(&app, "2026-03-10T09:01:00Z").await;
    let pending = deliveries(&app, &hook.id, pb::DeliveryStatus::Pending).await;
    let first = pending.first().expect("a delivery waits").clone();
    assert_eq!(first.attempts, 1);
    assert_eq!(first.response_status, 503);
    let tried_at = first.create_time.unwrap().seconds;
    // The schedule: 15 min, 30 min, 2 h, 12 h, 1 day after each failure.
    let mut at = tried_at;
    for (retry, wait_minutes) in [15_i64, 30, 120, 720, 1_440].into_iter().enumerate() {
        at += wait_minutes * 60;
        let delivery = deliveries(&app, &hook.id, pb::DeliveryStatus::Pending)
            .await
            .into_iter()
            .find(|delivery| delivery.id == first.id)
            .unwrap();
        assert_eq!(delivery.next_attempt_time.unwrap().seconds, at, "retry {}", retry + 1);
        let attempts_before = receiver.attempts();
        let just_before = chrono::DateTime::from_timestamp(at - 1, 0).unwrap().to_rfc3339();
        advance(&app, &just_before).await;
        assert_eq!(receiver.attempts(), attempts_before, "not before its time");
        advance(&app, &chrono::DateTime::from_timestamp(at, 0).unwrap().to_rfc3339()).await;
        assert!(receiver.attempts() > attempts_before, "retried at its time");
    }
    let failed = deliveries(&app, &hook.id, pb::DeliveryStatus::Failed).await;
    assert_eq!(failed.len(), pending.len(), "failed after the last retry: {failed:?}");
    assert_eq!(failed[0].attempts, 6);
    assert!(receiver.received().is_empty());

    // The receiver is back; an operator sends the events again.
    receiver.status.store(204, Ordering::SeqCst);
    let redelivered = app
        .events()
        .redeliver_events(pb::RedeliverEventsRequest {
            request_id: "redeliver-1".into(),
            endpoint_id: hook.id.clone(),
            event_ids: failed.iter().map(|delivery| delivery.event_id.clone()).collect(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(redelivered.scheduled, i64::try_from(failed.len()).unwrap());
    advance(&app, "2026-03-12T12:00:00Z").await;
    let received = receiver.received();
    assert_eq!(received.len(), failed.len());
    assert!(
        received
            .iter()
            .all(|delivery| delivery.event_type == "subscription.started")
    );
    assert!(deliveries(&app, &hook.id, pb::DeliveryStatus::Failed).await.is_empty());
}

async fn a_rotated_secret_signs_beside_the_old_one_for_a_day(backend: Backend) {
    let (server, receiver) = Receiver::start(200).await;
    let app = app_with_card(backend).await;
    let hook = endpoint(&app, &server, &receiver, &["subscription.started"]).await;
    let rotated = app
        .events()
        .rotate_webhook_secret(pb::RotateWebhookSecretRequest {
            request_id: "rotate-1".into(),
            endpoint_id: hook.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_ne!(rotated.signing_secret, receiver.secrets.lock().unwrap()[0]);
    assert_eq!(
        rotated.endpoint.unwrap().previous_secret_expire_time,
        Some(timestamp("2026-03-11T09:00:00Z"))
    );
    // Both secrets verify what is sent now.
    receiver.secrets.lock().unwrap().push(rotated.signing_secret.clone());
    buy_offering(&app, "biz-1", "pro-monthly").await.unwrap();
    advance(&app, "2026-03-10T10:00:00Z").await;
    let received = receiver.received();
    assert!(!received.is_empty());
    assert!(received.iter().all(|delivery| delivery.signatures == 2));
    // A day on, only the new one signs.
    receiver.secrets.lock().unwrap().remove(0);
    advance(&app, "2026-03-11T10:00:00Z").await;
    app.subscriptions()
        .cancel(pb::CancelRequest {
            request_id: "cancel-now".into(),
            subscription_id: app
                .subscriptions()
                .list_subscriptions(pb::ListSubscriptionsRequest {
                    business_id: "biz-1".into(),
                    offering_code: "pro-monthly".into(),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner()
                .subscriptions[0]
                .id
                .clone(),
            timing: pb::CancelTiming::Immediate.into(),
            ..Default::default()
        })
        .await
        .unwrap();
    advance(&app, "2026-03-11T10:01:00Z").await;
    let later = receiver.received();
    assert!(later.len() > received.len(), "the free package started again");
    assert_eq!(later.last().unwrap().signatures, 1);
}

async fn urls_outside_the_allowed_hosts_are_refused(backend: Backend) {
    let app = spawn_manual_app(backend, START).await;
    for url in [
        "https://hooks.example.com/in",
        "http://hooks.example.com/in",
        "ftp://127.0.0.1/in",
        "no url at all",
    ] {
        let refused = app
            .events()
            .create_webhook_endpoint(pb::CreateWebhookEndpointRequest {
                url: url.into(),
                event_types: vec!["subscription.teleported".into()],
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_status(&refused, Code::InvalidArgument, "WEBHOOK_URL_NOT_ALLOWED");
        let fields: Vec<String> = tonic_types::StatusExt::get_details_bad_request(&refused)
            .unwrap()
            .field_violations
            .into_iter()
            .map(|violation| violation.field)
            .collect();
        assert_eq!(fields, ["url", "event_types[0]"], "{url}: every bad field at once");
    }
    let missing = app
        .events()
        .delete_webhook_endpoint(pb::DeleteWebhookEndpointRequest {
            request_id: "delete-1".into(),
            endpoint_id: "we_missing".into(),
        })
        .await
        .unwrap_err();
    assert_status(&missing, Code::NotFound, "WEBHOOK_ENDPOINT_NOT_FOUND");
}

async fn a_directory_endpoint_receives_its_own_directory_only(backend: Backend) {
    let (server, receiver) = Receiver::start(200).await;
    let app = spawn_jwt_app(backend, |settings| {
        settings.clock.mode = billing_server::config::ClockMode::Manual;
        settings.clock.start_time = Some(START.parse().unwrap());
    })
    .await;
    app.load_demo_catalog().await;
    // The partner's directory gives away the free package too.
    app.catalog()
        .assign_offering(pb::AssignOfferingRequest {
            directory_id: "partner".into(),
            offering_code: "free".into(),
            is_default: true,
        })
        .await
        .unwrap();
    let partner = app.as_caller(&directory_token("partner"));
    let created = partner
        .events()
        .create_webhook_endpoint(pb::CreateWebhookEndpointRequest {
            request_id: "partner-endpoint".into(),
            url: format!("{}/hooks", server.uri()),
            event_types: vec!["subscription.started".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.endpoint.as_ref().unwrap().directory_id, "partner");
    receiver.secrets.lock().unwrap().push(created.signing_secret);
    // Its own business and another directory's, each starting a package.
    partner
        .subscriptions()
        .provision_business(pb::ProvisionBusinessRequest {
            request_id: "provision-own".into(),
            business_id: "own-biz".into(),
            directory_id: "partner".into(),
            buyer_id: "owner".into(),
        })
        .await
        .unwrap();
    provision_business(&app, "demo-biz").await;
    advance(&app, "2026-03-10T10:00:00Z").await;
    let received = receiver.received();
    let demo_free = app
        .subscriptions()
        .list_subscriptions(pb::ListSubscriptionsRequest {
            business_id: "demo-biz".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .subscriptions;
    assert!(
        received.iter().all(|delivery| demo_free
            .iter()
            .all(|subscription| subscription.id != delivery.subscription_id)),
        "another directory's event reached the partner: {received:?}"
    );
    assert_eq!(received.len(), 1, "its own business's start: {received:?}");
    // A business manages no endpoints; a directory sees only its own.
    let business = app.as_caller(&business_token("own-biz"));
    let refused = business
        .events()
        .list_webhook_endpoints(pb::ListWebhookEndpointsRequest::default())
        .await
        .unwrap_err();
    assert_status(&refused, Code::PermissionDenied, "PERMISSION_DENIED");
    let other = app.as_caller(&directory_token("other"));
    let hidden = other
        .events()
        .list_deliveries(pb::ListDeliveriesRequest {
            endpoint_id: created.endpoint.unwrap().id,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_status(&hidden, Code::NotFound, "WEBHOOK_ENDPOINT_NOT_FOUND");
}

const PLATFORM_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// POSTs a platform webhook signed with `secret` (as the platform's
/// Standard Webhooks library would).
async fn platform_post(app: &TestApp, id: &str, body: &str, secret: &str) -> reqwest::StatusCode {
    let timestamp = chrono::Utc::now().timestamp();
    let signature = standardwebhooks::Webhook::new(secret)
        .unwrap()
        .sign(id, timestamp, body.as_bytes())
        .unwrap();
    reqwest::Client::new()
        .post(format!("{}/webhooks/platform", app.http_base()))
        .header("webhook-id", id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
        .status()
}

async fn the_platform_cancels_an_app_subscription_by_webhook(backend: Backend) {
    let app = billing_tests::spawn_app_with(backend, |settings| {
        settings.clock.mode = billing_server::config::ClockMode::Manual;
        settings.clock.start_time = Some(START.parse().unwrap());
        settings.platform.webhook_secret = Some(PLATFORM_SECRET.to_owned().into());
    })
    .await;
    app.load_demo_catalog().await;
    provision_business(&app, "biz-1").await;
    attach_card(&app, "biz-1", "pm_card_visa").await;
    let bookings = buy_offering(&app, "biz-1", "bookings")
        .await
        .unwrap()
        .subscription
        .unwrap();
    let body = serde_json::json!({
        "type": "app_subscription.cancel",
        "data": {"business_id": "biz-1", "offering_code": "bookings", "when": "period_end", "reason": "uninstalled"},
    })
    .to_string();
    let stored = || app.count_in_database("SELECT COUNT(*) AS n FROM webhook_inbox WHERE provider = 'platform'");

    // A bad signature: 401, nothing stored.
    let forged = platform_post(
        &app,
        "msg_forged",
        &body,
        "whsec_bm90IHRoZSBwbGF0Zm9ybSdzIHNlY3JldCBhdCBhbGw=",
    )
    .await;
    assert_eq!(forged, reqwest::StatusCode::UNAUTHORIZED);
    assert_eq!(stored().await, 0);

    // Valid: stored, then applied by the job: canceled at the period end.
    assert_eq!(
        platform_post(&app, "msg_1", &body, PLATFORM_SECRET).await,
        reqwest::StatusCode::OK
    );
    advance(&app, "2026-03-10T09:01:00Z").await;
    let canceled = billing_tests::get_subscription(&app, &bookings.id).await;
    assert_eq!(canceled.state(), pb::SubscriptionState::Canceled);
    assert_eq!(canceled.cancel_reason, "uninstalled");
    assert!(canceled.active, "kept until the period ends");

    // Replayed (the platform retries): one effect.
    assert_eq!(
        platform_post(&app, "msg_1", &body, PLATFORM_SECRET).await,
        reqwest::StatusCode::OK
    );
    advance(&app, "2026-03-10T09:02:00Z").await;
    assert_eq!(stored().await, 1);
    let again = billing_tests::get_subscription(&app, &bookings.id).await;
    assert_eq!(again.etag, canceled.etag, "no second change");

    // "immediately" ends it now.
    let now_body = serde_json::json!({
        "type": "app_subscription.cancel",
        "data": {"business_id": "biz-1", "subscription_id": bookings.id, "when": "immediately"},
    })
    .to_string();
    assert_eq!(
        platform_post(&app, "msg_2", &now_body, PLATFORM_SECRET).await,
        reqwest::StatusCode::OK
    );
    advance(&app, "2026-03-10T09:03:00Z").await;
    let ended = billing_tests::get_subscription(&app, &bookings.id).await;
    assert_eq!(ended.state(), pb::SubscriptionState::Expired);
    // Not a cancel event: 400.
    let other = serde_json::json!({"type": "app_subscription.create", "data": {}}).to_string();
    assert_eq!(
        platform_post(&app, "msg_3", &other, PLATFORM_SECRET).await,
        reqwest::StatusCode::BAD_REQUEST
    );
}

async fn a_later_event_waits_for_an_earlier_one_of_its_subscription(backend: Backend) {
    let (server, receiver) = Receiver::start(503).await;
    let app = app_with_card(backend).await;
    let hook = endpoint(
        &app,
        &server,
        &receiver,
        &["subscription.started", "subscription.canceled"],
    )
    .await;
    let bookings = buy_offering(&app, "biz-1", "bookings")
        .await
        .unwrap()
        .subscription
        .unwrap();
    advance(&app, "2026-03-10T09:01:00Z").await;
    app.subscriptions()
        .cancel(pb::CancelRequest {
            request_id: "cancel-1".into(),
            subscription_id: bookings.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    advance(&app, "2026-03-10T09:05:00Z").await;
    // The cancel is not tried while the start has not gone through.
    let pending = deliveries(&app, &hook.id, pb::DeliveryStatus::Pending).await;
    assert_eq!(pending.len(), 2, "{pending:?}");
    let attempts: Vec<i32> = pending.iter().map(|delivery| delivery.attempts).collect();
    assert_eq!(attempts, [1, 0], "the later event waits: {pending:?}");
    assert_eq!(receiver.attempts(), 1);

    // The receiver is back by the first retry: both arrive, in order.
    receiver.status.store(200, Ordering::SeqCst);
    advance(&app, "2026-03-10T09:20:00Z").await;
    let received: Vec<String> = receiver
        .received()
        .into_iter()
        .map(|delivery| delivery.event_type)
        .collect();
    assert_eq!(received, ["subscription.started", "subscription.canceled"]);
    assert!(deliveries(&app, &hook.id, pb::DeliveryStatus::Pending).await.is_empty());
}
