//! Checkout sessions and savepoints, on SQLite and Postgres.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use billing_domain::Reason;
use billing_domain::checkout::{
    CheckoutDraft, CheckoutKind, CheckoutSession, CheckoutStatus, Decided, Decision, ReturnUrl,
};
use billing_domain::ids::{CheckoutSessionId, SubscriptionId};
use billing_domain::subscription::ComponentQuantityDraft;
use billing_storage::Backend;
use billing_storage::testing::TestDatabase;
use chrono::{DateTime, TimeZone, Utc};
use uuid::Uuid;

billing_storage::backend_tests!(
    sessions_of_every_kind_round_trip,
    a_session_is_found_by_its_token_hash_and_updated,
    a_savepoint_is_undone_while_its_transaction_goes_on,
);

fn at(hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 10, hour, 0, 0).unwrap()
}

const SUBSCRIPTION: &str = "sub_0193a5b0c3e47d1a9f2b6c8d0e1f2a3b";

fn session(draft: CheckoutDraft, token_hash: &str) -> CheckoutSession {
    let hosts = vec!["app.example.com".to_owned()];
    let checked = CheckoutDraft {
        business_id: "biz-1".into(),
        buyer_id: "owner".into(),
        return_url: "https://app.example.com/done?x=1".into(),
        ..draft
    }
    .check(&hosts)
    .unwrap();
    CheckoutSession {
        id: CheckoutSessionId::from_uuid(Uuid::now_v7()),
        token_hash: token_hash.to_owned(),
        form_nonce: "00112233445566778899aabbccddeeff".into(),
        business_id: checked.business_id,
        buyer_id: checked.buyer_id,
        order: checked.order,
        return_url: checked.return_url,
        status: CheckoutStatus::Open,
        decision: None,
        result_subscription_id: None,
        failure: None,
        create_time: at(9),
        expire_time: at(9) + chrono::Duration::hours(24),
        decide_time: None,
        complete_time: None,
    }
}

fn seats(quantity: i64) -> Vec<ComponentQuantityDraft> {
    vec![ComponentQuantityDraft {
        component_code: "seat".into(),
        quantity,
    }]
}

async fn sessions_of_every_kind_round_trip(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let store = database.store().await;
    let purchase = session(
        CheckoutDraft {
            kind: Some(CheckoutKind::NewSubscription),
            offering_code: "bookings".into(),
            currency_code: "EUR".into(),
            components: seats(3),
            coupon_code: "WELCOME20".into(),
            ..CheckoutDraft::default()
        },
        &"a".repeat(64),
    );
    let plan = session(
        CheckoutDraft {
            kind: Some(CheckoutKind::UpdateSubscription),
            subscription_id: SUBSCRIPTION.into(),
            offering_code: "pro-yearly".into(),
            ..CheckoutDraft::default()
        },
        &"b".repeat(64),
    );
    let components = session(
        CheckoutDraft {
            kind: Some(CheckoutKind::UpdateSubscription),
            subscription_id: SUBSCRIPTION.into(),
            components: seats(5),
            ..CheckoutDraft::default()
        },
        &"c".repeat(64),
    );
    let tx = store.begin().await.unwrap();
    for session in [&purchase, &plan, &components] {
        tx.checkout().insert_session(session).await.unwrap();
    }
    tx.commit().await.unwrap();
    for session in [purchase, plan, components] {
        let read = store.checkout().get_session(&session.id, false).await.unwrap();
        assert_eq!(read.as_ref(), Some(&session));
    }
    let unknown = CheckoutSessionId::from_uuid(Uuid::now_v7());
    assert_eq!(store.checkout().get_session(&unknown, false).await.unwrap(), None);
}

async fn a_session_is_found_by_its_token_hash_and_updated(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let store = database.store().await;
    let open = session(
        CheckoutDraft {
            kind: Some(CheckoutKind::NewSubscription),
            offering_code: "pro-monthly".into(),
            currency_code: "USD".into(),
            ..CheckoutDraft::default()
        },
        &"d".repeat(64),
    );
    let tx = store.begin().await.unwrap();
    tx.checkout().insert_session(&open).await.unwrap();
    tx.commit().await.unwrap();

    // Token hashes are unique.
    let tx = store.begin().await.unwrap();
    let twin = CheckoutSession {
        id: CheckoutSessionId::from_uuid(Uuid::now_v7()),
        ..open.clone()
    };
    assert!(tx.checkout().insert_session(&twin).await.is_err());
    drop(tx);

    let tx = store.begin().await.unwrap();
    let found = tx
        .checkout()
        .find_by_token_hash(&open.token_hash, true)
        .await
        .unwrap()
        .unwrap();
    let Decided::Proceed(accepted) = found.decide(Decision::Accept, at(10)).unwrap() else {
        panic!("a first answer proceeds");
    };
    let failed = accepted.failed(Reason::PaymentDeclined, "declined", at(11));
    tx.checkout().update_session(&failed).await.unwrap();
    tx.commit().await.unwrap();
    let read = store
        .checkout()
        .find_by_token_hash(&open.token_hash, false)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read, failed);
    assert_eq!(read.failure.unwrap().reason, "PAYMENT_DECLINED");

    let done = accepted.completed(SubscriptionId::parse(SUBSCRIPTION).unwrap(), at(11));
    let tx = store.begin().await.unwrap();
    tx.checkout().update_session(&done).await.unwrap();
    tx.commit().await.unwrap();
    let read = store.checkout().get_session(&open.id, false).await.unwrap().unwrap();
    assert_eq!(read.result_subscription_id.unwrap().as_str(), SUBSCRIPTION);
    assert_eq!(
        read.return_url,
        ReturnUrl::restore("https://app.example.com/done?x=1").unwrap()
    );
    assert_eq!(
        store
            .checkout()
            .find_by_token_hash(&"e".repeat(64), false)
            .await
            .unwrap(),
        None
    );
}

async fn a_savepoint_is_undone_while_its_transaction_goes_on(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let store = database.store().await;
    let kept = session(
        CheckoutDraft {
            kind: Some(CheckoutKind::NewSubscription),
            offering_code: "pro-monthly".into(),
            currency_code: "USD".into(),
            ..CheckoutDraft::default()
        },
        &"f".repeat(64),
    );
    let undone = CheckoutSession {
        id: CheckoutSessionId::from_uuid(Uuid::now_v7()),
        token_hash: "0".repeat(64),
        ..kept.clone()
    };
    let tx = store.begin().await.unwrap();
    {
        let savepoint = tx.savepoint().await.unwrap();
        savepoint.checkout().insert_session(&undone).await.unwrap();
        assert!(
            savepoint
                .checkout()
                .get_session(&undone.id, false)
                .await
                .unwrap()
                .is_some()
        );
    }
    tx.checkout().insert_session(&kept).await.unwrap();
    tx.commit().await.unwrap();
    assert!(store.checkout().get_session(&kept.id, false).await.unwrap().is_some());
    assert_eq!(store.checkout().get_session(&undone.id, false).await.unwrap(), None);
}
