//! Which roles may call which RPC: the one table every request is checked
//! against before it reaches a service. What a role may see *within* an RPC
//! (its own tenants) is decided by the handlers through `billing_app::Access`.
//!
//! An RPC missing from the table is refused to every caller, and a test
//! compares the table with the descriptor set so a new RPC without a rule
//! fails the build.

use billing_domain::access::Role;

const SERVICE: &[Role] = &[Role::Service];
const SERVICE_DIRECTORY: &[Role] = &[Role::Service, Role::Directory];
const EVERY_ROLE: &[Role] = &[Role::Service, Role::Directory, Role::Business];

/// Full gRPC method path → the roles that may call it.
pub const RULES: &[(&str, &[Role])] = &[
    // Catalog: the platform curates it; directories and businesses read what
    // their directory sells. Coupon codes are not browsable by buyers.
    ("/billing.v1.CatalogService/CreateProduct", SERVICE),
    ("/billing.v1.CatalogService/ListProducts", EVERY_ROLE),
    ("/billing.v1.CatalogService/CreateOffering", SERVICE),
    ("/billing.v1.CatalogService/GetOffering", EVERY_ROLE),
    ("/billing.v1.CatalogService/ListOfferings", EVERY_ROLE),
    ("/billing.v1.CatalogService/UpdateOffering", SERVICE),
    ("/billing.v1.CatalogService/AssignOffering", SERVICE),
    ("/billing.v1.CatalogService/ListDirectoryOfferings", EVERY_ROLE),
    ("/billing.v1.CatalogService/CreateCoupon", SERVICE),
    ("/billing.v1.CatalogService/ListCoupons", SERVICE),
    // Subscriptions: every role within its scope, but provisioning is the
    // platform's or the directory's.
    ("/billing.v1.SubscriptionService/ProvisionBusiness", SERVICE_DIRECTORY),
    ("/billing.v1.SubscriptionService/CreateSubscription", EVERY_ROLE),
    ("/billing.v1.SubscriptionService/GetSubscription", EVERY_ROLE),
    ("/billing.v1.SubscriptionService/ListSubscriptions", EVERY_ROLE),
    ("/billing.v1.SubscriptionService/ChangePlan", EVERY_ROLE),
    ("/billing.v1.SubscriptionService/UpdateComponents", EVERY_ROLE),
    ("/billing.v1.SubscriptionService/Cancel", EVERY_ROLE),
    ("/billing.v1.SubscriptionService/Reactivate", EVERY_ROLE),
    ("/billing.v1.SubscriptionService/CheckEntitlement", EVERY_ROLE),
    ("/billing.v1.SubscriptionService/ListSubscriptionHistory", EVERY_ROLE),
    ("/billing.v1.SubscriptionService/PreviewInvoice", EVERY_ROLE),
    ("/billing.v1.InvoiceService/ListInvoices", EVERY_ROLE),
    ("/billing.v1.InvoiceService/GetInvoice", EVERY_ROLE),
    ("/billing.v1.PaymentMethodService/AttachPaymentMethod", EVERY_ROLE),
    ("/billing.v1.PaymentMethodService/GetPaymentMethod", EVERY_ROLE),
    ("/billing.v1.PaymentMethodService/DetachPaymentMethod", EVERY_ROLE),
    ("/billing.v1.CheckoutService/CreateCheckoutSession", EVERY_ROLE),
    ("/billing.v1.CheckoutService/GetCheckoutSession", EVERY_ROLE),
    ("/billing.v1.CheckoutService/CompleteCheckout", EVERY_ROLE),
    // The event stream: each caller its own tenants' events.
    ("/billing.v1.EventService/ListEvents", EVERY_ROLE),
    ("/billing.v1.EventService/WatchEvents", EVERY_ROLE),
    // Webhook endpoints: the platform's, and each directory's own.
    ("/billing.v1.EventService/CreateWebhookEndpoint", SERVICE_DIRECTORY),
    ("/billing.v1.EventService/ListWebhookEndpoints", SERVICE_DIRECTORY),
    ("/billing.v1.EventService/DeleteWebhookEndpoint", SERVICE_DIRECTORY),
    ("/billing.v1.EventService/RotateWebhookSecret", SERVICE_DIRECTORY),
    ("/billing.v1.EventService/ListDeliveries", SERVICE_DIRECTORY),
    ("/billing.v1.EventService/RedeliverEvents", SERVICE_DIRECTORY),
    // Failing background work is an operator's business.
    ("/billing.v1.OperationsService/ListFailingWork", SERVICE),
    ("/billing.v1.OperationsService/RetryWork", SERVICE),
    // Moving time is an operator's tool.
    ("/billing.v1.TestClockService/GetTime", SERVICE),
    ("/billing.v1.TestClockService/AdvanceClock", SERVICE),
];

