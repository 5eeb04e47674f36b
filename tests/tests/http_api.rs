//! The JSON endpoints end to end: every one against the gRPC answer it
//! stands for, under business, directory and service tokens with the
//! tenant rules of gRPC; the platform's shape against its documented
//! example; `subscription_url` in events; errors as `google.rpc.Status`
//! JSON; and what a caller sees when the database goes away.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use billing_proto::v1 as pb;
use billing_tests::{
    Backend, TestApp, attach_card, backend_tests, business_token, buy_offering, directory_token, provision_business,
    repository_root, service_token, spawn_jwt_app,
};
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, SerializeOptions};
use reqwest::StatusCode;
use serde_json::Value;

backend_tests!(
    every_endpoint_answers_what_its_rpc_answers,
    tokens_and_tenants_decide_as_over_grpc,
    bad_parameters_are_named_like_bad_fields,
    the_platform_shape_matches_its_example_field_by_field,
    events_link_to_their_subscription_by_url,
    the_openapi_document_names_every_endpoint_and_field,
);

/// An app with `biz-1` holding Pro (paid, so it has an invoice) in
/// directory `demo`, and `biz-2` in another directory.
async fn start(backend: Backend) -> (TestApp, pb::Subscription) {
    let app = spawn_jwt_app(backend, |_| {}).await;
    app.load_demo_catalog().await;
    provision_business(&app, "biz-1").await;
    attach_card(&app, "biz-1", "pm_card_visa").await;
    let pro = buy_offering(&app, "biz-1", "pro-monthly")
        .await
        .unwrap()
        .subscription
        .unwrap();
    app.subscriptions()
        .provision_business(pb::ProvisionBusinessRequest {
            request_id: "provision-biz-2".into(),
            business_id: "biz-2".into(),
            directory_id: "elsewhere".into(),
            buyer_id: "owner".into(),
        })
        .await
        .unwrap();
    (app, pro)
}

/// `GET path` on the app's HTTP side with `token` (none: no header).
async fn get(app: &TestApp, path: &str, token: Option<&str>) -> (StatusCode, Value) {
    let mut request = reqwest::Client::new().get(format!("{}{path}", app.http_base()));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    assert_eq!(
        response.headers()[reqwest::header::CONTENT_TYPE],
        "application/json",
        "GET {path}"
    );
    (
        status,
        serde_json::from_slice(&response.bytes().await.unwrap()).unwrap(),
    )
}

/// A gRPC reply in the canonical JSON mapping, as the endpoints write it.
fn canonical<M: Message>(message: &M, full_name: &str) -> Value {
    let pool = DescriptorPool::decode(billing_proto::FILE_DESCRIPTOR_SET).unwrap();
    let descriptor = pool.get_message_by_name(full_name).unwrap();
    let dynamic = DynamicMessage::decode(descriptor, message.encode_to_vec().as_slice()).unwrap();
    let mut serializer = serde_json::Serializer::new(Vec::new());
    dynamic
        .serialize_with_options(&mut serializer, &SerializeOptions::new().skip_default_fields(false))
        .unwrap();
    serde_json::from_slice(&serializer.into_inner()).unwrap()
}

/// The `ErrorInfo` reason of a `google.rpc.Status` JSON body.
fn reason(body: &Value) -> &str {
    body["details"]
        .as_array()
        .unwrap()
        .iter()
        .find(|detail| detail["@type"] == "type.googleapis.com/google.rpc.ErrorInfo")
        .and_then(|info| info["reason"].as_str())
        .unwrap_or_else(|| panic!("no ErrorInfo in {body}"))
}

