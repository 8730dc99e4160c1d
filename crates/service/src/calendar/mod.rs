//! Google Calendar two-way sync (SPEC section 15). One connection per company: its refresh
//! token sealed with `ENCRYPTION_KEY`, its push channel, its `syncToken`.
//!
//! - [`connection`]: consent (`state` single use, 10 minutes, bound to company and user), the
//!   callback's code exchange, the channel (watch, renew, stop) and disconnecting.
//! - [`inbound`]: Google to Otto. A push is checked and acknowledged, the sync runs as a job;
//!   pushes for one company coalesce into one sync at a time (a lease and a pending flag on the
//!   connection), and the `syncToken` is stored in the unit of work of the last page it covers.
//!   A changed event moves its appointment, a cancelled one cancels it; events without an
//!   appointment are ignored.
//! - [`outbound`]: Otto to Google. An appointment booked or changed in Otto enqueues a job that
//!   inserts, patches or deletes its event, found again by `extendedProperties.private.otto_id`
//!   so a lost answer never makes two events. Changes that came from Google are not written back.

pub mod connection;
pub mod inbound;
pub mod outbound;

use std::sync::Arc;

use otto_db::TenantTxn;
use otto_db::entities::calendar_connection;
use otto_domain::TenantId;
use otto_integrations::google::{GoogleClient, GoogleError, GoogleSettings};
use otto_runtime::crypto::{CryptoError, Keyring};

use crate::ServiceError;

/// Everything the sync needs from configuration; `None` (see [`CalendarSync::from_config`])
/// when Google or `ENCRYPTION_KEY` is not configured.
#[derive(Clone)]
pub struct CalendarSync {
    pub google: GoogleClient,
    keyring: Arc<Keyring>,
    calendar_id: String,
    push_url: Option<String>,
}

impl CalendarSync {
    /// `None` without `GOOGLE_CLIENT_ID`, `GOOGLE_CLIENT_SECRET`, a redirect URL and
    /// `ENCRYPTION_KEY`.
    pub fn from_config(config: &otto_runtime::Config) -> Option<Self> {
        let settings = GoogleSettings::from_config(config)?;
        let keyring = config.keyring.clone()?;
        let google = GoogleClient::new(settings).ok()?;
        Some(Self {
            google,
            keyring,
            calendar_id: config.integrations.google.calendar_id.clone(),
            push_url: config.integrations.google.push_url.clone(),
        })
    }

    /// An access token for the connection (one refresh per job or request).
    async fn access_token(
        &self,
        row: &calendar_connection::Model,
    ) -> Result<String, CalendarError> {
        let refresh = self.keyring.open(&row.company_id, &row.refresh_token)?;
        Ok(self.google.refresh(&refresh).await?.access_token)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CalendarError {
    #[error("Google Calendar is not configured ({0})")]
    NotConfigured(&'static str),
    #[error("the company has not connected Google Calendar")]
    NotConnected,
    #[error("the authorization state is unknown, used or expired")]
    StateRefused,
    #[error(
        "Google gave no refresh token: remove Otto's access in the Google account and connect again"
    )]
    NoRefreshToken,
    #[error("unknown push channel")]
    UnknownChannel,
    #[error("the push channel's token does not match")]
    WrongChannelToken,
    #[error("no appointment has that event")]
    NoSuchEvent,
    #[error(transparent)]
    Google(#[from] GoogleError),
    #[error("the stored token cannot be opened: {0}")]
    Crypto(#[from] CryptoError),
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<sea_orm::DbErr> for CalendarError {
    fn from(err: sea_orm::DbErr) -> Self {
        Self::Service(err.into())
    }
}

impl From<otto_db::UnitOfWorkError> for CalendarError {
    fn from(err: otto_db::UnitOfWorkError) -> Self {
        Self::Service(err.into())
    }
}

impl From<serde_json::Error> for CalendarError {
    fn from(err: serde_json::Error) -> Self {
        Self::Service(err.into())
    }
}

impl CalendarError {
    /// A failure a later attempt may not meet (Google busy or unreachable, the database).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Google(err) => err.is_transient(),
            Self::Service(_) => true,
            _ => false,
        }
    }
}

/// The tenant's connection, read in its unit of work.
async fn connection_of(
    utx: &TenantTxn,
) -> Result<Option<calendar_connection::Model>, CalendarError> {
    Ok(utx
        .scope()
        .find_by_id::<calendar_connection::Entity, _>(utx.tenant().to_string())
        .await?)
}

/// The tenant's connection read outside a unit of work that writes (jobs read it, then call
/// Google, then write).
async fn read_connection(
    db: &otto_db::Database,
    tenant: &TenantId,
) -> Result<Option<calendar_connection::Model>, CalendarError> {
    let utx = TenantTxn::begin(db, tenant, otto_domain::TraceId::generate()).await?;
    let row = connection_of(&utx).await?;
    utx.finish_read().await?;
    Ok(row)
}
