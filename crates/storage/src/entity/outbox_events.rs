use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "outbox_events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub sequence: i64,
    #[sea_orm(unique)]
    pub id: String,
    pub event_type: String,
    pub business_id: String,
    pub directory_id: String,
    pub subscription_id: String,
    pub occur_time: DateTimeUtc,
    #[sea_orm(column_type = "JsonBinary")]
    pub payload: Json,
    /// Its place in the published stream; `None` until published.
    pub published_sequence: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
