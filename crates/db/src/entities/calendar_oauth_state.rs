use sea_orm::entity::prelude::*;

/// An OAuth `state` handed to Google: single use, bound to a company and a user, short-lived.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "calendar_oauth_states")]
pub struct Model {
    /// SHA-256 of the state value (the value itself only travels in the consent URL).
    #[sea_orm(primary_key, auto_increment = false)]
    pub state_hash: String,
    pub company_id: String,
    pub user_id: String,
    pub expires_at: DateTimeUtc,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
