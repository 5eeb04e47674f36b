//! Sends outgoing webhooks over HTTP: one POST, 15 s to answer, never
//! following redirects, and only to addresses the endpoint's host name may
//! resolve to (checked again at send time, so a name rebound to this
//! machine or to a cloud metadata address is refused).

use billing_app::webhooks::{AllowedHosts, SEND_TIMEOUT, SendResult, WebhookRequest, WebhookSender};

#[derive(Debug)]
pub struct HttpWebhookSender {
    client: reqwest::Client,
}

impl HttpWebhookSender {
    pub fn new() -> anyhow::Result<Self> {
        billing_provider_api::http::install_crypto_provider();
        let client = reqwest::Client::builder()
            .timeout(SEND_TIMEOUT)
            .connect_timeout(SEND_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("billing-service-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(HttpWebhookSender { client })
    }
}

#[async_trait::async_trait]
impl WebhookSender for HttpWebhookSender {
    async fn send(&self, request: WebhookRequest) -> SendResult {
        let url = url::Url::parse(&request.url).map_err(|error| format!("bad URL: {error}"))?;
        let host = url
            .host_str()
            .ok_or("the URL has no host")?
            .trim_matches(['[', ']'])
            .to_owned();
        let port = url.port_or_known_default().unwrap_or(443);
        let addresses = tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|error| format!("{host} does not resolve: {error}"))?;
        for address in addresses {
            if !AllowedHosts::resolved_allowed(&host, address.ip()) {
                return Err(format!("{host} resolved to {}, which is not allowed", address.ip()));
            }
        }
        let mut post = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        for (name, value) in request.headers {
            post = post.header(name, value);
        }
        match post.body(request.body).send().await {
            Ok(response) => Ok(response.status().as_u16()),
            Err(error) if error.is_timeout() => Err(format!("no answer within {} s", SEND_TIMEOUT.as_secs())),
            Err(error) if error.is_connect() => Err("the connection was refused".to_owned()),
            Err(error) => Err(format!("sending failed: {error}")),
        }
    }
}
