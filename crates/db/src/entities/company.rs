use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "companies")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub name: String,
    pub time_zone: String,
    pub callrail_company_id: Option<String>,
    pub lockdown_mode: bool,
    /// Missed calls get a Bland callback (besides their task).
    pub missed_call_callbacks: bool,
    /// `HH:MM` in the company's zone: no callback is dialed from start to end.
    pub quiet_hours_start: Option<String>,
    pub quiet_hours_end: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
