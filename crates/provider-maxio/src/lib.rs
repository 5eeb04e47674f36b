//! Maxio Advanced Billing (formerly Chargify) as the partner's billing
//! engine: subscriptions are created, migrated, re-allocated, canceled and
//! reactivated there by product, price-point and component handles; Maxio
//! charges, retries and dunns, and its signed webhooks tell this service
//! what happened.
//!
//! Maxio has no idempotency keys. Creates carry our subscription id as the
//! subscription `reference`, which Maxio keeps unique: a create repeated after
//! a lost answer is refused ("Reference has already been taken") and the
//! first one is found by `GET /subscriptions/lookup.json?reference=…`. The
//! other calls set a state, so repeating them is harmless.

pub mod api;
pub mod webhook;

use async_trait::async_trait;
use billing_provider_api::http::{Auth, Call, HttpExecutor, HttpSettings};
use billing_provider_api::{
    EngineState, EngineSubscription, InboundEvent, PlanChangePreview, Provider, ProviderError, ProviderErrorKind,
    SubscriptionEngine,
};
use reqwest::Method;
use secrecy::SecretString;

/// `https://{subdomain}.chargify.com`.
pub fn base_url(subdomain: &str) -> String {
    format!("https://{subdomain}.chargify.com")
}

#[derive(Clone, Debug)]
pub struct MaxioProvider {
    http: HttpExecutor,
}

impl MaxioProvider {
    /// HTTP Basic with the API key as user and `x` as password.
    pub fn new(api_key: SecretString, settings: HttpSettings) -> Result<Self, ProviderError> {
        let auth = Auth::Basic {
            user: api_key,
            password: SecretString::from("x"),
        };
        Ok(MaxioProvider {
            http: HttpExecutor::new(Provider::Maxio.as_str(), settings, auth)?,
        })
    }

    async fn call(&self, call: Call) -> Result<serde_json::Value, ProviderError> {
        let reply = self.http.execute(&call).await?;
        let body = if reply.body.is_empty() {
            serde_json::Value::Null
        } else {
            reply.json(call.operation)?
        };
        if !reply.is_success() {
            return Err(api::api_error(reply.status, &body));
        }
        Ok(body)
    }

    fn state(subscription: &api::MaxioSubscription) -> EngineState {
        EngineState {
            provider_id: subscription.id.to_string(),
            state: subscription.state.clone(),
        }
    }
}

fn subscription_path(provider_id: &str, rest: &str) -> Result<String, ProviderError> {
    if provider_id.is_empty() || !provider_id.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(ProviderError::new(
            ProviderErrorKind::InvalidRequest,
            format!("{provider_id:?} is not a Maxio subscription id"),
        ));
    }
    Ok(format!("/subscriptions/{provider_id}{rest}"))
}

#[async_trait]
impl SubscriptionEngine for MaxioProvider {
    fn name(&self) -> Provider {
        Provider::Maxio
    }

    fn read_webhook(&self, body: &[u8]) -> Option<InboundEvent> {
        webhook::read(body)
    }

    async fn create_subscription(&self, subscription: &EngineSubscription) -> Result<EngineState, ProviderError> {
        let new = api::NewMaxioSubscription {
            reference: subscription.reference.clone(),
            customer_reference: subscription.customer_reference.clone(),
            product_handle: subscription.product_handle.clone(),
            product_price_point_handle: subscription.price_point_handle.clone(),
            components: subscription.components.clone(),
            coupon_code: subscription.coupon_code.clone(),
        };
        let call = Call::new("create_subscription", Method::POST, "/subscriptions.json").json(api::create_body(&new));
        let reply = self.http.execute(&call).await?;
        let body = reply.json(call.operation)?;
        if reply.is_success() {
            return Ok(Self::state(&api::parse_subscription(&body)?));
        }
        if reply.status == 422 && api::reference_taken(&body) {
            // An earlier create went through and its answer was lost.
            if let Some(found) = self.find_subscription(&subscription.reference).await? {
                return Ok(found);
            }
        }
        Err(api::api_error(reply.status, &body))
    }

