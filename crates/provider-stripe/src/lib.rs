//! Stripe as the payment gateway: this service is the billing engine and
//! Stripe moves the money.
//!
//! Attaching finds or creates the business's Customer and attaches the
//! PaymentMethod to it; a charge is a PaymentIntent confirmed off-session,
//! sent with the attempt's key as `Idempotency-Key`, so a retry (ours or the
//! executor's) never charges twice. Declines come back as
//! [`ChargeOutcome::Declined`] with Stripe's decline code and feed dunning;
//! 5xx, 429 and timeouts are retried and then `Unavailable`.

pub mod api;
pub mod webhook;

use async_trait::async_trait;
use billing_provider_api::http::{self, Auth, Call, HttpExecutor, HttpSettings};
use billing_provider_api::{
    ChargeOutcome, ChargeRequest, InboundEvent, PaymentMethod, PaymentProvider, Provider, ProviderError,
};
use reqwest::Method;
use secrecy::SecretString;

/// Stripe's API.
pub const DEFAULT_BASE_URL: &str = "https://api.stripe.com";

#[derive(Clone, Debug)]
pub struct StripeProvider {
    http: HttpExecutor,
}

impl StripeProvider {
    pub fn new(api_key: SecretString, settings: HttpSettings) -> Result<Self, ProviderError> {
        Ok(StripeProvider {
            http: HttpExecutor::new(Provider::Stripe.as_str(), settings, Auth::Bearer(api_key))?,
        })
    }

    async fn call(&self, call: Call) -> Result<serde_json::Value, ProviderError> {
        let reply = self.http.execute(&call).await?;
        let body = reply.json(call.operation)?;
        if !reply.is_success() {
            return Err(api::api_error(reply.status, &body));
        }
        Ok(body)
    }

    /// The business's Customer: found by its metadata, else created (keyed
    /// by the business, so concurrent attaches make one).
    async fn customer(&self, business_id: &str) -> Result<String, ProviderError> {
        let found = self
            .call(Call::new(
                "search_customers",
                Method::GET,
                api::customer_search_path(business_id),
            ))
            .await?;
        if let Some(customer) = api::parse_customer_search(&found) {
            return Ok(customer);
        }
        let created = self
            .call(
                Call::new("create_customer", Method::POST, "/v1/customers")
                    .form(api::customer_form(business_id))
                    .idempotency_key(format!("customer:{business_id}")),
            )
            .await?;
        api::parse_customer(&created)
    }
}

#[async_trait]
impl PaymentProvider for StripeProvider {
    fn name(&self) -> Provider {
        Provider::Stripe
    }

    fn read_webhook(&self, body: &[u8]) -> Option<InboundEvent> {
        webhook::read(body)
    }

    async fn attach_payment_method(&self, business_id: &str, token: &str) -> Result<PaymentMethod, ProviderError> {
        let customer = self.customer(business_id).await?;
        let path = format!("/v1/payment_methods/{}/attach", http::path_segment(token));
        let attached = self
            .call(
                Call::new("attach_payment_method", Method::POST, path)
                    .form(api::attach_form(&customer))
                    .idempotency_key(format!("attach:{business_id}:{token}")),
            )
            .await?;
        api::parse_payment_method(&attached)
    }

    async fn charge(&self, request: &ChargeRequest) -> Result<ChargeOutcome, ProviderError> {
        let (customer, payment_method) = api::split_reference(&request.payment_method)?;
        let call = Call::new("create_payment_intent", Method::POST, "/v1/payment_intents")
            .form(api::payment_intent_form(request, customer, payment_method))
            .idempotency_key(request.idempotency_key.clone());
        let reply = self.http.execute(&call).await?;
        let body = reply.json(call.operation)?;
        api::parse_charge(reply.status, &body)
    }

    async fn find_charge(&self, idempotency_key: &str) -> Result<Option<ChargeOutcome>, ProviderError> {
        let found = self
            .call(Call::new(
                "search_payment_intents",
                Method::GET,
                api::payment_intent_search_path(idempotency_key),
            ))
            .await?;
        Ok(api::parse_intent_search(&found))
    }
}
