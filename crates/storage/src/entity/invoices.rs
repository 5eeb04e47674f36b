use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "invoices")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    #[sea_orm(unique)]
    pub number: String,
    pub subscription_id: String,
    pub business_id: String,
    pub currency: String,
    #[sea_orm(column_type = "JsonBinary")]
    pub lines: Json,
    pub subtotal_minor: i64,
    pub discount_minor: i64,
    pub total_minor: i64,
    pub credit_applied_minor: i64,
    pub amount_due_minor: i64,
    pub credit_balance_after_minor: i64,
    pub coupon_applied: bool,
    pub status: String,
    pub attempt_count: i32,
    pub next_attempt_time: Option<DateTimeUtc>,
    pub create_time: DateTimeUtc,
    pub paid_time: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
