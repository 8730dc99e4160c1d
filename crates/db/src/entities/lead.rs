use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "leads")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub company_id: String,
    pub name: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub source: Option<String>,
    pub status: String,
    pub assigned_user_id: Option<String>,
    /// Texted STOP (or another opt-out keyword) and not START since.
    pub sms_opted_out: bool,
    pub version: i32,
    #[sea_orm(column_type = "Text", nullable)]
    pub address: Option<String>,
    /// Property facts for the rep (SPEC section 17), once `property_status` is `ready`.
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub property: Option<Json>,
    /// `pending`, `ready` or `failed`.
    pub property_status: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
