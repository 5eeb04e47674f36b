//! Invoices, payment methods and account credit.

use billing_domain::ids::{InvoiceId, SubscriptionId};
use billing_domain::invoice::{Invoice, InvoiceDraft, InvoiceLine, InvoiceStatus, LineKind};
use billing_domain::payment_method::PaymentMethod;
use billing_domain::period::Period;
use billing_domain::text::ExternalId;
use billing_domain::{Currency, Money, Provider};
use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QueryTrait, Statement};
use serde::{Deserialize, Serialize};

use crate::entity::{credit_balances, invoices, payment_methods};
use crate::error::StorageError;
use crate::rows::RowContext;
use crate::{Backend, catalog};

/// Which invoices a list returns.
#[derive(Clone, Debug)]
pub enum InvoiceFilter {
    Business(ExternalId),
    Subscription(SubscriptionId),
}

/// A payment method as stored for a business.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredPaymentMethod {
    pub business_id: ExternalId,
    pub method: PaymentMethod,
    pub create_time: DateTime<Utc>,
}

#[derive(Serialize, Deserialize)]
struct LineJson {
    kind: String,
    description: String,
    offering_code: Option<String>,
    component_code: Option<String>,
    quantity: u32,
    period_start: NaiveDate,
    period_end: NaiveDate,
    amount_minor: i64,
}

pub struct BillingStore<'a, C> {
    conn: &'a C,
    backend: Backend,
}

impl<'a, C: ConnectionTrait> BillingStore<'a, C> {
    pub(crate) fn new(conn: &'a C, backend: Backend) -> Self {
        BillingStore { conn, backend }
    }

    /// The next invoice number, `INV-000001` onwards, without gaps from
    /// committed invoices (the counter moves in the caller's transaction).
    pub async fn next_invoice_number(&self) -> Result<String, StorageError> {
        let statement = Statement::from_string(
            self.backend.dialect(),
            "UPDATE counters SET value = value + 1 WHERE name = 'invoice' RETURNING value",
        );
        let row = self
            .conn
            .query_one_raw(statement)
            .await?
            .ok_or_else(|| RowContext::new("counters", "invoice").corrupt("the invoice counter is missing"))?;
        let value: i64 = row.try_get("", "value")?;
        Ok(format!("INV-{value:06}"))
    }

    pub async fn insert_invoice(&self, invoice: &Invoice) -> Result<(), StorageError> {
        invoices::Entity::insert(invoice_to_row(invoice))
            .exec(self.conn)
            .await?;
        Ok(())
    }

    pub async fn update_invoice(&self, invoice: &Invoice) -> Result<(), StorageError> {
        invoices::Entity::update(invoice_to_row(invoice))
            .exec(self.conn)
            .await?;
        Ok(())
    }

    pub async fn get_invoice(&self, id: &InvoiceId) -> Result<Option<Invoice>, StorageError> {
        invoices::Entity::find_by_id(id.as_str().to_owned())
            .one(self.conn)
            .await?
            .map(invoice_from_row)
            .transpose()
    }

    /// The subscription's invoice still waiting for money, if any.
    pub async fn unpaid_invoice(&self, subscription_id: &SubscriptionId) -> Result<Option<Invoice>, StorageError> {
        invoices::Entity::find()
            .filter(invoices::Column::SubscriptionId.eq(subscription_id.as_str()))
            .filter(
                invoices::Column::Status.is_in([InvoiceStatus::Open.as_str(), InvoiceStatus::PaymentFailed.as_str()]),
            )
            .order_by_desc(invoices::Column::Id)
            .one(self.conn)
            .await?
            .map(invoice_from_row)
            .transpose()
    }

