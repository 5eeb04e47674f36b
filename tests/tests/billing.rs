//! Payment methods and invoices end to end, on SQLite and Postgres.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use billing_proto::v1 as pb;
use billing_tests::{Backend, TestApp, backend_tests, reason, spawn_manual_app, violated_fields};
use tonic::Code;

backend_tests!(
    a_business_has_one_payment_method_from_test_tokens,
    payment_method_errors_have_their_reasons,
    invoice_lookups_are_checked,
);

async fn app_with_business(backend: Backend) -> TestApp {
    let app = spawn_manual_app(backend, "2026-03-10T09:00:00Z").await;
    app.load_demo_catalog().await;
    app.subscriptions()
        .provision_business(pb::ProvisionBusinessRequest {
            request_id: "provision".into(),
            business_id: "biz-1".into(),
            directory_id: "demo".into(),
            buyer_id: "owner".into(),
        })
        .await
        .unwrap();
    app
}

async fn attach(app: &TestApp, token: &str, request_id: &str) -> Result<pb::PaymentMethod, tonic::Status> {
    app.payment_methods()
        .attach_payment_method(pb::AttachPaymentMethodRequest {
            request_id: request_id.into(),
            business_id: "biz-1".into(),
            token: token.into(),
        })
        .await
        .map(|response| response.into_inner().payment_method.unwrap())
}

fn assert_status(status: &tonic::Status, code: Code, expected_reason: &str) {
    assert_eq!(status.code(), code, "{status:?}");
    assert_eq!(reason(status), expected_reason, "{status:?}");
}

async fn a_business_has_one_payment_method_from_test_tokens(backend: Backend) {
    let app = app_with_business(backend).await;
    let visa = attach(&app, "pm_card_visa", "attach-1").await.unwrap();
    assert_eq!((visa.brand.as_str(), visa.last4.as_str()), ("visa", "4242"));
    assert_eq!(visa.provider, "local");
    assert_eq!(visa.status, pb::PaymentMethodStatus::Active as i32);
    assert_eq!(
        attach(&app, "pm_card_visa", "attach-1").await.unwrap(),
        visa,
        "a replay"
    );

    // Declining tokens attach; another attach replaces the method.
    let declining = attach(&app, "pm_card_chargeDeclinedInsufficientFunds", "attach-2")
        .await
        .unwrap();
    assert_eq!((declining.brand.as_str(), declining.last4.as_str()), ("visa", "9995"));
    let mastercard = attach(&app, "pm_card_mastercard", "attach-3").await.unwrap();
    let on_file = app
        .payment_methods()
        .get_payment_method(pb::GetPaymentMethodRequest {
            business_id: "biz-1".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .payment_method
        .unwrap();
    assert_eq!(on_file, mastercard);
    assert_eq!(on_file.last4, "4444");

    app.payment_methods()
        .detach_payment_method(pb::DetachPaymentMethodRequest {
            request_id: "detach-1".into(),
            business_id: "biz-1".into(),
        })
        .await
        .unwrap();
    let gone = app
        .payment_methods()
        .get_payment_method(pb::GetPaymentMethodRequest {
            business_id: "biz-1".into(),
        })
        .await
        .unwrap_err();
    assert_status(&gone, Code::NotFound, "PAYMENT_METHOD_NOT_FOUND");
}

async fn payment_method_errors_have_their_reasons(backend: Backend) {
    let app = app_with_business(backend).await;
    let card_number = attach(&app, "4242424242424242", "").await.unwrap_err();
    assert_status(&card_number, Code::InvalidArgument, "FIELD_INVALID");
    assert_eq!(violated_fields(&card_number), ["token"]);
    let empty = attach(&app, "", "").await.unwrap_err();
    assert_status(&empty, Code::InvalidArgument, "FIELD_INVALID");
    let stranger = app
        .payment_methods()
        .attach_payment_method(pb::AttachPaymentMethodRequest {
            request_id: String::new(),
            business_id: "nobody".into(),
            token: "pm_card_visa".into(),
        })
        .await
        .unwrap_err();
    assert_status(&stranger, Code::NotFound, "BUSINESS_NOT_PROVISIONED");
    let nothing_to_detach = app
        .payment_methods()
        .detach_payment_method(pb::DetachPaymentMethodRequest {
            request_id: String::new(),
            business_id: "biz-1".into(),
        })
        .await
        .unwrap_err();
    assert_status(&nothing_to_detach, Code::NotFound, "PAYMENT_METHOD_NOT_FOUND");
}

async fn invoice_lookups_are_checked(backend: Backend) {
    let app = app_with_business(backend).await;
    let missing = app
        .invoices()
        .get_invoice(pb::GetInvoiceRequest {
            invoice_id: "inv_0193a5b0c3e47d1a9f2b6c8d0e1f2a3b".into(),
        })
        .await
        .unwrap_err();
    assert_status(&missing, Code::NotFound, "INVOICE_NOT_FOUND");
    let both = app
        .invoices()
        .list_invoices(pb::ListInvoicesRequest {
            business_id: "biz-1".into(),
            subscription_id: "sub_0193a5b0c3e47d1a9f2b6c8d0e1f2a3b".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_status(&both, Code::InvalidArgument, "FIELD_INVALID");
    let none = app
        .invoices()
        .list_invoices(pb::ListInvoicesRequest {
            business_id: "biz-1".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(none.invoices.is_empty(), "the free default package is never invoiced");
}
