//! The webhook inbox and the provider outbox, on SQLite and Postgres.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use billing_domain::ids::SubscriptionId;
use billing_storage::testing::TestDatabase;
use billing_storage::{Backend, InboxStatus, NewDelivery, WorkKind};
use chrono::{DateTime, TimeZone, Utc};

billing_storage::backend_tests!(
    a_delivery_is_stored_once_per_event,
    deliveries_are_leased_retried_and_end_dead_or_done,
    rows_a_stopping_worker_never_started_go_back_at_once,
    failing_work_is_listed_across_queues_and_retried_now,
);

fn at(minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 10, 9, minute, 0).unwrap()
}

fn delivery(event_id: &str, minute: u32) -> NewDelivery {
    NewDelivery {
        id: None,
        provider: "stripe".into(),
        event_id: event_id.into(),
        event_type: "payment_intent.succeeded".into(),
        payload: format!("{{\"id\": \"{event_id}\"}}"),
        received_time: at(minute),
    }
}

async fn a_delivery_is_stored_once_per_event(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let store = database.store().await;
    assert!(store.inbox().insert(&delivery("evt_1", 0)).await.unwrap());
    assert!(
        !store.inbox().insert(&delivery("evt_1", 1)).await.unwrap(),
        "a redelivery"
    );
    assert!(store.inbox().insert(&delivery("evt_2", 1)).await.unwrap());
    // The outbox is a table of its own.
    assert!(store.provider_outbox().insert(&delivery("evt_1", 0)).await.unwrap());
    let stored = store.inbox().deliveries("stripe").await.unwrap();
    assert_eq!(
        stored.iter().map(|row| row.id.as_str()).collect::<Vec<_>>(),
        ["stripe:evt_1", "stripe:evt_2"]
    );
    assert!(stored.iter().all(|row| row.status == "PENDING" && row.attempts == 0));
}

async fn deliveries_are_leased_retried_and_end_dead_or_done(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let store = database.store().await;
    let inbox = store.inbox();
    inbox.insert(&delivery("evt_a", 0)).await.unwrap();
    inbox.insert(&delivery("evt_b", 1)).await.unwrap();
    assert_eq!(inbox.next_due_time(at(5)).await.unwrap(), Some(at(0)));

    let lease = Duration::from_secs(300);
    let claimed = inbox.claim_due(at(2), lease, 10).await.unwrap();
    assert_eq!(
        claimed.iter().map(|row| row.event_id.as_str()).collect::<Vec<_>>(),
        ["evt_a", "evt_b"]
    );
    assert!(claimed.iter().all(|row| row.attempts == 1));
    // Leased: another worker gets nothing until the lease runs out.
    assert!(inbox.claim_due(at(3), lease, 10).await.unwrap().is_empty());

    inbox
        .finish("stripe:evt_a", 1, InboxStatus::Processed, "INV-000001 paid", at(3))
        .await
        .unwrap();
    assert!(
        inbox
            .fail("stripe:evt_b", 1, "database busy", Some(at(10)))
            .await
            .unwrap()
    );
    assert!(
        inbox.claim_due(at(9), lease, 10).await.unwrap().is_empty(),
        "not due before its retry"
    );
    let again = inbox.claim_due(at(10), lease, 10).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 2);
    assert!(
        !inbox.fail("stripe:evt_b", 1, "a stale claim", None).await.unwrap(),
        "the first claim ends nothing once the row was claimed again"
    );
    assert!(inbox.fail("stripe:evt_b", 2, "still failing", None).await.unwrap());
    assert!(
        !inbox
            .finish("stripe:evt_b", 2, InboxStatus::Processed, "late", at(12))
            .await
            .unwrap(),
        "an ended row stays ended"
    );
    assert_eq!(inbox.next_due_time(at(59)).await.unwrap(), None);

    let stored = inbox.deliveries("stripe").await.unwrap();
    assert_eq!(stored[0].status, "PROCESSED");
    assert_eq!(stored[0].outcome.as_deref(), Some("INV-000001 paid"));
    assert_eq!(stored[1].status, "DEAD");
    assert_eq!(stored[1].last_error.as_deref(), Some("still failing"));
}

