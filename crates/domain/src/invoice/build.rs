//! Invoice lines for a period, a plan change and a component change.

use chrono::NaiveDate;

use super::{InvoiceLine, LineKind};
use crate::catalog::Offering;
use crate::error::{DomainError, Reason};
use crate::money::{Currency, Money, MoneyError};
use crate::period::Period;
use crate::subscription::{ComponentQuantity, PaymentType, Subscription};
use crate::text::Code;

/// Bundled and sponsored subscriptions cost nothing.
fn billable(subscription: &Subscription) -> bool {
    matches!(subscription.payment_type, PaymentType::Paid | PaymentType::Free)
}

fn component_price(offering: &Offering, code: &Code, currency: Currency) -> Result<Money, DomainError> {
    offering
        .components
        .iter()
        .find(|component| &component.code == code)
        .and_then(|component| component.unit_prices.price_in(currency))
        .ok_or_else(|| {
            DomainError::new(
                Reason::ComponentNotFound,
                format!(
                    "offering {} has no price for component {code} in {currency}",
                    offering.code
                ),
            )
        })
}

fn component_name<'a>(offering: &'a Offering, code: &'a Code) -> &'a str {
    offering
        .components
        .iter()
        .find(|component| &component.code == code)
        .map_or(code.as_str(), |component| component.display_name.as_str())
}

/// `amount × days ÷ period_days`, rounded half-up once for the whole line.
fn prorated(amount: Money, days: i64, period_days: i64) -> Result<Money, DomainError> {
    amount.mul_ratio_half_up(days, period_days).map_err(DomainError::from)
}

fn unit_times_quantity(unit: Money, quantity: i64) -> Result<Money, DomainError> {
    unit.checked_mul(quantity)
        .map_err(|error: MoneyError| DomainError::from(error))
}

/// The PLAN and COMPONENT lines for the subscription's current period: full
/// prices when the period is a whole anchor period, otherwise prorated by
/// days (a first period that starts between anchor dates, or that runs from
/// a trial's end to the next anchor date). Zero lines are left out.
pub fn period_lines(subscription: &Subscription, offering: &Offering) -> Result<Vec<InvoiceLine>, DomainError> {
    if !billable(subscription) {
        return Ok(Vec::new());
    }
    let period = subscription.current_period;
    let full = subscription
        .billing_anchor
        .period_containing(subscription.billing_interval, period.start);
    let (days, full_days) = (period.days(), full.days());
    let currency = subscription.purchase_price.currency();
    let mut lines = Vec::new();
    let plan = prorated(subscription.purchase_price, days, full_days)?;
    if !plan.is_zero() {
        lines.push(InvoiceLine {
            kind: LineKind::Plan,
            description: format!("{} ({} – {})", subscription.display_name, period.start, period.end),
            offering_code: Some(subscription.offering_code.clone()),
            component_code: None,
            quantity: 1,
            period,
            amount: plan,
        });
    }
    for held in &subscription.components {
        let unit = component_price(offering, &held.component_code, currency)?;
        let amount = prorated(unit_times_quantity(unit, i64::from(held.quantity))?, days, full_days)?;
        if amount.is_zero() {
            continue;
        }
        lines.push(InvoiceLine {
            kind: LineKind::Component,
            description: format!("{} × {}", held.quantity, component_name(offering, &held.component_code)),
            offering_code: Some(subscription.offering_code.clone()),
            component_code: Some(held.component_code.clone()),
            quantity: held.quantity,
            period,
            amount,
        });
    }
    Ok(lines)
}

/// The lines of an immediate plan change on `on`: a PRORATION_CREDIT for the
/// old plan's (and its components') unused days of its current period, and a
/// PRORATION_CHARGE for the new plan from `on` to the end of the new plan's
/// own period containing `on`, counted from the same anchor, so monthly ⇄
/// yearly changes are priced on the right period. The day of the change is
/// billed at the new plan.
pub fn plan_change_lines(
    before: &Subscription,
    old_offering: &Offering,
    after: &Subscription,
    new_offering: &Offering,
    on: NaiveDate,
) -> Result<Vec<InvoiceLine>, DomainError> {
    let mut lines = Vec::new();
    if billable(before) {
        let old_full = before.billing_anchor.period_containing(before.billing_interval, on);
        let unused = Period {
            start: on,
            end: before.current_period.end,
        };
        lines.extend(time_lines(
            before,
            old_offering,
            unused,
            old_full.days(),
            LineKind::ProrationCredit,
            "Unused time on",
        )?);
    }
    if billable(after) {
        let new_full = after.billing_anchor.period_containing(after.billing_interval, on);
        let remaining = Period {
            start: on,
            end: new_full.end,
        };
        lines.extend(time_lines(
            after,
            new_offering,
            remaining,
            new_full.days(),
            LineKind::ProrationCharge,
            "Remaining time on",
        )?);
    }
    Ok(lines)
}

