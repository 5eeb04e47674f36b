//! Checkout sessions: one buyer's single-use consent to one purchase or one
//! change, reached through a token and answered once.
//!
//! A session is `OPEN` until the buyer decides. Declining ends it `REJECTED`.
//! Accepting records the decision first, then the purchase or change runs;
//! its outcome ends the session `COMPLETED` (with the subscription) or
//! `FAILED` (with the reason). An open session past its `expire_time` is
//! `EXPIRED`. Asking again with the same decision is answered with the same
//! outcome (a double click makes one subscription); any other use of a
//! decided session is `CHECKOUT_TOKEN_USED`.

#[path = "return_url.rs"]
mod return_url;

use chrono::{DateTime, Utc};

use crate::error::{DomainError, Reason, Violations};
use crate::ids::{CheckoutSessionId, SubscriptionId};
use crate::subscription::ComponentQuantityDraft;
use crate::text::{Code, ExternalId};

pub use return_url::{MAX_RETURN_URL_LEN, ReturnUrl};

text_enum!(
    /// What a session asks the buyer to consent to.
    CheckoutKind {
        NewSubscription => "NEW_SUBSCRIPTION",
        UpdateSubscription => "UPDATE_SUBSCRIPTION",
    }
);

text_enum!(
    /// Where a session stands. `Expired` is never stored: it is an open
    /// session observed after its `expire_time`. `Pending`: accepted, the
    /// purchase made, its first charge not settled yet.
    CheckoutStatus {
        Open => "OPEN",
        Pending => "PENDING",
        Completed => "COMPLETED",
        Rejected => "REJECTED",
        Failed => "FAILED",
        Expired => "EXPIRED",
    }
);

text_enum!(
    /// The buyer's answer.
    Decision {
        Accept => "ACCEPT",
        Reject => "REJECT",
    }
);

/// What the buyer consents to, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Order {
    /// Buy an offering.
    Purchase {
        offering_code: Code,
        currency_code: String,
        components: Vec<ComponentQuantityDraft>,
        coupon_code: Option<Code>,
    },
    /// Move a subscription to another plan of its family.
    PlanChange {
        subscription_id: SubscriptionId,
        offering_code: Code,
    },
    /// Set a subscription's components to this full set.
    Components {
        subscription_id: SubscriptionId,
        components: Vec<ComponentQuantityDraft>,
    },
}

impl Order {
    pub fn kind(&self) -> CheckoutKind {
        match self {
            Order::Purchase { .. } => CheckoutKind::NewSubscription,
            Order::PlanChange { .. } | Order::Components { .. } => CheckoutKind::UpdateSubscription,
        }
    }

    /// The offering bought, or the plan changed to.
    pub fn offering_code(&self) -> Option<&Code> {
        match self {
            Order::Purchase { offering_code, .. } | Order::PlanChange { offering_code, .. } => Some(offering_code),
            Order::Components { .. } => None,
        }
    }

    /// The components bought, or the full set an update asks for.
    pub fn components(&self) -> &[ComponentQuantityDraft] {
        match self {
            Order::Purchase { components, .. } | Order::Components { components, .. } => components,
            Order::PlanChange { .. } => &[],
        }
    }

    /// A purchase's currency (an update keeps the subscription's).
    pub fn currency_code(&self) -> Option<&str> {
        match self {
            Order::Purchase { currency_code, .. } => Some(currency_code),
            Order::PlanChange { .. } | Order::Components { .. } => None,
        }
    }

    /// A purchase's coupon.
    pub fn coupon_code(&self) -> Option<&Code> {
        match self {
            Order::Purchase { coupon_code, .. } => coupon_code.as_ref(),
            Order::PlanChange { .. } | Order::Components { .. } => None,
        }
    }

    /// The subscription an update changes.
    pub fn subscription_id(&self) -> Option<&SubscriptionId> {
        match self {
            Order::Purchase { .. } => None,
            Order::PlanChange { subscription_id, .. } | Order::Components { subscription_id, .. } => {
                Some(subscription_id)
            }
        }
    }
}

/// CreateCheckoutSession as a client sent it.
#[derive(Clone, Debug, Default)]
pub struct CheckoutDraft {
    pub business_id: String,
    pub buyer_id: String,
    /// `None` for an unspecified kind.
    pub kind: Option<CheckoutKind>,
    pub offering_code: String,
    pub components: Vec<ComponentQuantityDraft>,
    pub subscription_id: String,
    pub currency_code: String,
    pub coupon_code: String,
    pub return_url: String,
}

/// A draft that passed every check that needs no stored state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckedDraft {
    pub business_id: ExternalId,
    pub buyer_id: ExternalId,
    pub order: Order,
    pub return_url: ReturnUrl,
}

