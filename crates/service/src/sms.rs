//! Outbound SMS (SPEC sections 13 and 17). A text is recorded `queued` and its send enqueued in
//! one unit of work; the send job ([`send`]) marks its attempt before it calls Twilio, and a retry
//! of an attempt that may have reached Twilio lists the account's messages to that number since
//! then and adopts one with the same body instead of texting twice. Twilio's status callbacks
//! then move the message forward only ([`record_status`]).

use chrono::Utc;
use otto_db::TenantTxn;
use otto_db::entities::{follow_up, lead, message, twilio_number};
use otto_domain::catalog::{FOLLOWUP_UPDATED, TELEPHONY_SMS_SENT};
use otto_domain::jobs::SendSms;
use otto_domain::{PhoneE164, TenantId};
use otto_integrations::twilio::{OutboundSms, TwilioClient, TwilioError, TwilioMessage};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};
use serde_json::json;
use uuid::Uuid;

use crate::visibility::Viewer;
use crate::{ServiceError, followups};

/// An SMS's longest body (SPEC section 13).
pub const MAX_BODY: usize = 1600;
const QUEUED: &str = "queued";
const FAILED: &str = "failed";

/// Twilio's message statuses in the order they happen; the last three are ends.
const PROGRESS: [(&str, u8); 7] = [
    ("queued", 0),
    ("accepted", 0),
    ("sending", 1),
    ("sent", 2),
    ("delivered", 3),
    ("undelivered", 3),
    ("failed", 3),
];

fn rank(status: &str) -> Option<u8> {
    PROGRESS
        .iter()
        .find(|(name, _)| *name == status)
        .map(|(_, rank)| *rank)
}

