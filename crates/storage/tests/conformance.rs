//! One behaviour suite for every backend: each test below runs against SQLite
//! and against Postgres, on a fresh database of its own.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, HashSet};

use billing_domain::catalog::{
    BillingInterval, BundleGraph, ComponentDraft, Coupon, CouponDraft, CouponDurationKind, DirectoryOffering,
    MoneyDraft, Offering, OfferingDraft, OfferingStatus, OfferingType, OfferingUpdate, Product, ProductDraft,
    assign_offering,
};
use billing_domain::ids::{CouponId, OfferingId, ProductId};
use billing_domain::text::{Code, ExternalId};
use billing_storage::testing::TestDatabase;
use billing_storage::{Backend, OfferingFilter, OfferingKey, StorageError, Store, StoreOptions};
use chrono::{DateTime, SubsecRound, TimeZone, Utc};
use uuid::Uuid;

billing_storage::backend_tests!(
    products_round_trip_and_page_by_id,
    product_codes_are_unique,
    offerings_round_trip_by_id_and_code,
    offering_updates_and_subscription_flag_persist,
    offerings_filter_by_directory_and_status,
    bundle_graph_reflects_the_catalog,
    directory_assignments_upsert_and_list_defaults,
    coupons_round_trip,
    a_dropped_transaction_writes_nothing,
    existing_codes_are_found,
    locks_are_taken_inside_transactions,
);

fn now() -> DateTime<Utc> {
    // Postgres keeps microseconds; compare values at that precision.
    Utc::now().trunc_subsecs(6)
}

fn code(text: &str) -> Code {
    Code::parse(text).unwrap()
}

fn product(text: &str) -> Product {
    let draft = ProductDraft {
        code: text.into(),
        display_name: text.to_uppercase(),
        description: format!("the {text} product"),
    };
    Product::create(&draft, ProductId::from_uuid(Uuid::now_v7()), now()).unwrap()
}

fn offering_draft(text: &str, price: i64) -> OfferingDraft {
    OfferingDraft {
        code: text.into(),
        display_name: text.into(),
        description: "described".into(),
        offering_type: Some(OfferingType::Package),
        family: "package".into(),
        product_codes: vec!["website".into()],
        prices: vec![MoneyDraft::new("USD", price), MoneyDraft::new("KWD", price * 10)],
        billing_interval: Some(BillingInterval::Year),
        trial_days: 7,
        components: vec![ComponentDraft {
            code: "seat".into(),
            display_name: "Seat".into(),
            unit_prices: vec![MoneyDraft::new("USD", 500), MoneyDraft::new("KWD", 1500)],
        }],
        provider_refs: BTreeMap::from([("maxio.product_handle".to_owned(), format!("{text}-handle"))]),
        ..OfferingDraft::default()
    }
}

async fn seeded_store(db: &TestDatabase) -> Store {
    let store = db.store().await;
    let tx = store.begin().await.unwrap();
    tx.catalog().insert_product(&product("website")).await.unwrap();
    tx.commit().await.unwrap();
    store
}

async fn insert_offering(store: &Store, draft: &OfferingDraft) -> Offering {
    let tx = store.begin().await.unwrap();
    let products = tx.catalog().existing_product_codes(&[code("website")]).await.unwrap();
    let graph = tx.catalog().bundle_graph().await.unwrap();
    let offering = Offering::create(draft, &products, &graph, OfferingId::from_uuid(Uuid::now_v7()), now()).unwrap();
    tx.catalog().insert_offering(&offering).await.unwrap();
    tx.commit().await.unwrap();
    offering
}

async fn products_round_trip_and_page_by_id(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let store = db.store().await;
    let created: Vec<Product> = ["a", "b", "c"].into_iter().map(product).collect();
    for product in &created {
        store.catalog().insert_product(product).await.unwrap();
    }
    let first_page = store.catalog().list_products(None, None, 2).await.unwrap();
    assert_eq!(first_page, created[..2]);
    let rest = store
        .catalog()
        .list_products(None, Some(first_page[1].id.as_str()), 2)
        .await
        .unwrap();
    assert_eq!(rest, created[2..]);
}

