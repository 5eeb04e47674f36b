//! Checkout end to end, on SQLite and Postgres: sessions over gRPC, the
//! consent page and its buttons over HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use billing_proto::v1 as pb;
use billing_server::config::ClockMode;
use billing_tests::page::{browser, form_nonce, press};
use billing_tests::{
    Backend, TestApp, advance_clock as advance, assert_status, attach_card, backend_tests, get_subscription,
    provision_business, purchase_request, spawn_app_with, violated_fields,
};
use reqwest::StatusCode;
use reqwest::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, LOCATION, ORIGIN};
use tonic::Code;

backend_tests!(
    accepting_on_the_page_buys_once_and_returns_with_the_subscription,
    declining_returns_with_consent_rejected_and_buys_nothing,
    creation_checks_everything_the_purchase_would,
    update_sessions_check_the_subscription,
    tokens_expire_on_the_service_clock,
    bad_tokens_get_an_error_page_and_never_a_redirect,
    forms_need_the_pages_nonce_and_origin,
    a_declined_card_fails_the_session_with_its_reason,
    without_a_card_accept_is_disabled_and_refused,
    an_upgrade_session_shows_the_prorated_amount_and_applies_it,
    a_components_session_updates_seats,
    concurrent_accepts_make_one_subscription,
    creating_again_returns_the_session_with_a_fresh_token,
);

const RETURN_URL: &str = "https://app.example.com/billing/return?from=checkout";

async fn app(backend: Backend) -> TestApp {
    let app = spawn_app_with(backend, |settings| {
        settings.clock.mode = ClockMode::Manual;
        settings.clock.start_time = Some("2026-03-10T09:00:00Z".parse().unwrap());
        settings.checkout.allowed_return_hosts = vec!["app.example.com".into()];
    })
    .await;
    app.load_demo_catalog().await;
    provision_business(&app, "biz-1").await;
    app
}

fn new_subscription(offering_code: &str) -> pb::CreateCheckoutSessionRequest {
    pb::CreateCheckoutSessionRequest {
        request_id: String::new(),
        business_id: "biz-1".into(),
        buyer_id: "owner".into(),
        kind: pb::CheckoutKind::NewSubscription.into(),
        offering_code: offering_code.into(),
        currency_code: "USD".into(),
        return_url: RETURN_URL.into(),
        ..Default::default()
    }
}

fn update(subscription_id: &str) -> pb::CreateCheckoutSessionRequest {
    pb::CreateCheckoutSessionRequest {
        kind: pb::CheckoutKind::UpdateSubscription.into(),
        offering_code: String::new(),
        currency_code: String::new(),
        subscription_id: subscription_id.into(),
        ..new_subscription("")
    }
}

fn seats(quantity: i64) -> Vec<pb::ComponentQuantity> {
    vec![pb::ComponentQuantity {
        component_code: "seat".into(),
        quantity,
    }]
}

async fn open(app: &TestApp, request: pb::CreateCheckoutSessionRequest) -> pb::CreateCheckoutSessionResponse {
    app.checkout()
        .create_checkout_session(request)
        .await
        .expect("CreateCheckoutSession")
        .into_inner()
}

async fn refused(app: &TestApp, request: pb::CreateCheckoutSessionRequest) -> tonic::Status {
    app.checkout()
        .create_checkout_session(request)
        .await
        .expect_err("CreateCheckoutSession should refuse")
}

async fn session(app: &TestApp, id: &str) -> pb::CheckoutSession {
    app.checkout()
        .get_checkout_session(pb::GetCheckoutSessionRequest { session_id: id.into() })
        .await
        .unwrap()
        .into_inner()
        .session
        .unwrap()
}

async fn complete(
    app: &TestApp,
    token: &str,
    decision: pb::CheckoutDecision,
) -> Result<pb::CompleteCheckoutResponse, tonic::Status> {
    app.checkout()
        .complete_checkout(pb::CompleteCheckoutRequest {
            token: token.into(),
            decision: decision.into(),
        })
        .await
        .map(tonic::Response::into_inner)
}

