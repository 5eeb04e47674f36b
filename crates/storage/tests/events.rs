//! The published event stream, on SQLite and Postgres: numbered in the
//! order events became visible, so a reader never skips one that committed
//! late.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use billing_domain::subscription::Business;
use billing_domain::text::ExternalId;
use billing_storage::testing::TestDatabase;
use billing_storage::{Backend, EventFilter, NewEvent, Store};
use chrono::{TimeZone, Utc};

billing_storage::backend_tests!(
    events_are_published_in_commit_order_without_gaps,
    a_commit_publishes_its_own_events_unless_a_publisher_is_at_work,
    readers_filter_by_tenant_subscription_and_type,
    old_events_are_pruned_but_never_the_newest_or_one_still_owed,
    a_commit_that_wrote_events_wakes_listeners_on_postgres,
);

fn event(name: &str, business: &str) -> NewEvent {
    NewEvent {
        id: format!("evt_{name}"),
        event_type: format!("subscription.{name}"),
        business_id: business.to_owned(),
        subscription_id: format!("sub_{business}"),
        occur_time: Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap(),
        payload: serde_json::json!({"name": name}),
    }
}

async fn provisioned(store: &Store, business: &str, directory: &str) {
    store
        .subscriptions()
        .insert_business(&Business {
            business_id: ExternalId::parse(business).unwrap(),
            directory_id: ExternalId::parse(directory).unwrap(),
            create_time: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
        })
        .await
        .unwrap();
}

fn names(events: &[billing_storage::PublishedEvent]) -> Vec<String> {
    events.iter().map(|event| event.id.clone()).collect()
}

async fn events_are_published_in_commit_order_without_gaps(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let store = db.store().await;
    provisioned(&store, "biz-1", "demo").await;
    let all = EventFilter::default();

    store.subscriptions().insert_event(&event("a", "biz-1")).await.unwrap();
    assert!(
        store.list_events(&all, 0, 10).await.unwrap().is_empty(),
        "nothing is read before it is published"
    );
    assert_eq!(store.publish_events(100).await.unwrap(), 1);

    // A transaction takes its (internal) number first but commits last.
    // (Postgres only: SQLite has one writer, and one connection, at a time.)
    if backend == Backend::Postgres {
        let slow = store.begin().await.unwrap();
        slow.subscriptions()
            .insert_event(&event("late", "biz-1"))
            .await
            .unwrap();
        let fast = store.begin().await.unwrap();
        fast.subscriptions().insert_event(&event("b", "biz-1")).await.unwrap();
        fast.commit().await.unwrap();
        assert_eq!(store.publish_events(100).await.unwrap(), 1, "only what is committed");
        let seen = store.list_events(&all, 0, 10).await.unwrap();
        assert_eq!(names(&seen), ["evt_a", "evt_b"]);
        let last_seen = seen.last().unwrap().sequence;
        slow.commit().await.unwrap();
        store.publish_events(100).await.unwrap();
        let after = store.list_events(&all, last_seen, 10).await.unwrap();
        assert_eq!(names(&after), ["evt_late"], "the late commit comes after what was read");
    } else {
        store.subscriptions().insert_event(&event("b", "biz-1")).await.unwrap();
        store.publish_events(100).await.unwrap();
    }

    let everything = store.list_events(&all, 0, 10).await.unwrap();
    let sequences: Vec<i64> = everything.iter().map(|event| event.sequence).collect();
    let expected: Vec<i64> = (1..=i64::try_from(everything.len()).unwrap()).collect();
    assert_eq!(sequences, expected, "numbered from 1 without gaps");
    assert_eq!(everything[0].directory_id, "demo", "the business's directory");
    assert_eq!(store.publish_events(100).await.unwrap(), 0, "published once");
    // Paging: a limit, then on from the last one read.
    let first = store.list_events(&all, 0, 1).await.unwrap();
    assert_eq!(first.len(), 1);
    let rest = store.list_events(&all, first[0].sequence, 10).await.unwrap();
    assert_eq!(rest.len(), everything.len() - 1);
}

async fn a_commit_publishes_its_own_events_unless_a_publisher_is_at_work(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let store = db.store().await;
    provisioned(&store, "biz-1", "demo").await;
    let all = EventFilter::default();

    let tx = store.begin().await.unwrap();
    tx.insert_event(&event("a", "biz-1")).await.unwrap();
    tx.insert_event(&event("b", "biz-1")).await.unwrap();
    tx.commit().await.unwrap();
    let read = store.list_events(&all, 0, 10).await.unwrap();
    assert_eq!(names(&read), ["evt_a", "evt_b"], "published by their own commit");
    assert_eq!(read.iter().map(|event| event.sequence).collect::<Vec<_>>(), [1, 2]);

    // A savepoint's events are published by the commit of its transaction.
    let tx = store.begin().await.unwrap();
    let savepoint = tx.savepoint().await.unwrap();
    savepoint.insert_event(&event("c", "biz-1")).await.unwrap();
    savepoint.commit().await.unwrap();
    if backend == Backend::Postgres {
        // (SQLite's one connection is the open transaction's.)
        let before = store.list_events(&all, 2, 10).await.unwrap();
        assert!(before.is_empty(), "not before the commit");
    }
    tx.commit().await.unwrap();
    assert_eq!(names(&store.list_events(&all, 2, 10).await.unwrap()), ["evt_c"]);

    // Postgres: a commit does not wait for a publisher at work elsewhere
    // (SQLite has one writer: no one else can be at work).
    if backend == Backend::Postgres {
        let publisher = store.hold_publishers_turn().await.unwrap();
        let tx = store.begin().await.unwrap();
        tx.insert_event(&event("d", "biz-1")).await.unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(5), tx.commit())
            .await
            .expect("the commit does not wait for the publisher's turn")
            .unwrap();
        assert!(
            store.list_events(&all, 3, 10).await.unwrap().is_empty(),
            "left for the publisher at work"
        );
        publisher.commit().await.unwrap();
        assert_eq!(store.publish_events(100).await.unwrap(), 1);
        let read = store.list_events(&all, 3, 10).await.unwrap();
        assert_eq!(names(&read), ["evt_d"]);
        assert_eq!(read[0].sequence, 4, "no gap");
    }
}