async fn product_codes_are_unique(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let store = db.store().await;
    store.catalog().insert_product(&product("website")).await.unwrap();
    let error = store.catalog().insert_product(&product("website")).await.unwrap_err();
    assert!(matches!(error, StorageError::UniqueViolation(_)), "{error:?}");
}

async fn offerings_round_trip_by_id_and_code(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let store = seeded_store(&db).await;
    let offering = insert_offering(&store, &offering_draft("pro-yearly", 30000)).await;
    let by_id = store
        .catalog()
        .get_offering(OfferingKey::Id(&offering.id))
        .await
        .unwrap();
    let by_code = store
        .catalog()
        .get_offering(OfferingKey::Code(&offering.code))
        .await
        .unwrap();
    assert_eq!(by_id.as_ref(), Some(&offering));
    assert_eq!(by_code.as_ref(), Some(&offering));
    let missing = store
        .catalog()
        .get_offering(OfferingKey::Code(&code("nope")))
        .await
        .unwrap();
    assert_eq!(missing, None);
    let duplicate = Offering::create(
        &offering_draft("pro-yearly", 1),
        &[code("website")].into(),
        &BundleGraph::default(),
        OfferingId::from_uuid(Uuid::now_v7()),
        now(),
    )
    .unwrap();
    let error = store.catalog().insert_offering(&duplicate).await.unwrap_err();
    assert!(matches!(error, StorageError::UniqueViolation(_)), "{error:?}");
}

