//! Subscription storage, on SQLite and Postgres.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;

use billing_domain::catalog::{BillingInterval, BundleGraph, MoneyDraft, Offering, OfferingDraft, OfferingType};
use billing_domain::ids::{OfferingId, SubscriptionId};
use billing_domain::subscription::{
    Business, CancelTiming, CouponChoice, NewSubscription, Subscription, SubscriptionState, cancel,
    create_subscription, entitlements,
};
use billing_domain::text::{Code, ExternalId};
use billing_storage::testing::TestDatabase;
use billing_storage::{
    AuditEntry, Backend, Claim, IdempotencyKey, NewDelivery, NewEvent, QueueGauge, Store, SubscriptionFilter,
};
use chrono::{DateTime, Duration, SubsecRound, TimeZone, Utc};
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_held_by_a_running_request_is_in_use_on_postgres() {
    let db = TestDatabase::create(Backend::Postgres).await;
    let store = db.store().await;
    let key = IdempotencyKey {
        caller: "svc".into(),
        request_id: "slow".into(),
        operation: "CreateSubscription".into(),
        request_hash: "abc".into(),
    };
    let first = store.begin().await.unwrap();
    assert_eq!(
        first.idempotency().claim(&key, at(2, 0), WAIT).await.unwrap(),
        Claim::Claimed
    );
    let second = store.begin().await.unwrap();
    assert_eq!(
        second.idempotency().claim(&key, at(2, 0), WAIT).await.unwrap(),
        Claim::InUse
    );
    drop(second);
    first.idempotency().complete(&key, Some(vec![7]), None).await.unwrap();
    first.commit().await.unwrap();
    let third = store.begin().await.unwrap();
    assert!(matches!(
        third.idempotency().claim(&key, at(2, 0), WAIT).await.unwrap(),
        Claim::Existing(_)
    ));
}

billing_storage::backend_tests!(
    subscriptions_round_trip_and_filter,
    entitlements_are_replaced_per_business_and_read_by_key,
    history_and_events_keep_their_order,
    an_idempotency_key_is_claimed_once,
    jobs_are_leased_rescheduled_and_released,
    a_stopping_worker_gives_back_jobs_it_never_started,
    concurrent_claimers_never_share_a_job,
    the_metrics_sample_counts_states_and_waiting_work,
    job_times_order_correctly_at_the_extremes,
);

const WAIT: std::time::Duration = std::time::Duration::from_millis(200);

fn at(day: u32, hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, day, hour, 0, 0).unwrap()
}

fn offering(code: &str, family: &str) -> Offering {
    let draft = OfferingDraft {
        code: code.into(),
        display_name: code.into(),
        offering_type: Some(OfferingType::Package),
        family: family.into(),
        prices: vec![MoneyDraft::new("USD", 1000)],
        billing_interval: Some(BillingInterval::Month),
        ..OfferingDraft::default()
    };
    Offering::create(
        &draft,
        &HashSet::new(),
        &BundleGraph::default(),
        OfferingId::from_uuid(Uuid::now_v7()),
        at(1, 0),
    )
    .unwrap()
}

fn business(id: &str) -> Business {
    Business {
        business_id: ExternalId::parse(id).unwrap(),
        directory_id: ExternalId::parse("demo").unwrap(),
        create_time: at(1, 0),
    }
}

fn subscribe(business: &Business, offering: &Offering, now: DateTime<Utc>) -> Subscription {
    let input = NewSubscription {
        business,
        buyer_id: "buyer",
        offering,
        currency_code: "USD",
        components: &[],
        coupon: CouponChoice::None,
        sponsored: false,
        available_in_directory: true,
        family_history: &[],
        bundled_offerings: &[],
        now,
    };
    create_subscription(&input, || SubscriptionId::from_uuid(Uuid::now_v7()))
        .unwrap()
        .subscription
}

async fn store_for(db: &TestDatabase) -> Store {
    db.store().await
}

