//! The checkout page as a browser without JavaScript uses it: fetch the
//! page, read its form nonce, press a button.

use reqwest::header::{LOCATION, ORIGIN};

use crate::TestApp;

/// A browser-like HTTP client that does not follow redirects.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("an HTTP client")
}

/// The page's form nonce, as a browser would submit it.
pub fn form_nonce(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker).expect("the page has a csrf field") + marker.len();
    html[start..].split('"').next().unwrap_or_default().to_owned()
}

/// Posts a button of the page at `url` as the page would.
pub async fn press(app: &TestApp, url: &str, decision: &str, nonce: &str) -> reqwest::Response {
    browser()
        .post(url)
        .header(ORIGIN, app.http_base())
        .form(&[("decision", decision), ("csrf", nonce)])
        .send()
        .await
        .expect("the page answers its form")
}

/// Opens the page at `url`, accepts, and returns where the buyer is sent.
pub async fn accept(app: &TestApp, url: &str) -> String {
    let page = browser()
        .get(url)
        .send()
        .await
        .expect("the page")
        .text()
        .await
        .expect("the page's HTML");
    let answered = press(app, url, "accept", &form_nonce(&page)).await;
    assert_eq!(answered.status(), reqwest::StatusCode::SEE_OTHER);
    answered.headers()[LOCATION].to_str().expect("a redirect").to_owned()
}