/// CreateSubscription in USD, with `seat` components if `seats` > 0.
async fn buy(app: &TestApp, offering_code: &str, seat_count: i64) -> pb::Subscription {
    app.subscriptions()
        .create_subscription(pb::CreateSubscriptionRequest {
            components: if seat_count > 0 { seats(seat_count) } else { Vec::new() },
            ..purchase_request("biz-1", offering_code)
        })
        .await
        .unwrap()
        .into_inner()
        .subscription
        .unwrap()
}

fn offering(code: &str) -> Option<pb::create_subscription_request::Offering> {
    Some(pb::create_subscription_request::Offering::OfferingCode(code.into()))
}

async fn active_offerings(app: &TestApp, business_id: &str) -> Vec<String> {
    let mut codes: Vec<String> = app
        .subscriptions()
        .list_subscriptions(pb::ListSubscriptionsRequest {
            business_id: business_id.into(),
            active_only: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .subscriptions
        .into_iter()
        .map(|subscription| subscription.offering_code)
        .collect();
    codes.sort();
    codes
}

fn query(url: &str) -> Vec<(String, String)> {
    let query = url.split_once('?').map(|(_, query)| query).unwrap_or_default();
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(key, value)| (key.to_owned(), value.replace('+', " ")))
        .collect()
}

fn param(url: &str, key: &str) -> Option<String> {
    query(url)
        .into_iter()
        .find(|(name, _)| name == key)
        .map(|(_, value)| value)
}

fn minor(money: &Option<pb::Money>) -> i64 {
    money.as_ref().map_or(0, |money| money.amount_minor)
}

async fn accepting_on_the_page_buys_once_and_returns_with_the_subscription(backend: Backend) {
    let app = app(backend).await;
    attach_card(&app, "biz-1", "pm_card_visa").await;
    let opened = open(&app, new_subscription("pro-monthly")).await;
    assert!(
        opened.url.starts_with(&format!("{}/checkout/", app.http_base())),
        "{}",
        opened.url
    );
    assert!(opened.url.ends_with(&opened.token));
    assert!(opened.token.len() >= 22, "≥ 128 bits: {}", opened.token);
    let created = opened.session.clone().unwrap();
    assert!(created.id.starts_with("chk_"));
    assert_eq!(created.status, pb::CheckoutSessionStatus::Open as i32);
    assert_eq!(created.expire_time, opened.expire_time);
    assert_eq!(
        opened.expire_time.unwrap().seconds - created.create_time.unwrap().seconds,
        24 * 3600
    );

    // The page: what is bought, its price, and today's amount, which is
    // exactly PreviewInvoice's.
    let preview = app
        .subscriptions()
        .preview_invoice(pb::PreviewInvoiceRequest {
            change: Some(pb::preview_invoice_request::Change::CreateSubscription(
                pb::CreateSubscriptionRequest {
                    offering: offering("pro-monthly"),
                    ..new_purchase_request()
                },
            )),
        })
        .await
        .unwrap()
        .into_inner()
        .invoice
        .unwrap();
    assert_eq!(minor(&preview.amount_due), 3000);
    let page = browser().get(&opened.url).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(page.headers()[CACHE_CONTROL], "no-store");
    let policy = page.headers()[CONTENT_SECURITY_POLICY].to_str().unwrap().to_owned();
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    assert!(
        policy.contains("form-action 'self' https://app.example.com"),
        "{policy}"
    );
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = page.text().await.unwrap();
    assert!(html.contains("<html lang=\"en\">"));
    assert!(html.contains("Pro (monthly)"));
    assert!(html.contains("Everything in Plus, email marketing, and SEO tools included."));
    assert!(html.contains("<strong>30.00 USD</strong> per month"));
    assert!(html.contains("<td id=\"amount-due-today\">30.00 USD</td>"), "{html}");
    assert!(html.contains("Visa •••• 4242"));
    assert!(
        html.contains("charged 30.00 USD today and 30.00 USD every month until you cancel"),
        "{html}"
    );
    assert!(!html.contains("id=\"accept\" disabled"));

    // Accept: 303 to return_url with the business and the new subscription.
    let nonce = form_nonce(&html);
    let accepted = press(&app, &opened.url, "accept", &nonce).await;
    assert_eq!(accepted.status(), StatusCode::SEE_OTHER);
    let location = accepted.headers()[LOCATION].to_str().unwrap().to_owned();
    assert!(
        location
            .starts_with("https://app.example.com/billing/return?from=checkout&business_id=biz-1&subscription_id=sub_"),
        "{location}"
    );
    let subscription_id = param(&location, "subscription_id").unwrap();
    let bought = get_subscription(&app, &subscription_id).await;
    assert_eq!(bought.offering_code, "pro-monthly");
    assert_eq!(bought.state, pb::SubscriptionState::Purchased as i32);

    // A double click lands in the same place and buys nothing more.
    let again = press(&app, &opened.url, "accept", &nonce).await;
    assert_eq!(again.status(), StatusCode::SEE_OTHER);
    assert_eq!(again.headers()[LOCATION].to_str().unwrap(), location);
    assert_eq!(active_offerings(&app, "biz-1").await, ["pro-monthly", "seo"]);

    let done = session(&app, &created.id).await;
    assert_eq!(done.status, pb::CheckoutSessionStatus::Completed as i32);
    assert_eq!(done.result_subscription_id, subscription_id);
    assert!(done.complete_time.is_some());
    let events = app.event_types("biz-1").await;
    assert_eq!(
        events.iter().filter(|event| *event == "checkout.completed").count(),
        1,
        "{events:?}"
    );
    assert!(events.iter().any(|event| event == "subscription.started"), "{events:?}");

    // The page is gone: an error page, never a redirect.
    let used = browser().get(&opened.url).send().await.unwrap();
    assert_eq!(used.status(), StatusCode::GONE);
    assert!(used.headers().get(LOCATION).is_none());
    assert_eq!(used.headers()[CACHE_CONTROL], "no-store");
    assert!(used.text().await.unwrap().contains("CHECKOUT_TOKEN_USED"));

    // A headless client gets the same outcome, and a different answer is
    // refused.
    let completed = complete(&app, &opened.token, pb::CheckoutDecision::Accept)
        .await
        .unwrap();
    assert_eq!(completed.redirect_url, location);
    assert_eq!(completed.subscription.unwrap().id, subscription_id);
    let status = complete(&app, &opened.token, pb::CheckoutDecision::Reject)
        .await
        .unwrap_err();
    assert_status(&status, Code::FailedPrecondition, "CHECKOUT_TOKEN_USED");
}

fn new_purchase_request() -> pb::CreateSubscriptionRequest {
    pb::CreateSubscriptionRequest {
        business_id: "biz-1".into(),
        buyer_id: "owner".into(),
        currency_code: "USD".into(),
        ..Default::default()
    }
}

async fn declining_returns_with_consent_rejected_and_buys_nothing(backend: Backend) {
    let app = app(backend).await;
    attach_card(&app, "biz-1", "pm_card_visa").await;
    let opened = open(&app, new_subscription("plus-monthly")).await;
    let html = browser().get(&opened.url).send().await.unwrap().text().await.unwrap();
    // A trial: nothing due today, and the page says until when.
    assert!(html.contains("<td id=\"amount-due-today\">0.00 USD</td>"), "{html}");
    assert!(html.contains("until March 24, 2026"), "{html}");

    let declined = press(&app, &opened.url, "reject", &form_nonce(&html)).await;
    assert_eq!(declined.status(), StatusCode::SEE_OTHER);
    let location = declined.headers()[LOCATION].to_str().unwrap().to_owned();
    assert_eq!(param(&location, "error").as_deref(), Some("CONSENT_REJECTED"));
    assert!(param(&location, "error_message").is_some());
    assert!(param(&location, "subscription_id").is_none());
    assert_eq!(active_offerings(&app, "biz-1").await, ["free"]);

    let rejected = session(&app, &opened.session.unwrap().id).await;
    assert_eq!(rejected.status, pb::CheckoutSessionStatus::Rejected as i32);
    assert_eq!(rejected.error_reason, "CONSENT_REJECTED");
    assert!(app.event_types("biz-1").await.contains(&"checkout.rejected".to_owned()));

    // Headless: the same answer again, the same redirect.
    let repeated = complete(&app, &opened.token, pb::CheckoutDecision::Reject)
        .await
        .unwrap();
    assert_eq!(repeated.redirect_url, location);
    assert!(repeated.subscription.is_none());
}

async fn creation_checks_everything_the_purchase_would(backend: Backend) {
    let app = app(backend).await;
    let cases: Vec<(pb::CreateCheckoutSessionRequest, Code, &str)> = vec![
        (new_subscription("no-such-plan"), Code::NotFound, "OFFERING_NOT_FOUND"),
        (
            pb::CreateCheckoutSessionRequest {
                currency_code: "JPY".into(),
                ..new_subscription("pro-monthly")
            },
            Code::InvalidArgument,
            "PRICE_NOT_FOUND_FOR_CURRENCY",
        ),
        (
            pb::CreateCheckoutSessionRequest {
                components: vec![pb::ComponentQuantity {
                    component_code: "rooms".into(),
                    quantity: 1,
                }],
                ..new_subscription("bookings")
            },
            Code::InvalidArgument,
            "COMPONENT_NOT_FOUND",
        ),
        (
            pb::CreateCheckoutSessionRequest {
                components: seats(0),
                ..new_subscription("bookings")
            },
            Code::InvalidArgument,
            "COMPONENT_QUANTITY_INVALID",
        ),
        (
            pb::CreateCheckoutSessionRequest {
                components: [seats(1), seats(2)].concat(),
                ..new_subscription("bookings")
            },
            Code::InvalidArgument,
            "DUPLICATE_COMPONENTS",
        ),
        (
            pb::CreateCheckoutSessionRequest {
                coupon_code: "NOPE".into(),
                ..new_subscription("pro-monthly")
            },
            Code::InvalidArgument,
            "COUPON_INVALID",
        ),
        (
            pb::CreateCheckoutSessionRequest {
                business_id: "never-provisioned".into(),
                ..new_subscription("pro-monthly")
            },
            Code::NotFound,
            "BUSINESS_NOT_PROVISIONED",
        ),
        (
            pb::CreateCheckoutSessionRequest {
                return_url: "javascript:alert(1)".into(),
                ..new_subscription("pro-monthly")
            },
            Code::InvalidArgument,
            "RETURN_URL_INVALID",
        ),
        (
            pb::CreateCheckoutSessionRequest {
                return_url: "https://evil.example/steal".into(),
                ..new_subscription("pro-monthly")
            },
            Code::InvalidArgument,
            "RETURN_URL_NOT_ALLOWED",
        ),
        (
            pb::CreateCheckoutSessionRequest {
                kind: pb::CheckoutKind::Unspecified.into(),
                ..new_subscription("pro-monthly")
            },
            Code::InvalidArgument,
            "FIELD_INVALID",
        ),
    ];
    for (request, code, reason) in cases {
        let status = refused(&app, request).await;
        assert_status(&status, code, reason);
    }
    let status = refused(
        &app,
        pb::CreateCheckoutSessionRequest {
            return_url: "https://evil.example/".into(),
            ..new_subscription("pro-monthly")
        },
    )
    .await;
    assert_eq!(violated_fields(&status), ["return_url"]);

    // Already subscribed to the family, with a request_id: the refusal is
    // the answer for that key.
    buy(&app, "plus-monthly", 0).await;
    let keyed = pb::CreateCheckoutSessionRequest {
        request_id: "checkout-twice".into(),
        ..new_subscription("pro-monthly")
    };
    assert_status(
        &refused(&app, keyed.clone()).await,
        Code::AlreadyExists,
        "ALREADY_SUBSCRIBED",
    );
    assert_status(&refused(&app, keyed).await, Code::AlreadyExists, "ALREADY_SUBSCRIBED");
    // Nothing was bought or left behind by any of it.
    assert_eq!(active_offerings(&app, "biz-1").await, ["plus-monthly"]);
    let events = app.event_types("biz-1").await;
    assert!(!events.iter().any(|event| event.starts_with("checkout.")), "{events:?}");
}

async fn update_sessions_check_the_subscription(backend: Backend) {
    let app = app(backend).await;
    attach_card(&app, "biz-1", "pm_card_visa").await;
    let pro = buy(&app, "pro-monthly", 0).await;

    let both = pb::CreateCheckoutSessionRequest {
        offering_code: "pro-yearly".into(),
        components: seats(2),
        ..update(&pro.id)
    };
    let status = refused(&app, both).await;
    assert_status(&status, Code::InvalidArgument, "PLAN_AND_COMPONENTS_TOGETHER");
    assert_eq!(violated_fields(&status), ["components"]);

    let same = pb::CreateCheckoutSessionRequest {
        offering_code: "pro-monthly".into(),
        ..update(&pro.id)
    };
    assert_status(&refused(&app, same).await, Code::FailedPrecondition, "SAME_PLAN");
    let cross = pb::CreateCheckoutSessionRequest {
        offering_code: "bookings".into(),
        ..update(&pro.id)
    };
    assert_status(
        &refused(&app, cross).await,
        Code::FailedPrecondition,
        "CROSS_FAMILY_CHANGE",
    );
    let other_currency = pb::CreateCheckoutSessionRequest {
        offering_code: "pro-yearly".into(),
        currency_code: "EUR".into(),
        ..update(&pro.id)
    };
    let status = refused(&app, other_currency).await;
    assert_status(&status, Code::InvalidArgument, "FIELD_INVALID");
    assert_eq!(violated_fields(&status), ["currency_code"]);

    // Another business's subscription is not found, not a hint.
    provision_business(&app, "biz-2").await;
    let foreign = pb::CreateCheckoutSessionRequest {
        business_id: "biz-2".into(),
        offering_code: "pro-yearly".into(),
        ..update(&pro.id)
    };
    assert_status(&refused(&app, foreign).await, Code::NotFound, "SUBSCRIPTION_NOT_FOUND");

    // A canceled subscription cannot be changed.
    app.subscriptions()
        .cancel(pb::CancelRequest {
            subscription_id: pro.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    let canceled = pb::CreateCheckoutSessionRequest {
        offering_code: "pro-yearly".into(),
        ..update(&pro.id)
    };
    assert_status(
        &refused(&app, canceled).await,
        Code::FailedPrecondition,
        "SUBSCRIPTION_NOT_ACTIVE",
    );
}

async fn tokens_expire_on_the_service_clock(backend: Backend) {
    let app = app(backend).await;
    attach_card(&app, "biz-1", "pm_card_visa").await;
    let opened = open(&app, new_subscription("pro-monthly")).await;
    advance(&app, "2026-03-11T09:59:59Z").await;
    let page = browser().get(&opened.url).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::GONE);
    assert!(page.headers().get(LOCATION).is_none());
    assert!(page.text().await.unwrap().contains("CHECKOUT_TOKEN_EXPIRED"));
    let status = complete(&app, &opened.token, pb::CheckoutDecision::Accept)
        .await
        .unwrap_err();
    assert_status(&status, Code::FailedPrecondition, "CHECKOUT_TOKEN_EXPIRED");
    let expired = session(&app, &opened.session.unwrap().id).await;
    assert_eq!(expired.status, pb::CheckoutSessionStatus::Expired as i32);
    assert_eq!(active_offerings(&app, "biz-1").await, ["free"]);
}

async fn bad_tokens_get_an_error_page_and_never_a_redirect(backend: Backend) {
    let app = app(backend).await;
    let base = app.http_base();
    let cases = [
        (
            format!("{base}/checkout"),
            StatusCode::BAD_REQUEST,
            "CHECKOUT_TOKEN_MISSING",
        ),
        (
            format!("{base}/checkout/"),
            StatusCode::BAD_REQUEST,
            "CHECKOUT_TOKEN_MISSING",
        ),
        (
            format!("{base}/checkout/garbage"),
            StatusCode::NOT_FOUND,
            "CHECKOUT_TOKEN_INVALID",
        ),
        (
            format!("{base}/checkout/{}", "A".repeat(43)),
            StatusCode::NOT_FOUND,
            "CHECKOUT_TOKEN_INVALID",
        ),
    ];
    for (url, status, reason) in cases {
        let page = browser().get(&url).send().await.unwrap();
        assert_eq!(page.status(), status, "{url}");
        assert!(page.headers().get(LOCATION).is_none(), "{url}");
        assert_eq!(page.headers()[CACHE_CONTROL], "no-store");
        assert!(page.text().await.unwrap().contains(reason), "{url}");
        let posted = press(&app, &url, "accept", "nonce").await;
        assert_eq!(posted.status(), status, "POST {url}");
        assert!(posted.headers().get(LOCATION).is_none(), "POST {url}");
    }
    assert_status(
        &complete(&app, "", pb::CheckoutDecision::Accept).await.unwrap_err(),
        Code::InvalidArgument,
        "CHECKOUT_TOKEN_MISSING",
    );
    assert_status(
        &complete(&app, &"A".repeat(43), pb::CheckoutDecision::Accept)
            .await
            .unwrap_err(),
        Code::NotFound,
        "CHECKOUT_TOKEN_INVALID",
    );
    let opened = open(&app, new_subscription("pro-monthly")).await;
    let status = complete(&app, &opened.token, pb::CheckoutDecision::Unspecified)
        .await
        .unwrap_err();
    assert_status(&status, Code::InvalidArgument, "FIELD_INVALID");
    let status = app
        .checkout()
        .get_checkout_session(pb::GetCheckoutSessionRequest {
            session_id: "chk_0193a5b0c3e47d1a9f2b6c8d0e1f2a3b".into(),
        })
        .await
        .unwrap_err();
    assert_status(&status, Code::NotFound, "CHECKOUT_SESSION_NOT_FOUND");
}

async fn forms_need_the_pages_nonce_and_origin(backend: Backend) {
    let app = app(backend).await;
    attach_card(&app, "biz-1", "pm_card_visa").await;
    let opened = open(&app, new_subscription("pro-monthly")).await;
    let html = browser().get(&opened.url).send().await.unwrap().text().await.unwrap();
    let nonce = form_nonce(&html);

    let forged = press(&app, &opened.url, "accept", "0123456789abcdef0123456789abcdef").await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let cross_site = browser()
        .post(&opened.url)
        .header(ORIGIN, "https://evil.example")
        .form(&[("decision", "accept"), ("csrf", nonce.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(cross_site.status(), StatusCode::FORBIDDEN);
    let no_decision = press(&app, &opened.url, "maybe", &nonce).await;
    assert_eq!(no_decision.status(), StatusCode::BAD_REQUEST);

    // None of it answered the session.
    let still = session(&app, &opened.session.unwrap().id).await;
    assert_eq!(still.status, pb::CheckoutSessionStatus::Open as i32);
    assert_eq!(active_offerings(&app, "biz-1").await, ["free"]);
    assert_eq!(
        press(&app, &opened.url, "accept", &nonce).await.status(),
        StatusCode::SEE_OTHER
    );
}

async fn a_declined_card_fails_the_session_with_its_reason(backend: Backend) {
    let app = app(backend).await;
    attach_card(&app, "biz-1", "pm_card_chargeDeclined").await;
    let opened = open(&app, new_subscription("pro-monthly")).await;
    let html = browser().get(&opened.url).send().await.unwrap().text().await.unwrap();
    let response = press(&app, &opened.url, "accept", &form_nonce(&html)).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let location = response.headers()[LOCATION].to_str().unwrap().to_owned();
    assert_eq!(param(&location, "error").as_deref(), Some("PAYMENT_DECLINED"));
    assert!(param(&location, "error_message").unwrap().contains("declined"));
    let failed = session(&app, &opened.session.unwrap().id).await;
    assert_eq!(failed.status, pb::CheckoutSessionStatus::Failed as i32);
    assert_eq!(failed.error_reason, "PAYMENT_DECLINED");
    assert_eq!(active_offerings(&app, "biz-1").await, ["free"]);
    // Single use: the token is spent.
    let used = browser().get(&opened.url).send().await.unwrap();
    assert_eq!(used.status(), StatusCode::GONE);
}

async fn without_a_card_accept_is_disabled_and_refused(backend: Backend) {
    let app = app(backend).await;
    let opened = open(&app, new_subscription("pro-monthly")).await;
    let html = browser().get(&opened.url).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("No payment method on file."), "{html}");
    assert!(html.contains("id=\"accept\" disabled"), "{html}");

    // Forcing it anyway fails the session with the reason.
    let completed = complete(&app, &opened.token, pb::CheckoutDecision::Accept)
        .await
        .unwrap();
    assert_eq!(
        param(&completed.redirect_url, "error").as_deref(),
        Some("PAYMENT_METHOD_REQUIRED")
    );
    assert_eq!(
        completed.session.unwrap().status,
        pb::CheckoutSessionStatus::Failed as i32
    );
    assert_eq!(active_offerings(&app, "biz-1").await, ["free"]);

    // A trial charges nothing today, but the plan is paid: a card first.
    let trial = open(&app, new_subscription("plus-monthly")).await;
    let html = browser().get(&trial.url).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("id=\"accept\" disabled"), "{html}");
}

async fn an_upgrade_session_shows_the_prorated_amount_and_applies_it(backend: Backend) {
    let app = app(backend).await;
    attach_card(&app, "biz-1", "pm_card_visa").await;
    let plus = buy(&app, "plus-monthly", 0).await;
    // The trial ends on March 24th, which anchors the periods; ten days in:
    advance(&app, "2026-04-03T09:00:00Z").await;

    let change = pb::preview_invoice_request::Change::ChangePlan(pb::ChangePlanRequest {
        subscription_id: plus.id.clone(),
        offering_code: "pro-monthly".into(),
        ..Default::default()
    });
    let preview = app
        .subscriptions()
        .preview_invoice(pb::PreviewInvoiceRequest { change: Some(change) })
        .await
        .unwrap()
        .into_inner()
        .invoice
        .unwrap();
    // 21 of the period's 31 days left: credit 15.00 × 21/31 = 10.16, charge
    // 30.00 × 21/31 = 20.32.
    assert_eq!(minor(&preview.amount_due), 2032 - 1016);

    let opened = open(
        &app,
        pb::CreateCheckoutSessionRequest {
            offering_code: "pro-monthly".into(),
            ..update(&plus.id)
        },
    )
    .await;
    let html = browser().get(&opened.url).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("Confirm your plan change"));
    assert!(html.contains("<dt>Current plan</dt><dd>Plus (monthly)</dd>"), "{html}");
    assert!(html.contains("<strong>30.00 USD</strong> per month"), "{html}");
    assert!(html.contains("<td id=\"amount-due-today\">10.16 USD</td>"), "{html}");
    assert!(html.contains("-10.16 USD") && html.contains("20.32 USD"), "{html}");

    let response = press(&app, &opened.url, "accept", &form_nonce(&html)).await;
    let location = response.headers()[LOCATION].to_str().unwrap().to_owned();
    assert_eq!(param(&location, "subscription_id").as_deref(), Some(plus.id.as_str()));
    assert_eq!(get_subscription(&app, &plus.id).await.offering_code, "pro-monthly");

    // A downgrade waits for the period's end and charges nothing today.
    let opened = open(
        &app,
        pb::CreateCheckoutSessionRequest {
            offering_code: "plus-monthly".into(),
            ..update(&plus.id)
        },
    )
    .await;
    let html = browser().get(&opened.url).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("<td id=\"amount-due-today\">0.00 USD</td>"), "{html}");
    assert!(html.contains("<dd id=\"change-date\">April 24, 2026</dd>"), "{html}");
    let completed = complete(&app, &opened.token, pb::CheckoutDecision::Accept)
        .await
        .unwrap();
    let scheduled = completed.subscription.unwrap();
    assert_eq!(scheduled.offering_code, "pro-monthly");
    assert_eq!(scheduled.pending_change.unwrap().offering_code, "plus-monthly");
}

async fn a_components_session_updates_seats(backend: Backend) {
    let app = app(backend).await;
    attach_card(&app, "biz-1", "pm_card_visa").await;
    let bookings = buy(&app, "bookings", 2).await;
    let opened = open(
        &app,
        pb::CreateCheckoutSessionRequest {
            components: seats(5),
            ..update(&bookings.id)
        },
    )
    .await;
    let html = browser().get(&opened.url).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("Confirm your add-ons"));
    assert!(html.contains("Staff seat × 5 at 5.00 USD"), "{html}");
    // 3 more seats for March 10–31 of a calendar month: 15.00 × 22/31.
    assert!(html.contains("<td id=\"amount-due-today\">10.65 USD</td>"), "{html}");
    let completed = complete(&app, &opened.token, pb::CheckoutDecision::Accept)
        .await
        .unwrap();
    let updated = completed.subscription.unwrap();
    assert_eq!(updated.id, bookings.id);
    assert_eq!(updated.components[0].quantity, 5);
}

