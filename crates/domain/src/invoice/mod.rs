//! Invoices: what a subscription owes, line by line, to the minor unit.
//!
//! One code path builds every invoice, whether it is previewed or real:
//! [`period_lines`] for a period's charge (prorated when the period is only
//! part of its anchor period), [`plan_change_lines`] and
//! [`component_change_lines`] for immediate changes, then [`finalize`] for
//! the coupon and account credit. Every amount is `price × days ÷ days in
//! period`, rounded half-up once per line; a daily rate is never rounded.

mod build;
#[cfg(test)]
mod tests;

pub use build::{component_change_lines, period_lines, plan_change_lines};

use crate::catalog::{Coupon, CouponDuration, Discount};
use crate::error::{DomainError, Reason};
use crate::money::{Currency, Money};
use crate::period::Period;
use crate::text::Code;

text_enum!(
    /// What a line is for.
    LineKind {
        /// The plan's price for a period.
        Plan => "PLAN",
        /// A component's price × quantity for a period.
        Component => "COMPONENT",
        /// Unused time of the old plan or quantity, given back (negative).
        ProrationCredit => "PRORATION_CREDIT",
        /// Remaining time of the new plan or quantity.
        ProrationCharge => "PRORATION_CHARGE",
        /// A coupon (negative).
        Discount => "DISCOUNT",
    }
);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvoiceLine {
    pub kind: LineKind,
    pub description: String,
    pub offering_code: Option<Code>,
    pub component_code: Option<Code>,
    pub quantity: u32,
    /// The days this line pays for.
    pub period: Period,
    pub amount: Money,
}

/// An invoice's lines and totals, before it is stored or charged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvoiceDraft {
    pub currency: Currency,
    /// Charges and credits, then the discount line if any.
    pub lines: Vec<InvoiceLine>,
    /// The sum of the lines before the discount.
    pub subtotal: Money,
    /// How much the coupon took off (zero or positive).
    pub discount: Money,
    /// `subtotal − discount`; negative when credits outweigh charges.
    pub total: Money,
    /// Account credit spent on this invoice.
    pub credit_applied: Money,
    /// What is charged: `total − credit_applied`, never negative.
    pub amount_due: Money,
    /// The business's credit in this currency after this invoice.
    pub credit_balance_after: Money,
    /// Whether the coupon discounted it (a REPEATING coupon counts periods).
    pub coupon_applied: bool,
}

/// Whether a coupon discounts an invoice: a period invoice (first or renewal)
/// when the coupon's duration has periods left, given how many periods it
/// already discounted; a change invoice while the coupon is in force.
pub fn coupon_in_force(coupon: &Coupon, periods_discounted: u32, period_invoice: bool) -> bool {
    match coupon.duration {
        CouponDuration::Forever => true,
        CouponDuration::Once => period_invoice && periods_discounted == 0,
        CouponDuration::Repeating { periods } => {
            let limit = u32::from(periods);
            if period_invoice {
                periods_discounted < limit
            } else {
                periods_discounted > 0 && periods_discounted <= limit
            }
        }
    }
}

/// Totals an invoice: the coupon (if in force) on the subtotal, never below
/// zero; then the business's account credit before anything is charged; a
/// negative total becomes credit.
pub fn finalize(
    currency: Currency,
    mut lines: Vec<InvoiceLine>,
    coupon: Option<&Coupon>,
    credit_balance: Money,
) -> Result<InvoiceDraft, DomainError> {
    let overflow = |error: crate::MoneyError| DomainError::from(error);
    let mut subtotal = Money::zero(currency);
    for line in &lines {
        subtotal = subtotal.checked_add(line.amount).map_err(overflow)?;
    }
    let discount = match coupon {
        Some(coupon) if subtotal.amount_minor() > 0 => discount_of(coupon, subtotal)?,
        _ => Money::zero(currency),
    };
    if let (Some(coupon), false) = (coupon, discount.is_zero()) {
        let period = lines.first().map_or(
            Period {
                start: chrono::NaiveDate::MIN,
                end: chrono::NaiveDate::MIN,
            },
            |line| line.period,
        );
        lines.push(InvoiceLine {
            kind: LineKind::Discount,
            description: format!("Coupon {}", coupon.code),
            offering_code: None,
            component_code: None,
            quantity: 1,
            period,
            amount: discount.checked_neg().map_err(overflow)?,
        });
    }
    let total = subtotal.checked_sub(discount).map_err(overflow)?;
    if credit_balance.currency() != currency || credit_balance.is_negative() {
        return Err(DomainError::new(
            Reason::Internal,
            "account credit must be non-negative, in the invoice's currency",
        ));
    }
    let (credit_applied, amount_due, credit_balance_after) = if total.is_negative() {
        let added = total.checked_neg().map_err(overflow)?;
        (
            Money::zero(currency),
            Money::zero(currency),
            credit_balance.checked_add(added).map_err(overflow)?,
        )
    } else {
        let applied = Money::new(credit_balance.amount_minor().min(total.amount_minor()), currency);
        (
            applied,
            total.checked_sub(applied).map_err(overflow)?,
            credit_balance.checked_sub(applied).map_err(overflow)?,
        )
    };
    Ok(InvoiceDraft {
        currency,
        lines,
        subtotal,
        discount,
        total,
        credit_applied,
        amount_due,
        credit_balance_after,
        coupon_applied: !discount.is_zero(),
    })
}