/// Plan and component lines for `span` of a period of `period_days`, as
/// credits (negative) or charges.
fn time_lines(
    subscription: &Subscription,
    offering: &Offering,
    span: Period,
    period_days: i64,
    kind: LineKind,
    label: &str,
) -> Result<Vec<InvoiceLine>, DomainError> {
    let sign = |amount: Money| -> Result<Money, DomainError> {
        match kind {
            LineKind::ProrationCredit => amount.checked_neg().map_err(DomainError::from),
            _ => Ok(amount),
        }
    };
    let days = span.days().max(0);
    let currency = subscription.purchase_price.currency();
    let mut lines = Vec::new();
    let plan = prorated(subscription.purchase_price, days, period_days)?;
    if !plan.is_zero() {
        lines.push(InvoiceLine {
            kind,
            description: format!("{label} {} ({} – {})", subscription.display_name, span.start, span.end),
            offering_code: Some(subscription.offering_code.clone()),
            component_code: None,
            quantity: 1,
            period: span,
            amount: sign(plan)?,
        });
    }
    for held in &subscription.components {
        let unit = component_price(offering, &held.component_code, currency)?;
        let amount = prorated(unit_times_quantity(unit, i64::from(held.quantity))?, days, period_days)?;
        if amount.is_zero() {
            continue;
        }
        lines.push(InvoiceLine {
            kind,
            description: format!(
                "{label} {} × {}",
                held.quantity,
                component_name(offering, &held.component_code)
            ),
            offering_code: Some(subscription.offering_code.clone()),
            component_code: Some(held.component_code.clone()),
            quantity: held.quantity,
            period: span,
            amount: sign(amount)?,
        });
    }
    Ok(lines)
}

/// The lines of an immediate component change on `on`: for each component
/// whose quantity changed, the difference for the rest of the current period,
/// one line per component (a charge for more, a credit for fewer).
pub fn component_change_lines(
    subscription: &Subscription,
    offering: &Offering,
    old: &[ComponentQuantity],
    new: &[ComponentQuantity],
    on: NaiveDate,
) -> Result<Vec<InvoiceLine>, DomainError> {
    if !billable(subscription) {
        return Ok(Vec::new());
    }
    let full = subscription
        .billing_anchor
        .period_containing(subscription.billing_interval, on);
    let remaining = Period {
        start: on,
        end: subscription.current_period.end,
    };
    let currency = subscription.purchase_price.currency();
    let quantity_of = |list: &[ComponentQuantity], code: &Code| {
        list.iter()
            .find(|held| &held.component_code == code)
            .map_or(0, |held| i64::from(held.quantity))
    };
    let mut codes: Vec<&Code> = old.iter().chain(new).map(|held| &held.component_code).collect();
    codes.sort();
    codes.dedup();
    let mut lines = Vec::new();
    for code in codes {
        let delta = quantity_of(new, code) - quantity_of(old, code);
        if delta == 0 {
            continue;
        }
        let unit = component_price(offering, code, currency)?;
        let amount = prorated(unit_times_quantity(unit, delta)?, remaining.days().max(0), full.days())?;
        if amount.is_zero() {
            continue;
        }
        let (kind, label) = if delta > 0 {
            (LineKind::ProrationCharge, "Added")
        } else {
            (LineKind::ProrationCredit, "Removed")
        };
        lines.push(InvoiceLine {
            kind,
            description: format!(
                "{label} {} × {} ({} – {})",
                delta.abs(),
                component_name(offering, code),
                remaining.start,
                remaining.end
            ),
            offering_code: Some(subscription.offering_code.clone()),
            component_code: Some(code.clone()),
            quantity: u32::try_from(delta.unsigned_abs()).unwrap_or(u32::MAX),
            period: remaining,
            amount,
        });
    }
    Ok(lines)
}
