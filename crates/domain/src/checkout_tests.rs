use chrono::TimeZone;

use super::*;
use crate::ErrorKind;

fn hosts() -> Vec<String> {
    vec!["app.example.com".to_owned(), "*.partner.test".to_owned()]
}

fn time(hour: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 10, 0, 0, 0).unwrap() + chrono::Duration::hours(hour)
}

fn purchase_draft() -> CheckoutDraft {
    CheckoutDraft {
        business_id: "biz-1".to_owned(),
        buyer_id: "owner-1".to_owned(),
        kind: Some(CheckoutKind::NewSubscription),
        offering_code: "pro-monthly".to_owned(),
        currency_code: "USD".to_owned(),
        return_url: "https://app.example.com/billing/done?tab=plan".to_owned(),
        ..CheckoutDraft::default()
    }
}

fn update_draft() -> CheckoutDraft {
    CheckoutDraft {
        kind: Some(CheckoutKind::UpdateSubscription),
        offering_code: String::new(),
        currency_code: String::new(),
        subscription_id: "sub_0193a5b0c3e47d1a9f2b6c8d0e1f2a3b".to_owned(),
        ..purchase_draft()
    }
}

fn seats(quantity: i64) -> Vec<ComponentQuantityDraft> {
    vec![ComponentQuantityDraft {
        component_code: "seats".to_owned(),
        quantity,
    }]
}

fn fields(error: &DomainError) -> Vec<(&str, Reason)> {
    error
        .violations()
        .iter()
        .map(|violation| (violation.field.as_str(), violation.reason))
        .collect()
}

fn session() -> CheckoutSession {
    let checked = purchase_draft().check(&hosts()).unwrap();
    CheckoutSession {
        id: CheckoutSessionId::parse("chk_0193a5b0c3e47d1a9f2b6c8d0e1f2a3b").unwrap(),
        token_hash: "ab".repeat(32),
        form_nonce: "cd".repeat(16),
        business_id: checked.business_id,
        buyer_id: checked.buyer_id,
        order: checked.order,
        return_url: checked.return_url,
        status: CheckoutStatus::Open,
        decision: None,
        result_subscription_id: None,
        failure: None,
        create_time: time(0),
        expire_time: time(0) + chrono::Duration::hours(24),
        decide_time: None,
        complete_time: None,
    }
}

#[test]
fn a_purchase_draft_becomes_an_order() {
    let checked = purchase_draft().check(&hosts()).unwrap();
    assert_eq!(checked.order.kind(), CheckoutKind::NewSubscription);
    assert_eq!(
        checked.order,
        Order::Purchase {
            offering_code: Code::parse("pro-monthly").unwrap(),
            currency_code: "USD".to_owned(),
            components: Vec::new(),
            coupon_code: None,
        }
    );
    assert_eq!(checked.order.subscription_id(), None);
}

#[test]
fn an_update_carries_a_plan_or_components() {
    let plan = CheckoutDraft {
        offering_code: "pro-yearly".to_owned(),
        ..update_draft()
    };
    assert!(matches!(plan.check(&hosts()).unwrap().order, Order::PlanChange { .. }));
    let components = CheckoutDraft {
        components: seats(3),
        ..update_draft()
    };
    let order = components.check(&hosts()).unwrap().order;
    assert!(matches!(order, Order::Components { .. }));
    assert_eq!(order.kind(), CheckoutKind::UpdateSubscription);
    assert!(order.subscription_id().is_some());
}

#[test]
fn an_update_with_both_is_refused() {
    let both = CheckoutDraft {
        offering_code: "pro-yearly".to_owned(),
        components: seats(3),
        ..update_draft()
    };
    let error = both.check(&hosts()).unwrap_err();
    assert_eq!(error.reason(), Reason::PlanAndComponentsTogether);
    assert_eq!(error.kind(), ErrorKind::InvalidArgument);
    assert_eq!(fields(&error), [("components", Reason::PlanAndComponentsTogether)]);
}

#[test]
fn an_update_with_neither_is_refused() {
    let error = update_draft().check(&hosts()).unwrap_err();
    assert_eq!(fields(&error), [("offering_code", Reason::FieldInvalid)]);
}