async fn concurrent_accepts_make_one_subscription(backend: Backend) {
    let app = app(backend).await;
    attach_card(&app, "biz-1", "pm_card_visa").await;
    let opened = open(&app, new_subscription("pro-monthly")).await;
    let answers = futures_join(&app, &opened.token, 6).await;
    let first = answers[0].clone();
    assert!(first.starts_with(RETURN_URL), "{first}");
    assert!(answers.iter().all(|answer| *answer == first), "{answers:?}");
    assert_eq!(active_offerings(&app, "biz-1").await, ["pro-monthly", "seo"]);
}

/// `count` CompleteCheckout(ACCEPT) at once; their redirect URLs.
async fn futures_join(app: &TestApp, token: &str, count: usize) -> Vec<String> {
    let mut tasks = Vec::new();
    for _ in 0..count {
        let mut client = app.checkout();
        let token = token.to_owned();
        tasks.push(tokio::spawn(async move {
            client
                .complete_checkout(pb::CompleteCheckoutRequest {
                    token,
                    decision: pb::CheckoutDecision::Accept.into(),
                })
                .await
        }));
    }
    let mut urls = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(response) => urls.push(response.into_inner().redirect_url),
            // A click that outwaited the first one's purchase may be told to
            // come back; it must not have bought anything itself.
            Err(status) => assert_status(&status, Code::Aborted, "IDEMPOTENCY_KEY_IN_USE"),
        }
    }
    assert!(!urls.is_empty());
    urls
}

