//! Issuing invoices inside a change's transaction.

use billing_domain::DomainError;
use billing_domain::catalog::Offering;
use billing_domain::ids::InvoiceId;
use billing_domain::invoice::{Invoice, InvoiceLine, coupon_in_force, finalize, period_lines};
use billing_domain::subscription::Subscription;
use billing_storage::Tx;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::AppError;

/// Issues an invoice of `lines` for `subscription`: the coupon if it is in
/// force (`period_invoice`: a first or renewal invoice, which uses up one of a
/// REPEATING coupon's periods), then account credit. `None` when there are
/// no lines. Moves the business's credit balance in the same transaction.
pub(crate) async fn issue_invoice(
    tx: &Tx,
    subscription: &mut Subscription,
    lines: Vec<InvoiceLine>,
    period_invoice: bool,
    now: DateTime<Utc>,
) -> Result<Option<Invoice>, AppError> {
    if lines.is_empty() {
        return Ok(None);
    }
    let coupon = match &subscription.coupon_code {
        Some(code) => tx.catalog().get_coupon_by_code(code).await?,
        None => None,
    };
    let coupon = coupon.filter(|coupon| coupon_in_force(coupon, subscription.coupon_periods_used, period_invoice));
    let currency = subscription.purchase_price.currency();
    let credit = tx.billing().credit_balance(&subscription.business_id, currency).await?;
    let draft = finalize(currency, lines, coupon.as_ref(), credit)?;
    if draft.coupon_applied && period_invoice {
        subscription.coupon_periods_used += 1;
    }
    if draft.credit_balance_after != credit {
        tx.billing()
            .set_credit_balance(&subscription.business_id, draft.credit_balance_after)
            .await?;
    }
    // Numbered when written (`persist`), as late in the transaction as can be.
    Ok(Some(Invoice::issue(
        draft,
        InvoiceId::from_uuid(Uuid::now_v7()),
        subscription,
        now,
    )))
}

/// A voided invoice gives back the account credit it had used.
pub(crate) async fn give_back_credit(tx: &Tx, voided: &Invoice) -> Result<(), AppError> {
    if voided.draft.credit_applied.is_zero() {
        return Ok(());
    }
    let balance = tx
        .billing()
        .credit_balance(&voided.business_id, voided.draft.currency)
        .await?;
    let given_back = balance
        .checked_add(voided.draft.credit_applied)
        .map_err(DomainError::from)?;
    tx.billing().set_credit_balance(&voided.business_id, given_back).await?;
    Ok(())
}

/// The invoice for the subscription's current period, if it costs anything.
pub(crate) async fn period_invoice(
    tx: &Tx,
    subscription: &mut Subscription,
    offering: &Offering,
    now: DateTime<Utc>,
) -> Result<Option<Invoice>, AppError> {
    let lines = period_lines(subscription, offering)?;
    issue_invoice(tx, subscription, lines, true, now).await
}