#[test]
fn every_bad_field_is_reported_at_once() {
    let draft = CheckoutDraft {
        business_id: String::new(),
        buyer_id: "x".repeat(65),
        kind: None,
        return_url: "javascript:alert(1)".to_owned(),
        ..purchase_draft()
    };
    let error = draft.check(&hosts()).unwrap_err();
    let named: Vec<&str> = fields(&error).into_iter().map(|(field, _)| field).collect();
    assert_eq!(named, ["business_id", "buyer_id", "return_url", "kind"]);

    let purchase = CheckoutDraft {
        offering_code: "bad code".to_owned(),
        currency_code: String::new(),
        subscription_id: "sub_x".to_owned(),
        coupon_code: "no spaces".to_owned(),
        ..purchase_draft()
    };
    let error = purchase.check(&hosts()).unwrap_err();
    assert_eq!(
        fields(&error),
        [
            ("subscription_id", Reason::FieldInvalid),
            ("currency_code", Reason::FieldInvalid),
            ("offering_code", Reason::CodeInvalid),
            ("coupon_code", Reason::CodeInvalid),
        ]
    );

    let update = CheckoutDraft {
        subscription_id: "not-an-id".to_owned(),
        coupon_code: "WELCOME20".to_owned(),
        components: seats(1),
        ..update_draft()
    };
    let error = update.check(&hosts()).unwrap_err();
    assert_eq!(
        fields(&error),
        [
            ("subscription_id", Reason::FieldInvalid),
            ("coupon_code", Reason::FieldInvalid)
        ]
    );
}

#[test]
fn return_urls_must_be_http_to_an_allowed_host() {
    let allowed = [
        "https://app.example.com/done",
        "http://APP.example.com:8443/x?y=1#frag",
        "https://shop.partner.test/",
        "https://a.b.partner.test/",
    ];
    for url in allowed {
        assert!(ReturnUrl::parse(url, &hosts()).is_ok(), "{url}");
    }
    let refused = [
        ("", Reason::ReturnUrlInvalid),
        ("/relative/path", Reason::ReturnUrlInvalid),
        ("javascript:alert(1)", Reason::ReturnUrlInvalid),
        ("ftp://app.example.com/", Reason::ReturnUrlInvalid),
        ("https://user:pw@app.example.com/", Reason::ReturnUrlInvalid),
        ("data:text/html,hi", Reason::ReturnUrlInvalid),
        ("https://evil.example/", Reason::ReturnUrlNotAllowed),
        ("https://app.example.com.evil.example/", Reason::ReturnUrlNotAllowed),
        ("https://partner.test/", Reason::ReturnUrlNotAllowed),
        ("https://evilpartner.test/", Reason::ReturnUrlNotAllowed),
    ];
    for (url, reason) in refused {
        assert_eq!(ReturnUrl::parse(url, &hosts()).unwrap_err().reason(), reason, "{url}");
    }
    let long = format!("https://app.example.com/{}", "a".repeat(MAX_RETURN_URL_LEN));
    assert_eq!(
        ReturnUrl::parse(&long, &hosts()).unwrap_err().reason(),
        Reason::ReturnUrlInvalid
    );
    assert!(ReturnUrl::parse("https://app.example.com/", &[]).is_err());
}

#[test]
fn redirects_keep_the_query_and_encode_values() {
    let url = ReturnUrl::parse("https://app.example.com/done?tab=plan#top", &hosts()).unwrap();
    assert_eq!(url.origin(), "https://app.example.com");
    assert_eq!(
        url.with_query(&[("error", "PAYMENT_DECLINED"), ("error_message", "declined & void")]),
        "https://app.example.com/done?tab=plan&error=PAYMENT_DECLINED&error_message=declined+%26+void#top"
    );
}

#[test]
fn an_open_session_expires_at_its_expire_time() {
    let open = session();
    assert_eq!(open.status_at(time(23)), CheckoutStatus::Open);
    assert!(open.check_open(time(23)).is_ok());
    let later = open.expire_time;
    assert_eq!(open.status_at(later), CheckoutStatus::Expired);
    assert_eq!(
        open.check_open(later).unwrap_err().reason(),
        Reason::CheckoutTokenExpired
    );
    assert_eq!(
        open.decide(Decision::Accept, later).unwrap_err().reason(),
        Reason::CheckoutTokenExpired
    );
}