async fn readers_filter_by_tenant_subscription_and_type(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let store = db.store().await;
    provisioned(&store, "biz-1", "demo").await;
    provisioned(&store, "biz-2", "other").await;
    for (name, business) in [("started", "biz-1"), ("ended", "biz-1"), ("started2", "biz-2")] {
        store
            .subscriptions()
            .insert_event(&event(name, business))
            .await
            .unwrap();
    }
    store.publish_events(100).await.unwrap();
    let of = |filter: EventFilter| {
        let store = store.clone();
        async move { names(&store.list_events(&filter, 0, 10).await.unwrap()) }
    };
    assert_eq!(
        of(EventFilter {
            business_id: "biz-1".into(),
            ..EventFilter::default()
        })
        .await,
        ["evt_started", "evt_ended"]
    );
    assert_eq!(
        of(EventFilter {
            directory_id: "other".into(),
            ..EventFilter::default()
        })
        .await,
        ["evt_started2"]
    );
    assert_eq!(
        of(EventFilter {
            subscription_id: "sub_biz-2".into(),
            ..EventFilter::default()
        })
        .await,
        ["evt_started2"]
    );
    assert_eq!(
        of(EventFilter {
            types: vec!["subscription.ended".into(), "subscription.started2".into()],
            ..EventFilter::default()
        })
        .await,
        ["evt_ended", "evt_started2"]
    );
}

async fn old_events_are_pruned_but_never_the_newest_or_one_still_owed(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let store = db.store().await;
    provisioned(&store, "biz-1", "demo").await;
    for name in ["one", "two", "three"] {
        store.subscriptions().insert_event(&event(name, "biz-1")).await.unwrap();
    }
    store.publish_events(100).await.unwrap();
    // An endpoint that has been fanned out only up to "one".
    let endpoint = billing_storage::Endpoint {
        id: "we_1".into(),
        url: "http://localhost/hook".into(),
        event_types: vec![],
        directory_id: None,
        description: String::new(),
        secret: "whsec_x".into(),
        previous_secret: None,
        previous_secret_expire_time: None,
        cursor: 1,
        create_time: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
    };
    store.webhooks().insert_endpoint(&endpoint).await.unwrap();
    let later = Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap();
    store.webhooks().prune_events(later).await.unwrap();
    let left = names(&store.list_events(&EventFilter::default(), 0, 10).await.unwrap());
    assert_eq!(
        left,
        ["evt_two", "evt_three"],
        "one went; two is still owed to the endpoint"
    );
    assert!(store.webhooks().delete_endpoint("we_1").await.unwrap());
    store.webhooks().prune_events(later).await.unwrap();
    let left = names(&store.list_events(&EventFilter::default(), 0, 10).await.unwrap());
    assert_eq!(left, ["evt_three"], "the newest stays: the next number follows it");
    store
        .subscriptions()
        .insert_event(&event("four", "biz-1"))
        .await
        .unwrap();
    store.publish_events(100).await.unwrap();
    let all = store.list_events(&EventFilter::default(), 0, 10).await.unwrap();
    assert_eq!(all.last().unwrap().sequence, 4, "numbers never repeat");
}

async fn a_commit_that_wrote_events_wakes_listeners_on_postgres(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let store = db.store().await;
    provisioned(&store, "biz-1", "demo").await;
    let Some(mut listener) = store.listen_events().await.unwrap() else {
        assert_eq!(backend, Backend::Sqlite, "only SQLite has nothing to listen to");
        return;
    };
    // A rolled-back transaction wakes no one.
    let dropped = store.begin().await.unwrap();
    dropped
        .subscriptions()
        .insert_event(&event("never", "biz-1"))
        .await
        .unwrap();
    drop(dropped);
    let quiet = tokio::time::timeout(std::time::Duration::from_millis(300), listener.next()).await;
    assert!(quiet.is_err(), "woken by a rollback");
    let tx = store.begin().await.unwrap();
    tx.subscriptions().insert_event(&event("one", "biz-1")).await.unwrap();
    tx.subscriptions().insert_event(&event("two", "biz-1")).await.unwrap();
    tx.commit().await.unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(2), listener.next())
        .await
        .expect("woken by the commit")
        .unwrap();
}
