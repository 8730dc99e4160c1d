use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "messages")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub company_id: String,
    pub lead_id: Option<Uuid>,
    pub direction: String,
    pub from_number: String,
    pub to_number: String,
    #[sea_orm(column_type = "Text")]
    pub body: String,
    pub provider: String,
    pub provider_sid: Option<String>,
    pub status: String,
    /// When a send first called Twilio (a retry looks for the message before sending again).
    pub send_attempted_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