impl CheckoutDraft {
    /// Checks the shape of the request, reporting every bad field at once.
    /// Rules that need the catalog or the subscription (unknown offering, no
    /// price in the currency, already subscribed, …) are the purchase's and
    /// change's own, checked by running them in a preview.
    pub fn check(&self, allowed_return_hosts: &[String]) -> Result<CheckedDraft, DomainError> {
        let mut violations = Violations::new();
        let business_id = violations.check("business_id", ExternalId::parse(&self.business_id));
        let buyer_id = violations.check("buyer_id", ExternalId::parse(&self.buyer_id));
        let return_url = violations.check("return_url", ReturnUrl::parse(&self.return_url, allowed_return_hosts));
        let order = match self.kind {
            None => {
                violations.push(
                    "kind",
                    Reason::FieldInvalid,
                    "must be NEW_SUBSCRIPTION or UPDATE_SUBSCRIPTION",
                );
                None
            }
            Some(CheckoutKind::NewSubscription) => self.purchase(&mut violations),
            Some(CheckoutKind::UpdateSubscription) => self.update(&mut violations),
        };
        match (business_id, buyer_id, return_url, order) {
            (Some(business_id), Some(buyer_id), Some(return_url), Some(order)) if violations.is_empty() => {
                Ok(CheckedDraft {
                    business_id,
                    buyer_id,
                    order,
                    return_url,
                })
            }
            _ => Err(violations.into_error()),
        }
    }

    fn purchase(&self, violations: &mut Violations) -> Option<Order> {
        if !self.subscription_id.is_empty() {
            violations.push(
                "subscription_id",
                Reason::FieldInvalid,
                "a NEW_SUBSCRIPTION session takes no subscription_id",
            );
        }
        if self.currency_code.is_empty() {
            violations.push("currency_code", Reason::FieldInvalid, "must not be empty");
        }
        let offering_code = violations.check("offering_code", Code::parse(&self.offering_code));
        let coupon_code = if self.coupon_code.is_empty() {
            Some(None)
        } else {
            violations
                .check("coupon_code", Code::parse(&self.coupon_code))
                .map(Some)
        };
        Some(Order::Purchase {
            offering_code: offering_code?,
            currency_code: self.currency_code.clone(),
            components: self.components.clone(),
            coupon_code: coupon_code?,
        })
    }

    fn update(&self, violations: &mut Violations) -> Option<Order> {
        let subscription_id = violations.check("subscription_id", SubscriptionId::parse(&self.subscription_id));
        if !self.coupon_code.is_empty() {
            violations.push(
                "coupon_code",
                Reason::FieldInvalid,
                "coupons apply to purchases; an UPDATE_SUBSCRIPTION session takes none",
            );
        }
        match (self.offering_code.is_empty(), self.components.is_empty()) {
            (false, false) => {
                violations.push(
                    "components",
                    Reason::PlanAndComponentsTogether,
                    "an update changes the plan (offering_code) or the components, never both",
                );
                None
            }
            (true, true) => {
                violations.push(
                    "offering_code",
                    Reason::FieldInvalid,
                    "an update needs offering_code (a plan change) or components",
                );
                None
            }
            (false, true) => {
                let offering_code = violations.check("offering_code", Code::parse(&self.offering_code));
                Some(Order::PlanChange {
                    subscription_id: subscription_id?,
                    offering_code: offering_code?,
                })
            }
            (true, false) => Some(Order::Components {
                subscription_id: subscription_id?,
                components: self.components.clone(),
            }),
        }
    }
}

/// Why an accepted session did not complete.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckoutFailure {
    /// A reason of DESIGN §3, as sent in the redirect's `error`.
    pub reason: String,
    pub message: String,
}

/// A checkout session as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckoutSession {
    pub id: CheckoutSessionId,
    /// SHA-256 of the token, hex. The token itself is never stored.
    pub token_hash: String,
    /// A per-session secret the consent page's forms carry (CSRF).
    pub form_nonce: String,
    pub business_id: ExternalId,
    pub buyer_id: ExternalId,
    pub order: Order,
    pub return_url: ReturnUrl,
    /// As stored: never `Expired` (see [`CheckoutSession::status_at`]).
    pub status: CheckoutStatus,
    pub decision: Option<Decision>,
    pub result_subscription_id: Option<SubscriptionId>,
    pub failure: Option<CheckoutFailure>,
    pub create_time: DateTime<Utc>,
    pub expire_time: DateTime<Utc>,
    pub decide_time: Option<DateTime<Utc>>,
    pub complete_time: Option<DateTime<Utc>>,
}

/// What a decision does to a session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decided {
    /// The decision is new (or an accept still in flight): carry it out.
    Proceed(CheckoutSession),
    /// The same decision was carried out before: answer with its outcome.
    Finished,
}