/// Paths served without a token: probes and grpcurl's `list` / `describe`.
pub fn is_open(path: &str) -> bool {
    path.starts_with("/grpc.health.v1.Health/")
        || path.starts_with("/grpc.reflection.v1.ServerReflection/")
        || path.starts_with("/grpc.reflection.v1alpha.ServerReflection/")
}

/// Whether `role` may call the RPC at `path`; unknown paths are refused.
pub fn allows(path: &str, role: Role) -> bool {
    RULES
        .iter()
        .find(|(rule_path, _)| *rule_path == path)
        .is_some_and(|(_, roles)| roles.contains(&role))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use prost::Message;

    use super::*;

    /// Every method of every `billing.v1` service, from the descriptor set
    /// the server is built from.
    fn contract_methods() -> BTreeSet<String> {
        let set = prost_types::FileDescriptorSet::decode(billing_proto::FILE_DESCRIPTOR_SET).unwrap();
        set.file
            .iter()
            .filter(|file| file.package() == "billing.v1")
            .flat_map(|file| {
                file.service.iter().flat_map(|service| {
                    service
                        .method
                        .iter()
                        .map(|method| format!("/billing.v1.{}/{}", service.name(), method.name()))
                })
            })
            .collect()
    }

    #[test]
    fn every_rpc_of_the_contract_has_exactly_one_rule() {
        let methods = contract_methods();
        let ruled: Vec<&str> = RULES.iter().map(|(path, _)| *path).collect();
        let ruled_set: BTreeSet<String> = ruled.iter().map(|path| (*path).to_owned()).collect();
        assert_eq!(ruled.len(), ruled_set.len(), "a path has two rules");
        let missing: Vec<_> = methods.difference(&ruled_set).collect();
        assert!(missing.is_empty(), "RPCs without an authorisation rule: {missing:?}");
        let stale: Vec<_> = ruled_set.difference(&methods).collect();
        assert!(stale.is_empty(), "rules for RPCs that do not exist: {stale:?}");
    }

    #[test]
    fn the_platform_may_call_everything_and_unknown_paths_nobody() {
        for (path, _) in RULES {
            assert!(allows(path, Role::Service), "{path}");
        }
        for role in [Role::Service, Role::Directory, Role::Business] {
            assert!(!allows("/billing.v1.CatalogService/DropEverything", role));
        }
    }

    #[test]
    fn only_the_platform_changes_the_catalog_or_moves_the_clock() {
        for path in [
            "/billing.v1.CatalogService/CreateOffering",
            "/billing.v1.CatalogService/CreateCoupon",
            "/billing.v1.TestClockService/AdvanceClock",
        ] {
            assert!(
                !allows(path, Role::Directory) && !allows(path, Role::Business),
                "{path}"
            );
        }
        assert!(allows(
            "/billing.v1.SubscriptionService/ProvisionBusiness",
            Role::Directory
        ));
        assert!(!allows(
            "/billing.v1.SubscriptionService/ProvisionBusiness",
            Role::Business
        ));
    }

    #[test]
    fn probes_and_reflection_need_no_token() {
        assert!(is_open("/grpc.health.v1.Health/Check"));
        assert!(is_open(
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
        ));
        assert!(!is_open("/billing.v1.SubscriptionService/GetSubscription"));
    }
}
