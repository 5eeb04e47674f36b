//! The consent page in a real browser: headless Chromium driven by
//! playwright-core (`tests/browser/checkout.cjs`) against the real server,
//! on SQLite and Postgres. Screenshots land in `target/test-output/`.
//!
//! Needs `node`, Chromium (`CHROMIUM`, default `/usr/bin/chromium`) and
//! playwright-core (`PLAYWRIGHT_MODULES`, default `.tools/npm/node_modules`);
//! `scripts/test` installs the last two. Missing tools fail the test.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stdout)]

use std::path::PathBuf;

use billing_proto::v1 as pb;
use billing_tests::{
    Backend, TestApp, advance_clock as advance, attach_card, backend_tests, get_subscription, provision_business,
    repository_root, spawn_manual_app,
};
use serde_json::Value;

backend_tests!(the_consent_page_works_in_chromium);

async fn session(app: &TestApp, request: pb::CreateCheckoutSessionRequest) -> pb::CreateCheckoutSessionResponse {
    app.checkout()
        .create_checkout_session(pb::CreateCheckoutSessionRequest {
            buyer_id: "owner".into(),
            ..request
        })
        .await
        .expect("CreateCheckoutSession")
        .into_inner()
}

fn purchase(business_id: &str, offering_code: &str, return_url: &str) -> pb::CreateCheckoutSessionRequest {
    pb::CreateCheckoutSessionRequest {
        business_id: business_id.into(),
        kind: pb::CheckoutKind::NewSubscription.into(),
        offering_code: offering_code.into(),
        currency_code: "USD".into(),
        return_url: return_url.into(),
        ..Default::default()
    }
}

/// A stand-in for the platform app the buyer returns to.
async fn spawn_return_site() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let site = axum::Router::new().route(
        "/return",
        axum::routing::get(|| async {
            axum::response::Html("<!doctype html><html lang=\"en\"><title>App</title><p>Back in the app.</p></html>")
        }),
    );
    tokio::spawn(async move { axum::serve(listener, site).await });
    format!("http://{address}/return")
}

fn tool(variable: &str, default: PathBuf) -> PathBuf {
    let path = std::env::var_os(variable).map_or(default, PathBuf::from);
    assert!(
        path.exists(),
        "{} not found (set {variable}); scripts/test installs it",
        path.display()
    );
    path
}

