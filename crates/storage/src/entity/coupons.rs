use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "coupons")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    #[sea_orm(unique)]
    pub code: String,
    pub percent_off: Option<i32>,
    pub amount_off_minor: Option<i64>,
    pub amount_off_currency: Option<String>,
    pub duration: String,
    pub duration_periods: i32,
    pub max_redemptions: Option<i64>,
    pub times_redeemed: i64,
    pub redeem_by: Option<DateTimeUtc>,
    #[sea_orm(column_type = "JsonBinary")]
    pub applies_to_offering_codes: Json,
    pub create_time: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
