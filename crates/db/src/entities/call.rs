use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "calls")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub company_id: String,
    pub lead_id: Option<Uuid>,
    pub provider: String,
    pub provider_call_id: String,
    pub direction: Option<String>,
    pub answered: Option<bool>,
    pub duration_seconds: Option<i32>,
    pub recording_url: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub transcript: Option<String>,
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub analysis: Option<Json>,
    /// The analysis's objections (a copy kept for the dashboard's covering index).
    #[sea_orm(column_type = "JsonBinary", nullable)]
    pub objections: Option<Json>,
    pub booked: bool,
    #[sea_orm(column_type = "Text", nullable)]
    pub notes: Option<String>,
    pub status: String,
    pub started_at: Option<DateTimeUtc>,
    /// `uwc` or `deepgram`: which ASR wrote the transcript.
    pub asr_provider: Option<String>,
    /// When a Bland callback was claimed for this missed call (before dialing).
    pub callback_requested_at: Option<DateTimeUtc>,
    pub bland_call_id: Option<String>,
    /// The recording in Otto's object storage (an in-person visit), when not a provider URL.
    pub recording_key: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
