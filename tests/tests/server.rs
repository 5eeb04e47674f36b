//! What every deployment relies on: health, reflection, shutdown, and the
//! demo catalog behind the README.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use billing_app::{Catalog, SystemClock};
use billing_proto::v1 as pb;
use billing_server::demo;
use billing_storage::{Store, StoreOptions};
use billing_tests::{Backend, backend_tests, spawn_app, spawn_app_with};
use tokio_stream::StreamExt;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;

backend_tests!(
    health_reports_serving_per_service,
    reflection_v1_and_v1alpha_list_services_and_error_details,
    shutdown_reports_not_serving_and_returns,
    the_demo_catalog_loads_once_and_again_without_change,
    metrics_show_calls_and_survive_losing_the_database,
);

const SERVICES: [&str; 10] = [
    "billing.v1.CatalogService",
    "billing.v1.CheckoutService",
    "billing.v1.EventService",
    "billing.v1.InvoiceService",
    "billing.v1.OperationsService",
    "billing.v1.PaymentMethodService",
    "billing.v1.SubscriptionService",
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
];

async fn health_reports_serving_per_service(backend: Backend) {
    let app = spawn_app(backend).await;
    for service in ["", "billing.v1.CatalogService"] {
        let response = app
            .health()
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(response.status, ServingStatus::Serving as i32, "{service:?}");
    }
    let unknown = app
        .health()
        .check(HealthCheckRequest {
            service: "nope.Service".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_turns_not_serving_while_the_database_is_unreachable() {
    let app = spawn_app_with(Backend::Postgres, |settings| {
        settings.server.health_check_interval_seconds = std::time::Duration::from_millis(50);
    })
    .await;
    let mut updates = app
        .health()
        .watch(HealthCheckRequest {
            service: "billing.v1.CatalogService".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        updates.next().await.unwrap().unwrap().status,
        ServingStatus::Serving as i32
    );

    app.lose_database().await;
    let next = updates.next().await.unwrap().unwrap();
    assert_eq!(next.status, ServingStatus::NotServing as i32);
    // Liveness follows the process, not the database: no pod restarts.
    let liveness = app
        .health()
        .check(HealthCheckRequest {
            service: "liveness".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(liveness.status, ServingStatus::Serving as i32);
    let failed = app
        .catalog()
        .list_products(pb::ListProductsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(failed.code(), tonic::Code::Unavailable, "{failed:?}");
    assert_eq!(billing_tests::reason(&failed), "DATABASE_UNAVAILABLE");
}

async fn reflection_v1_and_v1alpha_list_services_and_error_details(backend: Backend) {
    use tonic_reflection::pb::{v1, v1alpha};
    let app = spawn_app(backend).await;

    let mut client = v1::server_reflection_client::ServerReflectionClient::new(app.channel.clone());
    let requests = [
        v1::server_reflection_request::MessageRequest::ListServices(String::new()),
        v1::server_reflection_request::MessageRequest::FileContainingSymbol("google.rpc.ErrorInfo".into()),
        v1::server_reflection_request::MessageRequest::FileContainingSymbol("billing.v1.Offering".into()),
    ]
    .map(|message| v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(message),
    });
    let mut responses = client
        .server_reflection_info(tokio_stream::iter(requests))
        .await
        .unwrap()
        .into_inner();
    match responses.next().await.unwrap().unwrap().message_response.unwrap() {
        v1::server_reflection_response::MessageResponse::ListServicesResponse(list) => {
            let names: Vec<String> = list.service.into_iter().map(|service| service.name).collect();
            assert_eq!(names, SERVICES);
        }
        other => panic!("expected a service list, got {other:?}"),
    }
    for _ in 0..2 {
        match responses.next().await.unwrap().unwrap().message_response.unwrap() {
            v1::server_reflection_response::MessageResponse::FileDescriptorResponse(files) => {
                assert!(!files.file_descriptor_proto.is_empty());
            }
            other => panic!("expected a file descriptor, got {other:?}"),
        }
    }

    let mut legacy = v1alpha::server_reflection_client::ServerReflectionClient::new(app.channel.clone());
    let request = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1alpha::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    let mut responses = legacy
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    match responses.next().await.unwrap().unwrap().message_response.unwrap() {
        v1alpha::server_reflection_response::MessageResponse::ListServicesResponse(list) => {
            let names: Vec<String> = list.service.into_iter().map(|service| service.name).collect();
            assert_eq!(names, SERVICES);
        }
        other => panic!("expected a service list, got {other:?}"),
    }
}

async fn shutdown_reports_not_serving_and_returns(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut updates = app
        .health()
        .watch(HealthCheckRequest { service: String::new() })
        .await
        .unwrap()
        .into_inner();
    let first = updates.next().await.unwrap().unwrap();
    assert_eq!(first.status, ServingStatus::Serving as i32);

    let watcher = tokio::spawn(async move {
        // The stream reports NOT_SERVING before the server closes it.
        while let Some(Ok(update)) = updates.next().await {
            if update.status == ServingStatus::NotServing as i32 {
                return true;
            }
        }
        false
    });
    app.stop().await.expect("the server stops cleanly");
    assert!(
        watcher.await.unwrap(),
        "health never reported NOT_SERVING during shutdown"
    );
}

async fn the_demo_catalog_loads_once_and_again_without_change(backend: Backend) {
    let app = spawn_app(backend).await;
    let store = Store::connect(&StoreOptions::new(app.database_url())).await.unwrap();
    let catalog = Catalog::new(store.clone(), std::sync::Arc::new(SystemClock));
    let first = demo::load(&catalog).await.unwrap();
    assert!(first.created > 0 && first.existing == 0, "{first:?}");
    let assigned = |listed: &pb::ListDirectoryOfferingsResponse| -> Vec<(String, Option<prost_types::Timestamp>)> {
        listed
            .directory_offerings
            .iter()
            .map(|entry| (entry.offering_code.clone(), entry.update_time))
            .collect()
    };
    let demo_offerings = || {
        let mut client = app.catalog();
        async move {
            client
                .list_directory_offerings(pb::ListDirectoryOfferingsRequest {
                    directory_id: demo::DIRECTORY_ID.into(),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner()
        }
    };
    let before = demo_offerings().await;
    let second = demo::load(&catalog).await.unwrap();
    assert_eq!(second.created, 0);
    assert_eq!(second.existing, first.created);

    let listed = demo_offerings().await;
    let defaults: Vec<&str> = listed
        .directory_offerings
        .iter()
        .filter(|entry| entry.is_default)
        .map(|entry| entry.offering_code.as_str())
        .collect();
    assert_eq!(defaults, ["free"]);
    assert_eq!(
        assigned(&listed),
        assigned(&before),
        "loading again leaves every assignment as it was, update_time included"
    );
    let codes: Vec<&str> = listed
        .directory_offerings
        .iter()
        .map(|e| e.offering_code.as_str())
        .collect();
    for expected in [
        "free",
        "plus-monthly",
        "plus-yearly",
        "pro-monthly",
        "pro-yearly",
        "seo",
        "bookings",
    ] {
        assert!(codes.contains(&expected), "{expected} missing from {codes:?}");
    }
    store.close().await.unwrap();
}

/// The RPC histogram line of `method` with `code`, if any.
fn histogram_count(metrics: &str, method: &str, code: &str) -> Option<u64> {
    metrics
        .lines()
        .find(|line| {
            line.starts_with("rpc_server_call_duration_seconds_count{")
                && line.contains(&format!("rpc_method=\"{method}\""))
                && line.contains(&format!("rpc_grpc_status_code=\"{code}\""))
        })
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|count| count.parse().ok())
}

async fn metrics_show_calls_and_survive_losing_the_database(backend: Backend) {
    billing_provider_api::http::install_crypto_provider();
    let app = spawn_app(backend).await;
    app.catalog()
        .list_products(pb::ListProductsRequest::default())
        .await
        .unwrap();
    let unknown = app
        .catalog()
        .get_offering(pb::GetOfferingRequest {
            lookup: Some(pb::get_offering_request::Lookup::Code("nothing-here".into())),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);
    let scrape = || async {
        let response = reqwest::get(format!("{}/metrics", app.http_base())).await.unwrap();
        assert_eq!(response.status(), reqwest::StatusCode::OK);
        response.text().await.unwrap()
    };
    let metrics = scrape().await;
    // Counted in this test binary's one registry, by method and status code.
    assert!(
        histogram_count(&metrics, "ListProducts", "0").is_some_and(|count| count >= 1),
        "{metrics}"
    );
    assert!(
        histogram_count(&metrics, "GetOffering", "5").is_some_and(|count| count >= 1),
        "{metrics}"
    );
    assert!(metrics.contains("billing_jobs_due"), "{metrics}");

    // Without a database a scrape still answers, promptly, with the last
    // sample. (Only a Postgres server can go away; SQLite is a local file.)
    if backend != Backend::Postgres {
        return;
    }
    app.lose_database().await;
    let started = std::time::Instant::now();
    let metrics = scrape().await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(metrics.contains("billing_jobs_due"), "{metrics}");
}

/// Follows readiness until it reports `wanted`.
async fn until_health(updates: &mut tonic::Streaming<tonic_health::pb::HealthCheckResponse>, wanted: ServingStatus) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while updates.next().await.unwrap().unwrap().status != wanted as i32 {
        assert!(std::time::Instant::now() < deadline, "health never reported {wanted:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_restart_mid_load_loses_nothing_acknowledged() {
    let app = spawn_app_with(Backend::Postgres, |settings| {
        settings.server.health_check_interval_seconds = std::time::Duration::from_millis(50);
        settings.database.acquire_timeout_seconds = std::time::Duration::from_millis(500);
    })
    .await;
    app.load_demo_catalog().await;
    let mut health = app
        .health()
        .watch(HealthCheckRequest { service: String::new() })
        .await
        .unwrap()
        .into_inner();
    until_health(&mut health, ServingStatus::Serving).await;

    // Load: businesses provisioned one after another, each answer kept.
    let stop = tokio_util::sync::CancellationToken::new();
    let load = tokio::spawn({
        let (clients, stop) = (app.clients(), stop.clone());
        async move {
            let (mut acknowledged, mut refused) = (Vec::new(), Vec::new());
            for n in 0.. {
                if stop.is_cancelled() {
                    break;
                }
                let business = format!("biz-{n}");
                let answer = clients
                    .subscriptions()
                    .provision_business(pb::ProvisionBusinessRequest {
                        request_id: format!("provision-{n}"),
                        business_id: business.clone(),
                        directory_id: "demo".into(),
                        buyer_id: "owner".into(),
                    })
                    .await;
                match answer {
                    Ok(_) => acknowledged.push(business),
                    Err(status) => refused.push(status),
                }
            }
            (acknowledged, refused)
        }
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    app.interrupt_database().await;
    until_health(&mut health, ServingStatus::NotServing).await;
    let meanwhile = app
        .subscriptions()
        .provision_business(pb::ProvisionBusinessRequest {
            request_id: "during".into(),
            business_id: "during".into(),
            directory_id: "demo".into(),
            buyer_id: "owner".into(),
        })
        .await
        .unwrap_err();
    billing_tests::assert_status(&meanwhile, tonic::Code::Unavailable, "DATABASE_UNAVAILABLE");

    app.restore_database().await;
    until_health(&mut health, ServingStatus::Serving).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    stop.cancel();
    let (acknowledged, refused) = load.await.unwrap();
    assert!(acknowledged.len() >= 2, "the load ran: {acknowledged:?}");
    // Every refusal during the outage said so, retryably.
    for status in &refused {
        billing_tests::assert_status(status, tonic::Code::Unavailable, "DATABASE_UNAVAILABLE");
    }
    // Every acknowledged request is there, with its outcome.
    for business in &acknowledged {
        let held = app
            .subscriptions()
            .list_subscriptions(pb::ListSubscriptionsRequest {
                business_id: business.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .subscriptions;
        assert!(
            !held.is_empty(),
            "{business} was acknowledged but has no default subscription"
        );
    }
}
