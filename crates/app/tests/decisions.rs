//! The app's decisions on a real store (SQLite and Postgres), without the
//! gRPC layer: what a use case answers, and what it leaves written.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::sync::Arc;

use billing_app::OfferingRef;
use billing_app::charging::Charger;
use billing_app::subscriptions::{ListFilter, PurchaseRequest};
use billing_app::{
    AppError, Billing, Catalog, ManualClock, Outcome, PageParams, Providers, RequestContext, Subscriptions,
};
use billing_domain::catalog::{BillingInterval, MoneyDraft, OfferingDraft, OfferingType, ProductDraft};
use billing_domain::dunning::DunningPolicy;
use billing_domain::invoice::InvoiceStatus;
use billing_domain::subscription::{CancelTiming, SubscriptionState};
use billing_domain::{ErrorKind, Provider, Reason};
use billing_provider_local::LocalProvider;
use billing_storage::Backend;
use billing_storage::testing::TestDatabase;
use chrono::{TimeZone, Utc};

billing_storage::backend_tests!(
    a_paid_purchase_is_invoiced_charged_and_answered_once_per_key,
    a_purchase_for_a_business_never_provisioned_writes_nothing,
    a_directory_billed_by_an_unconfigured_provider_is_a_fault_and_writes_nothing,
    requests_name_every_bad_field_before_anything_is_read,
    a_cancel_at_period_end_keeps_the_entitlement_and_reactivate_undoes_it,
);

struct App {
    db: TestDatabase,
    catalog: Catalog,
    billing: Billing,
    subscriptions: Subscriptions,
}

impl App {
    async fn start(backend: Backend, providers: impl FnOnce(Arc<LocalProvider>) -> Providers) -> App {
        let db = TestDatabase::create(backend).await;
        let store = db.store().await;
        let clock = Arc::new(ManualClock::new(Utc.with_ymd_and_hms(2026, 3, 2, 12, 0, 0).unwrap()));
        let providers = providers(Arc::new(LocalProvider::new()));
        let charger = Charger::new(store.clone(), providers.clone(), DunningPolicy::default());
        App {
            catalog: Catalog::new(store.clone(), clock.clone()),
            billing: Billing::new(store.clone(), clock.clone(), providers),
            subscriptions: Subscriptions::new(store, clock, charger),
            db,
        }
    }

    async fn local(backend: Backend) -> App {
        App::start(backend, |local| Providers::local_only(local)).await
    }

    /// `pro-monthly` (USD 10 a month, grants `pro`), sold in `dir-1`;
    /// `biz-1` provisioned there with a good card.
    async fn with_customer(self) -> App {
        self.catalog
            .create_product(&ProductDraft {
                code: "pro".into(),
                display_name: "Pro".into(),
                description: String::new(),
            })
            .await
            .unwrap();
        self.catalog
            .create_offering(&OfferingDraft {
                code: "pro-monthly".into(),
                display_name: "Pro monthly".into(),
                offering_type: Some(OfferingType::App),
                product_codes: vec!["pro".into()],
                prices: vec![MoneyDraft::new("USD", 1000)],
                billing_interval: Some(BillingInterval::Month),
                ..OfferingDraft::default()
            })
            .await
            .unwrap();
        self.provision("biz-1", "dir-1").await;
        self.billing
            .attach_payment_method(&context("card"), "biz-1", "pm_card_visa", |_| Vec::new())
            .await
            .unwrap();
        self
    }

    /// `business` provisioned in `directory`, where `pro-monthly` is sold.
    async fn provision(&self, business: &str, directory: &str) {
        self.catalog
            .assign_offering(directory, "pro-monthly", false)
            .await
            .unwrap();
        self.subscriptions
            .provision_business(
                &context(&format!("provision-{business}")),
                business,
                directory,
                "owner",
                |_| Vec::new(),
            )
            .await
            .unwrap();
    }

    async fn count(&self, table: &str) -> i64 {
        self.db.count(&format!("SELECT COUNT(*) AS n FROM {table}")).await
    }
}

fn context(request_id: &str) -> RequestContext {
    RequestContext {
        caller: "platform".into(),
        request_id: request_id.into(),
        request_hash: format!("hash-of-{request_id}"),
    }
}

fn purchase(business_id: &str) -> PurchaseRequest {
    PurchaseRequest {
        business_id: business_id.into(),
        buyer_id: "owner".into(),
        offering: OfferingRef::Code("pro-monthly".into()),
        currency_code: "USD".into(),
        ..PurchaseRequest::default()
    }
}

fn rule(result: Result<impl std::fmt::Debug, AppError>) -> billing_domain::DomainError {
    match result {
        Err(AppError::Rule(error)) => error,
        other => panic!("expected a rule's refusal, got {other:?}"),
    }
}

fn fields(error: &billing_domain::DomainError) -> Vec<&str> {
    error
        .violations()
        .iter()
        .map(|violation| violation.field.as_str())
        .collect()
}