async fn rows_a_stopping_worker_never_started_go_back_at_once(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let store = database.store().await;
    let outbox = store.provider_outbox();
    outbox.insert(&delivery("op_1", 0)).await.unwrap();
    outbox.insert(&delivery("op_2", 1)).await.unwrap();
    let lease = Duration::from_secs(300);
    let claimed = outbox.claim_due(at(2), lease, 10).await.unwrap();
    assert_eq!(claimed.len(), 2);
    assert!(outbox.claim_due(at(2), lease, 10).await.unwrap().is_empty(), "leased");
    let ids: Vec<String> = claimed.iter().map(|row| row.id.clone()).collect();
    outbox.unclaim(&ids).await.unwrap();
    let retaken = outbox.claim_due(at(2), lease, 10).await.unwrap();
    assert_eq!(retaken.len(), 2, "taken again at once, not after the lease");
    assert!(
        retaken.iter().all(|row| row.attempts == 1),
        "the give-back was not an attempt"
    );

    // A worker extends its claim while it works; once the lease ran out and
    // another claim took the row, the first can extend nothing.
    let first = &retaken[0];
    assert!(outbox.extend(&first.id, first.attempts, at(4)).await.unwrap());
    assert!(
        outbox
            .claim_due(at(3), lease, 10)
            .await
            .unwrap()
            .iter()
            .all(|row| row.id != first.id),
        "extended"
    );
    let taken_over = outbox.claim_due(at(5), lease, 10).await.unwrap();
    let second = taken_over.iter().find(|row| row.id == first.id).unwrap();
    assert_eq!(second.attempts, first.attempts + 1);
    assert!(
        !outbox.extend(&first.id, first.attempts, at(20)).await.unwrap(),
        "the stale claim"
    );
    assert!(outbox.extend(&second.id, second.attempts, at(20)).await.unwrap());

    // Writes made for a claim check it inside their transaction: the stale
    // one is refused, the current one holds the row until its commit.
    let tx = store.begin().await.unwrap();
    assert!(!tx.provider_outbox().fence(&first.id, first.attempts).await.unwrap());
    assert!(tx.provider_outbox().fence(&second.id, second.attempts).await.unwrap());
    tx.commit().await.unwrap();
}

async fn failing_work_is_listed_across_queues_and_retried_now(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let store = db.store().await;
    let lease = Duration::from_secs(300);
    // A job that failed, one that did not.
    let (failing, fine) = (
        SubscriptionId::from_uuid(uuid::Uuid::now_v7()),
        SubscriptionId::from_uuid(uuid::Uuid::now_v7()),
    );
    store.jobs().schedule(&failing, Some(at(1))).await.unwrap();
    store.jobs().schedule(&fine, Some(at(50))).await.unwrap();
    let claimed = store
        .jobs()
        .claim_due("worker", at(2), chrono::Duration::minutes(5), 1)
        .await
        .unwrap();
    assert_eq!(claimed[0].subscription_id, failing);
    store
        .jobs()
        .release(&claimed[0], at(30), "provider unavailable")
        .await
        .unwrap();
    // A delivery that died, one that retries, one that is fine.
    let inbox = store.inbox();
    for event in ["evt_dead", "evt_retrying", "evt_fine"] {
        inbox.insert(&delivery(event, 1)).await.unwrap();
    }
    inbox.claim_due(at(2), lease, 10).await.unwrap();
    inbox
        .fail("stripe:evt_dead", 1, "no such subscription", None)
        .await
        .unwrap();
    inbox
        .fail("stripe:evt_retrying", 1, "database busy", Some(at(40)))
        .await
        .unwrap();
    inbox.unclaim(&["stripe:evt_fine".to_owned()]).await.unwrap();

    let sample = store.gauges(at(3)).await.unwrap();
    assert_eq!(sample.jobs_failing, 1);
    assert_eq!(
        sample
            .queues
            .iter()
            .map(|queue| (queue.queue, queue.dead))
            .collect::<Vec<_>>(),
        [("webhook_inbox", 1), ("provider_outbox", 0)]
    );
    let jobs = store.failing_work(WorkKind::Job, None, 10).await.unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].id, failing.as_str());
    assert_eq!(jobs[0].subscription_id.as_deref(), Some(failing.as_str()));
    assert_eq!((jobs[0].dead, jobs[0].attempts), (false, 1));
    assert_eq!(jobs[0].last_error, "provider unavailable");
    assert_eq!(jobs[0].next_attempt_time, Some(at(30)));
    let deliveries = store.failing_work(WorkKind::WebhookDelivery, None, 10).await.unwrap();
    let summary: Vec<(&str, bool, Option<DateTime<Utc>>)> = deliveries
        .iter()
        .map(|work| (work.id.as_str(), work.dead, work.next_attempt_time))
        .collect();
    assert_eq!(
        summary,
        [
            ("stripe:evt_dead", true, None),
            ("stripe:evt_retrying", false, Some(at(40)))
        ]
    );
    // Paged by id.
    let rest = store
        .failing_work(WorkKind::WebhookDelivery, Some("stripe:evt_dead"), 10)
        .await
        .unwrap();
    assert_eq!(rest.len(), 1);
    assert!(
        store
            .failing_work(WorkKind::ProviderOperation, None, 10)
            .await
            .unwrap()
            .is_empty()
    );

    // Retried: due now, attempts from zero; work that is not failing is left alone.
    let retried = store
        .retry_work(WorkKind::WebhookDelivery, "stripe:evt_dead", at(45))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (retried.dead, retried.attempts, retried.next_attempt_time),
        (false, 0, Some(at(45)))
    );
    let claimable: Vec<String> = inbox
        .claim_due(at(45), lease, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|delivery| delivery.id)
        .collect();
    assert!(claimable.contains(&"stripe:evt_dead".to_owned()), "{claimable:?}");
    let job = store
        .retry_work(WorkKind::Job, failing.as_str(), at(3))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((job.attempts, job.next_attempt_time), (0, Some(at(3))));
    assert_eq!(store.jobs().next_due_time(at(3)).await.unwrap(), Some(at(3)));
    assert_eq!(
        store.retry_work(WorkKind::Job, fine.as_str(), at(3)).await.unwrap(),
        None
    );
    assert_eq!(store.jobs().due_time_of(&fine).await.unwrap(), Some(at(50)));
}