async fn subscriptions_round_trip_and_filter(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let store = store_for(&db).await;
    let (one, two) = (business("biz-1"), business("biz-2"));
    store.subscriptions().insert_business(&one).await.unwrap();
    assert_eq!(
        store.subscriptions().get_business(&one.business_id).await.unwrap(),
        Some(one.clone())
    );

    let pro = offering("pro", "package");
    let app = offering("app", "app");
    let first = subscribe(&one, &pro, at(2, 10));
    let second = subscribe(&one, &app, at(3, 10));
    let third = subscribe(&two, &pro, at(4, 10));
    for subscription in [&first, &second, &third] {
        store.subscriptions().insert_subscription(subscription).await.unwrap();
    }
    let loaded = store
        .subscriptions()
        .get_subscription(&first.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(loaded, first);

    // A held change round-trips whole: its plan, invoice, expiry and period.
    let mut held = second.clone();
    held.version += 1;
    let mut plan = held.plan();
    plan.offering_code = billing_domain::text::Code::parse("app-plus").unwrap();
    plan.purchase_price = billing_domain::Money::new(12_345, held.purchase_price.currency());
    plan.components = vec![billing_domain::subscription::ComponentQuantity {
        component_code: billing_domain::text::Code::parse("seat").unwrap(),
        quantity: 7,
    }];
    held.held_change = Some(billing_domain::subscription::HeldChange {
        invoice_id: billing_domain::ids::InvoiceId::from_uuid(uuid::Uuid::now_v7()),
        expire_time: at(4, 9),
        priced_period: held.current_period,
        plan,
    });
    let tx = store.begin().await.unwrap();
    tx.subscriptions().update_subscription(&held).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        store.subscriptions().get_subscription(&held.id).await.unwrap(),
        Some(held.clone())
    );

    let canceled = cancel(&first, CancelTiming::Immediate, "", at(5, 0))
        .unwrap()
        .subscription;
    let tx = store.begin().await.unwrap();
    let locked = tx
        .subscriptions()
        .get_subscription_for_update(&first.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(locked.version, 1);
    tx.subscriptions().update_subscription(&canceled).await.unwrap();
    tx.commit().await.unwrap();
    let reloaded = store
        .subscriptions()
        .get_subscription(&first.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reloaded, canceled);

    let ids = |list: Vec<Subscription>| list.into_iter().map(|s| s.id).collect::<Vec<_>>();
    let list = |filter: SubscriptionFilter| {
        let store = store.clone();
        async move {
            store
                .subscriptions()
                .list_subscriptions(&filter, None, 10)
                .await
                .unwrap()
        }
    };
    let of_one = SubscriptionFilter {
        business_id: Some(one.business_id.clone()),
        ..SubscriptionFilter::default()
    };
    assert_eq!(ids(list(of_one.clone()).await), [first.id.clone(), second.id.clone()]);
    let active = SubscriptionFilter {
        active_only: true,
        ..of_one.clone()
    };
    assert_eq!(ids(list(active).await), std::slice::from_ref(&second.id));
    let expired = SubscriptionFilter {
        states: vec![SubscriptionState::Expired],
        ..SubscriptionFilter::default()
    };
    assert_eq!(ids(list(expired).await), std::slice::from_ref(&first.id));
    let pro_only = SubscriptionFilter {
        offering_code: Some(Code::parse("pro").unwrap()),
        ..SubscriptionFilter::default()
    };
    assert_eq!(ids(list(pro_only).await), [first.id.clone(), third.id.clone()]);
    let page = store
        .subscriptions()
        .list_subscriptions(&SubscriptionFilter::default(), Some(first.id.as_str()), 1)
        .await
        .unwrap();
    assert_eq!(ids(page), std::slice::from_ref(&second.id));
    assert_eq!(
        store
            .subscriptions()
            .count_subscriptions(&one.business_id)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        store
            .subscriptions()
            .business_subscriptions(&one.business_id)
            .await
            .unwrap()
            .len(),
        2
    );
}

async fn entitlements_are_replaced_per_business_and_read_by_key(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let store = store_for(&db).await;
    let one = business("biz-1");
    let subscription = subscribe(&one, &offering("pro", "package"), at(2, 10));
    let products = [Code::parse("website").unwrap(), Code::parse("store").unwrap()];
    let view = entitlements([(&subscription, products.as_slice())]);
    let tx = store.begin().await.unwrap();
    tx.replace_entitlements(&one.business_id, &view).await.unwrap();
    tx.commit().await.unwrap();
    let website = store
        .subscriptions()
        .get_entitlement(&one.business_id, &products[0])
        .await
        .unwrap()
        .unwrap();
    let expected = view
        .iter()
        .find(|entitlement| entitlement.product_code == products[0])
        .unwrap();
    assert_eq!(&website, expected);
    let only_website = vec![expected.clone()];
    // Read through the cache first, so the rewrite has something to evict.
    assert_eq!(
        store
            .entitlement(&one.business_id, &products[1])
            .await
            .unwrap()
            .as_ref(),
        view.iter().find(|entitlement| entitlement.product_code == products[1])
    );
    let tx = store.begin().await.unwrap();
    tx.replace_entitlements(&one.business_id, &only_website).await.unwrap();
    // Not committed: this replica still answers what was committed.
    assert!(
        store
            .entitlement(&one.business_id, &products[1])
            .await
            .unwrap()
            .is_some()
    );
    tx.commit().await.unwrap();
    assert_eq!(
        store.entitlement(&one.business_id, &products[1]).await.unwrap(),
        None,
        "read-your-writes: the commit evicted the business"
    );
    assert_eq!(
        store
            .entitlement(&one.business_id, &products[0])
            .await
            .unwrap()
            .as_ref(),
        Some(expected)
    );
    assert_eq!(
        store
            .subscriptions()
            .get_entitlement(&one.business_id, &products[1])
            .await
            .unwrap(),
        None
    );
    // The same view again (a renewal, a paid charge) writes nothing, so the
    // cached business is not forgotten.
    let cached = store.entitlement_cache_usage().businesses;
    let tx = store.begin().await.unwrap();
    tx.replace_entitlements(&one.business_id, &only_website).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(store.entitlement_cache_usage().businesses, cached);
    if backend == Backend::Sqlite {
        assert_eq!(cached, 1, "SQLite's cache needs no listener to be in step");
    }
    assert_eq!(
        store
            .subscriptions()
            .business_entitlements(&one.business_id)
            .await
            .unwrap(),
        only_website
    );
}

async fn history_and_events_keep_their_order(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let store = store_for(&db).await;
    let one = business("biz-1");
    let subscription = subscribe(&one, &offering("pro", "package"), at(2, 10));
    // Written in one statement each, as a change writes them.
    let (mut entries, mut events) = (Vec::new(), Vec::new());
    for (index, action) in ["CreateSubscription", "Cancel", "job:expire"].into_iter().enumerate() {
        entries.push(AuditEntry {
            id: format!("aud_{}", Uuid::now_v7().simple()),
            subscription_id: subscription.id.clone(),
            business_id: one.business_id.clone(),
            action: action.to_owned(),
            actor: "tester".to_owned(),
            request_id: format!("req-{index}"),
            detail: String::new(),
            create_time: at(2, 10),
        });
        events.push(NewEvent {
            id: format!("evt_{}", Uuid::now_v7().simple()),
            event_type: format!("subscription.{index}"),
            business_id: one.business_id.to_string(),
            subscription_id: subscription.id.to_string(),
            occur_time: at(2, 10),
            payload: serde_json::json!({"index": index}),
        });
    }
    store.subscriptions().insert_audit_entries(&entries).await.unwrap();
    store.subscriptions().insert_events(&events).await.unwrap();
    let history = store
        .subscriptions()
        .list_audit_entries(&subscription.id, None, 10)
        .await
        .unwrap();
    let actions: Vec<&str> = history.iter().map(|entry| entry.action.as_str()).collect();
    assert_eq!(actions, ["CreateSubscription", "Cancel", "job:expire"]);
    let events = store
        .subscriptions()
        .subscription_events(&subscription.id)
        .await
        .unwrap();
    let sequences: Vec<i64> = events.iter().map(|event| event.sequence).collect();
    assert!(sequences.windows(2).all(|pair| pair[0] < pair[1]), "{sequences:?}");
    assert_eq!(events[2].event.payload, serde_json::json!({"index": 2}));
}

async fn an_idempotency_key_is_claimed_once(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let store = store_for(&db).await;
    let key = IdempotencyKey {
        caller: "svc".into(),
        request_id: "req-1".into(),
        operation: "CreateSubscription".into(),
        request_hash: "abc".into(),
    };
    let tx = store.begin().await.unwrap();
    assert_eq!(
        tx.idempotency().claim(&key, at(2, 0), WAIT).await.unwrap(),
        Claim::Claimed
    );
    tx.idempotency()
        .complete(&key, Some(vec![1, 2, 3]), None)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let tx = store.begin().await.unwrap();
    match tx.idempotency().claim(&key, at(2, 1), WAIT).await.unwrap() {
        Claim::Existing(outcome) => {
            assert_eq!(outcome.request_hash, "abc");
            assert_eq!(outcome.response, Some(vec![1, 2, 3]));
        }
        other => panic!("claimed twice: {other:?}"),
    }
    drop(tx);
    // Another caller has its own keys.
    let other = IdempotencyKey {
        caller: "other".into(),
        ..key.clone()
    };
    assert_eq!(
        store.idempotency().claim(&other, at(2, 0), WAIT).await.unwrap(),
        Claim::Claimed
    );
    assert_eq!(store.idempotency().delete_older_than(at(3, 0)).await.unwrap(), 2);
}

async fn jobs_are_leased_rescheduled_and_released(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let store = store_for(&db).await;
    let (a, b) = (
        SubscriptionId::from_uuid(Uuid::now_v7()),
        SubscriptionId::from_uuid(Uuid::now_v7()),
    );
    let jobs = store.jobs();
    jobs.schedule(&a, Some(at(10, 0))).await.unwrap();
    jobs.schedule(&b, Some(at(5, 0))).await.unwrap();
    assert_eq!(jobs.next_due_time(at(31, 0)).await.unwrap(), Some(at(5, 0)));
    assert_eq!(jobs.next_due_time(at(4, 0)).await.unwrap(), None);

    let lease = Duration::minutes(5);
    let claimed = jobs.claim_due("worker-1", at(10, 0), lease, 10).await.unwrap();
    let order: Vec<&SubscriptionId> = claimed.iter().map(|job| &job.subscription_id).collect();
    assert_eq!(order, [&b, &a], "earliest due first");
    assert_eq!(claimed[0].attempts, 1);
    assert!(
        jobs.claim_due("worker-2", at(10, 0), lease, 10)
            .await
            .unwrap()
            .is_empty(),
        "leased"
    );
    // A lease that ran out can be claimed again.
    let retaken = jobs
        .claim_due("worker-2", at(10, 0) + Duration::minutes(6), lease, 10)
        .await
        .unwrap();
    assert_eq!(retaken.len(), 2);
    assert_eq!(retaken[0].attempts, 2);

    // The first claim is gone: it can neither extend, write nor release.
    let stale = &claimed[1];
    assert_eq!(stale.subscription_id, a);
    assert!(!jobs.extend(stale, at(11, 0)).await.unwrap());
    let tx = store.begin().await.unwrap();
    assert!(!tx.jobs().fence(stale).await.unwrap());
    drop(tx);
    assert!(!jobs.release(stale, at(30, 0), "late").await.unwrap());
    let current = retaken.iter().find(|job| job.subscription_id == a).unwrap();
    assert_ne!(current.lease_token, stale.lease_token);
    let tx = store.begin().await.unwrap();
    assert!(tx.jobs().fence(current).await.unwrap());
    drop(tx);
    assert!(jobs.extend(current, at(11, 0)).await.unwrap());
    assert!(jobs.release(current, at(12, 0), "boom").await.unwrap());
    assert_eq!(jobs.due_time_of(&a).await.unwrap(), Some(at(12, 0)));
    jobs.schedule(&b, Some(at(20, 0))).await.unwrap();
    jobs.schedule(&a, None).await.unwrap();
    assert_eq!(jobs.due_time_of(&a).await.unwrap(), None);
    let claimed = jobs.claim_due("worker-3", at(20, 0), lease, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].attempts, 1, "rescheduling resets attempts");
    // Times keep their microseconds.
    let precise = (at(21, 0) + Duration::microseconds(123_456)).trunc_subsecs(6);
    jobs.schedule(&a, Some(precise)).await.unwrap();
    assert_eq!(jobs.due_time_of(&a).await.unwrap(), Some(precise));
}

