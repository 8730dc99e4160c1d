//! A company's connection: consent, the callback, the push channel, disconnecting.

use chrono::{DateTime, Duration, Utc};
use otto_db::TenantTxn;
use otto_db::entities::{calendar_connection, calendar_oauth_state};
use otto_domain::jobs::SyncCalendar;
use otto_domain::{TenantId, TraceId, UserId};
use otto_runtime::AppContext;
use otto_runtime::crypto::{random_token, sha256_hex};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};

use super::{CalendarError, CalendarSync, connection_of, read_connection};

/// How long a consent `state` stays usable.
pub const STATE_LIFETIME_MINUTES: i64 = 10;
/// Channels are renewed when they expire within this long.
pub const RENEW_AHEAD_HOURS: i64 = 24;

/// The consent URL for the caller's company: a fresh single-use `state` bound to the company
/// and `user` is stored (as its hash) in `utx`, which this commits.
///
/// # Errors
/// On database failure or a bad `GOOGLE_OAUTH_URL`.
pub async fn authorize(
    sync: &CalendarSync,
    ctx: &AppContext,
    utx: TenantTxn,
    user: &UserId,
) -> Result<String, CalendarError> {
    let state = random_token()?;
    let now = Utc::now();
    calendar_oauth_state::Entity::insert(calendar_oauth_state::ActiveModel {
        state_hash: Set(sha256_hex(&state)),
        company_id: Set(utx.tenant().to_string()),
        user_id: Set(user.to_string()),
        expires_at: Set(now + Duration::minutes(STATE_LIFETIME_MINUTES)),
        created_at: Set(now),
    })
    .exec_without_returning(utx.conn())
    .await?;
    utx.commit(ctx).await?;
    Ok(sync.google.authorization_url(&state)?)
}

