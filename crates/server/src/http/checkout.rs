//! `GET /checkout/{token}`: the consent page, server-rendered, no
//! JavaScript. `POST /checkout/{token}`: its Accept and Decline buttons,
//! answered with `303` to the session's `return_url`.
//!
//! Every response is `Cache-Control: no-store`, may not be framed, sends no
//! referrer to other sites (the token is in the URL), and allows only its own inline style
//! (by hash) and form posts to itself and to the return URL's origin.

use std::sync::LazyLock;
use std::time::Duration;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Form, Router};
use base64::Engine;
use billing_app::AppError;
use billing_app::checkout::{Answerer, ConsentPage};
use billing_domain::catalog::BillingInterval;
use billing_domain::checkout::{Decision, Order};
use billing_domain::{Money, Reason};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tracing::Instrument;

use super::HttpState;

/// The page's only style, inlined and allowed by its hash.
const CSS: &str = include_str!("../../templates/checkout.css");
static STYLE_HASH: LazyLock<String> = LazyLock::new(|| {
    let digest = Sha256::digest(CSS.as_bytes());
    format!("'sha256-{}'", base64::engine::general_purpose::STANDARD.encode(digest))
});
/// How long a second click waits for the first one's purchase to finish.
const IN_FLIGHT_WAIT: Duration = Duration::from_secs(30);

pub fn routes() -> Router<HttpState> {
    Router::new()
        .route("/checkout", get(missing_token).post(missing_token))
        .route("/checkout/", get(missing_token).post(missing_token))
        .route("/checkout/{token}", get(show).post(answer))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(super::MAX_FORM_BYTES))
}

#[derive(Template)]
#[template(path = "checkout.html")]
struct ConsentTemplate<'a> {
    css: &'a str,
    token: &'a str,
    nonce: &'a str,
    heading: &'static str,
    offering_name: String,
    description: String,
    price: Option<String>,
    interval: &'static str,
    current_plan: Option<String>,
    components: Vec<(String, String)>,
    recurring_total: Option<String>,
    /// What each interval costs from now on, for the fine print.
    renews_at: Option<String>,
    lines: Vec<(String, String)>,
    amount_due: String,
    trial_end: Option<String>,
    scheduled: Option<String>,
    payment_method: Option<String>,
    needs_payment_method: bool,
    billed_by_provider: bool,
    problem: Option<(String, String)>,
    can_accept: bool,
    accept_label: String,
}

#[derive(Template)]
#[template(path = "checkout_error.html")]
struct ErrorTemplate<'a> {
    css: &'a str,
    title: &'a str,
    message: &'a str,
    reason: &'a str,
}

#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    decision: String,
    #[serde(default)]
    csrf: String,
}

async fn missing_token() -> Response {
    error_page(
        StatusCode::BAD_REQUEST,
        Reason::CheckoutTokenMissing,
        "This link has no checkout token.",
    )
}

async fn show(State(state): State<HttpState>, Path(token): Path<String>) -> Response {
    match state.checkout.consent_page(&token).await {
        Ok(page) => consent_page(&token, &page),
        Err(error) => app_error_page(&error),
    }
}

/// Completes the session in a task of its own: a browser that goes away or
/// a request timeout ends the wait, never a purchase half made.
async fn complete_in_own_task(
    state: &HttpState,
    token: &str,
    decision: Decision,
    nonce: &str,
) -> Result<billing_app::checkout::Completion, AppError> {
    let (checkout, token, nonce) = (state.checkout.clone(), token.to_owned(), nonce.to_owned());
    tokio::spawn(
        async move {
            checkout
                .complete(&token, decision, Answerer::Form { nonce: &nonce })
                .await
        }
        .in_current_span(),
    )
    .await
    .unwrap_or_else(|failed| {
        tracing::error!(error = %failed, "completing a checkout session failed");
        Err(AppError::fault("completing the checkout session failed"))
    })
}

