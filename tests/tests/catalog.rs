//! CatalogService end to end, on SQLite and on Postgres.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;

use billing_proto::v1 as pb;
use billing_tests::{Backend, TestApp, assert_status, backend_tests, spawn_app, violated_fields};
use tonic::Code;

backend_tests!(
    products_are_created_and_paged,
    an_offering_keeps_every_field,
    offerings_are_found_by_id_and_by_code,
    bad_offerings_get_precise_reasons_and_write_nothing,
    duplicate_codes_are_already_exists,
    page_sizes_and_tokens_are_checked_on_every_list,
    paging_stays_correct_while_rows_are_inserted,
    offerings_are_hidden_retired_and_repriced_by_the_rules,
    directories_sell_assigned_offerings_with_one_free_default_per_family,
    coupons_are_created_and_listed,
    bad_coupons_get_precise_reasons,
    concurrent_creates_of_one_code_make_one_offering,
);

fn usd(amount_minor: i64) -> pb::Money {
    pb::Money {
        currency_code: "USD".into(),
        amount_minor,
    }
}

fn money(currency_code: &str, amount_minor: i64) -> pb::Money {
    pb::Money {
        currency_code: currency_code.into(),
        amount_minor,
    }
}

fn offering(code: &str, family: &str, price: i64) -> pb::Offering {
    pb::Offering {
        code: code.into(),
        display_name: format!("Offering {code}"),
        r#type: pb::OfferingType::Package.into(),
        family: family.into(),
        product_codes: vec!["website".into()],
        prices: vec![usd(price)],
        billing_interval: pb::BillingInterval::Month.into(),
        ..pb::Offering::default()
    }
}

