use sea_orm::entity::prelude::*;

/// A company's Google Calendar connection (one per company).
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "calendar_connections")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub company_id: String,
    pub calendar_id: String,
    /// Sealed with `ENCRYPTION_KEY` (`otto_runtime::crypto`), never the token itself.
    #[sea_orm(column_type = "Text")]
    pub refresh_token: String,
    pub connected_by: String,
    pub channel_id: Option<String>,
    /// SHA-256 of the channel token Google echoes on every push.
    pub channel_token_hash: Option<String>,
    pub channel_resource_id: Option<String>,
    pub channel_expires_at: Option<DateTimeUtc>,
    /// The highest `X-Goog-Message-Number` accepted (a replay is not above it).
    pub last_message_number: Option<i64>,
    #[sea_orm(column_type = "Text", nullable)]
    pub sync_token: Option<String>,
    /// A push arrived since the running sync started: it runs again before releasing.
    pub sync_pending: bool,
    /// A sync holds the connection until then (one sync at a time per company).
    pub sync_lease_until: Option<DateTimeUtc>,
    pub last_synced_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
