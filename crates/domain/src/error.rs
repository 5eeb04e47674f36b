//! The error vocabulary of the service: a closed set of [`Reason`]s, each with
//! exactly one [`ErrorKind`], plus per-field violations for bad input.
//!
//! Failures come in four kinds, each its own type so that code cannot
//! confuse them: a rule's refusal ([`DomainError`]: the request or the state
//! says no, the message is for the client), the provider's refusal
//! ([`Refusal`](crate::Refusal): a card declined, its words kept), unavailability (a
//! dependency did not answer; the app's type, since the domain does no I/O)
//! and a fault ([`Fault`](crate::Fault): a bug or corrupt data, for the log only).
//!
//! Reasons are a contract (DESIGN §3): clients match on the string from
//! [`Reason::as_str`], which the server sends as `ErrorInfo.reason`.

use std::fmt;

/// The few ways a request can fail, each mapped to one gRPC code by the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request itself is wrong; retrying it unchanged cannot succeed.
    InvalidArgument,
    /// The resource the request targets does not exist.
    NotFound,
    /// The resource the request would create exists already.
    AlreadyExists,
    /// The request is well-formed but the current state does not allow it.
    FailedPrecondition,
    /// A concurrent change won; retry with fresh state.
    Aborted,
    /// A dependency (database, provider) is down, or the server sheds load;
    /// retry later.
    Unavailable,
    /// No valid credentials came with the request.
    Unauthenticated,
    /// The caller is known but may not do this.
    PermissionDenied,
    /// The request is larger than the server accepts.
    ResourceExhausted,
    /// The request did not finish within its deadline.
    DeadlineExceeded,
    /// A bug or an unexpected failure.
    Internal,
}