async fn answer(
    State(state): State<HttpState>,
    Path(token): Path<String>,
    headers: HeaderMap,
    Form(answer): Form<Answer>,
) -> Response {
    if !same_origin(&headers, &state.public_origin) {
        return error_page(
            StatusCode::FORBIDDEN,
            Reason::FieldInvalid,
            "This answer did not come from the checkout page.",
        );
    }
    let decision = match answer.decision.as_str() {
        "accept" => Decision::Accept,
        "reject" => Decision::Reject,
        _ => {
            return error_page(
                StatusCode::BAD_REQUEST,
                Reason::FieldInvalid,
                "Choose Accept or Decline on the checkout page.",
            );
        }
    };
    // A second click while the first one's purchase runs waits for it and
    // then lands where the first one would have.
    let deadline = tokio::time::Instant::now() + IN_FLIGHT_WAIT;
    let completion = loop {
        match complete_in_own_task(&state, &token, decision, &answer.csrf).await {
            Err(error) if error.reason() == Reason::IdempotencyKeyInUse && tokio::time::Instant::now() < deadline => {
                continue;
            }
            other => break other,
        }
    };
    match completion {
        Ok(completion) if !completion.redirect_url.is_empty() => {
            let mut response = StatusCode::SEE_OTHER.into_response();
            if let Ok(location) = HeaderValue::from_str(&completion.redirect_url) {
                response.headers_mut().insert(header::LOCATION, location);
            }
            secure(response, None)
        }
        Ok(_) => error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            Reason::IdempotencyKeyInUse,
            "Your answer is still being processed. Reload this page in a moment.",
        ),
        Err(error) if error.reason() == Reason::FieldInvalid => error_page(
            StatusCode::FORBIDDEN,
            Reason::FieldInvalid,
            "This form has expired. Reload the checkout page and answer again.",
        ),
        Err(error) => app_error_page(&error),
    }
}

/// Whether a form post came from our own page: `Origin` (sent by browsers
/// with every POST) must be ours, and `Sec-Fetch-Site` must not say
/// cross-site. Clients that send neither (curl) are judged by the nonce.
fn same_origin(headers: &HeaderMap, public_origin: &str) -> bool {
    let origin_ok = headers
        .get(header::ORIGIN)
        .is_none_or(|origin| origin.as_bytes() == public_origin.as_bytes());
    let site_ok = headers
        .get("sec-fetch-site")
        .is_none_or(|site| matches!(site.as_bytes(), b"same-origin" | b"none"));
    origin_ok && site_ok
}

fn consent_page(token: &str, page: &ConsentPage) -> Response {
    let session = &page.session;
    let heading = match session.order {
        Order::Purchase { .. } => "Confirm your subscription",
        Order::PlanChange { .. } => "Confirm your plan change",
        Order::Components { .. } => "Confirm your add-ons",
    };
    let interval = match page.interval {
        Some(BillingInterval::Year) => "year",
        Some(BillingInterval::Month) | None => "month",
    };
    let amount_due = page.amount_due_today.map(money).unwrap_or_default();
    let mut lines: Vec<(String, String)> = Vec::new();
    if let Some(invoice) = &page.invoice {
        lines.extend(
            invoice
                .lines
                .iter()
                .map(|line| (line.description.clone(), money(line.amount))),
        );
        if !invoice.credit_applied.is_zero() {
            lines.push(("Account credit".to_owned(), money_negated(invoice.credit_applied)));
        }
    }
    let accept_label = match (&page.amount_due_today, page.can_accept()) {
        (Some(due), true) if !due.is_zero() => format!("Accept and pay {}", money(*due)),
        _ => "Accept".to_owned(),
    };
    let template = ConsentTemplate {
        css: CSS,
        token,
        nonce: &session.form_nonce,
        heading,
        offering_name: page.offering.as_ref().map_or_else(
            || "Your subscription".to_owned(),
            |offering| offering.display_name.clone(),
        ),
        description: page
            .offering
            .as_ref()
            .map(|offering| offering.description.clone())
            .unwrap_or_default(),
        price: page.plan_price.map(money),
        interval,
        current_plan: page.current_offering_name.clone(),
        components: page
            .components
            .iter()
            .map(|line| {
                (
                    format!("{} × {} at {}", line.name, line.quantity, money(line.unit_price)),
                    money(line.amount),
                )
            })
            .collect(),
        recurring_total: page.recurring_total.filter(|_| !page.components.is_empty()).map(money),
        renews_at: page.recurring_total.filter(|total| !total.is_zero()).map(money),
        lines,
        amount_due,
        trial_end: page.trial_end_time.map(date),
        scheduled: page.scheduled_change_time.map(date),
        payment_method: page.payment_method.as_ref().map(|method| {
            format!(
                "{} •••• {} · expires {:02}/{}",
                brand(&method.brand),
                method.last4,
                method.exp_month,
                method.exp_year
            )
        }),
        needs_payment_method: page.needs_payment_method,
        billed_by_provider: page.billed_by_provider,
        problem: page
            .problem
            .as_ref()
            .map(|problem| (problem.reason().as_str().to_owned(), problem.message().to_owned())),
        can_accept: page.can_accept(),
        accept_label,
    };
    render(StatusCode::OK, &template, Some(&session.return_url.origin()))
}

