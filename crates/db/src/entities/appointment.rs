use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "appointments")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub company_id: String,
    pub lead_id: Uuid,
    pub rep_user_id: Option<String>,
    pub external_id: Option<String>,
    pub scheduled_start: DateTimeUtc,
    pub scheduled_end: DateTimeUtc,
    pub status: String,
    pub google_event_id: Option<String>,
    pub title: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub address: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub notes: Option<String>,
    pub call_id: Option<Uuid>,
    /// The `sales_reps` id of `rep_user_id`.
    pub rep_id: Option<Uuid>,
    /// Optimistic-locking version (`ETag`).
    pub version: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