async fn the_consent_page_works_in_chromium(backend: Backend) {
    let chromium = tool("CHROMIUM", PathBuf::from("/usr/bin/chromium"));
    let modules = tool("PLAYWRIGHT_MODULES", repository_root().join(".tools/npm/node_modules"));
    let return_url = spawn_return_site().await;

    let app = spawn_manual_app(backend, "2026-03-10T09:00:00Z").await;
    app.load_demo_catalog().await;
    for business_id in ["biz-buyer", "biz-upgrader", "biz-no-card"] {
        provision_business(&app, business_id).await;
    }
    attach_card(&app, "biz-buyer", "pm_card_visa").await;
    attach_card(&app, "biz-upgrader", "pm_card_visa").await;

    // A session left alone for more than a day.
    let expired = session(&app, purchase("biz-buyer", "pro-monthly", &return_url)).await;
    // A Plus subscription past its trial (which ends March 24th and anchors
    // the periods), ten days into a period.
    let plus = app
        .subscriptions()
        .create_subscription(pb::CreateSubscriptionRequest {
            business_id: "biz-upgrader".into(),
            buyer_id: "owner".into(),
            offering: Some(pb::create_subscription_request::Offering::OfferingCode(
                "plus-monthly".into(),
            )),
            currency_code: "USD".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .subscription
        .unwrap();
    advance(&app, "2026-04-03T09:00:00Z").await;

    let bought = session(&app, purchase("biz-buyer", "pro-monthly", &return_url)).await;
    let declined = session(&app, purchase("biz-buyer", "bookings", &return_url)).await;
    let upgrade = session(
        &app,
        pb::CreateCheckoutSessionRequest {
            business_id: "biz-upgrader".into(),
            kind: pb::CheckoutKind::UpdateSubscription.into(),
            subscription_id: plus.id.clone(),
            offering_code: "pro-monthly".into(),
            return_url: return_url.clone(),
            ..Default::default()
        },
    )
    .await;
    let no_card = session(&app, purchase("biz-no-card", "pro-monthly", &return_url)).await;

    let output_dir = repository_root()
        .join("target/test-output/checkout")
        .join(format!("{backend:?}").to_lowercase());
    std::fs::create_dir_all(&output_dir).unwrap();
    let plan = serde_json::json!({
        "returnUrl": return_url,
        "purchaseUrl": bought.url,
        "expiredUrl": expired.url,
        "declineUrl": declined.url,
        "upgradeUrl": upgrade.url,
        "noCardUrl": no_card.url,
        "screenshotDir": output_dir,
    });
    let plan_file = output_dir.join("plan.json");
    std::fs::write(&plan_file, plan.to_string()).unwrap();

    let run = tokio::process::Command::new("node")
        .arg(repository_root().join("tests/browser/checkout.cjs"))
        .arg(&plan_file)
        .env("CHROMIUM", &chromium)
        .env("PLAYWRIGHT_MODULES", &modules)
        .output()
        .await
        .expect("run node (is Node.js installed?)");
    assert!(
        run.status.success(),
        "the browser script failed:\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let seen: Value = serde_json::from_slice(&run.stdout).expect("the script prints JSON");
    println!("screenshots: {}", output_dir.display());
    let text = |pointer: &str| -> String {
        seen.pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("{pointer} missing from {seen}"))
            .trim()
            .to_owned()
    };

    // The purchase page: what is bought and what is due today.
    assert_eq!(text("/purchase/lang"), "en");
    assert_eq!(text("/purchase/offering"), "Pro (monthly)");
    assert_eq!(text("/purchase/price"), "30.00 USD per month");
    assert_eq!(text("/purchase/amountDue"), "30.00 USD");
    assert_eq!(text("/purchase/paymentMethod"), "Visa •••• 4242 · expires 12/2034");
    assert_eq!(seen.pointer("/purchase/acceptDisabled"), Some(&Value::Bool(false)));

    // Accept landed on return_url with a subscription GetSubscription finds.
    let landed = text("/purchase/landedUrl");
    assert!(
        landed.starts_with(&format!("{return_url}?business_id=biz-buyer&subscription_id=sub_")),
        "{landed}"
    );
    let subscription_id = landed
        .split('&')
        .find_map(|pair| pair.strip_prefix("subscription_id="))
        .unwrap();
    let subscription = get_subscription(&app, subscription_id).await;
    assert_eq!(subscription.offering_code, "pro-monthly");
    assert_eq!(subscription.business_id, "biz-buyer");

    // The same token again, and an expired one: error pages where they were
    // opened, no redirect.
    assert_eq!(seen.pointer("/used/status"), Some(&Value::from(410)));
    assert_eq!(text("/used/url"), bought.url);
    assert_eq!(text("/used/code"), "CHECKOUT_TOKEN_USED");
    assert_eq!(seen.pointer("/expired/status"), Some(&Value::from(410)));
    assert_eq!(text("/expired/url"), expired.url);
    assert_eq!(text("/expired/code"), "CHECKOUT_TOKEN_EXPIRED");

    // Decline.
    let landed = text("/decline/landedUrl");
    assert!(landed.contains("error=CONSENT_REJECTED"), "{landed}");
    assert!(!landed.contains("subscription_id="), "{landed}");

    // The upgrade's prorated amount: 30.00 × 21/31 − 15.00 × 21/31.
    assert_eq!(text("/upgrade/offering"), "Pro (monthly)");
    assert_eq!(text("/upgrade/amountDue"), "10.16 USD");

    // No card: said plainly, Accept disabled.
    assert!(text("/noCard/alert").starts_with("No payment method on file."));
    assert_eq!(seen.pointer("/noCard/acceptDisabled"), Some(&Value::Bool(true)));

    // The page broke no rule of its own policy (e.g. a blocked style).
    assert_eq!(seen.pointer("/consoleErrors"), Some(&serde_json::json!([])), "{seen}");
    for name in ["checkout-purchase.png", "checkout-upgrade.png", "checkout-no-card.png"] {
        assert!(output_dir.join(name).exists(), "{name} was not saved");
    }
}
