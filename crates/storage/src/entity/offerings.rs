use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "offerings")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    #[sea_orm(unique)]
    pub code: String,
    pub display_name: String,
    pub description: String,
    pub offering_type: String,
    pub family: String,
    #[sea_orm(column_type = "JsonBinary")]
    pub product_codes: Json,
    #[sea_orm(column_type = "JsonBinary")]
    pub prices: Json,
    pub billing_interval: String,
    pub billing_alignment: String,
    pub trial_days: i32,
    #[sea_orm(column_type = "JsonBinary")]
    pub bundled_offering_codes: Json,
    #[sea_orm(column_type = "JsonBinary")]
    pub components: Json,
    pub status: String,
    #[sea_orm(column_type = "JsonBinary")]
    pub provider_refs: Json,
    pub has_subscriptions: bool,
    pub create_time: DateTimeUtc,
    pub update_time: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