    async fn find_subscription(&self, reference: &str) -> Result<Option<EngineState>, ProviderError> {
        let query = billing_provider_api::http::form_encode(&[("reference".to_owned(), reference.to_owned())]);
        let call = Call::new(
            "find_subscription",
            Method::GET,
            format!("/subscriptions/lookup.json?{query}"),
        );
        let reply = self.http.execute(&call).await?;
        if reply.status == 404 {
            return Ok(None);
        }
        let body = reply.json(call.operation)?;
        if !reply.is_success() {
            return Err(api::api_error(reply.status, &body));
        }
        Ok(Some(Self::state(&api::parse_subscription(&body)?)))
    }

    async fn preview_plan_change(
        &self,
        provider_id: &str,
        product_handle: &str,
        price_point_handle: Option<&str>,
    ) -> Result<PlanChangePreview, ProviderError> {
        let path = subscription_path(provider_id, "/migrations/preview.json")?;
        let body = self
            .call(
                Call::new("preview_migration", Method::POST, path)
                    .json(api::migration_body(product_handle, price_point_handle)),
            )
            .await?;
        let preview = api::parse_migration_preview(&body)?;
        Ok(PlanChangePreview {
            charge_minor: preview.charge_in_cents,
            payment_due_minor: preview.payment_due_in_cents,
            credit_applied_minor: preview.credit_applied_in_cents,
        })
    }

    async fn change_plan(
        &self,
        provider_id: &str,
        product_handle: &str,
        price_point_handle: Option<&str>,
    ) -> Result<EngineState, ProviderError> {
        let path = subscription_path(provider_id, "/migrations.json")?;
        let body = self
            .call(
                Call::new("migrate_subscription", Method::POST, path)
                    .json(api::migration_body(product_handle, price_point_handle)),
            )
            .await?;
        Ok(Self::state(&api::parse_subscription(&body)?))
    }

    async fn schedule_plan_change(&self, provider_id: &str, product_handle: &str) -> Result<(), ProviderError> {
        let path = subscription_path(provider_id, ".json")?;
        self.call(
            Call::new("delayed_product_change", Method::PUT, path)
                .json(api::delayed_product_change_body(product_handle)),
        )
        .await?;
        Ok(())
    }

    async fn set_component_quantity(
        &self,
        provider_id: &str,
        component_handle: &str,
        quantity: u32,
    ) -> Result<(), ProviderError> {
        let path = subscription_path(
            provider_id,
            &format!(
                "/components/handle:{}/allocations.json",
                billing_provider_api::http::path_segment(component_handle)
            ),
        )?;
        self.call(Call::new("allocate_component", Method::POST, path).json(api::allocation_body(quantity)))
            .await?;
        Ok(())
    }

    async fn cancel(&self, provider_id: &str, at_period_end: bool, reason: &str) -> Result<(), ProviderError> {
        let call = if at_period_end {
            Call::new(
                "delayed_cancel",
                Method::POST,
                subscription_path(provider_id, "/delayed_cancel.json")?,
            )
        } else {
            Call::new(
                "cancel_subscription",
                Method::DELETE,
                subscription_path(provider_id, ".json")?,
            )
        };
        self.call(call.json(api::cancel_body(reason))).await?;
        Ok(())
    }

    async fn reactivate(&self, provider_id: &str) -> Result<(), ProviderError> {
        // A cancel at the period end is undone by deleting it; one that took
        // effect needs a reactivation.
        let undo = Call::new(
            "undo_delayed_cancel",
            Method::DELETE,
            subscription_path(provider_id, "/delayed_cancel.json")?,
        );
        match self.call(undo).await {
            Ok(_) => Ok(()),
            Err(error) if error.kind() == ProviderErrorKind::InvalidRequest => {
                self.call(Call::new(
                    "reactivate_subscription",
                    Method::PUT,
                    subscription_path(provider_id, "/reactivate.json")?,
                ))
                .await?;
                Ok(())
            }
            Err(error) => Err(error),
        }
    }
}