async fn a_paid_purchase_is_invoiced_charged_and_answered_once_per_key(backend: Backend) {
    let app = App::local(backend).await.with_customer().await;
    let first = app
        .subscriptions
        .create_subscription(&context("buy-1"), &purchase("biz-1"), |bought| {
            bought.subscription.id.to_string().into_bytes()
        })
        .await
        .unwrap();
    let Outcome::Done(bought) = first else {
        panic!("the first request ran as a replay")
    };
    assert_eq!(bought.subscription.state, SubscriptionState::Purchased);
    assert_eq!(bought.subscription.provider, Provider::Local);
    let invoice = bought.invoice.expect("a paid purchase is invoiced");
    assert_eq!(
        (invoice.status, invoice.number.as_str()),
        (InvoiceStatus::Paid, "INV-000001")
    );
    assert_eq!(invoice.draft.total.amount_minor(), 1000);

    // The same key and body: the stored answer, and nothing written again.
    let again = app
        .subscriptions
        .create_subscription(&context("buy-1"), &purchase("biz-1"), |_| panic!("encoded twice"))
        .await
        .unwrap();
    let Outcome::Replayed(stored) = again else {
        panic!("a retry ran again")
    };
    assert_eq!(stored, bought.subscription.id.to_string().into_bytes());
    assert_eq!((app.count("subscriptions").await, app.count("invoices").await), (1, 1));

    // The same key with another body is refused, not replayed.
    let other_body = RequestContext {
        request_hash: "another body".into(),
        ..context("buy-1")
    };
    let reused = rule(
        app.subscriptions
            .create_subscription(&other_body, &purchase("biz-1"), |_| Vec::new())
            .await,
    );
    assert_eq!(reused.reason(), Reason::IdempotencyKeyReused);
}

async fn a_purchase_for_a_business_never_provisioned_writes_nothing(backend: Backend) {
    let app = App::local(backend).await.with_customer().await;
    let before = (app.count("subscriptions").await, app.count("audit_entries").await);
    let refused = rule(
        app.subscriptions
            .create_subscription(&context("buy-2"), &purchase("biz-nobody"), |_| Vec::new())
            .await,
    );
    assert_eq!(refused.reason(), Reason::BusinessNotProvisioned);
    let after = (app.count("subscriptions").await, app.count("audit_entries").await);
    assert_eq!(before, after);
}

async fn a_directory_billed_by_an_unconfigured_provider_is_a_fault_and_writes_nothing(backend: Backend) {
    let by_directory = HashMap::from([("partner".to_owned(), Provider::Maxio)]);
    let app = App::start(backend, |local| {
        Providers::new(Provider::Local, by_directory, local, None, None)
    })
    .await
    .with_customer()
    .await;
    app.provision("biz-2", "partner").await;
    let before = (app.count("subscriptions").await, app.count("invoices").await);
    let error = app
        .subscriptions
        .create_subscription(&context("buy-3"), &purchase("biz-2"), |_| Vec::new())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Internal, "{error:?}");
    assert!(error.to_string().contains("providers.maxio"), "{error}");
    let after = (app.count("subscriptions").await, app.count("invoices").await);
    assert_eq!(after, before);
}

async fn requests_name_every_bad_field_before_anything_is_read(backend: Backend) {
    let app = App::local(backend).await;
    let page = PageParams {
        page_size: 10,
        page_token: String::new(),
    };
    let filter = ListFilter {
        business_id: " surrounded by spaces ".into(),
        directory_id: String::new(),
        states: Vec::new(),
        offering_code: "Not A Code".into(),
        active_only: false,
    };
    let listed = rule(app.subscriptions.list_subscriptions(&filter, &page).await);
    assert_eq!(fields(&listed), ["business_id", "offering_code"]);

    let checked = rule(app.subscriptions.check_entitlement("", "bad code").await);
    assert_eq!(fields(&checked), ["business_id", "product_code"]);

    let assigned = rule(app.catalog.assign_offering("", "", true).await);
    assert_eq!(fields(&assigned), ["directory_id", "offering_code"]);

    let empty = rule(
        app.subscriptions
            .create_subscription(&context("buy-4"), &PurchaseRequest::default(), |_| Vec::new())
            .await,
    );
    assert_eq!(
        fields(&empty),
        ["business_id", "buyer_id", "offering_code", "currency_code"]
    );
    assert_eq!(app.count("idempotency_keys").await, 0, "a refused request holds no key");
}

async fn a_cancel_at_period_end_keeps_the_entitlement_and_reactivate_undoes_it(backend: Backend) {
    let app = App::local(backend).await.with_customer().await;
    let Outcome::Done(bought) = app
        .subscriptions
        .create_subscription(&context("buy-5"), &purchase("biz-1"), |_| Vec::new())
        .await
        .unwrap()
    else {
        panic!("replayed")
    };
    let id = bought.subscription.id.to_string();
    let Outcome::Done(canceled) = app
        .subscriptions
        .cancel(
            &context("cancel-5"),
            &id,
            CancelTiming::EndOfPeriod,
            "too dear",
            "",
            |_| Vec::new(),
        )
        .await
        .unwrap()
    else {
        panic!("replayed")
    };
    assert_eq!(canceled.state, SubscriptionState::Canceled);
    assert_eq!(
        canceled.expiration_time,
        Some(bought.subscription.current_period.end_time())
    );
    let entitlement = app.subscriptions.check_entitlement("biz-1", "pro").await.unwrap();
    assert!(entitlement.entitled, "paid until the period ends: {entitlement:?}");

    let Outcome::Done(reactivated) = app
        .subscriptions
        .reactivate(&context("reactivate-5"), &id, &canceled.etag(), |_| Vec::new())
        .await
        .unwrap()
    else {
        panic!("replayed")
    };
    assert_eq!(reactivated.state, SubscriptionState::Purchased);
    assert_eq!(reactivated.expiration_time, None);
    // A stale etag (the canceled version) is refused now.
    let stale = rule(
        app.subscriptions
            .cancel(
                &context("cancel-6"),
                &id,
                CancelTiming::Immediate,
                "",
                &canceled.etag(),
                |_| Vec::new(),
            )
            .await,
    );
    assert_eq!(stale.reason(), Reason::EtagMismatch);
}
