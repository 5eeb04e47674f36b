use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "credit_balances")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub business_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub currency: String,
    pub amount_minor: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