#[derive(Debug, thiserror::Error)]
pub enum SmsError {
    #[error("not found")]
    NotFound,
    #[error("the lead opted out of SMS")]
    OptedOut,
    #[error("no sender number: the company has no Twilio number and TWILIO_FROM_NUMBER is unset")]
    NoSender,
    /// The follow-up is no longer a draft (`sent` or `dismissed`).
    #[error("the follow-up is {0}, not a draft")]
    NotDraft(String),
    #[error(transparent)]
    Service(#[from] ServiceError),
}

fn invalid(field: &'static str, message: impl Into<String>) -> SmsError {
    SmsError::Service(ServiceError::invalid(field, message))
}

impl From<sea_orm::DbErr> for SmsError {
    fn from(err: sea_orm::DbErr) -> Self {
        Self::Service(err.into())
    }
}

impl From<otto_db::UnitOfWorkError> for SmsError {
    fn from(err: otto_db::UnitOfWorkError) -> Self {
        Self::Service(err.into())
    }
}

/// `POST /v1/sms`: to a lead (its phone) or to a number.
#[derive(Debug, Clone)]
pub struct SmsRequest {
    pub lead_id: Option<Uuid>,
    pub to: Option<String>,
    pub body: String,
}

/// A text ready to be recorded: who, to where, from where, what.
#[derive(Debug, Clone)]
pub struct Outbound {
    lead_id: Option<Uuid>,
    to: String,
    from: String,
    body: String,
}

/// Checks `request` in a read-only unit of work (read before the writing one, see
/// docs/architecture.md): a lead the viewer may see (else `NotFound`) and that has not opted
/// out, a valid number, a body of 1-1600 characters, a sender number.
///
/// # Errors
/// See [`SmsError`].
pub async fn prepare(
    utx: &TenantTxn,
    viewer: &Viewer,
    default_from: Option<&str>,
    request: SmsRequest,
) -> Result<Outbound, SmsError> {
    let length = request.body.chars().count();
    if !(1..=MAX_BODY).contains(&length) {
        return Err(invalid("body", format!("must be 1-{MAX_BODY} characters")));
    }
    let (lead_id, to) = match (request.lead_id, request.to) {
        (Some(lead_id), None) => {
            let mut query = utx
                .scope()
                .select::<lead::Entity>()
                .filter(lead::Column::Id.eq(lead_id));
            if let Some(assigned) = viewer.lead_ids(utx) {
                query = query.filter(lead::Column::Id.in_subquery(assigned));
            }
            let lead = query.one(utx.conn()).await?.ok_or(SmsError::NotFound)?;
            if lead.sms_opted_out {
                return Err(SmsError::OptedOut);
            }
            let phone = lead
                .phone
                .ok_or_else(|| invalid("lead_id", "the lead has no phone number"))?;
            (Some(lead_id), phone)
        }
        (None, Some(to)) => {
            let to = PhoneE164::try_from(to.as_str()).map_err(|e| invalid("to", e.to_string()))?;
            (None, to.to_string())
        }
        _ => {
            return Err(invalid("lead_id", "give exactly one of lead_id and to"));
        }
    };
    let own_number = utx
        .scope()
        .select::<twilio_number::Entity>()
        .one(utx.conn())
        .await?
        .map(|n| n.phone_e164);
    let from = own_number
        .or_else(|| default_from.map(str::to_owned))
        .ok_or(SmsError::NoSender)?;
    Ok(Outbound {
        lead_id,
        to,
        from,
        body: request.body,
    })
}

/// Records `outbound` as a `queued` message and enqueues its send, in `utx` (the caller
/// commits: the job exists if and only if the message does).
///
/// # Errors
/// On database failure.
pub async fn queue(utx: &TenantTxn, outbound: Outbound) -> Result<message::Model, SmsError> {
    queue_as(utx, Uuid::now_v7(), outbound).await
}

async fn queue_as(
    utx: &TenantTxn,
    id: Uuid,
    outbound: Outbound,
) -> Result<message::Model, SmsError> {
    let now = Utc::now();
    let row = message::ActiveModel {
        id: Set(id),
        company_id: Set(utx.tenant().to_string()),
        lead_id: Set(outbound.lead_id),
        direction: Set("outbound".to_owned()),
        from_number: Set(outbound.from),
        to_number: Set(outbound.to),
        body: Set(outbound.body),
        provider: Set("twilio".to_owned()),
        provider_sid: Set(None),
        status: Set(QUEUED.to_owned()),
        send_attempted_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    };
    let created = message::Entity::insert(row)
        .exec_with_returning(utx.conn())
        .await?;
    utx.enqueue(&SendSms {
        tenant_id: utx.tenant().clone(),
        message_id: id,
        trace_id: utx.trace().clone(),
    })
    .map_err(ServiceError::from)?;
    Ok(created)
}

/// The text of follow-up `id`, checked like any text ([`prepare`]): a draft of a lead the viewer
/// may see.
///
/// # Errors
/// `NotFound`, `NotDraft`, and [`prepare`]'s.
pub async fn prepare_followup(
    utx: &TenantTxn,
    viewer: &Viewer,
    default_from: Option<&str>,
    id: Uuid,
) -> Result<Outbound, SmsError> {
    let mut query = utx
        .scope()
        .select::<follow_up::Entity>()
        .filter(follow_up::Column::Id.eq(id));
    if let Some(assigned) = viewer.lead_ids(utx) {
        query = query.filter(follow_up::Column::LeadId.in_subquery(assigned));
    }
    let followup = query.one(utx.conn()).await?.ok_or(SmsError::NotFound)?;
    if followup.status != followups::DRAFT {
        return Err(SmsError::NotDraft(followup.status));
    }
    let lead_id = followup
        .lead_id
        .ok_or_else(|| invalid("id", "the follow-up has no lead to text"))?;
    let request = SmsRequest {
        lead_id: Some(lead_id),
        to: None,
        body: followup.draft,
    };
    prepare(utx, viewer, default_from, request).await
}

/// Marks follow-up `id` sent and queues its text, in `utx` (the caller commits). The draft check
/// and the write are one statement, so of two sends exactly one wins; the other is `NotDraft`.
/// Emits `followup.updated`.
///
/// # Errors
/// `NotDraft`; database failures.
pub async fn queue_followup(
    utx: &TenantTxn,
    id: Uuid,
    outbound: Outbound,
) -> Result<message::Model, SmsError> {
    let message_id = Uuid::now_v7();
    let now = Utc::now();
    let marked = utx
        .scope()
        .update_many::<follow_up::Entity>()
        .filter(follow_up::Column::Id.eq(id))
        .filter(follow_up::Column::Status.eq(followups::DRAFT))
        .col_expr(follow_up::Column::Status, Expr::value(followups::SENT))
        .col_expr(follow_up::Column::SentAt, Expr::value(now))
        .col_expr(follow_up::Column::MessageId, Expr::value(message_id))
        .col_expr(follow_up::Column::UpdatedAt, Expr::value(now))
        .exec(utx.conn())
        .await?;
    if marked.rows_affected == 0 {
        return Err(SmsError::NotDraft(followups::SENT.to_owned()));
    }
    let queued = queue_as(utx, message_id, outbound).await?;
    let call_id = utx
        .scope()
        .find_by_id::<follow_up::Entity, _>(id)
        .await?
        .and_then(|f| f.call_id);
    let mut event = utx.event(
        FOLLOWUP_UPDATED,
        json!({ "follow_up_id": id, "call_id": call_id, "status": followups::SENT,
                "message_id": message_id }),
    );
    if let Some(lead) = queued.lead_id {
        event = event.with_lead(lead);
    }
    utx.emit(event);
    Ok(queued)
}

/// What the send job needs beside the context.
pub struct SmsSender {
    pub twilio: TwilioClient,
    /// `{PUBLIC_BASE_URL}/webhooks/twilio/status`, when the public URL is known.
    pub status_callback: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error(transparent)]
    Twilio(#[from] TwilioError),
    #[error(transparent)]
    Sms(#[from] SmsError),
}

/// The send job: texts message `id` once (see the module doc). A message no longer `queued` is
/// left alone; one to a lead that opted out meanwhile fails without calling Twilio.
///
/// # Errors
/// Twilio's refusal or unavailability (the message is `failed` when the refusal is permanent);
/// database failures.
pub async fn send<S: otto_db::CommitSink>(
    sink: &S,
    db: &otto_db::Database,
    sender: &SmsSender,
    job: &SendSms,
) -> Result<(), SendError> {
    let Some(message) = load(db, &job.tenant_id, job).await? else {
        return Ok(());
    };
    if message.status != QUEUED {
        return Ok(());
    }
    if opted_out_since(db, &job.tenant_id, job, &message).await? {
        settle(sink, db, job, &message, None, FAILED).await?;
        return Ok(());
    }
    if let Some(attempted) = message.send_attempted_at {
        let earlier = sender
            .twilio
            .messages_to(
                &message.to_number,
                &message.from_number,
                attempted.date_naive(),
            )
            .await?;
        if let Some(found) = earlier
            .into_iter()
            .find(|m| m.body.as_deref() == Some(message.body.as_str()))
        {
            return Ok(settle(sink, db, job, &message, Some(&found), &found.status).await?);
        }
    }
    mark_attempt(sink, db, job).await?;
    let sms = OutboundSms {
        to: &message.to_number,
        from: &message.from_number,
        body: &message.body,
        status_callback: sender.status_callback.as_deref(),
    };
    match sender.twilio.send(&sms).await {
        Ok(sent) => Ok(settle(sink, db, job, &message, Some(&sent), &sent.status).await?),
        Err(err) if err.is_permanent() => {
            settle(sink, db, job, &message, None, FAILED).await?;
            Err(err.into())
        }
        Err(err) => Err(err.into()),
    }
}

async fn begin(
    db: &otto_db::Database,
    tenant: &TenantId,
    job: &SendSms,
) -> Result<TenantTxn, SmsError> {
    Ok(TenantTxn::begin(db, tenant, job.trace_id.clone()).await?)
}

async fn load(
    db: &otto_db::Database,
    tenant: &TenantId,
    job: &SendSms,
) -> Result<Option<message::Model>, SmsError> {
    let utx = begin(db, tenant, job).await?;
    let found = utx
        .scope()
        .find_by_id::<message::Entity, _>(job.message_id)
        .await?;
    utx.finish_read().await?;
    Ok(found)
}

async fn opted_out_since(
    db: &otto_db::Database,
    tenant: &TenantId,
    job: &SendSms,
    message: &message::Model,
) -> Result<bool, SmsError> {
    let Some(lead_id) = message.lead_id else {
        return Ok(false);
    };
    let utx = begin(db, tenant, job).await?;
    let lead = utx.scope().find_by_id::<lead::Entity, _>(lead_id).await?;
    utx.finish_read().await?;
    Ok(lead.is_some_and(|l| l.sms_opted_out))
}

/// Records that this send is about to call Twilio, before it does (committed first).
async fn mark_attempt<S: otto_db::CommitSink>(
    sink: &S,
    db: &otto_db::Database,
    job: &SendSms,
) -> Result<(), SmsError> {
    let utx = begin(db, &job.tenant_id, job).await?;
    utx.scope()
        .update_many::<message::Entity>()
        .filter(message::Column::Id.eq(job.message_id))
        .col_expr(message::Column::SendAttemptedAt, Expr::value(Utc::now()))
        .exec(utx.conn())
        .await?;
    utx.commit(sink).await?;
    Ok(())
}

/// The send's outcome: Twilio's sid and status (or `failed`), `telephony.sms.sent` and
/// `sms_sent_total` when Twilio took the message. Only a still-`queued` message changes.
async fn settle<S: otto_db::CommitSink>(
    sink: &S,
    db: &otto_db::Database,
    job: &SendSms,
    message: &message::Model,
    twilio: Option<&TwilioMessage>,
    status: &str,
) -> Result<(), SmsError> {
    let utx = begin(db, &job.tenant_id, job).await?;
    let changed = utx
        .scope()
        .update_many::<message::Entity>()
        .filter(message::Column::Id.eq(message.id))
        .filter(message::Column::Status.eq(QUEUED))
        .col_expr(
            message::Column::ProviderSid,
            Expr::value(twilio.map(|m| m.sid.clone())),
        )
        .col_expr(message::Column::Status, Expr::value(status))
        .col_expr(message::Column::UpdatedAt, Expr::value(Utc::now()))
        .exec(utx.conn())
        .await?;
    if changed.rows_affected == 1
        && let Some(twilio) = twilio
    {
        let mut event = utx.event(
            TELEPHONY_SMS_SENT,
            json!({ "message_id": message.id, "message_sid": twilio.sid, "status": status }),
        );
        if let Some(lead) = message.lead_id {
            event = event.with_lead(lead);
        }
        utx.emit(event);
        metrics::counter!("sms_sent_total", "tenant_id" => job.tenant_id.to_string()).increment(1);
    }
    utx.commit(sink).await?;
    Ok(())
}

/// Twilio's status callback for message `sid`: moves it forward only (a late `sent` after
/// `delivered` changes nothing). True when the message changed.
///
/// # Errors
/// On database failure.
pub async fn record_status(utx: &TenantTxn, sid: &str, status: &str) -> Result<bool, ServiceError> {
    let Some(new_rank) = rank(status) else {
        return Ok(false);
    };
    let earlier: Vec<&str> = PROGRESS
        .iter()
        .filter(|(_, rank)| *rank < new_rank)
        .map(|(name, _)| *name)
        .collect();
    let changed = utx
        .scope()
        .update_many::<message::Entity>()
        .filter(message::Column::Provider.eq("twilio"))
        .filter(message::Column::ProviderSid.eq(sid))
        .filter(message::Column::Status.is_in(earlier))
        .col_expr(message::Column::Status, Expr::value(status))
        .col_expr(message::Column::UpdatedAt, Expr::value(Utc::now()))
        .exec(utx.conn())
        .await?;
    Ok(changed.rows_affected > 0)
}