/// Consumes `state` (once, before it expires), exchanges `code` and stores the sealed refresh
/// token as the company's connection. Returns the company.
///
/// # Errors
/// `StateRefused`, `NoRefreshToken`, Google's refusal, database failures.
pub async fn complete(
    sync: &CalendarSync,
    ctx: &AppContext,
    state: &str,
    code: &str,
) -> Result<TenantId, CalendarError> {
    let (tenant, user) = consume_state(ctx, state).await?;
    let tokens = sync.google.exchange_code(code).await?;
    let refresh = tokens.refresh_token.ok_or(CalendarError::NoRefreshToken)?;
    let sealed = sync.keyring.seal(tenant.as_str(), &refresh)?;
    let now = Utc::now();
    let utx = TenantTxn::begin(&ctx.db, &tenant, TraceId::generate()).await?;
    calendar_connection::Entity::insert(calendar_connection::ActiveModel {
        company_id: Set(tenant.to_string()),
        calendar_id: Set(sync.calendar_id.clone()),
        refresh_token: Set(sealed),
        connected_by: Set(user),
        channel_id: Set(None),
        channel_token_hash: Set(None),
        channel_resource_id: Set(None),
        channel_expires_at: Set(None),
        last_message_number: Set(None),
        sync_token: Set(None),
        sync_pending: Set(false),
        sync_lease_until: Set(None),
        last_synced_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .on_conflict(
        OnConflict::column(calendar_connection::Column::CompanyId)
            .update_columns([
                calendar_connection::Column::RefreshToken,
                calendar_connection::Column::ConnectedBy,
                calendar_connection::Column::CalendarId,
                calendar_connection::Column::UpdatedAt,
            ])
            .to_owned(),
    )
    .exec_without_returning(utx.conn())
    .await?;
    utx.commit(ctx).await?;
    tracing::info!(tenant_id = %tenant, "Google Calendar connected");
    Ok(tenant)
}

/// The company and user `state` was issued for; the state is deleted (single use) whether or
/// not it is still valid.
async fn consume_state(ctx: &AppContext, state: &str) -> Result<(TenantId, String), CalendarError> {
    let hash = sha256_hex(state);
    // Which tenant the state belongs to is what this lookup finds out: a system read.
    let row = calendar_oauth_state::Entity::find_by_id(hash.clone())
        .one(&ctx.db)
        .await?
        .ok_or(CalendarError::StateRefused)?;
    let tenant =
        TenantId::try_from(row.company_id.as_str()).map_err(|_| CalendarError::StateRefused)?;
    let utx = TenantTxn::begin(&ctx.db, &tenant, TraceId::generate()).await?;
    let deleted = utx
        .scope()
        .delete_many::<calendar_oauth_state::Entity>()
        .filter(calendar_oauth_state::Column::StateHash.eq(hash))
        .exec(utx.conn())
        .await?;
    utx.commit(ctx).await?;
    if deleted.rows_affected != 1 || row.expires_at <= Utc::now() {
        return Err(CalendarError::StateRefused);
    }
    Ok((tenant, row.user_id))
}

/// A channel as the API shows it.
#[derive(Debug, Clone)]
pub struct ChannelInfo {
    pub channel_id: String,
    pub expires_at: Option<DateTime<Utc>>,
}

/// Opens a push channel for the company (stopping the previous one) and queues a sync: a full
/// one when `full_resync` (the sync token is forgotten), else incremental.
///
/// # Errors
/// `NotConnected`, `NotConfigured` without `PUBLIC_BASE_URL`, Google's refusal, database failures.
pub async fn open_channel(
    sync: &CalendarSync,
    ctx: &AppContext,
    tenant: &TenantId,
    trace: TraceId,
    full_resync: bool,
) -> Result<ChannelInfo, CalendarError> {
    let push_url = sync
        .push_url
        .as_deref()
        .ok_or(CalendarError::NotConfigured("PUBLIC_BASE_URL"))?;
    let row = read_connection(&ctx.db, tenant)
        .await?
        .ok_or(CalendarError::NotConnected)?;
    let access = sync.access_token(&row).await?;
    stop_quietly(sync, &access, &row).await;
    let channel_id = uuid::Uuid::new_v4().to_string();
    let token = random_token()?;
    let channel = sync
        .google
        .watch(&access, &row.calendar_id, &channel_id, &token, push_url)
        .await?;
    let utx = TenantTxn::begin(&ctx.db, tenant, trace.clone()).await?;
    let mut update = utx
        .scope()
        .update_many::<calendar_connection::Entity>()
        .col_expr(
            calendar_connection::Column::ChannelId,
            Expr::value(channel.id.clone()),
        )
        .col_expr(
            calendar_connection::Column::ChannelTokenHash,
            Expr::value(sha256_hex(&token)),
        )
        .col_expr(
            calendar_connection::Column::ChannelResourceId,
            Expr::value(channel.resource_id.clone()),
        )
        .col_expr(
            calendar_connection::Column::ChannelExpiresAt,
            Expr::value(channel.expires_at),
        )
        .col_expr(
            calendar_connection::Column::LastMessageNumber,
            Expr::value(Option::<i64>::None),
        )
        .col_expr(calendar_connection::Column::SyncPending, Expr::value(true))
        .col_expr(
            calendar_connection::Column::UpdatedAt,
            Expr::value(Utc::now()),
        );
    if full_resync {
        update = update.col_expr(
            calendar_connection::Column::SyncToken,
            Expr::value(Option::<String>::None),
        );
    }
    update.exec(utx.conn()).await?;
    utx.enqueue(&SyncCalendar {
        tenant_id: tenant.clone(),
        trace_id: trace,
    })?;
    utx.commit(ctx).await?;
    Ok(ChannelInfo {
        channel_id: channel.id,
        expires_at: channel.expires_at,
    })
}

/// Stops the connection's channel, if any; a failure is logged (Google expires it anyway).
async fn stop_quietly(sync: &CalendarSync, access: &str, row: &calendar_connection::Model) {
    if let (Some(id), Some(resource)) = (&row.channel_id, &row.channel_resource_id)
        && let Err(err) = sync.google.stop_channel(access, id, resource).await
    {
        tracing::warn!(error = %err, channel_id = %id, "could not stop a Google push channel");
    }
}

/// Stops the channel (best effort) and forgets the tokens: the connection row is deleted.
///
/// # Errors
/// `NotConnected`, database failures.
pub async fn disconnect(
    sync: &CalendarSync,
    ctx: &AppContext,
    tenant: &TenantId,
    trace: TraceId,
) -> Result<(), CalendarError> {
    let row = read_connection(&ctx.db, tenant)
        .await?
        .ok_or(CalendarError::NotConnected)?;
    match sync.access_token(&row).await {
        Ok(access) => stop_quietly(sync, &access, &row).await,
        Err(err) => tracing::warn!(error = %err, "no access token to stop the channel with"),
    }
    let utx = TenantTxn::begin(&ctx.db, tenant, trace).await?;
    utx.scope()
        .delete_many::<calendar_connection::Entity>()
        .exec(utx.conn())
        .await?;
    utx.commit(ctx).await?;
    Ok(())
}

/// The caller's connection, if any.
///
/// # Errors
/// On database failure.
pub async fn status(utx: &TenantTxn) -> Result<Option<calendar_connection::Model>, CalendarError> {
    connection_of(utx).await
}

/// Renews every channel expiring within [`RENEW_AHEAD_HOURS`]; returns how many were renewed.
/// One company's failure is logged and does not stop the others.
///
/// # Errors
/// On database failure listing the channels.
pub async fn renew_expiring(
    sync: &CalendarSync,
    ctx: &AppContext,
    now: DateTime<Utc>,
) -> Result<usize, CalendarError> {
    // Across companies: a system read of which channels expire, then each company's own work.
    let due: Vec<String> = calendar_connection::Entity::find()
        .filter(calendar_connection::Column::ChannelId.is_not_null())
        .filter(
            calendar_connection::Column::ChannelExpiresAt
                .lt(now + Duration::hours(RENEW_AHEAD_HOURS)),
        )
        .all(&ctx.db)
        .await?
        .into_iter()
        .map(|row| row.company_id)
        .collect();
    let mut renewed = 0;
    for company in due {
        let Ok(tenant) = TenantId::try_from(company.as_str()) else {
            continue;
        };
        match open_channel(sync, ctx, &tenant, TraceId::generate(), false).await {
            Ok(_) => renewed += 1,
            Err(err) => tracing::warn!(tenant_id = %tenant, error = %err, "channel renewal failed"),
        }
    }
    Ok(renewed)
}