#[test]
fn accepting_records_the_decision_then_the_outcome() {
    let open = session();
    let Decided::Proceed(accepted) = open.decide(Decision::Accept, time(1)).unwrap() else {
        panic!("a first accept proceeds");
    };
    assert_eq!(accepted.decision, Some(Decision::Accept));
    assert_eq!(accepted.status, CheckoutStatus::Open);
    assert_eq!(accepted.decide_time, Some(time(1)));
    assert_eq!(accepted.redirect_url(), None);
    // The page is gone once a decision is taken, even while it runs.
    assert_eq!(
        accepted.check_open(time(1)).unwrap_err().reason(),
        Reason::CheckoutTokenUsed
    );
    // A second click while it runs resumes it; past the expiry too.
    assert_eq!(
        accepted.decide(Decision::Accept, time(30)).unwrap(),
        Decided::Proceed(accepted.clone())
    );
    assert_eq!(
        accepted.decide(Decision::Reject, time(1)).unwrap_err().reason(),
        Reason::CheckoutTokenUsed
    );

    let subscription = SubscriptionId::parse("sub_0193a5b0c3e47d1a9f2b6c8d0e1f2a3c").unwrap();
    let done = accepted.completed(subscription.clone(), time(2));
    assert_eq!(done.status_at(time(40)), CheckoutStatus::Completed);
    assert_eq!(done.result_subscription_id, Some(subscription));
    assert_eq!(
        done.redirect_url().unwrap(),
        "https://app.example.com/billing/done?tab=plan&business_id=biz-1\
         &subscription_id=sub_0193a5b0c3e47d1a9f2b6c8d0e1f2a3c&checkout_session_id=chk_0193a5b0c3e47d1a9f2b6c8d0e1f2a3b"
    );
    assert_eq!(done.decide(Decision::Accept, time(3)).unwrap(), Decided::Finished);
    assert_eq!(
        done.decide(Decision::Reject, time(3)).unwrap_err().reason(),
        Reason::CheckoutTokenUsed
    );
}

#[test]
fn a_refused_accept_fails_with_its_reason() {
    let Decided::Proceed(accepted) = session().decide(Decision::Accept, time(1)).unwrap() else {
        panic!("a first accept proceeds");
    };
    let declined = DomainError::new(Reason::PaymentDeclined, "card declined");
    let failed = accepted.failed(declined.reason(), declined.message(), time(2));
    assert_eq!(failed.status, CheckoutStatus::Failed);
    let url = failed.redirect_url().unwrap();
    assert!(
        url.contains("&error=PAYMENT_DECLINED&error_message=card+declined&"),
        "{url}"
    );
    assert!(!url.contains("subscription_id="), "{url}");
    assert_eq!(failed.decide(Decision::Accept, time(3)).unwrap(), Decided::Finished);
}

#[test]
fn declining_ends_the_session_at_once() {
    let Decided::Proceed(rejected) = session().decide(Decision::Reject, time(1)).unwrap() else {
        panic!("a first reject proceeds");
    };
    assert_eq!(rejected.status, CheckoutStatus::Rejected);
    assert_eq!(rejected.complete_time, Some(time(1)));
    assert!(
        rejected
            .redirect_url()
            .unwrap()
            .contains("error=CONSENT_REJECTED&error_message=the+buyer+declined")
    );
    assert_eq!(rejected.decide(Decision::Reject, time(2)).unwrap(), Decided::Finished);
    assert_eq!(
        rejected.decide(Decision::Accept, time(2)).unwrap_err().reason(),
        Reason::CheckoutTokenUsed
    );
    assert_eq!(
        rejected.check_open(time(2)).unwrap_err().reason(),
        Reason::CheckoutTokenUsed
    );
}

#[test]
fn kinds_statuses_and_decisions_round_trip_through_text() {
    for kind in [CheckoutKind::NewSubscription, CheckoutKind::UpdateSubscription] {
        assert_eq!(CheckoutKind::from_text(kind.as_str()), Some(kind));
    }
    for status in [
        CheckoutStatus::Open,
        CheckoutStatus::Completed,
        CheckoutStatus::Rejected,
        CheckoutStatus::Failed,
        CheckoutStatus::Expired,
    ] {
        assert_eq!(CheckoutStatus::from_text(status.as_str()), Some(status));
    }
    for decision in [Decision::Accept, Decision::Reject] {
        assert_eq!(Decision::from_text(decision.as_str()), Some(decision));
    }
    assert_eq!(Decision::from_text("MAYBE"), None);
}
