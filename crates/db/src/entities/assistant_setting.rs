use sea_orm::entity::prelude::*;

/// A company's receptionist settings (SPEC section 16).
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "assistant_settings")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub company_id: String,
    pub enabled: bool,
    #[sea_orm(column_type = "Text")]
    pub greeting: String,
    /// JSON: `{"monday": {"open": "08:00", "close": "20:00"}, ..., "sunday": null}`.
    #[sea_orm(column_type = "Text")]
    pub business_hours: String,
    /// JSON array of strings.
    #[sea_orm(column_type = "Text")]
    pub services: String,
    pub transfer_number: Option<String>,
    pub slot_minutes: i32,
    pub min_notice_minutes: i32,
    /// JSON array of origin patterns.
    #[sea_orm(column_type = "Text")]
    pub widget_allowed_origins: String,
    pub widget_key: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