async fn a_stopping_worker_gives_back_jobs_it_never_started(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let store = store_for(&db).await;
    let jobs = store.jobs();
    let ids: Vec<SubscriptionId> = (0..3).map(|_| SubscriptionId::from_uuid(Uuid::now_v7())).collect();
    for id in &ids {
        jobs.schedule(id, Some(at(5, 0))).await.unwrap();
    }
    let lease = Duration::minutes(5);
    let claimed = jobs.claim_due("worker-1", at(10, 0), lease, 10).await.unwrap();
    assert_eq!(claimed.len(), 3);
    // worker-1 started the first and stops: the other two go back.
    let unstarted: Vec<SubscriptionId> = claimed[1..].iter().map(|job| job.subscription_id.clone()).collect();
    assert_eq!(
        jobs.unclaim(&unstarted, "worker-2").await.unwrap(),
        0,
        "only the owner gives back"
    );
    assert_eq!(jobs.unclaim(&unstarted, "worker-1").await.unwrap(), 2);
    // Another worker takes them at once, not after the lease; the give-back
    // did not count as an attempt.
    let retaken = jobs.claim_due("worker-2", at(10, 0), lease, 10).await.unwrap();
    let retaken_ids: Vec<SubscriptionId> = retaken.iter().map(|job| job.subscription_id.clone()).collect();
    assert_eq!(retaken_ids, unstarted);
    assert!(retaken.iter().all(|job| job.attempts == 1), "{retaken:?}");
}