fn app_error_page(error: &AppError) -> Response {
    let reason = error.reason();
    let status = match reason {
        // A link that worked once and is spent: gone, not merely wrong.
        Reason::CheckoutTokenUsed | Reason::CheckoutTokenExpired => StatusCode::GONE,
        // Still being answered: retry in a moment.
        Reason::IdempotencyKeyInUse => StatusCode::SERVICE_UNAVAILABLE,
        _ => super::status_for(reason.kind()),
    };
    if status.is_server_error() {
        tracing::error!(reason = reason.as_str(), error = %error, "checkout page failed");
    }
    error_page(status, reason, &error.client_message())
}

fn error_page(status: StatusCode, reason: Reason, message: &str) -> Response {
    let title = match reason {
        Reason::CheckoutTokenMissing => "No checkout link was given",
        Reason::CheckoutTokenInvalid => "This checkout link is not valid",
        Reason::CheckoutTokenUsed => "This checkout link was already used",
        Reason::CheckoutTokenExpired => "This checkout link has expired",
        _ if matches!(
            reason.kind(),
            billing_domain::ErrorKind::Unavailable | billing_domain::ErrorKind::Internal
        ) || reason == Reason::IdempotencyKeyInUse =>
        {
            "Checkout is unavailable right now"
        }
        _ => "This checkout can't continue",
    };
    let template = ErrorTemplate {
        css: CSS,
        title,
        message,
        reason: reason.as_str(),
    };
    render(status, &template, None)
}

fn render(status: StatusCode, template: &impl Template, form_target: Option<&str>) -> Response {
    let response = match template.render() {
        Ok(html) => (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            )],
            html,
        )
            .into_response(),
        Err(error) => {
            tracing::error!(error = %error, "checkout template failed to render");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    };
    secure(response, form_target)
}

/// The headers every checkout response carries. `form_target` is the
/// return URL's origin, which the page's forms redirect to (browsers apply
/// `form-action` to the redirect too).
fn secure(mut response: Response, form_target: Option<&str>) -> Response {
    let form_action = match form_target {
        Some(origin) => format!("'self' {origin}"),
        None => "'none'".to_owned(),
    };
    let policy = format!(
        "default-src 'none'; style-src {}; img-src 'self' data:; form-action {form_action}; \
         frame-ancestors 'none'; base-uri 'none'",
        *STYLE_HASH
    );
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    if let Ok(policy) = HeaderValue::from_str(&policy) {
        headers.insert(header::CONTENT_SECURITY_POLICY, policy);
    }
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // The token is in the URL: no other site may see it in a Referer.
    // (`same-origin`, not `no-referrer`: with that, browsers send the page's
    // own form posts with `Origin: null`.)
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    response
}

/// `29.00 USD`, `-4.50 USD`, `500 JPY`.
fn money(amount: Money) -> String {
    amount.to_string()
}

fn money_negated(amount: Money) -> String {
    amount.checked_neg().map_or_else(|_| money(amount), money)
}

/// A card brand as people write it: `visa` → `Visa`, `amex` → `American
/// Express`.
fn brand(brand: &str) -> String {
    match brand {
        "amex" => "American Express".to_owned(),
        "diners" => "Diners Club".to_owned(),
        "unionpay" => "UnionPay".to_owned(),
        other => {
            let mut letters = other.chars();
            letters
                .next()
                .map(|first| first.to_uppercase().chain(letters).collect())
                .unwrap_or_default()
        }
    }
}

/// `March 24, 2026` (UTC).
fn date(time: DateTime<Utc>) -> String {
    time.format("%B %-d, %Y").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_are_accepted_from_our_origin_only() {
        let ours = "http://127.0.0.1:8080";
        let mut headers = HeaderMap::new();
        assert!(same_origin(&headers, ours), "no browser headers: judged by the nonce");
        headers.insert(header::ORIGIN, HeaderValue::from_static("http://127.0.0.1:8080"));
        headers.insert("sec-fetch-site", HeaderValue::from_static("same-origin"));
        assert!(same_origin(&headers, ours));
        headers.insert(header::ORIGIN, HeaderValue::from_static("https://evil.example"));
        assert!(!same_origin(&headers, ours));
        let mut cross = HeaderMap::new();
        cross.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(!same_origin(&cross, ours));
    }

    #[test]
    fn the_style_hash_matches_the_inlined_css() {
        assert!(STYLE_HASH.starts_with("'sha256-") && STYLE_HASH.ends_with("='"));
        let response = secure(StatusCode::OK.into_response(), Some("https://app.example.com"));
        let policy = response.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
        assert!(
            policy.contains("form-action 'self' https://app.example.com"),
            "{policy}"
        );
        assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
    }
}
