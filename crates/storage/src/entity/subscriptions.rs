use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "subscriptions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub display_name: String,
    pub business_id: String,
    pub buyer_id: String,
    pub directory_id: String,
    pub offering_id: String,
    pub offering_code: String,
    pub offering_type: String,
    pub family: String,
    pub state: String,
    pub payment_type: String,
    pub price_currency: String,
    pub price_minor: i64,
    pub billing_interval: String,
    pub billing_anchor: Date,
    #[sea_orm(column_type = "JsonBinary")]
    pub components: Json,
    pub coupon_code: Option<String>,
    pub trial_end_time: Option<DateTimeUtc>,
    pub period_start: Date,
    pub period_end: Date,
    pub cancellation_time: Option<DateTimeUtc>,
    pub cancel_reason: String,
    pub expiration_time: Option<DateTimeUtc>,
    pub auto_renew: bool,
    pub bundled_from_subscription_id: Option<String>,
    pub pending_offering_id: Option<String>,
    pub pending_offering_code: Option<String>,
    pub pending_effective_time: Option<DateTimeUtc>,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub held_change: Option<Json>,
    pub payment_status: String,
    pub dunning_attempt_count: i32,
    pub dunning_first_failure_time: Option<DateTimeUtc>,
    pub dunning_next_retry_time: Option<DateTimeUtc>,
    pub dunning_grace_end_time: Option<DateTimeUtc>,
    pub coupon_periods_used: i32,
    pub provider: String,
    pub provider_subscription_id: Option<String>,
    pub version: i64,
    pub create_time: DateTimeUtc,
    pub update_time: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
