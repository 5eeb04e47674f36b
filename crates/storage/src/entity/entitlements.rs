use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "entitlements")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub business_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub product_code: String,
    pub entitled: bool,
    pub subscription_id: Option<String>,
    pub offering_code: Option<String>,
    pub subscriber_status: String,
    pub in_grace_period: bool,
    pub expiration_time: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