async fn creating_again_returns_the_session_with_a_fresh_token(backend: Backend) {
    let app = app(backend).await;
    attach_card(&app, "biz-1", "pm_card_visa").await;
    let request = pb::CreateCheckoutSessionRequest {
        request_id: "checkout-1".into(),
        ..new_subscription("pro-monthly")
    };
    let first = open(&app, request.clone()).await;
    let second = open(&app, request.clone()).await;
    assert_eq!(first.session.as_ref().unwrap().id, second.session.as_ref().unwrap().id);
    assert_ne!(first.token, second.token);
    // The first token stopped working; the second one works.
    assert_eq!(
        browser().get(&first.url).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    let completed = complete(&app, &second.token, pb::CheckoutDecision::Accept)
        .await
        .unwrap();
    assert!(completed.subscription.is_some());
    // Once answered, a repeat returns the session without a token.
    let third = open(&app, request.clone()).await;
    assert!(third.token.is_empty() && third.url.is_empty());
    assert_eq!(
        third.session.unwrap().status,
        pb::CheckoutSessionStatus::Completed as i32
    );
    // The same key with another body is refused.
    let other = pb::CreateCheckoutSessionRequest {
        offering_code: "pro-yearly".into(),
        ..request
    };
    assert_status(
        &refused(&app, other).await,
        Code::InvalidArgument,
        "IDEMPOTENCY_KEY_REUSED",
    );
}