impl CheckoutSession {
    /// The status as observed at `now`.
    pub fn status_at(&self, now: DateTime<Utc>) -> CheckoutStatus {
        if self.status == CheckoutStatus::Open && self.decision.is_none() && now >= self.expire_time {
            return CheckoutStatus::Expired;
        }
        self.status
    }

    /// The session as observed at `now` (an open one past its expiry reads
    /// `EXPIRED`).
    pub fn as_of(&self, now: DateTime<Utc>) -> CheckoutSession {
        let mut observed = self.clone();
        observed.status = self.status_at(now);
        observed
    }

    /// Whether the consent page may still be shown: not decided, not expired.
    pub fn check_open(&self, now: DateTime<Utc>) -> Result<(), DomainError> {
        if self.decision.is_some() || self.status != CheckoutStatus::Open {
            return Err(self.used());
        }
        if self.status_at(now) == CheckoutStatus::Expired {
            return Err(self.expired());
        }
        Ok(())
    }

    /// Records the buyer's `decision`, if it may be taken.
    pub fn decide(&self, decision: Decision, now: DateTime<Utc>) -> Result<Decided, DomainError> {
        match self.decision {
            Some(taken) if taken != decision => Err(self.used()),
            // The same answer again: finished, or an accept still running
            // (or cut short by a crash) that its idempotency key resumes.
            Some(_) if self.status == CheckoutStatus::Open => Ok(Decided::Proceed(self.clone())),
            Some(_) => Ok(Decided::Finished),
            None if self.status_at(now) == CheckoutStatus::Expired => Err(self.expired()),
            None => {
                let mut decided = self.clone();
                decided.decision = Some(decision);
                decided.decide_time = Some(now);
                if decision == Decision::Reject {
                    decided.status = CheckoutStatus::Rejected;
                    decided.failure = Some(CheckoutFailure {
                        reason: Reason::ConsentRejected.as_str().to_owned(),
                        message: "the buyer declined".to_owned(),
                    });
                    decided.complete_time = Some(now);
                }
                Ok(Decided::Proceed(decided))
            }
        }
    }

    /// The accepted purchase was made but its first charge has no answer
    /// yet: the buyer returns told so, and the session ends when the
    /// charge settles.
    pub fn pending(&self, subscription_id: SubscriptionId) -> CheckoutSession {
        let mut waiting = self.clone();
        waiting.status = CheckoutStatus::Pending;
        waiting.result_subscription_id = Some(subscription_id);
        waiting
    }

    /// The accepted purchase or change went through.
    pub fn completed(&self, subscription_id: SubscriptionId, now: DateTime<Utc>) -> CheckoutSession {
        let mut done = self.clone();
        done.status = CheckoutStatus::Completed;
        done.result_subscription_id = Some(subscription_id);
        done.complete_time = Some(now);
        done
    }

    /// The accepted purchase or change was refused.
    pub fn failed(&self, reason: Reason, message: &str, now: DateTime<Utc>) -> CheckoutSession {
        let mut done = self.clone();
        done.status = CheckoutStatus::Failed;
        done.failure = Some(CheckoutFailure {
            reason: reason.as_str().to_owned(),
            message: message.to_owned(),
        });
        done.complete_time = Some(now);
        done
    }

    /// Where the buyer goes once the session is over: `return_url` with
    /// `business_id` and `subscription_id` (and `status=pending` while the
    /// purchase's charge is unsettled), or with `error` and
    /// `error_message`; `None` while it is open.
    pub fn redirect_url(&self) -> Option<String> {
        let session = ("checkout_session_id", self.id.as_str());
        match (self.status, &self.result_subscription_id, &self.failure) {
            (CheckoutStatus::Completed, Some(subscription_id), _) => Some(self.return_url.with_query(&[
                ("business_id", self.business_id.as_str()),
                ("subscription_id", subscription_id.as_str()),
                session,
            ])),
            (CheckoutStatus::Pending, Some(subscription_id), _) => Some(self.return_url.with_query(&[
                ("business_id", self.business_id.as_str()),
                ("subscription_id", subscription_id.as_str()),
                ("status", "pending"),
                session,
            ])),
            (CheckoutStatus::Rejected | CheckoutStatus::Failed, _, Some(failure)) => {
                Some(self.return_url.with_query(&[
                    ("business_id", self.business_id.as_str()),
                    ("error", &failure.reason),
                    ("error_message", &failure.message),
                    session,
                ]))
            }
            _ => None,
        }
    }

    fn used(&self) -> DomainError {
        DomainError::new(
            Reason::CheckoutTokenUsed,
            format!("checkout session {} was answered already", self.id),
        )
    }

    fn expired(&self) -> DomainError {
        DomainError::new(
            Reason::CheckoutTokenExpired,
            format!(
                "checkout session {} expired at {}",
                self.id,
                self.expire_time.to_rfc3339()
            ),
        )
    }
}

#[cfg(test)]
#[path = "checkout_tests.rs"]
mod tests;