async fn concurrent_claimers_never_share_a_job(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let store = store_for(&db).await;
    let total = 60;
    for index in 0..total {
        let id = SubscriptionId::from_uuid(Uuid::now_v7());
        store
            .jobs()
            .schedule(&id, Some(at(2, 0) + Duration::seconds(index)))
            .await
            .unwrap();
    }
    let claimers: Vec<_> = (0..3)
        .map(|worker| {
            let store = store.clone();
            tokio::spawn(async move {
                let owner = format!("worker-{worker}");
                let mut mine = Vec::new();
                loop {
                    let claimed = store
                        .jobs()
                        .claim_due(&owner, at(3, 0), Duration::minutes(5), 4)
                        .await
                        .unwrap();
                    if claimed.is_empty() {
                        return mine;
                    }
                    mine.extend(claimed.into_iter().map(|job| job.subscription_id));
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for claimer in claimers {
        all.extend(claimer.await.unwrap());
    }
    let unique: HashSet<_> = all.iter().collect();
    assert_eq!(all.len(), total as usize, "every job claimed");
    assert_eq!(unique.len(), all.len(), "no job claimed twice");
}

async fn the_metrics_sample_counts_states_and_waiting_work(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let store = store_for(&db).await;
    let empty = store.gauges(at(10, 0)).await.unwrap();
    assert!(empty.subscriptions.is_empty());
    assert_eq!((empty.jobs_due, empty.jobs_leased), (0, 0));
    assert!(
        empty
            .queues
            .iter()
            .all(|queue| queue.pending == 0 && queue.oldest_due.is_none())
    );

    let one = business("biz-1");
    let pro = offering("pro", "package");
    let subscriptions: Vec<Subscription> = (0..3).map(|day| subscribe(&one, &pro, at(2 + day, 0))).collect();
    for subscription in &subscriptions {
        store.subscriptions().insert_subscription(subscription).await.unwrap();
    }
    // Two jobs due, one later; a worker holds one of the due.
    let jobs = store.jobs();
    for (subscription, due) in subscriptions.iter().zip([at(5, 0), at(6, 0), at(20, 0)]) {
        jobs.schedule(&subscription.id, Some(due)).await.unwrap();
    }
    assert_eq!(
        jobs.claim_due("worker", at(10, 0), Duration::minutes(5), 1)
            .await
            .unwrap()
            .len(),
        1
    );
    store
        .inbox()
        .insert(&NewDelivery {
            id: None,
            provider: "stripe".into(),
            event_id: "evt_1".into(),
            event_type: "invoice.paid".into(),
            payload: "{}".into(),
            received_time: at(9, 0),
        })
        .await
        .unwrap();

    let sample = store.gauges(at(10, 0)).await.unwrap();
    assert_eq!(
        sample.subscriptions,
        [(subscriptions[0].state.as_str().to_owned(), "OK".to_owned(), 3)]
    );
    assert_eq!((sample.jobs_due, sample.jobs_leased, sample.jobs_failing), (1, 1, 0));
    assert_eq!(
        sample.queues,
        [
            QueueGauge {
                queue: "webhook_inbox",
                pending: 1,
                oldest_due: Some(at(9, 0)),
                dead: 0,
            },
            QueueGauge {
                queue: "provider_outbox",
                pending: 0,
                oldest_due: None,
                dead: 0,
            },
        ]
    );
    // Once the lease runs out the held job is due again.
    let later = store.gauges(at(10, 6)).await.unwrap();
    assert_eq!((later.jobs_due, later.jobs_leased), (2, 0));
}

async fn job_times_order_correctly_at_the_extremes(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let store = store_for(&db).await;
    let jobs = store.jobs();
    let earliest = Utc.with_ymd_and_hms(1, 1, 1, 0, 0, 0).unwrap();
    let latest = Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap() + Duration::microseconds(999_999);
    let now = at(10, 0);
    let (past, soon, far) = (
        SubscriptionId::from_uuid(Uuid::now_v7()),
        SubscriptionId::from_uuid(Uuid::now_v7()),
        SubscriptionId::from_uuid(Uuid::now_v7()),
    );
    jobs.schedule(&far, Some(latest)).await.unwrap();
    jobs.schedule(&soon, Some(now + Duration::microseconds(1)))
        .await
        .unwrap();
    jobs.schedule(&past, Some(earliest)).await.unwrap();
    // Only the job of year 1 is due now; the one of year 9999 never sorts
    // before today's.
    assert_eq!(jobs.next_due_time(now).await.unwrap(), Some(earliest));
    let claimed = jobs.claim_due("worker", now, Duration::minutes(5), 10).await.unwrap();
    assert_eq!(
        claimed.iter().map(|job| &job.subscription_id).collect::<Vec<_>>(),
        [&past]
    );
    assert_eq!(jobs.due_time_of(&far).await.unwrap(), Some(latest));
    let claimed = jobs
        .claim_due("worker", now + Duration::seconds(1), Duration::minutes(5), 10)
        .await
        .unwrap();
    assert_eq!(
        claimed.iter().map(|job| &job.subscription_id).collect::<Vec<_>>(),
        [&soon]
    );
    // A time beyond what both databases order correctly is refused, not stored.
    let refused = jobs
        .schedule(&far, Some(chrono::DateTime::<Utc>::MAX_UTC))
        .await
        .unwrap_err();
    assert!(
        matches!(refused, billing_storage::StorageError::TimeOutOfRange(_)),
        "{refused:?}"
    );
    assert_eq!(jobs.due_time_of(&far).await.unwrap(), Some(latest));
}