async fn create_product(app: &TestApp, code: &str) -> pb::Product {
    app.catalog()
        .create_product(pb::CreateProductRequest {
            code: code.into(),
            display_name: code.to_uppercase(),
            description: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .product
        .unwrap()
}

async fn create_offering(app: &TestApp, offering: pb::Offering) -> Result<pb::Offering, tonic::Status> {
    app.catalog()
        .create_offering(pb::CreateOfferingRequest {
            offering: Some(offering),
        })
        .await
        .map(|response| response.into_inner().offering.unwrap())
}

async fn all_offering_codes(app: &TestApp) -> Vec<String> {
    let response = app
        .catalog()
        .list_offerings(pb::ListOfferingsRequest {
            include_hidden: true,
            page_size: 500,
            ..pb::ListOfferingsRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    response.offerings.into_iter().map(|o| o.code).collect()
}

async fn products_are_created_and_paged(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut created = Vec::new();
    for code in ["website", "online-store", "marketing"] {
        created.push(create_product(&app, code).await);
    }
    assert!(created[0].id.starts_with("prd_"));
    assert!(created[0].create_time.is_some());

    let mut seen = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = app
            .catalog()
            .list_products(pb::ListProductsRequest {
                page_size: 2,
                page_token: page_token.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(page.products.len() <= 2);
        seen.extend(page.products);
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!(seen, created);
}

async fn an_offering_keeps_every_field(backend: Backend) {
    let app = spawn_app(backend).await;
    create_product(&app, "website").await;
    create_product(&app, "bookings").await;
    create_offering(&app, offering("seo", "seo", 500)).await.unwrap();
    let request = pb::Offering {
        id: "off_ignored".into(),
        code: "bookings-pro".into(),
        display_name: "Bookings Pro".into(),
        description: "Appointments, per seat".into(),
        r#type: pb::OfferingType::App.into(),
        family: "bookings".into(),
        product_codes: vec!["bookings".into(), "website".into()],
        prices: vec![money("JPY", 1500), money("KWD", 4500)],
        billing_interval: pb::BillingInterval::Year.into(),
        billing_alignment: pb::BillingAlignment::Calendar.into(),
        trial_days: 30,
        bundled_offering_codes: vec!["seo".into()],
        components: vec![pb::Component {
            code: "seat".into(),
            display_name: "Staff seat".into(),
            unit_prices: vec![money("KWD", 1250), money("JPY", 400)],
        }],
        status: pb::OfferingStatus::Hidden.into(),
        provider_refs: HashMap::from([("maxio.product_handle".to_owned(), "bookings-pro".to_owned())]),
        ..pb::Offering::default()
    };
    let created = create_offering(&app, request.clone()).await.unwrap();
    assert!(created.id.starts_with("off_") && created.id != "off_ignored");
    assert!(created.create_time.is_some());
    assert_eq!(created.create_time, created.update_time);
    let comparable = pb::Offering {
        id: created.id.clone(),
        create_time: created.create_time,
        update_time: created.update_time,
        ..request
    };
    assert_eq!(created, comparable);

    // Defaults: family = code, alignment ANNIVERSARY, status ACTIVE.
    let plain = create_offering(&app, offering("plain", "", 100)).await.unwrap();
    assert_eq!(plain.family, "plain");
    assert_eq!(plain.billing_alignment, pb::BillingAlignment::Anniversary as i32);
    assert_eq!(plain.status, pb::OfferingStatus::Active as i32);
}

async fn offerings_are_found_by_id_and_by_code(backend: Backend) {
    let app = spawn_app(backend).await;
    create_product(&app, "website").await;
    let created = create_offering(&app, offering("pro", "package", 3000)).await.unwrap();
    let get = |lookup| {
        let mut client = app.catalog();
        async move {
            client
                .get_offering(pb::GetOfferingRequest { lookup })
                .await
                .map(|response| response.into_inner().offering.unwrap())
        }
    };
    use pb::get_offering_request::Lookup;
    assert_eq!(
        get(Some(Lookup::OfferingId(created.id.clone()))).await.unwrap(),
        created
    );
    assert_eq!(get(Some(Lookup::Code("pro".into()))).await.unwrap(), created);

    let missing = get(Some(Lookup::Code("ghost".into()))).await.unwrap_err();
    assert_status(&missing, Code::NotFound, "OFFERING_NOT_FOUND");
    let missing_id = get(Some(Lookup::OfferingId("off_0193a5b0c3e47d1a9f2b6c8d0e1f2a3b".into())))
        .await
        .unwrap_err();
    assert_status(&missing_id, Code::NotFound, "OFFERING_NOT_FOUND");
    let malformed = get(Some(Lookup::OfferingId("sub_123".into()))).await.unwrap_err();
    assert_status(&malformed, Code::InvalidArgument, "FIELD_INVALID");
    assert_eq!(violated_fields(&malformed), ["offering_id"]);
    let neither = get(None).await.unwrap_err();
    assert_status(&neither, Code::InvalidArgument, "FIELD_INVALID");
}

async fn bad_offerings_get_precise_reasons_and_write_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    create_product(&app, "website").await;
    create_offering(&app, offering("existing", "existing", 100))
        .await
        .unwrap();

    type Edit = fn(&mut pb::Offering);
    let cases: &[(&str, Edit, &str, &str)] = &[
        ("empty code", |o| o.code.clear(), "CODE_INVALID", "offering.code"),
        (
            "negative price",
            |o| o.prices[0].amount_minor = -1,
            "PRICE_INVALID",
            "offering.prices[0].amount_minor",
        ),
        (
            "unknown currency",
            |o| o.prices[0].currency_code = "ZZZ".into(),
            "CURRENCY_UNKNOWN",
            "offering.prices[0].currency_code",
        ),
        (
            "two prices in one currency",
            |o| o.prices.push(usd(200)),
            "DUPLICATE_CURRENCY",
            "offering.prices[1].currency_code",
        ),
        (
            "bundle naming an unknown offering",
            |o| o.bundled_offering_codes = vec!["ghost".into()],
            "BUNDLED_OFFERING_NOT_FOUND",
            "offering.bundled_offering_codes[0]",
        ),
        (
            "bundle cycle",
            |o| o.bundled_offering_codes = vec!["new".into()],
            "BUNDLE_CYCLE",
            "offering.bundled_offering_codes[0]",
        ),
        (
            "unknown product",
            |o| o.product_codes = vec!["ghost".into()],
            "PRODUCT_NOT_FOUND",
            "offering.product_codes[0]",
        ),
        (
            "no interval",
            |o| o.billing_interval = 0,
            "FIELD_INVALID",
            "offering.billing_interval",
        ),
        ("no type", |o| o.r#type = 0, "FIELD_INVALID", "offering.type"),
        (
            "negative trial",
            |o| o.trial_days = -3,
            "FIELD_INVALID",
            "offering.trial_days",
        ),
        (
            "duplicate components",
            |o| {
                let seat = pb::Component {
                    code: "seat".into(),
                    display_name: "Seat".into(),
                    unit_prices: vec![usd(1)],
                };
                o.components = vec![seat.clone(), seat];
            },
            "DUPLICATE_COMPONENTS",
            "offering.components[1].code",
        ),
    ];
    for (name, edit, expected_reason, field) in cases {
        let mut request = offering("new", "new", 100);
        edit(&mut request);
        let status = create_offering(&app, request).await.unwrap_err();
        assert_status(&status, Code::InvalidArgument, expected_reason);
        assert!(
            violated_fields(&status).contains(&(*field).to_owned()),
            "{name}: {status:?}"
        );
    }
    let no_offering = app
        .catalog()
        .create_offering(pb::CreateOfferingRequest { offering: None })
        .await
        .unwrap_err();
    assert_eq!(no_offering.code(), Code::InvalidArgument);

    assert_eq!(
        all_offering_codes(&app).await,
        ["existing"],
        "a rejected request wrote something"
    );
}

async fn duplicate_codes_are_already_exists(backend: Backend) {
    let app = spawn_app(backend).await;
    create_product(&app, "website").await;
    let first = create_offering(&app, offering("pro", "package", 3000)).await.unwrap();
    let again = create_offering(&app, offering("pro", "other", 1)).await.unwrap_err();
    assert_status(&again, Code::AlreadyExists, "OFFERING_ALREADY_EXISTS");
    assert_eq!(violated_fields(&again), ["offering.code"]);
    assert_eq!(all_offering_codes(&app).await, [first.code]);

    let product_again = app
        .catalog()
        .create_product(pb::CreateProductRequest {
            code: "website".into(),
            display_name: "Again".into(),
            description: String::new(),
        })
        .await
        .unwrap_err();
    assert_status(&product_again, Code::AlreadyExists, "PRODUCT_ALREADY_EXISTS");
}

async fn page_sizes_and_tokens_are_checked_on_every_list(backend: Backend) {
    let app = spawn_app(backend).await;
    for page_size in [10_000, 501, -1] {
        let mut client = app.catalog();
        let errors = [
            client
                .list_products(pb::ListProductsRequest {
                    page_size,
                    page_token: String::new(),
                })
                .await
                .unwrap_err(),
            client
                .list_offerings(pb::ListOfferingsRequest {
                    page_size,
                    ..Default::default()
                })
                .await
                .unwrap_err(),
            client
                .list_directory_offerings(pb::ListDirectoryOfferingsRequest {
                    directory_id: "demo".into(),
                    page_size,
                    page_token: String::new(),
                })
                .await
                .unwrap_err(),
            client
                .list_coupons(pb::ListCouponsRequest {
                    page_size,
                    page_token: String::new(),
                })
                .await
                .unwrap_err(),
        ];
        for error in errors {
            assert_status(&error, Code::InvalidArgument, "PAGE_SIZE_INVALID");
            assert_eq!(violated_fields(&error), ["page_size"]);
        }
    }
    let garbage = app
        .catalog()
        .list_products(pb::ListProductsRequest {
            page_size: 1,
            page_token: "garbage".into(),
        })
        .await
        .unwrap_err();
    assert_status(&garbage, Code::InvalidArgument, "PAGE_TOKEN_INVALID");

    // A token is bound to its list and filters.
    create_product(&app, "website").await;
    for code in ["a", "b"] {
        create_offering(&app, offering(code, code, 1)).await.unwrap();
    }
    let first = app
        .catalog()
        .list_offerings(pb::ListOfferingsRequest {
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let other_filter = app
        .catalog()
        .list_offerings(pb::ListOfferingsRequest {
            include_hidden: true,
            page_size: 1,
            page_token: first.next_page_token,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_status(&other_filter, Code::InvalidArgument, "PAGE_TOKEN_INVALID");
}

async fn paging_stays_correct_while_rows_are_inserted(backend: Backend) {
    let app = spawn_app(backend).await;
    create_product(&app, "website").await;
    for index in 0..5 {
        create_offering(&app, offering(&format!("old-{index}"), &format!("f-old-{index}"), 1))
            .await
            .unwrap();
    }
    let list = |page_token: String| {
        let mut client = app.catalog();
        async move {
            client
                .list_offerings(pb::ListOfferingsRequest {
                    page_size: 2,
                    page_token,
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner()
        }
    };
    let first = list(String::new()).await;
    let mut seen: Vec<String> = first.offerings.into_iter().map(|o| o.code).collect();
    for index in 0..3 {
        create_offering(&app, offering(&format!("new-{index}"), &format!("f-new-{index}"), 1))
            .await
            .unwrap();
    }
    let mut token = first.next_page_token;
    while !token.is_empty() {
        let page = list(token).await;
        seen.extend(page.offerings.into_iter().map(|o| o.code));
        token = page.next_page_token;
    }
    assert_eq!(
        seen,
        ["old-0", "old-1", "old-2", "old-3", "old-4", "new-0", "new-1", "new-2"],
        "every row exactly once, in creation order"
    );
}

async fn update(
    app: &TestApp,
    code: &str,
    offering: pb::Offering,
    paths: &[&str],
) -> Result<pb::Offering, tonic::Status> {
    app.catalog()
        .update_offering(pb::UpdateOfferingRequest {
            lookup: Some(pb::update_offering_request::Lookup::Code(code.into())),
            offering: Some(offering),
            update_mask: Some(prost_types::FieldMask {
                paths: paths.iter().map(|path| (*path).to_owned()).collect(),
            }),
        })
        .await
        .map(|response| response.into_inner().offering.unwrap())
}

async fn offerings_are_hidden_retired_and_repriced_by_the_rules(backend: Backend) {
    let app = spawn_app(backend).await;
    create_product(&app, "website").await;
    let created = create_offering(&app, offering("pro", "package", 3000)).await.unwrap();

    let hidden = update(
        &app,
        "pro",
        pb::Offering {
            status: pb::OfferingStatus::Hidden.into(),
            display_name: "Pro (legacy)".into(),
            ..Default::default()
        },
        &["status", "display_name"],
    )
    .await
    .unwrap();
    assert_eq!(hidden.status, pb::OfferingStatus::Hidden as i32);
    assert_eq!(hidden.display_name, "Pro (legacy)");
    assert_eq!(hidden.prices, created.prices);
    assert_ne!(hidden.update_time, created.update_time);
    let visible = app
        .catalog()
        .list_offerings(pb::ListOfferingsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(
        visible.offerings.is_empty(),
        "hidden offerings are listed only with include_hidden"
    );

    let repriced = update(
        &app,
        "pro",
        pb::Offering {
            prices: vec![usd(3500)],
            ..Default::default()
        },
        &["prices"],
    )
    .await
    .unwrap();
    assert_eq!(repriced.prices, [usd(3500)]);

    let bad_mask = update(&app, "pro", pb::Offering::default(), &["code"])
        .await
        .unwrap_err();
    assert_status(&bad_mask, Code::InvalidArgument, "UPDATE_MASK_INVALID");
    let empty_mask = update(&app, "pro", pb::Offering::default(), &[]).await.unwrap_err();
    assert_status(&empty_mask, Code::InvalidArgument, "UPDATE_MASK_INVALID");
    let bad_price = update(
        &app,
        "pro",
        pb::Offering {
            prices: vec![usd(-1)],
            ..Default::default()
        },
        &["prices"],
    )
    .await
    .unwrap_err();
    assert_status(&bad_price, Code::InvalidArgument, "PRICE_INVALID");
    assert_eq!(violated_fields(&bad_price), ["offering.prices[0].amount_minor"]);
    let missing = update(&app, "ghost", pb::Offering::default(), &["status"])
        .await
        .unwrap_err();
    assert_status(&missing, Code::NotFound, "OFFERING_NOT_FOUND");

    let retire = pb::Offering {
        status: pb::OfferingStatus::Retired.into(),
        ..Default::default()
    };
    update(&app, "pro", retire, &["status"]).await.unwrap();
    let revive = pb::Offering {
        status: pb::OfferingStatus::Active.into(),
        ..Default::default()
    };
    let refused = update(&app, "pro", revive, &["status"]).await.unwrap_err();
    assert_status(&refused, Code::FailedPrecondition, "OFFERING_STATUS_TRANSITION_INVALID");
}

async fn assign(
    app: &TestApp,
    directory_id: &str,
    code: &str,
    is_default: bool,
) -> Result<pb::DirectoryOffering, tonic::Status> {
    app.catalog()
        .assign_offering(pb::AssignOfferingRequest {
            directory_id: directory_id.into(),
            offering_code: code.into(),
            is_default,
        })
        .await
        .map(|response| response.into_inner().directory_offering.unwrap())
}

async fn directories_sell_assigned_offerings_with_one_free_default_per_family(backend: Backend) {
    let app = spawn_app(backend).await;
    create_product(&app, "website").await;
    let free = create_offering(&app, offering("free", "package", 0)).await.unwrap();
    create_offering(&app, offering("starter", "package", 0)).await.unwrap();
    create_offering(&app, offering("pro", "package", 3000)).await.unwrap();
    create_offering(&app, offering("elsewhere", "other", 100))
        .await
        .unwrap();

    let assigned = assign(&app, "demo", "free", true).await.unwrap();
    assert_eq!(assigned.offering_id, free.id);
    assert!(assigned.is_default);
    assign(&app, "demo", "pro", false).await.unwrap();
    assign(&app, "other-directory", "elsewhere", false).await.unwrap();

    let not_free = assign(&app, "demo", "pro", true).await.unwrap_err();
    assert_status(&not_free, Code::FailedPrecondition, "DEFAULT_OFFERING_NOT_FREE");
    let conflict = assign(&app, "demo", "starter", true).await.unwrap_err();
    assert_status(&conflict, Code::FailedPrecondition, "DEFAULT_OFFERING_CONFLICT");
    let unknown = assign(&app, "demo", "ghost", false).await.unwrap_err();
    assert_status(&unknown, Code::NotFound, "OFFERING_NOT_FOUND");
    let bad_directory = assign(&app, "", "free", false).await.unwrap_err();
    assert_status(&bad_directory, Code::InvalidArgument, "FIELD_INVALID");
    assert_eq!(violated_fields(&bad_directory), ["directory_id"]);

    // Moving the default: unset it, then set another.
    let unset = assign(&app, "demo", "free", false).await.unwrap();
    assert!(!unset.is_default);
    assert_eq!(unset.create_time, assigned.create_time);
    assign(&app, "demo", "starter", true).await.unwrap();

    let listed = app
        .catalog()
        .list_directory_offerings(pb::ListDirectoryOfferingsRequest {
            directory_id: "demo".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let entries: Vec<(String, bool)> = listed
        .directory_offerings
        .into_iter()
        .map(|entry| (entry.offering_code, entry.is_default))
        .collect();
    assert_eq!(
        entries,
        [
            ("free".to_owned(), false),
            ("starter".to_owned(), true),
            ("pro".to_owned(), false)
        ]
    );

    let in_demo = app
        .catalog()
        .list_offerings(pb::ListOfferingsRequest {
            directory_id: "demo".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let codes: Vec<String> = in_demo.offerings.into_iter().map(|o| o.code).collect();
    assert_eq!(codes, ["free", "starter", "pro"]);

    let retire = pb::Offering {
        status: pb::OfferingStatus::Retired.into(),
        ..Default::default()
    };
    update(&app, "elsewhere", retire, &["status"]).await.unwrap();
    let retired = assign(&app, "demo", "elsewhere", false).await.unwrap_err();
    assert_status(&retired, Code::FailedPrecondition, "OFFERING_RETIRED");
}

fn percent_coupon(code: &str) -> pb::Coupon {
    pb::Coupon {
        code: code.into(),
        discount: Some(pb::coupon::Discount::PercentOff(2000)),
        duration: pb::CouponDuration::Repeating.into(),
        duration_periods: 3,
        max_redemptions: 100,
        ..Default::default()
    }
}

async fn create_coupon(app: &TestApp, coupon: pb::Coupon) -> Result<pb::Coupon, tonic::Status> {
    app.catalog()
        .create_coupon(pb::CreateCouponRequest { coupon: Some(coupon) })
        .await
        .map(|response| response.into_inner().coupon.unwrap())
}

async fn coupons_are_created_and_listed(backend: Backend) {
    let app = spawn_app(backend).await;
    create_product(&app, "website").await;
    create_offering(&app, offering("pro", "package", 3000)).await.unwrap();
    let percent = create_coupon(
        &app,
        pb::Coupon {
            applies_to_offering_codes: vec!["pro".into()],
            redeem_by: Some(prost_types::Timestamp {
                seconds: 4_102_444_800,
                nanos: 0,
            }),
            ..percent_coupon("WELCOME20")
        },
    )
    .await
    .unwrap();
    assert!(percent.id.starts_with("cpn_"));
    assert_eq!(percent.times_redeemed, 0);
    assert_eq!(percent.redeem_by.unwrap().seconds, 4_102_444_800);
    let amount = create_coupon(
        &app,
        pb::Coupon {
            code: "TENOFF".into(),
            discount: Some(pb::coupon::Discount::AmountOff(money("KWD", 10_500))),
            duration: pb::CouponDuration::Forever.into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let listed = app
        .catalog()
        .list_coupons(pb::ListCouponsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.coupons, [percent, amount]);
}

async fn bad_coupons_get_precise_reasons(backend: Backend) {
    let app = spawn_app(backend).await;
    create_coupon(&app, percent_coupon("TAKEN")).await.unwrap();
    let taken = create_coupon(&app, percent_coupon("TAKEN")).await.unwrap_err();
    assert_status(&taken, Code::AlreadyExists, "COUPON_ALREADY_EXISTS");

    type Edit = fn(&mut pb::Coupon);
    let cases: &[(Edit, &str, &str)] = &[
        (|c| c.discount = None, "COUPON_INVALID", "coupon.discount"),
        (
            |c| c.discount = Some(pb::coupon::Discount::PercentOff(10_001)),
            "COUPON_INVALID",
            "coupon.percent_off",
        ),
        (
            |c| c.discount = Some(pb::coupon::Discount::AmountOff(money("XXX", 5))),
            "CURRENCY_UNKNOWN",
            "coupon.amount_off.currency_code",
        ),
        (|c| c.duration_periods = 0, "COUPON_INVALID", "coupon.duration_periods"),
        (
            |c| c.applies_to_offering_codes = vec!["ghost".into()],
            "COUPON_INVALID",
            "coupon.applies_to_offering_codes[0]",
        ),
        (
            |c| c.redeem_by = Some(prost_types::Timestamp { seconds: 0, nanos: 0 }),
            "COUPON_INVALID",
            "coupon.redeem_by",
        ),
        (|c| c.code = "WITH SPACE".into(), "CODE_INVALID", "coupon.code"),
    ];
    for (edit, expected_reason, field) in cases {
        let mut coupon = percent_coupon("NEW");
        edit(&mut coupon);
        let status = create_coupon(&app, coupon).await.unwrap_err();
        assert_status(&status, Code::InvalidArgument, expected_reason);
        assert_eq!(violated_fields(&status), [(*field).to_owned()]);
    }
    let listed = app
        .catalog()
        .list_coupons(pb::ListCouponsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.coupons.len(), 1);
}

async fn concurrent_creates_of_one_code_make_one_offering(backend: Backend) {
    let app = spawn_app(backend).await;
    create_product(&app, "website").await;
    let attempts: Vec<_> = (0..16)
        .map(|index| {
            let mut client = app.catalog();
            tokio::spawn(async move {
                client
                    .create_offering(pb::CreateOfferingRequest {
                        offering: Some(offering("race", "race", 100 + index)),
                    })
                    .await
            })
        })
        .collect();
    let mut created = 0;
    for attempt in attempts {
        match attempt.await.unwrap() {
            Ok(_) => created += 1,
            Err(status) => assert_status(&status, Code::AlreadyExists, "OFFERING_ALREADY_EXISTS"),
        }
    }
    assert_eq!(created, 1);
    assert_eq!(all_offering_codes(&app).await, ["race"]);
}