async fn offering_updates_and_subscription_flag_persist(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let store = seeded_store(&db).await;
    let offering = insert_offering(&store, &offering_draft("pro", 100)).await;
    let update = OfferingUpdate {
        display_name: Some("Pro (old)".into()),
        status: Some(Some(OfferingStatus::Hidden)),
        ..OfferingUpdate::default()
    };
    let updated = offering.update(&update, now()).unwrap();
    let tx = store.begin().await.unwrap();
    let locked = tx
        .catalog()
        .get_offering_for_update(OfferingKey::Id(&offering.id))
        .await
        .unwrap();
    assert_eq!(locked.as_ref(), Some(&offering));
    tx.catalog().update_offering(&updated).await.unwrap();
    tx.catalog()
        .mark_offerings_have_subscriptions(&[&offering.id])
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let stored = store
        .catalog()
        .get_offering(OfferingKey::Id(&offering.id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.display_name, "Pro (old)");
    assert_eq!(stored.status, OfferingStatus::Hidden);
    assert!(stored.has_subscriptions);
}

async fn offerings_filter_by_directory_and_status(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let store = seeded_store(&db).await;
    let mut offerings = Vec::new();
    for index in 0..4 {
        let mut draft = offering_draft(&format!("plan-{index}"), 100);
        draft.family = format!("family-{index}");
        offerings.push(insert_offering(&store, &draft).await);
    }
    let hide = OfferingUpdate {
        status: Some(Some(OfferingStatus::Hidden)),
        ..OfferingUpdate::default()
    };
    store
        .catalog()
        .update_offering(&offerings[1].update(&hide, now()).unwrap())
        .await
        .unwrap();
    let directory = ExternalId::parse("dir-1").unwrap();
    for offering in [&offerings[1], &offerings[2]] {
        let assignment = assign_offering(directory.clone(), offering, false, None, &[], now()).unwrap();
        store.catalog().upsert_directory_offering(&assignment).await.unwrap();
    }

    let codes = |list: Vec<Offering>| list.into_iter().map(|o| o.code.to_string()).collect::<Vec<_>>();
    let active = store
        .catalog()
        .list_offerings(&OfferingFilter::default(), None, 10)
        .await
        .unwrap();
    assert_eq!(codes(active), ["plan-0", "plan-2", "plan-3"]);
    let all = OfferingFilter {
        include_hidden: true,
        ..OfferingFilter::default()
    };
    let page = store
        .catalog()
        .list_offerings(&all, Some(offerings[0].id.as_str()), 2)
        .await
        .unwrap();
    assert_eq!(codes(page), ["plan-1", "plan-2"]);
    let in_directory = OfferingFilter {
        directory_id: Some(directory.clone()),
        include_hidden: false,
    };
    let listed = store.catalog().list_offerings(&in_directory, None, 10).await.unwrap();
    assert_eq!(codes(listed), ["plan-2"]);
    let in_directory_with_hidden = OfferingFilter {
        directory_id: Some(directory),
        include_hidden: true,
    };
    let listed = store
        .catalog()
        .list_offerings(&in_directory_with_hidden, None, 10)
        .await
        .unwrap();
    assert_eq!(codes(listed), ["plan-1", "plan-2"]);
}

async fn bundle_graph_reflects_the_catalog(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let store = seeded_store(&db).await;
    let mut seo = offering_draft("seo", 100);
    seo.family = "seo".into();
    insert_offering(&store, &seo).await;
    let mut pro = offering_draft("pro", 100);
    pro.bundled_offering_codes = vec!["seo".into()];
    insert_offering(&store, &pro).await;

    // A new offering bundling `pro` is fine; the graph knows pro → seo.
    let graph = store.catalog().bundle_graph().await.unwrap();
    let mut suite = offering_draft("suite", 100);
    suite.family = "suite".into();
    suite.bundled_offering_codes = vec!["pro".into(), "ghost".into()];
    let error = Offering::create(
        &suite,
        &HashSet::from([code("website")]),
        &graph,
        OfferingId::from_uuid(Uuid::now_v7()),
        now(),
    )
    .unwrap_err();
    assert_eq!(error.violations().len(), 1);
    assert_eq!(error.violations()[0].field, "bundled_offering_codes[1]");
}

async fn directory_assignments_upsert_and_list_defaults(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let store = seeded_store(&db).await;
    let free = insert_offering(&store, &offering_draft("free", 0)).await;
    let paid = {
        let mut draft = offering_draft("paid", 100);
        draft.family = "paid".into();
        insert_offering(&store, &draft).await
    };
    let directory = ExternalId::parse("demo").unwrap();
    let first = assign_offering(directory.clone(), &free, false, None, &[], now()).unwrap();
    store.catalog().upsert_directory_offering(&first).await.unwrap();
    let paid_assignment = assign_offering(directory.clone(), &paid, false, None, &[], now()).unwrap();
    store
        .catalog()
        .upsert_directory_offering(&paid_assignment)
        .await
        .unwrap();
    assert!(
        store
            .catalog()
            .directory_default_offerings(&directory)
            .await
            .unwrap()
            .is_empty()
    );

    let current = store
        .catalog()
        .get_directory_offering(&directory, &free.id)
        .await
        .unwrap();
    assert_eq!(current.as_ref(), Some(&first));
    let later = now() + chrono::Duration::seconds(5);
    let second = assign_offering(directory.clone(), &free, true, current.as_ref(), &[], later).unwrap();
    store.catalog().upsert_directory_offering(&second).await.unwrap();

    let defaults = store.catalog().directory_default_offerings(&directory).await.unwrap();
    assert_eq!(defaults, std::slice::from_ref(&free));
    let listed: Vec<DirectoryOffering> = store
        .catalog()
        .list_directory_offerings(&directory, None, 10)
        .await
        .unwrap();
    assert_eq!(listed, [second.clone(), paid_assignment]);
    assert_eq!(listed[0].create_time, first.create_time);
    let after_first = store
        .catalog()
        .list_directory_offerings(&directory, Some(free.id.as_str()), 10)
        .await
        .unwrap();
    assert_eq!(after_first.len(), 1);
    let other = ExternalId::parse("other").unwrap();
    assert!(
        store
            .catalog()
            .list_directory_offerings(&other, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn coupons_round_trip(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let store = seeded_store(&db).await;
    insert_offering(&store, &offering_draft("pro", 100)).await;
    let percent = CouponDraft {
        code: "WELCOME20".into(),
        percent_off: Some(2000),
        duration: Some(CouponDurationKind::Repeating),
        duration_periods: 3,
        max_redemptions: 10,
        redeem_by: Some(Utc.with_ymd_and_hms(2099, 1, 1, 0, 0, 0).unwrap()),
        applies_to_offering_codes: vec!["pro".into()],
        ..CouponDraft::default()
    };
    let amount = CouponDraft {
        code: "TENOFF".into(),
        amount_off: Some(MoneyDraft::new("JPY", 1000)),
        duration: Some(CouponDurationKind::Once),
        ..CouponDraft::default()
    };
    let existing = HashSet::from([code("pro")]);
    let mut created = Vec::new();
    for draft in [percent, amount] {
        let coupon = Coupon::create(&draft, &existing, CouponId::from_uuid(Uuid::now_v7()), now()).unwrap();
        store.catalog().insert_coupon(&coupon).await.unwrap();
        created.push(coupon);
    }
    assert_eq!(store.catalog().list_coupons(None, 10).await.unwrap(), created);
    let error = store.catalog().insert_coupon(&created[0]).await.unwrap_err();
    assert!(matches!(error, StorageError::UniqueViolation(_)), "{error:?}");
}

async fn a_dropped_transaction_writes_nothing(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let store = db.store().await;
    {
        let tx = store.begin().await.unwrap();
        tx.catalog().insert_product(&product("website")).await.unwrap();
        // Dropped without commit.
    }
    assert!(store.catalog().list_products(None, None, 10).await.unwrap().is_empty());
}

async fn existing_codes_are_found(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let store = seeded_store(&db).await;
    insert_offering(&store, &offering_draft("pro", 100)).await;
    let products = store
        .catalog()
        .existing_product_codes(&[code("website"), code("ghost")])
        .await
        .unwrap();
    assert_eq!(products, HashSet::from([code("website")]));
    let offerings = store
        .catalog()
        .existing_offering_codes(&[code("pro"), code("ghost")])
        .await
        .unwrap();
    assert_eq!(offerings, HashSet::from([code("pro")]));
    assert!(store.catalog().existing_offering_codes(&[]).await.unwrap().is_empty());
}

async fn locks_are_taken_inside_transactions(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let store = db.store().await;
    let tx = store.begin().await.unwrap();
    tx.lock("directory-default:demo").await.unwrap();
    // Re-entrant within the same transaction.
    tx.lock("directory-default:demo").await.unwrap();
    let other = store.clone();
    let mut second = tokio::spawn(async move {
        let tx = other.begin().await.unwrap();
        tx.lock("directory-default:demo").await.unwrap();
        tx.commit().await.unwrap();
    });
    // Held until the first transaction ends (on SQLite, writers queue for
    // the database itself).
    let waited = tokio::time::timeout(std::time::Duration::from_millis(300), &mut second).await;
    assert!(
        waited.is_err(),
        "a second transaction took the lock while the first held it"
    );
    tx.commit().await.unwrap();
    second.await.expect("the lock is released when its transaction commits");
}

/// Start-up against a Postgres database that does not exist says so once,
/// without the driver's internals, and how to create it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_postgres_database_is_named_once_with_how_to_create_it() {
    let db = TestDatabase::create(Backend::Postgres).await;
    db.drop_now().await;
    let name = db.url().rsplit('/').next().unwrap().to_owned();
    let error = Store::connect(&StoreOptions::new(db.url())).await.unwrap_err();
    assert!(matches!(error, StorageError::Unavailable(_)), "{error:?}");
    let text = error.to_string();
    assert_eq!(text.matches("does not exist").count(), 1, "{text}");
    assert!(text.contains(&format!("database \"{name}\" does not exist")), "{text}");
    assert!(
        text.contains("createdb -h ") && text.ends_with(&format!("{name}) or point database.url at one that exists")),
        "{text}"
    );
    assert!(!text.contains("at line"), "{text}");
}