    pub async fn list_invoices(
        &self,
        filter: &InvoiceFilter,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<Invoice>, StorageError> {
        let query = invoices::Entity::find()
            .apply_if(
                match filter {
                    InvoiceFilter::Business(id) => Some(id.as_str()),
                    InvoiceFilter::Subscription(_) => None,
                },
                |query, id| query.filter(invoices::Column::BusinessId.eq(id)),
            )
            .apply_if(
                match filter {
                    InvoiceFilter::Subscription(id) => Some(id.as_str()),
                    InvoiceFilter::Business(_) => None,
                },
                |query, id| query.filter(invoices::Column::SubscriptionId.eq(id)),
            );
        catalog::keyset_page(self.conn, query, invoices::Column::Id, after, limit, invoice_from_row).await
    }

    /// Attaches (or replaces) the business's payment method.
    pub async fn put_payment_method(
        &self,
        business_id: &ExternalId,
        method: &PaymentMethod,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        let row = payment_methods::ActiveModel {
            business_id: Set(business_id.as_str().to_owned()),
            provider: Set(method.provider.as_str().to_owned()),
            reference: Set(method.reference.clone()),
            brand: Set(method.brand.clone()),
            last4: Set(method.last4.clone()),
            exp_month: Set(i32::try_from(method.exp_month).unwrap_or(0)),
            exp_year: Set(i32::try_from(method.exp_year).unwrap_or(0)),
            create_time: Set(now),
        };
        let on_conflict = OnConflict::column(payment_methods::Column::BusinessId)
            .update_columns([
                payment_methods::Column::Provider,
                payment_methods::Column::Reference,
                payment_methods::Column::Brand,
                payment_methods::Column::Last4,
                payment_methods::Column::ExpMonth,
                payment_methods::Column::ExpYear,
                payment_methods::Column::CreateTime,
            ])
            .to_owned();
        payment_methods::Entity::insert(row)
            .on_conflict(on_conflict)
            .exec(self.conn)
            .await?;
        Ok(())
    }

    pub async fn get_payment_method(
        &self,
        business_id: &ExternalId,
    ) -> Result<Option<StoredPaymentMethod>, StorageError> {
        let Some(row) = payment_methods::Entity::find_by_id(business_id.as_str().to_owned())
            .one(self.conn)
            .await?
        else {
            return Ok(None);
        };
        let context = RowContext::new("payment_methods", &row.business_id);
        Ok(Some(StoredPaymentMethod {
            business_id: ExternalId::parse(&row.business_id).map_err(|e| context.corrupt(e))?,
            method: PaymentMethod {
                provider: context.enum_text(&row.provider, Provider::from_text)?,
                reference: row.reference.clone(),
                brand: row.brand.clone(),
                last4: row.last4.clone(),
                exp_month: u32::try_from(row.exp_month).map_err(|e| context.corrupt(e))?,
                exp_year: u32::try_from(row.exp_year).map_err(|e| context.corrupt(e))?,
            },
            create_time: row.create_time,
        }))
    }

    /// Removes the business's payment method; whether there was one.
    pub async fn delete_payment_method(&self, business_id: &ExternalId) -> Result<bool, StorageError> {
        let deleted = payment_methods::Entity::delete_by_id(business_id.as_str().to_owned())
            .exec(self.conn)
            .await?;
        Ok(deleted.rows_affected > 0)
    }

    /// The business's account credit in a currency (zero if none).
    pub async fn credit_balance(&self, business_id: &ExternalId, currency: Currency) -> Result<Money, StorageError> {
        let row = credit_balances::Entity::find_by_id((business_id.as_str().to_owned(), currency.code().to_owned()))
            .one(self.conn)
            .await?;
        Ok(Money::new(row.map_or(0, |row| row.amount_minor), currency))
    }

    pub async fn set_credit_balance(&self, business_id: &ExternalId, balance: Money) -> Result<(), StorageError> {
        let row = credit_balances::ActiveModel {
            business_id: Set(business_id.as_str().to_owned()),
            currency: Set(balance.currency().code().to_owned()),
            amount_minor: Set(balance.amount_minor()),
        };
        let on_conflict = OnConflict::columns([credit_balances::Column::BusinessId, credit_balances::Column::Currency])
            .update_column(credit_balances::Column::AmountMinor)
            .to_owned();
        credit_balances::Entity::insert(row)
            .on_conflict(on_conflict)
            .exec(self.conn)
            .await?;
        Ok(())
    }
}

fn invoice_to_row(invoice: &Invoice) -> invoices::ActiveModel {
    let draft = &invoice.draft;
    let lines: Vec<LineJson> = draft
        .lines
        .iter()
        .map(|line| LineJson {
            kind: line.kind.as_str().to_owned(),
            description: line.description.clone(),
            offering_code: line.offering_code.as_ref().map(|code| code.as_str().to_owned()),
            component_code: line.component_code.as_ref().map(|code| code.as_str().to_owned()),
            quantity: line.quantity,
            period_start: line.period.start,
            period_end: line.period.end,
            amount_minor: line.amount.amount_minor(),
        })
        .collect();
    invoices::ActiveModel {
        id: Set(invoice.id.as_str().to_owned()),
        number: Set(invoice.number.clone()),
        subscription_id: Set(invoice.subscription_id.as_str().to_owned()),
        business_id: Set(invoice.business_id.as_str().to_owned()),
        currency: Set(draft.currency.code().to_owned()),
        lines: Set(serde_json::json!(lines)),
        subtotal_minor: Set(draft.subtotal.amount_minor()),
        discount_minor: Set(draft.discount.amount_minor()),
        total_minor: Set(draft.total.amount_minor()),
        credit_applied_minor: Set(draft.credit_applied.amount_minor()),
        amount_due_minor: Set(draft.amount_due.amount_minor()),
        credit_balance_after_minor: Set(draft.credit_balance_after.amount_minor()),
        coupon_applied: Set(draft.coupon_applied),
        status: Set(invoice.status.as_str().to_owned()),
        attempt_count: Set(i32::try_from(invoice.attempt_count).unwrap_or(i32::MAX)),
        next_attempt_time: Set(invoice.next_attempt_time),
        create_time: Set(invoice.create_time),
        paid_time: Set(invoice.paid_time),
    }
}

fn invoice_from_row(row: invoices::Model) -> Result<Invoice, StorageError> {
    let context = RowContext::new("invoices", &row.id);
    let currency = Currency::from_code(&row.currency).map_err(|e| context.corrupt(e))?;
    let money = |minor: i64| Money::new(minor, currency);
    let lines: Vec<LineJson> = serde_json::from_value(row.lines.clone()).map_err(|e| context.corrupt(e))?;
    let code = |text: Option<String>| text.map(|text| context.code(&text)).transpose();
    let lines = lines
        .into_iter()
        .map(|line| {
            Ok(InvoiceLine {
                kind: context.enum_text(&line.kind, LineKind::from_text)?,
                description: line.description,
                offering_code: code(line.offering_code)?,
                component_code: code(line.component_code)?,
                quantity: line.quantity,
                period: Period {
                    start: line.period_start,
                    end: line.period_end,
                },
                amount: money(line.amount_minor),
            })
        })
        .collect::<Result<Vec<_>, StorageError>>()?;
    Ok(Invoice {
        id: InvoiceId::parse(&row.id).map_err(|e| context.corrupt(e))?,
        number: row.number.clone(),
        subscription_id: SubscriptionId::parse(&row.subscription_id).map_err(|e| context.corrupt(e))?,
        business_id: ExternalId::parse(&row.business_id).map_err(|e| context.corrupt(e))?,
        draft: InvoiceDraft {
            currency,
            lines,
            subtotal: money(row.subtotal_minor),
            discount: money(row.discount_minor),
            total: money(row.total_minor),
            credit_applied: money(row.credit_applied_minor),
            amount_due: money(row.amount_due_minor),
            credit_balance_after: money(row.credit_balance_after_minor),
            coupon_applied: row.coupon_applied,
        },
        status: InvoiceStatus::from_text(&row.status)
            .ok_or_else(|| context.corrupt(format!("unknown status {:?}", row.status)))?,
        attempt_count: u32::try_from(row.attempt_count).map_err(|e| context.corrupt(e))?,
        next_attempt_time: row.next_attempt_time,
        create_time: row.create_time,
        paid_time: row.paid_time,
    })
}
