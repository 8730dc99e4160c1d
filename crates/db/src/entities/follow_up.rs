use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "follow_ups")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub company_id: String,
    pub call_id: Option<Uuid>,
    pub lead_id: Option<Uuid>,
    pub channel: String,
    #[sea_orm(column_type = "Text")]
    pub draft: String,
    pub status: String,
    pub sent_at: Option<DateTimeUtc>,
    /// The message that carried it, once sent.
    pub message_id: Option<Uuid>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
