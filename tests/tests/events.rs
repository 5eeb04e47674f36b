//! The event stream from outside: ListEvents and WatchEvents against a real
//! server, scoped to the caller, in the one published order — a
//! subscription's start and end exactly once, a watch that gets the backlog
//! then live events and resumes without a gap or a repeat, concurrent
//! writers seen once each, and a change through one server seen on
//! another's stream.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::time::Duration;

use billing_proto::v1 as pb;
use billing_proto::v1::event_service_client::EventServiceClient;
use billing_tests::process::Billingd;
use billing_tests::{
    Backend, TestApp, assert_status, attach_card, backend_tests, business_token, buy_offering, provision_business,
    spawn_app_with, spawn_jwt_app, spawn_manual_app, timestamp,
};
use tokio_stream::StreamExt;
use tonic::Code;

backend_tests!(
    a_subscription_starts_and_ends_once_in_its_stream,
    a_watch_gets_the_backlog_then_live_events_and_resumes_without_gaps,
    callers_read_their_own_tenants_events_only,
    concurrent_writers_are_each_seen_once_in_one_gapless_order,
);

const START: &str = "2026-03-10T09:00:00Z";

async fn app_with_business(backend: Backend) -> TestApp {
    // Kept a year: the tests move the clock by months.
    let app = spawn_app_with(backend, |settings| {
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

async fn list(app: &TestApp, request: pb::ListEventsRequest) -> Vec<pb::Event> {
    app.events().list_events(request).await.unwrap().into_inner().events
}

fn types(events: &[pb::Event]) -> Vec<&str> {
    events.iter().map(|event| event.r#type.as_str()).collect()
}

async fn cancel(app: &TestApp, subscription_id: &str) {
    app.subscriptions()
        .cancel(pb::CancelRequest {
            request_id: format!("cancel-{subscription_id}"),
            subscription_id: subscription_id.into(),
            ..Default::default()
        })
        .await
        .unwrap();
}

async fn a_subscription_starts_and_ends_once_in_its_stream(backend: Backend) {
    let app = app_with_business(backend).await;
    let pro = buy_offering(&app, "biz-1", "pro-monthly")
        .await
        .unwrap()
        .subscription
        .unwrap();
    // A month on: renewed and paid.
    app.test_clock()
        .advance_clock(pb::AdvanceClockRequest {
            to_time: Some(timestamp("2026-04-10T01:00:00Z")),
        })
        .await
        .unwrap();
    cancel(&app, &pro.id).await;
    app.test_clock()
        .advance_clock(pb::AdvanceClockRequest {
            to_time: Some(timestamp("2026-05-11T00:00:00Z")),
        })
        .await
        .unwrap();
    let of_pro = list(
        &app,
        pb::ListEventsRequest {
            subscription_id: pro.id.clone(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        types(&of_pro),
        [
            // Started once its first charge is paid, not before.
            "invoice.created",
            "subscription.started",
            "invoice.paid",
            "subscription.renewed",
            "invoice.created",
            "invoice.paid",
            "subscription.canceled",
            "subscription.ended",
        ]
    );
    let first = &of_pro[0];
    assert!(first.id.starts_with("evt_"));
    assert_eq!(first.business_id, "biz-1");
    assert_eq!(first.directory_id, "demo");
    assert_eq!(first.subscription_id, pro.id);
    let started = &of_pro[1];
    let data = started.data.as_ref().unwrap();
    assert_eq!(
        data.fields["id"].kind,
        Some(prost_types::value::Kind::StringValue(pro.id.clone()))
    );
    assert!(
        of_pro.windows(2).all(|pair| pair[0].sequence < pair[1].sequence),
        "in stream order"
    );

    // Only starts and ends: the free default's end and start come too (it
    // was replaced by Pro, and came back when Pro ended).
    let pairs = list(
        &app,
        pb::ListEventsRequest {
            business_id: "biz-1".into(),
            types: vec!["subscription.started".into(), "subscription.ended".into()],
            ..Default::default()
        },
    )
    .await;
    for subscription in pairs
        .iter()
        .map(|event| &event.subscription_id)
        .collect::<BTreeSet<_>>()
    {
        let of_it: Vec<&str> = pairs
            .iter()
            .filter(|event| &event.subscription_id == subscription)
            .map(|event| event.r#type.as_str())
            .collect();
        assert!(
            of_it == ["subscription.started", "subscription.ended"] || of_it == ["subscription.started"],
            "{subscription}: {of_it:?}"
        );
    }
    // Paged: the same events, a page at a time, from a sequence on.
    let mut paged = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = app
            .events()
            .list_events(pb::ListEventsRequest {
                subscription_id: pro.id.clone(),
                page_size: 3,
                page_token: page_token.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        paged.extend(page.events);
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!(paged, of_pro);
    let after = list(
        &app,
        pb::ListEventsRequest {
            subscription_id: pro.id.clone(),
            after_sequence: of_pro[5].sequence,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(after, of_pro[6..]);
    let unknown = app
        .events()
        .list_events(pb::ListEventsRequest {
            types: vec!["subscription.teleported".into()],
            after_sequence: -1,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_status(&unknown, Code::InvalidArgument, "FIELD_INVALID");
    let details = tonic_types::StatusExt::get_details_bad_request(&unknown).unwrap();
    assert_eq!(details.field_violations.len(), 2, "both bad fields at once");
}

/// Takes `count` events from `stream`, failing after five seconds.
async fn take(stream: &mut tonic::Streaming<pb::WatchEventsResponse>, count: usize) -> Vec<pb::Event> {
    let mut events = Vec::new();
    while events.len() < count {
        let next = tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await
            .expect("an event within 5 s")
            .expect("the stream goes on")
            .unwrap();
        events.push(next.event.unwrap());
    }
    events
}

async fn a_watch_gets_the_backlog_then_live_events_and_resumes_without_gaps(backend: Backend) {
    let app = app_with_business(backend).await;
    let pro = buy_offering(&app, "biz-1", "pro-monthly")
        .await
        .unwrap()
        .subscription
        .unwrap();
    let backlog = list(
        &app,
        pb::ListEventsRequest {
            business_id: "biz-1".into(),
            ..Default::default()
        },
    )
    .await;
    let watch = |after_sequence: i64| {
        let mut events = app.events();
        async move {
            events
                .watch_events(pb::WatchEventsRequest {
                    business_id: "biz-1".into(),
                    after_sequence,
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner()
        }
    };
    let mut stream = watch(0).await;
    assert_eq!(take(&mut stream, backlog.len()).await, backlog, "the backlog first");
    // Then live: Pro's cancel and its bundle's.
    cancel(&app, &pro.id).await;
    let since = |after_sequence: i64| {
        list(
            &app,
            pb::ListEventsRequest {
                business_id: "biz-1".into(),
                after_sequence,
                ..Default::default()
            },
        )
    };
    let canceled = since(backlog.last().unwrap().sequence).await;
    assert!(
        types(&canceled).iter().all(|kind| *kind == "subscription.canceled"),
        "{canceled:?}"
    );
    let live = take(&mut stream, canceled.len()).await;
    assert_eq!(live, canceled);
    drop(stream);

    // Changes while nobody watches, then a resume from the last sequence
    // received: exactly what was missed, nothing again.
    app.subscriptions()
        .reactivate(pb::ReactivateRequest {
            request_id: "reactivate-1".into(),
            subscription_id: pro.id.clone(),
            etag: String::new(),
        })
        .await
        .unwrap();
    let last = live.last().unwrap().sequence;
    let missed = since(last).await;
    assert!(!missed.is_empty());
    let mut resumed = watch(last).await;
    assert_eq!(take(&mut resumed, missed.len()).await, missed);
    assert!(types(&missed).contains(&"subscription.reactivated"));
    let nothing_more = tokio::time::timeout(Duration::from_millis(600), resumed.next()).await;
    assert!(nothing_more.is_err(), "nothing sent twice: {nothing_more:?}");
}

async fn callers_read_their_own_tenants_events_only(backend: Backend) {
    let app = spawn_jwt_app(backend, |_| {}).await;
    app.load_demo_catalog().await;
    provision_business(&app, "biz-1").await;
    provision_business(&app, "biz-2").await;
    let own = app.as_caller(&business_token("biz-1"));
    let mine = own
        .events()
        .list_events(pb::ListEventsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .events;
    assert!(!mine.is_empty());
    assert!(mine.iter().all(|event| event.business_id == "biz-1"), "{mine:?}");
    let other = own
        .events()
        .list_events(pb::ListEventsRequest {
            business_id: "biz-2".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_status(&other, Code::PermissionDenied, "PERMISSION_DENIED");
    let watched = own
        .events()
        .watch_events(pb::WatchEventsRequest {
            business_id: "biz-2".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_status(&watched, Code::PermissionDenied, "PERMISSION_DENIED");
    // Its own watch sees nothing of biz-2's purchase.
    let mut stream = own
        .events()
        .watch_events(pb::WatchEventsRequest::default())
        .await
        .unwrap()
        .into_inner();
    take(&mut stream, mine.len()).await;
    attach_card(&app, "biz-2", "pm_card_visa").await;
    buy_offering(&app, "biz-2", "pro-monthly").await.unwrap();
    let quiet = tokio::time::timeout(Duration::from_millis(600), stream.next()).await;
    assert!(quiet.is_err(), "another business's events leaked: {quiet:?}");
}

async fn concurrent_writers_are_each_seen_once_in_one_gapless_order(backend: Backend) {
    const BUSINESSES: usize = 8;
    let app = spawn_manual_app(backend, START).await;
    app.load_demo_catalog().await;
    let mut stream = app
        .events()
        .watch_events(pb::WatchEventsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let writers: Vec<_> = (0..BUSINESSES)
        .map(|n| {
            let clients = app.clients();
            tokio::spawn(async move {
                let business = format!("biz-{n}");
                clients
                    .subscriptions()
                    .provision_business(pb::ProvisionBusinessRequest {
                        request_id: format!("provision-{business}"),
                        business_id: business.clone(),
                        directory_id: "demo".into(),
                        buyer_id: "owner".into(),
                    })
                    .await
                    .unwrap();
                clients
                    .payment_methods()
                    .attach_payment_method(pb::AttachPaymentMethodRequest {
                        request_id: format!("attach-{business}"),
                        business_id: business.clone(),
                        token: "pm_card_visa".into(),
                    })
                    .await
                    .unwrap();
                clients
                    .subscriptions()
                    .create_subscription(pb::CreateSubscriptionRequest {
                        request_id: format!("buy-{business}"),
                        business_id: business,
                        buyer_id: "owner".into(),
                        offering: Some(pb::create_subscription_request::Offering::OfferingCode(
                            "bookings".into(),
                        )),
                        currency_code: "USD".into(),
                        ..Default::default()
                    })
                    .await
                    .unwrap();
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    let everything = list(&app, pb::ListEventsRequest::default()).await;
    let watched = take(&mut stream, everything.len()).await;
    assert_eq!(watched, everything, "the watch saw every event once, in order");
    let sequences: Vec<i64> = everything.iter().map(|event| event.sequence).collect();
    let expected: Vec<i64> = (1..=i64::try_from(everything.len()).unwrap()).collect();
    assert_eq!(sequences, expected, "one gapless sequence");
    let ids: BTreeSet<&str> = everything.iter().map(|event| event.id.as_str()).collect();
    assert_eq!(ids.len(), everything.len(), "no event twice");
    let started = everything
        .iter()
        .filter(|event| event.r#type == "subscription.started")
        .count();
    assert_eq!(started, BUSINESSES * 2, "each business's free default and its bookings");
}

/// A change committed through one server reaches a watch served by another
/// (a `billingd` process on the same Postgres) within a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_through_one_server_shows_on_anothers_stream() {
    let app = app_with_business(Backend::Postgres).await;
    // On the same (manual) clock, so its worker runs nothing of its own.
    let other = Billingd::start(
        app.database_url(),
        &[
            ("BILLING__AUTH__MODE", "none"),
            ("BILLING__CLOCK__MODE", "manual"),
            ("BILLING__CLOCK__START_TIME", START),
        ],
    )
    .await;
    let mut stream = EventServiceClient::new(other.channel().await)
        .watch_events(pb::WatchEventsRequest {
            business_id: "biz-1".into(),
            types: vec!["subscription.started".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let free = take(&mut stream, 1).await;
    let bought = buy_offering(&app, "biz-1", "pro-monthly").await.unwrap();
    let pro = bought.subscription.unwrap().id;
    let committed = std::time::Instant::now();
    let seen = tokio::time::timeout(Duration::from_secs(1), async {
        loop {
            let event = stream.next().await.unwrap().unwrap().event.unwrap();
            if event.subscription_id == pro {
                return event;
            }
        }
    })
    .await
    .expect("seen on the other server within a second");
    assert!(seen.sequence > free[0].sequence);
    assert!(committed.elapsed() < Duration::from_secs(1));
    other.terminate();
}