/// A coupon's discount on a positive subtotal, never more than the subtotal.
fn discount_of(coupon: &Coupon, subtotal: Money) -> Result<Money, DomainError> {
    let discount = match coupon.discount {
        Discount::PercentOff(bps) => subtotal
            .mul_ratio_half_up(i64::from(bps), 10_000)
            .map_err(DomainError::from)?,
        Discount::AmountOff(amount) if amount.currency() == subtotal.currency() => amount,
        // A coupon in another currency was refused at purchase; it cannot apply.
        Discount::AmountOff(_) => Money::zero(subtotal.currency()),
    };
    Ok(Money::new(
        discount.amount_minor().min(subtotal.amount_minor()),
        subtotal.currency(),
    ))
}

text_enum!(
    /// Where an invoice is in its life.
    InvoiceStatus {
        /// Waiting to be charged.
        Open => "OPEN",
        Paid => "PAID",
        /// The last charge failed; dunning retries it.
        PaymentFailed => "PAYMENT_FAILED",
        /// Cancelled before it was paid.
        Void => "VOID",
        /// Dunning gave up.
        Uncollectible => "UNCOLLECTIBLE",
    }
);

/// An issued invoice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invoice {
    pub id: crate::ids::InvoiceId,
    /// Human-facing, sequential: `INV-000042`.
    pub number: String,
    pub subscription_id: crate::ids::SubscriptionId,
    pub business_id: crate::text::ExternalId,
    pub draft: InvoiceDraft,
    pub status: InvoiceStatus,
    /// Charges tried.
    pub attempt_count: u32,
    /// When the next charge is due while OPEN or PAYMENT_FAILED.
    pub next_attempt_time: Option<chrono::DateTime<chrono::Utc>>,
    pub create_time: chrono::DateTime<chrono::Utc>,
    pub paid_time: Option<chrono::DateTime<chrono::Utc>>,
}

impl Invoice {
    /// Issues a draft: nothing to collect makes it PAID at once (a zero
    /// invoice, or one paid from account credit); otherwise it is OPEN and
    /// due for a charge now. It has no number until it is written (see
    /// [`Invoice::is_numbered`]).
    pub fn issue(
        draft: InvoiceDraft,
        id: crate::ids::InvoiceId,
        subscription: &crate::subscription::Subscription,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Self {
        let settled = draft.amount_due.is_zero();
        Invoice {
            id,
            number: String::new(),
            subscription_id: subscription.id.clone(),
            business_id: subscription.business_id.clone(),
            draft,
            status: if settled {
                InvoiceStatus::Paid
            } else {
                InvoiceStatus::Open
            },
            attempt_count: 0,
            next_attempt_time: (!settled).then_some(now),
            create_time: now,
            paid_time: settled.then_some(now),
        }
    }

    /// Still waiting for money: OPEN or PAYMENT_FAILED.
    pub fn is_unpaid(&self) -> bool {
        matches!(self.status, InvoiceStatus::Open | InvoiceStatus::PaymentFailed)
    }

    /// Whether the invoice has its number. Numbers are gap-free, so the
    /// counter they come from is one row every issuing transaction locks:
    /// a new invoice takes its number as late in its transaction as it can,
    /// when it is written, and until then has none.
    pub fn is_numbered(&self) -> bool {
        !self.number.is_empty()
    }

    /// The provider idempotency key of the next attempt: the same for every
    /// retry of that attempt, after a crash included.
    pub fn attempt_key(&self) -> String {
        format!("{}:attempt:{}", self.id, self.attempt_count + 1)
    }

    /// The charge succeeded.
    pub fn paid(&self, now: chrono::DateTime<chrono::Utc>) -> Self {
        Invoice {
            status: InvoiceStatus::Paid,
            attempt_count: self.attempt_count + 1,
            next_attempt_time: None,
            paid_time: Some(now),
            ..self.clone()
        }
    }

    /// The purchase it billed did not happen (its first charge was declined).
    pub fn void(&self) -> Self {
        Invoice {
            status: InvoiceStatus::Void,
            attempt_count: self.attempt_count + 1,
            next_attempt_time: None,
            ..self.clone()
        }
    }

    /// The charge failed; `retry_at` is the next attempt, or `None` when
    /// dunning gave up (the invoice becomes UNCOLLECTIBLE).
    pub fn payment_failed(&self, retry_at: Option<chrono::DateTime<chrono::Utc>>) -> Self {
        Invoice {
            status: if retry_at.is_some() {
                InvoiceStatus::PaymentFailed
            } else {
                InvoiceStatus::Uncollectible
            },
            attempt_count: self.attempt_count + 1,
            next_attempt_time: retry_at,
            ..self.clone()
        }
    }
}