macro_rules! reasons {
    ($($(#[$meta:meta])* $variant:ident => $text:literal,)+) => {
        /// Why a request failed, as sent in `ErrorInfo.reason`.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Reason {
            $($(#[$meta])* $variant,)+
        }

        impl Reason {
            /// Every reason there is.
            pub const ALL: &[Reason] = &[$(Reason::$variant,)+];

            /// The `SCREAMING_SNAKE_CASE` string sent to clients.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Reason::$variant => $text,)+
                }
            }

            /// Parses the text of [`Self::as_str`].
            pub fn from_text(text: &str) -> Option<Self> {
                match text {
                    $($text => Some(Reason::$variant),)+
                    _ => None,
                }
            }
        }
    };
}

reasons! {
    // Generic input errors.
    /// A field is missing, malformed, or out of range.
    FieldInvalid => "FIELD_INVALID",
    /// A code (handle) is empty or has characters outside `[A-Za-z0-9._-]`.
    CodeInvalid => "CODE_INVALID",
    /// `page_size` is negative or above the maximum.
    PageSizeInvalid => "PAGE_SIZE_INVALID",
    /// `page_token` was not issued for this request.
    PageTokenInvalid => "PAGE_TOKEN_INVALID",
    /// `update_mask` is empty or names a field that cannot be updated.
    UpdateMaskInvalid => "UPDATE_MASK_INVALID",
    // Money.
    /// An ISO 4217 code that is unknown or has no minor unit (e.g. XAU).
    CurrencyUnknown => "CURRENCY_UNKNOWN",
    /// Two amounts in one list share a currency.
    DuplicateCurrency => "DUPLICATE_CURRENCY",
    /// A price is negative, missing, or free in one currency but not another.
    PriceInvalid => "PRICE_INVALID",
    /// The offering has no price in the requested currency.
    PriceNotFoundForCurrency => "PRICE_NOT_FOUND_FOR_CURRENCY",
    // Catalog.
    /// A product with this code exists.
    ProductAlreadyExists => "PRODUCT_ALREADY_EXISTS",
    /// A referenced product does not exist.
    ProductNotFound => "PRODUCT_NOT_FOUND",
    /// An offering with this code exists.
    OfferingAlreadyExists => "OFFERING_ALREADY_EXISTS",
    /// The offering does not exist.
    OfferingNotFound => "OFFERING_NOT_FOUND",
    /// A bundled offering code names no offering.
    BundledOfferingNotFound => "BUNDLED_OFFERING_NOT_FOUND",
    /// Bundling would make an offering (indirectly) bundle itself.
    BundleCycle => "BUNDLE_CYCLE",
    /// The requested status change is not allowed (RETIRED is final).
    OfferingStatusTransitionInvalid => "OFFERING_STATUS_TRANSITION_INVALID",
    /// Prices of an offering that has subscriptions cannot change.
    OfferingPricesImmutable => "OFFERING_PRICES_IMMUTABLE",
    /// A retired offering cannot be assigned to a directory.
    OfferingRetired => "OFFERING_RETIRED",
    /// The offering is not sold in the business's directory.
    OfferingNotAvailable => "OFFERING_NOT_AVAILABLE",
    /// Another offering of the same family is the directory's default.
    DefaultOfferingConflict => "DEFAULT_OFFERING_CONFLICT",
    /// Default offerings are given away, so they must be free.
    DefaultOfferingNotFree => "DEFAULT_OFFERING_NOT_FREE",
    /// Component codes repeat.
    DuplicateComponents => "DUPLICATE_COMPONENTS",
    /// The offering has no component with this code.
    ComponentNotFound => "COMPONENT_NOT_FOUND",
    /// A component quantity is zero or negative.
    ComponentQuantityInvalid => "COMPONENT_QUANTITY_INVALID",
    /// A coupon with this code exists.
    CouponAlreadyExists => "COUPON_ALREADY_EXISTS",
    /// The coupon does not exist, has expired, or does not apply.
    CouponInvalid => "COUPON_INVALID",
    // Subscriptions.
    /// The business was never provisioned with ProvisionBusiness.
    BusinessNotProvisioned => "BUSINESS_NOT_PROVISIONED",
    /// The business already holds an active subscription of the family.
    AlreadySubscribed => "ALREADY_SUBSCRIBED",
    /// The subscription does not exist.
    SubscriptionNotFound => "SUBSCRIPTION_NOT_FOUND",
    /// The subscription is canceled or expired.
    SubscriptionNotActive => "SUBSCRIPTION_NOT_ACTIVE",
    /// A bundled subscription follows its parent and is not changed alone.
    SubscriptionIsBundled => "SUBSCRIPTION_IS_BUNDLED",
    /// The target is the subscription's current offering.
    SamePlan => "SAME_PLAN",
    /// Plan changes stay inside one offering family.
    CrossFamilyChange => "CROSS_FAMILY_CHANGE",
    /// A change charged now waits for its payment; no other plan change or
    /// components update until it is paid or dropped.
    ChangeAwaitingPayment => "CHANGE_AWAITING_PAYMENT",
    /// The etag sent is not the current one: reload and retry.
    EtagMismatch => "ETAG_MISMATCH",
    /// The idempotency key was used before with a different request.
    IdempotencyKeyReused => "IDEMPOTENCY_KEY_REUSED",
    /// A request with this idempotency key is still running.
    IdempotencyKeyInUse => "IDEMPOTENCY_KEY_IN_USE",
    /// The business was provisioned in another directory.
    BusinessDirectoryMismatch => "BUSINESS_DIRECTORY_MISMATCH",
    /// The business has no payment method.
    PaymentMethodNotFound => "PAYMENT_METHOD_NOT_FOUND",
    /// A paid purchase needs a payment method on file.
    PaymentMethodRequired => "PAYMENT_METHOD_REQUIRED",
    /// The card was declined.
    PaymentDeclined => "PAYMENT_DECLINED",
    /// A purchase's first charge did not succeed in time (or was declined
    /// after an outage): nothing was bought.
    IncompleteExpired => "INCOMPLETE_EXPIRED",
    /// The invoice does not exist.
    InvoiceNotFound => "INVOICE_NOT_FOUND",
    /// The billing provider did not answer; retry later.
    ProviderUnavailable => "PROVIDER_UNAVAILABLE",
    // Checkout.
    /// A checkout update carries a plan or components, never both.
    PlanAndComponentsTogether => "PLAN_AND_COMPONENTS_TOGETHER",
    /// `return_url` is not an absolute http(s) URL.
    ReturnUrlInvalid => "RETURN_URL_INVALID",
    /// `return_url` points at a host not in `checkout.allowed_return_hosts`.
    ReturnUrlNotAllowed => "RETURN_URL_NOT_ALLOWED",
    /// A webhook endpoint URL outside `events.allowed_hosts`, or not https.
    WebhookUrlNotAllowed => "WEBHOOK_URL_NOT_ALLOWED",
    /// The webhook endpoint does not exist (or is another directory's).
    WebhookEndpointNotFound => "WEBHOOK_ENDPOINT_NOT_FOUND",
    /// The checkout session does not exist.
    CheckoutSessionNotFound => "CHECKOUT_SESSION_NOT_FOUND",
    /// No checkout token was sent.
    CheckoutTokenMissing => "CHECKOUT_TOKEN_MISSING",
    /// The checkout token is malformed or was never issued.
    CheckoutTokenInvalid => "CHECKOUT_TOKEN_INVALID",
    /// The checkout token was used already (accepted, declined, or failed).
    CheckoutTokenUsed => "CHECKOUT_TOKEN_USED",
    /// The checkout token outlived `checkout.token_ttl`.
    CheckoutTokenExpired => "CHECKOUT_TOKEN_EXPIRED",
    /// The buyer declined on the consent page.
    ConsentRejected => "CONSENT_REJECTED",
    // Callers and limits.
    /// No `authorization: Bearer` token came with the request.
    AuthTokenMissing => "AUTH_TOKEN_MISSING",
    /// The token is malformed, badly signed, not yet valid, or its claims
    /// are not ones this service accepts.
    AuthTokenInvalid => "AUTH_TOKEN_INVALID",
    /// The token's `exp` has passed.
    AuthTokenExpired => "AUTH_TOKEN_EXPIRED",
    /// The caller's role may not call this RPC, or the request names a
    /// business or directory outside the caller's scope.
    PermissionDenied => "PERMISSION_DENIED",
    /// A string field is longer than the server accepts.
    FieldTooLong => "FIELD_TOO_LONG",
    /// A repeated field has more items than the server accepts.
    TooManyItems => "TOO_MANY_ITEMS",
    /// The encoded request is larger than `server.max_message_bytes`.
    MessageTooLarge => "MESSAGE_TOO_LARGE",
    /// The server is at `server.max_concurrent_requests`; retry with backoff.
    ServerOverloaded => "SERVER_OVERLOADED",
    /// The request outlived its deadline (the client's or
    /// `server.request_timeout_seconds`).
    DeadlineExceeded => "DEADLINE_EXCEEDED",
    // Infrastructure.
    /// The database could not be reached.
    DatabaseUnavailable => "DATABASE_UNAVAILABLE",
    /// An unexpected failure; details are in the server log only.
    Internal => "INTERNAL",
}

impl Reason {
    /// The one kind of failure this reason belongs to.
    pub fn kind(self) -> ErrorKind {
        match self {
            Reason::FieldInvalid
            | Reason::CodeInvalid
            | Reason::PageSizeInvalid
            | Reason::PageTokenInvalid
            | Reason::UpdateMaskInvalid
            | Reason::CurrencyUnknown
            | Reason::DuplicateCurrency
            | Reason::PriceInvalid
            | Reason::PriceNotFoundForCurrency
            | Reason::ProductNotFound
            | Reason::BundledOfferingNotFound
            | Reason::BundleCycle
            | Reason::DuplicateComponents
            | Reason::ComponentNotFound
            | Reason::ComponentQuantityInvalid
            | Reason::CouponInvalid
            | Reason::PlanAndComponentsTogether
            | Reason::ReturnUrlInvalid
            | Reason::ReturnUrlNotAllowed
            | Reason::WebhookUrlNotAllowed
            | Reason::CheckoutTokenMissing
            | Reason::FieldTooLong
            | Reason::TooManyItems
            | Reason::IdempotencyKeyReused => ErrorKind::InvalidArgument,
            Reason::OfferingNotFound
            | Reason::SubscriptionNotFound
            | Reason::BusinessNotProvisioned
            | Reason::PaymentMethodNotFound
            | Reason::InvoiceNotFound
            | Reason::CheckoutSessionNotFound
            | Reason::WebhookEndpointNotFound
            | Reason::CheckoutTokenInvalid => ErrorKind::NotFound,
            Reason::ProductAlreadyExists
            | Reason::OfferingAlreadyExists
            | Reason::CouponAlreadyExists
            | Reason::AlreadySubscribed => ErrorKind::AlreadyExists,
            Reason::OfferingStatusTransitionInvalid
            | Reason::OfferingPricesImmutable
            | Reason::OfferingRetired
            | Reason::OfferingNotAvailable
            | Reason::DefaultOfferingConflict
            | Reason::DefaultOfferingNotFree
            | Reason::BusinessDirectoryMismatch
            | Reason::PaymentMethodRequired
            | Reason::PaymentDeclined
            | Reason::IncompleteExpired
            | Reason::SubscriptionNotActive
            | Reason::SubscriptionIsBundled
            | Reason::SamePlan
            | Reason::CrossFamilyChange
            | Reason::ChangeAwaitingPayment
            | Reason::CheckoutTokenUsed
            | Reason::CheckoutTokenExpired
            | Reason::ConsentRejected => ErrorKind::FailedPrecondition,
            Reason::EtagMismatch | Reason::IdempotencyKeyInUse => ErrorKind::Aborted,
            Reason::DatabaseUnavailable | Reason::ProviderUnavailable | Reason::ServerOverloaded => {
                ErrorKind::Unavailable
            }
            Reason::AuthTokenMissing | Reason::AuthTokenInvalid | Reason::AuthTokenExpired => {
                ErrorKind::Unauthenticated
            }
            Reason::PermissionDenied => ErrorKind::PermissionDenied,
            Reason::MessageTooLarge => ErrorKind::ResourceExhausted,
            Reason::DeadlineExceeded => ErrorKind::DeadlineExceeded,
            Reason::Internal => ErrorKind::Internal,
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// One bad field of a request: where it is, why it is bad, and a sentence for
/// the human reading the error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldViolation {
    /// Dotted path in the request, e.g. `offering.prices[1].currency_code`.
    pub field: String,
    pub reason: Reason,
    pub description: String,
}

impl FieldViolation {
    pub fn new(field: impl Into<String>, reason: Reason, description: impl Into<String>) -> Self {
        FieldViolation {
            field: field.into(),
            reason,
            description: description.into(),
        }
    }

    /// The same violation with `prefix.` in front of its field path.
    pub fn prefixed(mut self, prefix: &str) -> Self {
        self.field = if self.field.is_empty() {
            prefix.to_owned()
        } else if self.field.starts_with('[') {
            format!("{prefix}{}", self.field)
        } else {
            format!("{prefix}.{}", self.field)
        };
        self
    }
}

/// A rule of the domain said no.
///
/// For bad input it carries every violation found, not only the first, so a
/// client can fix a request in one round trip; `reason` is the first one's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DomainError {
    reason: Reason,
    message: String,
    violations: Vec<FieldViolation>,
}

impl DomainError {
    /// An error that is about the state of things rather than one field.
    pub fn new(reason: Reason, message: impl Into<String>) -> Self {
        DomainError {
            reason,
            message: message.into(),
            violations: Vec::new(),
        }
    }

    /// An error about one field.
    pub fn field(field: impl Into<String>, reason: Reason, description: impl Into<String>) -> Self {
        Self::from_violations(vec![FieldViolation::new(field, reason, description)])
            .unwrap_or_else(|| DomainError::new(Reason::Internal, "empty violation list"))
    }

    /// An error from every violation found; `None` when there are none.
    pub fn from_violations(violations: Vec<FieldViolation>) -> Option<Self> {
        let first = violations.first()?;
        let message = violations
            .iter()
            .map(|violation| format!("{}: {}", violation.field, violation.description))
            .collect::<Vec<_>>()
            .join("; ");
        Some(DomainError {
            reason: first.reason,
            message,
            violations,
        })
    }

    pub fn reason(&self) -> Reason {
        self.reason
    }

    pub fn kind(&self) -> ErrorKind {
        self.reason.kind()
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn violations(&self) -> &[FieldViolation] {
        &self.violations
    }

    /// The same error with every field path put under `prefix`. Bad input
    /// that named no field (a value that failed to parse) becomes a violation
    /// of `prefix` itself; errors about state are left as they are.
    pub fn prefixed(mut self, prefix: &str) -> Self {
        if self.violations.is_empty() {
            if self.kind() != ErrorKind::InvalidArgument {
                return self;
            }
            return DomainError::field(prefix, self.reason, self.message);
        }
        let violations = std::mem::take(&mut self.violations)
            .into_iter()
            .map(|violation| violation.prefixed(prefix))
            .collect();
        Self::from_violations(violations).unwrap_or(self)
    }
}

/// Collects field violations while a request is checked, so that all of them
/// are reported together.
#[derive(Debug, Default)]
pub struct Violations(Vec<FieldViolation>);

impl Violations {
    pub fn new() -> Self {
        Violations::default()
    }

    pub fn push(&mut self, field: impl Into<String>, reason: Reason, description: impl Into<String>) {
        self.0.push(FieldViolation::new(field, reason, description));
    }

    /// Keeps the value of `result`, or records its violations under `prefix`.
    pub fn check<T>(&mut self, prefix: &str, result: Result<T, DomainError>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(error) => {
                let error = error.prefixed(prefix);
                if error.violations.is_empty() {
                    // An error about state, not input: still recorded under
                    // the field it arose from.
                    self.push(prefix, error.reason, error.message);
                } else {
                    self.0.extend(error.violations);
                }
                None
            }
        }
    }

    /// Keeps the value of `result`, or records its violations, which
    /// already name their fields.
    pub fn keep<T>(&mut self, result: Result<T, DomainError>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(error) => {
                self.0.extend(error.violations);
                None
            }
        }
    }

    /// An optional field: `None` when `text` is empty, else its parsed
    /// value (or `None` with its violations recorded under `field`).
    pub fn check_optional<T>(
        &mut self,
        field: &str,
        text: &str,
        parse: impl FnOnce(&str) -> Result<T, DomainError>,
    ) -> Option<T> {
        if text.is_empty() {
            return None;
        }
        self.check(field, parse(text))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The error carrying everything recorded; call it once a check returned
    /// `None`, so at least one violation is there.
    pub fn into_error(self) -> DomainError {
        DomainError::from_violations(self.0)
            .unwrap_or_else(|| DomainError::new(Reason::Internal, "a check failed without a violation"))
    }

    /// `Ok(())` when nothing was recorded, else the error carrying everything.
    pub fn into_result(self) -> Result<(), DomainError> {
        match DomainError::from_violations(self.0) {
            None => Ok(()),
            Some(error) => Err(error),
        }
    }
}

#[cfg(test)]
#[path = "error_tests.rs"]
mod tests;
