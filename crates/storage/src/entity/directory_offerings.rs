use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "directory_offerings")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub directory_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub offering_id: String,
    pub offering_code: String,
    pub is_default: bool,
    pub create_time: DateTimeUtc,
    pub update_time: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