async fn every_endpoint_answers_what_its_rpc_answers(backend: Backend) {
    let (app, pro) = start(backend).await;
    let biz = business_token("biz-1");
    let grpc = app.as_caller(&biz);

    let subscription = grpc
        .subscriptions()
        .get_subscription(pb::GetSubscriptionRequest {
            subscription_id: pro.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let (status, json) = get(&app, &format!("/v1/subscriptions/{}", pro.id), Some(&biz)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json, canonical(&subscription, "billing.v1.GetSubscriptionResponse"));
    // The canonical mapping: camelCase names, enums by name, int64 as text.
    assert_eq!(json["subscription"]["businessId"], "biz-1");
    assert_eq!(json["subscription"]["state"], "SUBSCRIPTION_STATE_PURCHASED");
    assert!(json["subscription"]["purchasePrice"]["amountMinor"].is_string());

    let list = grpc
        .subscriptions()
        .list_subscriptions(pb::ListSubscriptionsRequest {
            business_id: "biz-1".into(),
            states: vec![pb::SubscriptionState::Purchased as i32],
            active_only: true,
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let (status, json) = get(
        &app,
        "/v1/businesses/biz-1/subscriptions?states=SUBSCRIPTION_STATE_PURCHASED&activeOnly=true&page_size=1",
        Some(&biz),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json, canonical(&list, "billing.v1.ListSubscriptionsResponse"));
    assert!(
        !list.next_page_token.is_empty(),
        "the default subscription is a second page"
    );
    let (_, next) = get(
        &app,
        &format!(
            "/v1/businesses/biz-1/subscriptions?states=SUBSCRIPTION_STATE_PURCHASED&activeOnly=true&page_size=1&page_token={}",
            list.next_page_token
        ),
        Some(&biz),
    )
    .await;
    assert_eq!(next["subscriptions"].as_array().unwrap().len(), 1);
    assert_ne!(next["subscriptions"][0]["id"], json["subscriptions"][0]["id"]);

    let entitlement = grpc
        .subscriptions()
        .check_entitlement(pb::CheckEntitlementRequest {
            business_id: "biz-1".into(),
            product_code: "website".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let (status, json) = get(&app, "/v1/businesses/biz-1/entitlements/website", Some(&biz)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json, canonical(&entitlement, "billing.v1.CheckEntitlementResponse"));
    assert_eq!(json["entitled"], true);
    // Defaults are written out: a product not held says `false`, not nothing.
    let (_, none) = get(&app, "/v1/businesses/biz-1/entitlements/no-such-product", Some(&biz)).await;
    assert_eq!(none["entitled"], false);

    let invoices = grpc
        .invoices()
        .list_invoices(pb::ListInvoicesRequest {
            business_id: "biz-1".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!invoices.invoices.is_empty(), "Pro was billed");
    let (status, json) = get(&app, "/v1/businesses/biz-1/invoices", Some(&biz)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json, canonical(&invoices, "billing.v1.ListInvoicesResponse"));

    let invoice_id = invoices.invoices[0].id.clone();
    let invoice = grpc
        .invoices()
        .get_invoice(pb::GetInvoiceRequest {
            invoice_id: invoice_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let (status, json) = get(&app, &format!("/v1/invoices/{invoice_id}"), Some(&biz)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json, canonical(&invoice, "billing.v1.GetInvoiceResponse"));
    app.stop().await.unwrap();
}

async fn tokens_and_tenants_decide_as_over_grpc(backend: Backend) {
    let (app, pro) = start(backend).await;
    let path = format!("/v1/subscriptions/{}", pro.id);
    // The business, its directory and the platform read it.
    for token in [
        business_token("biz-1"),
        directory_token("demo"),
        service_token("platform"),
    ] {
        let (status, json) = get(&app, &path, Some(&token)).await;
        assert_eq!(status, StatusCode::OK, "{json}");
        assert_eq!(json["subscription"]["id"], pro.id.as_str());
    }
    // Every endpoint, for each role that sees biz-1.
    let invoice_id = billing_tests::business_invoices(&app, "biz-1").await[0].id.clone();
    for endpoint in [
        "/v1/businesses/biz-1/subscriptions".to_owned(),
        "/v1/businesses/biz-1/entitlements/website".to_owned(),
        "/v1/businesses/biz-1/invoices".to_owned(),
        format!("/v1/invoices/{invoice_id}"),
        "/license/subscriptions?business_id=biz-1".to_owned(),
    ] {
        for token in [
            business_token("biz-1"),
            directory_token("demo"),
            service_token("platform"),
        ] {
            let (status, json) = get(&app, &endpoint, Some(&token)).await;
            assert_eq!(status, StatusCode::OK, "{endpoint}: {json}");
        }
    }
    // Another tenant's id is not found, exactly as an id that never was.
    let (status, theirs) = get(&app, &path, Some(&business_token("biz-2"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(reason(&theirs), "SUBSCRIPTION_NOT_FOUND");
    let never_was = format!(
        "{}{}",
        &pro.id[..pro.id.len() - 1],
        if pro.id.ends_with('0') { '1' } else { '0' }
    );
    let (_, never) = get(
        &app,
        &format!("/v1/subscriptions/{never_was}"),
        Some(&business_token("biz-2")),
    )
    .await;
    assert_eq!(reason(&never), "SUBSCRIPTION_NOT_FOUND");
    assert_eq!(theirs["code"], never["code"]);
    for token in [directory_token("elsewhere"), business_token("biz-2")] {
        let (status, json) = get(&app, &path, Some(&token)).await;
        assert_eq!(
            (status, reason(&json)),
            (StatusCode::NOT_FOUND, "SUBSCRIPTION_NOT_FOUND")
        );
        let (status, json) = get(&app, &format!("/v1/invoices/{invoice_id}"), Some(&token)).await;
        assert_eq!((status, reason(&json)), (StatusCode::NOT_FOUND, "INVOICE_NOT_FOUND"));
    }
    // A business outside the caller's tenants is refused as over gRPC, the
    // same whether it exists or not.
    for path in [
        "/v1/businesses/biz-1/invoices",
        "/v1/businesses/biz-1/subscriptions",
        "/v1/businesses/biz-1/entitlements/website",
        "/v1/businesses/no-such-business/invoices",
    ] {
        for token in [business_token("biz-2"), directory_token("elsewhere")] {
            let (status, json) = get(&app, path, Some(&token)).await;
            assert_eq!(
                (status, reason(&json)),
                (StatusCode::FORBIDDEN, "PERMISSION_DENIED"),
                "{path}"
            );
            assert_eq!(json["message"], "the caller may not act for this business");
        }
    }

    // No token, a bad token: refused before anything is read.
    let (status, json) = get(&app, &path, None).await;
    assert_eq!(
        (status, reason(&json)),
        (StatusCode::UNAUTHORIZED, "AUTH_TOKEN_MISSING")
    );
    assert_eq!(json["code"], 16, "UNAUTHENTICATED");
    let (status, json) = get(&app, &path, Some("not-a-jwt")).await;
    assert_eq!(
        (status, reason(&json)),
        (StatusCode::UNAUTHORIZED, "AUTH_TOKEN_INVALID")
    );
    let (status, json) = get(&app, "/v1/businesses/biz-1/subscriptions?page_size=nine", None).await;
    assert_eq!(
        (status, reason(&json)),
        (StatusCode::UNAUTHORIZED, "AUTH_TOKEN_MISSING"),
        "who calls is decided first"
    );

    // The database goes away: a retryable 503, said as over gRPC.
    if backend == Backend::Postgres {
        app.interrupt_database().await;
        let (status, json) = get(&app, &path, Some(&business_token("biz-1"))).await;
        assert_eq!(
            (status, reason(&json)),
            (StatusCode::SERVICE_UNAVAILABLE, "DATABASE_UNAVAILABLE")
        );
        app.restore_database().await;
    }
    app.stop().await.unwrap();
}

async fn bad_parameters_are_named_like_bad_fields(backend: Backend) {
    let (app, _) = start(backend).await;
    let token = service_token("platform");
    let (status, json) = get(
        &app,
        "/v1/businesses/biz-1/subscriptions?page_size=nine&states=SLEEPING&colour=red&business_id=biz-2",
        Some(&token),
    )
    .await;
    assert_eq!((status, reason(&json)), (StatusCode::BAD_REQUEST, "FIELD_INVALID"));
    let violations = json["details"]
        .as_array()
        .unwrap()
        .iter()
        .find(|detail| detail["@type"] == "type.googleapis.com/google.rpc.BadRequest")
        .unwrap()["fieldViolations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|violation| violation["field"].as_str().unwrap().to_owned())
        .collect::<Vec<_>>();
    assert_eq!(violations, ["page_size", "states", "colour", "business_id"]);
    // What the use case refuses is refused as over gRPC.
    let (status, json) = get(
        &app,
        "/v1/businesses/biz-1/subscriptions?page_size=100000",
        Some(&token),
    )
    .await;
    assert_eq!((status, reason(&json)), (StatusCode::BAD_REQUEST, "PAGE_SIZE_INVALID"));
    let long = "x".repeat(300);
    let (status, json) = get(&app, &format!("/v1/subscriptions/{long}"), Some(&token)).await;
    assert_eq!((status, reason(&json)), (StatusCode::BAD_REQUEST, "FIELD_TOO_LONG"));
    let (status, json) = get(&app, "/v1/invoices/in_nope", Some(&token)).await;
    assert_eq!(status.as_u16() / 100, 4, "{json}");
    app.stop().await.unwrap();
}

async fn the_platform_shape_matches_its_example_field_by_field(backend: Backend) {
    let (app, pro) = start(backend).await;
    let example: Value = serde_json::from_str(
        &std::fs::read_to_string(repository_root().join("tests/fixtures/license_subscriptions.json")).unwrap(),
    )
    .unwrap();
    let (status, json) = get(&app, "/license/subscriptions", Some(&business_token("biz-1"))).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["success"], true);
    let ours = json["data"]["subscriptions"].as_array().unwrap();
    assert_eq!(
        ours.len(),
        3,
        "the default package Pro replaced, Pro, and what Pro bundles: {json}"
    );
    let theirs = example["data"]["subscriptions"][0].as_object().unwrap();
    let is_time = |value: &Value| {
        value.as_str().is_some_and(|text| {
            chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.3fZ").is_ok() && text.len() == 24
        })
    };
    for subscription in ours {
        let subscription = subscription.as_object().unwrap();
        let names = |object: &serde_json::Map<String, Value>| object.keys().cloned().collect::<Vec<_>>();
        assert_eq!(names(subscription), names(theirs), "the same fields, no more");
        for (name, example_value) in theirs {
            let value = &subscription[name];
            match name.as_str() {
                "cancellation_date" | "expiration_date" | "bundled_from_subscription_uid" => {
                    assert!(value.is_null() || value.is_string(), "{name}: {value}")
                }
                "created_at" | "updated_at" => {
                    assert!(is_time(value), "{name}: {value}");
                    assert!(is_time(example_value), "the example's {name}");
                }
                _ => assert_eq!(
                    std::mem::discriminant(value),
                    std::mem::discriminant(example_value),
                    "{name}: {value} against {example_value}"
                ),
            }
        }
    }
    let bought = ours
        .iter()
        .find(|subscription| subscription["uid"] == pro.id.as_str())
        .unwrap();
    let price = pro.purchase_price.as_ref().unwrap();
    assert_eq!(bought["business_uid"], "biz-1");
    assert_eq!(bought["buyer_uid"], "owner");
    assert_eq!(bought["purchase_currency"], "USD");
    assert_eq!(
        bought["purchase_price"],
        format!("{}.{:02}", price.amount_minor / 100, price.amount_minor % 100)
    );
    assert_eq!(bought["purchase_state"], "purchased");
    assert_eq!(bought["payment_type"], "paid");
    assert_eq!(bought["trial_type"], "no_trial");
    assert_eq!(bought["is_active"], true);
    assert_eq!(bought["offering_uid"], pro.offering_id.as_str());
    assert_eq!(bought["bundled_from_subscription_uid"], Value::Null);
    assert_eq!(bought["cancellation_date"], Value::Null);
    let replaced = ours
        .iter()
        .find(|subscription| subscription["payment_type"] == "free")
        .unwrap();
    assert_eq!(replaced["purchase_price"], "0.00");
    assert_eq!(replaced["offering_type"], "package");
    assert_eq!(replaced["purchase_state"], "expired");
    assert_eq!(replaced["is_active"], false);
    assert!(is_time(&replaced["expiration_date"]));
    let bundled = ours
        .iter()
        .find(|subscription| subscription["payment_type"] == "bundled")
        .unwrap();
    assert_eq!(bundled["bundled_from_subscription_uid"], pro.id.as_str());
    assert_eq!(bundled["offering_type"], "addon");

    // Other callers name the business; only those that see it get it.
    let (status, json) = get(&app, "/license/subscriptions", Some(&service_token("platform"))).await;
    assert_eq!((status, reason(&json)), (StatusCode::BAD_REQUEST, "FIELD_INVALID"));
    let (status, json) = get(
        &app,
        "/license/subscriptions?business_id=biz-1",
        Some(&directory_token("demo")),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json["data"]["subscriptions"].as_array().unwrap().len(), 3);
    let (status, json) = get(
        &app,
        "/license/subscriptions?business_id=biz-1",
        Some(&business_token("biz-2")),
    )
    .await;
    assert_eq!((status, reason(&json)), (StatusCode::FORBIDDEN, "PERMISSION_DENIED"));
    let (status, _) = get(&app, "/license/subscriptions", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    app.stop().await.unwrap();
}

async fn events_link_to_their_subscription_by_url(backend: Backend) {
    let (app, pro) = start(backend).await;
    let events = app
        .events()
        .list_events(pb::ListEventsRequest {
            business_id: "biz-1".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .events;
    let expected = format!("{}/v1/subscriptions/{}", app.http_base(), pro.id);
    let started = events
        .iter()
        .find(|event| event.r#type == "subscription.started" && event.subscription_id == pro.id)
        .unwrap();
    let url = &started.data.as_ref().unwrap().fields["subscription_url"];
    assert_eq!(url.kind, Some(prost_types::value::Kind::StringValue(expected.clone())));
    for event in &events {
        assert!(
            event.data.as_ref().unwrap().fields.contains_key("subscription_url"),
            "{} has no subscription_url",
            event.r#type
        );
    }
    // The link answers, for whoever may read the subscription.
    let response = reqwest::Client::new()
        .get(&expected)
        .bearer_auth(business_token("biz-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let json: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    assert_eq!(json["subscription"]["id"], pro.id.as_str());
    app.stop().await.unwrap();
}

async fn the_openapi_document_names_every_endpoint_and_field(backend: Backend) {
    let (app, _) = start(backend).await;
    // Served without a token.
    let (status, document) = get(&app, "/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(document["openapi"], "3.1.0");
    let paths = document["paths"].as_object().unwrap();
    for path in [
        "/v1/subscriptions/{subscription_id}",
        "/v1/businesses/{business_id}/subscriptions",
        "/v1/businesses/{business_id}/entitlements/{product_code}",
        "/v1/invoices/{invoice_id}",
        "/v1/businesses/{business_id}/invoices",
        "/license/subscriptions",
    ] {
        assert!(paths.contains_key(path), "{path} is documented");
    }
    let list = &paths["/v1/businesses/{business_id}/subscriptions"]["get"];
    let parameters: Vec<&str> = list["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|parameter| parameter["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        parameters,
        [
            "business_id",
            "directory_id",
            "states",
            "offering_code",
            "active_only",
            "page_size",
            "page_token"
        ]
    );
    let schemas = document["components"]["schemas"].as_object().unwrap();
    let subscription = &schemas["billing.v1.Subscription"]["properties"];
    assert_eq!(subscription["createTime"]["format"], "date-time");
    assert_eq!(subscription["state"]["enum"][1], "SUBSCRIPTION_STATE_PURCHASED");
    assert!(schemas.contains_key("google.rpc.Status"));
    app.stop().await.unwrap();
}
