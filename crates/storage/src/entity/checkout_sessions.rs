use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "checkout_sessions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    #[sea_orm(unique)]
    pub token_hash: String,
    pub form_nonce: String,
    pub business_id: String,
    pub buyer_id: String,
    pub kind: String,
    pub offering_code: Option<String>,
    pub subscription_id: Option<String>,
    pub currency_code: Option<String>,
    pub coupon_code: Option<String>,
    #[sea_orm(column_type = "JsonBinary")]
    pub components: Json,
    pub return_url: String,
    pub status: String,
    pub decision: Option<String>,
    pub result_subscription_id: Option<String>,
    pub error_reason: Option<String>,
    pub error_message: Option<String>,
    pub create_time: DateTimeUtc,
    pub expire_time: DateTimeUtc,
    pub decide_time: Option<DateTimeUtc>,
    pub complete_time: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
