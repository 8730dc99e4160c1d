//! The dialogue engine (SPEC section 16): one state machine for every channel. A turn holds the
//! conversation's lock, reads its state, decides, acts through the service layer (booking with
//! the conversation id as `external_id`, so a retried turn never books twice; a task for a
//! message), and stores the state again.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use otto_db::TenantTxn;
use otto_db::entities::{appointment, company};
use otto_domain::catalog::ASSISTANT_CONVERSATION_COMPLETED;
use otto_domain::{PhoneE164, TenantId, TraceId};
use otto_runtime::AppContext;
use otto_runtime::conversations::StoreError;
use sea_orm::EntityTrait;
use serde_json::json;

use super::conversation::{Action, Ask, Channel, Conversation, Outcome};
use super::intake::{Intent, parse_intent, parse_name, parse_phone, parse_time};
use super::model::Model;
use super::settings::{self, Settings};
use super::slots::{Slot, free_slots};
use crate::ServiceError;
use crate::appointments::{self, AppointmentError, Booking, NewAppointment};
use crate::tasks::{self, NewTask, TaskError};
use crate::zone::Zone;

/// How long a turn waits for the one in progress.
pub const TURN_WAIT: Duration = Duration::from_secs(5);
const OFFERED: usize = 3;

#[derive(Debug, thiserror::Error)]
pub enum AssistantError {
    #[error("the receptionist is not enabled for this company")]
    Disabled,
    #[error("the company is in lockdown")]
    Locked,
    #[error("no such conversation")]
    NotFound,
    #[error("another turn of this conversation is still running")]
    Busy,
    #[error(transparent)]
    Store(StoreError),
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<StoreError> for AssistantError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Busy => Self::Busy,
            other => Self::Store(other),
        }
    }
}

impl From<sea_orm::DbErr> for AssistantError {
    fn from(err: sea_orm::DbErr) -> Self {
        Self::Service(err.into())
    }
}

impl From<otto_db::UnitOfWorkError> for AssistantError {
    fn from(err: otto_db::UnitOfWorkError) -> Self {
        Self::Service(err.into())
    }
}

impl From<serde_json::Error> for AssistantError {
    fn from(err: serde_json::Error) -> Self {
        Self::Service(err.into())
    }
}

/// What a turn answers.
#[derive(Debug, Clone)]
pub struct Reply {
    pub text: String,
    pub action: Action,
    /// `collecting`, `offering`, `message`, `booked`, `transferred`.
    pub state: &'static str,
    pub appointment: Option<appointment::Model>,
}

/// The engine: the deterministic intake script, and the model when one is configured.
#[derive(Clone, Default)]
pub struct Assistant {
    pub model: Option<Model>,
}

impl Assistant {
    /// With the model of `LLM_BASE_URL` when it is set.
    pub fn from_config(config: &otto_runtime::Config) -> Self {
        let client = otto_integrations::llm::LlmSettings::from_config(config)
            .and_then(|settings| otto_integrations::llm::LlmClient::new(settings).ok());
        Self {
            model: client.map(|client| Model { client }),
        }
    }
}

/// What a turn works with besides the conversation.
pub(crate) struct Env<'a> {
    pub ctx: &'a AppContext,
    pub settings: Settings,
    pub zone: Zone,
    pub now: DateTime<Utc>,
    pub trace: TraceId,
}

impl Env<'_> {
    pub(crate) async fn begin(&self, tenant: &TenantId) -> Result<TenantTxn, AssistantError> {
        Ok(TenantTxn::begin(&self.ctx.db, tenant, self.trace.clone()).await?)
    }
}

/// The company's zone and settings, refusing a company in lockdown or without the receptionist.
async fn environment<'a>(
    ctx: &'a AppContext,
    tenant: &TenantId,
    trace: TraceId,
) -> Result<Env<'a>, AssistantError> {
    let utx = TenantTxn::begin(&ctx.db, tenant, trace.clone()).await?;
    let company = company::Entity::find_by_id(tenant.as_str())
        .one(utx.conn())
        .await?;
    let settings = settings::stored(&utx).await?;
    utx.finish_read().await?;
    let company = company.ok_or(AssistantError::Disabled)?;
    if company.lockdown_mode {
        return Err(AssistantError::Locked);
    }
    let settings = settings
        .filter(|s| s.enabled)
        .ok_or(AssistantError::Disabled)?;
    Ok(Env {
        ctx,
        settings,
        zone: Zone::parse(&company.time_zone),
        now: Utc::now(),
        trace,
    })
}

/// How a channel's turns are timed and counted.
fn measured(channel: Channel, started: Instant) {
    metrics::counter!("assistant_turns_total", "channel" => channel.as_str()).increment(1);
    metrics::histogram!("assistant_turn_duration_ms", "channel" => channel.as_str())
        .record(started.elapsed().as_secs_f64() * 1000.0);
}

impl Assistant {
    /// Opens conversation `id` (or, when it exists, greets again without forgetting it: a
    /// provider's retry of the first request) and answers the greeting.
    ///
    /// # Errors
    /// `Disabled`, `Locked`, `Busy`, store and database failures.
    pub async fn start(
        &self,
        ctx: &AppContext,
        tenant: &TenantId,
        channel: Channel,
        id: &str,
        caller: Option<&PhoneE164>,
    ) -> Result<Reply, AssistantError> {
        let started = Instant::now();
        let env = environment(ctx, tenant, TraceId::generate()).await?;
        let lock = ctx.conversations.lock(id, TURN_WAIT).await?;
        let result = async {
            let mut conversation = match ctx.conversations.get(id).await? {
                Some(raw) => serde_json::from_str::<Conversation>(&raw)?,
                None => {
                    Conversation::new(id, tenant.clone(), channel, caller.map(|p| p.to_string()))
                }
            };
            if conversation.tenant_id != *tenant {
                return Err(AssistantError::NotFound);
            }
            conversation.asked = Some(Ask::Name);
            let text = format!("{} May I have your name?", env.settings.greeting);
            let reply = finish(&mut conversation, text, Action::Continue, None);
            save(ctx, &conversation).await?;
            Ok(reply)
        }
        .await;
        ctx.conversations.unlock(lock).await;
        measured(channel, started);
        result
    }

    /// One turn: `said` is what the caller said (`None`: nothing heard).
    ///
    /// # Errors
    /// `NotFound` (unknown conversation or another company's), `Disabled`, `Locked`, `Busy`
    /// (another turn held it for 5 s), store and database failures.
    pub async fn turn(
        &self,
        ctx: &AppContext,
        tenant: &TenantId,
        id: &str,
        said: Option<&str>,
    ) -> Result<Reply, AssistantError> {
        let started = Instant::now();
        let env = environment(ctx, tenant, TraceId::generate()).await?;
        let lock = ctx.conversations.lock(id, TURN_WAIT).await?;
        let result = self.turn_locked(&env, tenant, id, said).await;
        ctx.conversations.unlock(lock).await;
        if let Ok((channel, _)) = &result {
            measured(*channel, started);
        }
        result.map(|(_, reply)| reply)
    }

    /// An inbound text from `from`: the number's current conversation takes it as a turn, or a
    /// new one starts (its reply opens with the greeting). A finished conversation is not
    /// continued: the next text starts a new one.
    ///
    /// # Errors
    /// As [`Assistant::turn`].
    pub async fn sms_turn(
        &self,
        ctx: &AppContext,
        tenant: &TenantId,
        from: &PhoneE164,
        text: &str,
    ) -> Result<Reply, AssistantError> {
        let pointer = format!("sms-current:{tenant}:{from}");
        let current = match ctx.conversations.get(&pointer).await? {
            Some(id) => ctx
                .conversations
                .get(&id)
                .await?
                .and_then(|raw| serde_json::from_str::<Conversation>(&raw).ok())
                .filter(|c| c.outcome.is_none() && c.tenant_id == *tenant)
                .map(|c| c.id),
            None => None,
        };
        if let Some(id) = current {
            return self.turn(ctx, tenant, &id, Some(text)).await;
        }
        let id = format!("sms_{}", uuid::Uuid::new_v4().simple());
        let greeting = self
            .start(ctx, tenant, Channel::Sms, &id, Some(from))
            .await?;
        ctx.conversations.put(&pointer, &id).await?;
        let mut reply = self.turn(ctx, tenant, &id, Some(text)).await?;
        let opening = greeting.text.trim_end_matches(question(Ask::Name)).trim();
        reply.text = format!("{opening} {}", reply.text);
        Ok(reply)
    }

    async fn turn_locked(
        &self,
        env: &Env<'_>,
        tenant: &TenantId,
        id: &str,
        said: Option<&str>,
    ) -> Result<(Channel, Reply), AssistantError> {
        let raw = env
            .ctx
            .conversations
            .get(id)
            .await?
            .ok_or(AssistantError::NotFound)?;
        let mut conversation: Conversation = serde_json::from_str(&raw)?;
        if conversation.tenant_id != *tenant {
            return Err(AssistantError::NotFound);
        }
        let channel = conversation.channel;
        if conversation.outcome.is_some() {
            // Finished: a retried last turn gets the same answer and changes nothing.
            let (text, action) = conversation
                .last_reply
                .clone()
                .unwrap_or_else(|| ("Goodbye.".to_owned(), Action::Hangup));
            let appointment = self.booked(env, &conversation).await?;
            return Ok((
                channel,
                Reply {
                    text,
                    action,
                    state: conversation.state(),
                    appointment,
                },
            ));
        }
        conversation.turns += 1;
        let reply = match &self.model {
            Some(model) => {
                // The model works on a copy: a failed turn leaves the state as it was.
                let mut draft = conversation.clone();
                match model.turn(env, &mut draft, said).await {
                    Ok(reply) => {
                        conversation = draft;
                        reply
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "the model failed this turn; the intake script answers");
                        metrics::counter!("assistant_model_fallbacks_total").increment(1);
                        intake(env, &mut conversation, said).await?
                    }
                }
            }
            None => intake(env, &mut conversation, said).await?,
        };
        save(env.ctx, &conversation).await?;
        Ok((channel, reply))
    }

    async fn booked(
        &self,
        env: &Env<'_>,
        conversation: &Conversation,
    ) -> Result<Option<appointment::Model>, AssistantError> {
        let Some(id) = conversation.appointment_id else {
            return Ok(None);
        };
        let utx = env.begin(&conversation.tenant_id).await?;
        let row = utx.scope().find_by_id::<appointment::Entity, _>(id).await?;
        utx.finish_read().await?;
        Ok(row)
    }
}

async fn save(ctx: &AppContext, conversation: &Conversation) -> Result<(), AssistantError> {
    ctx.conversations
        .put(&conversation.id, &serde_json::to_string(conversation)?)
        .await?;
    Ok(())
}

/// Records the reply in the conversation and builds it.
pub(crate) fn finish(
    conversation: &mut Conversation,
    text: String,
    action: Action,
    appointment: Option<appointment::Model>,
) -> Reply {
    conversation.say("assistant", &text);
    conversation.last_reply = Some((text.clone(), action.clone()));
    Reply {
        text,
        action,
        state: conversation.state(),
        appointment,
    }
}

fn question(ask: Ask) -> &'static str {
    match ask {
        Ask::Name => "May I have your name?",
        Ask::Need => "What can we help you with?",
        Ask::Phone => "What's the best phone number to reach you?",
        Ask::Time => "When would you like us to come out?",
        Ask::Choice => "Which of those times works best?",
        Ask::Message => "What message should I pass on to the team?",
    }
}

/// A slot as spoken: "Friday, October 30 at 10:00 AM".
pub(crate) fn spoken(zone: &Zone, at: DateTime<Utc>) -> String {
    zone.local_at(at)
        .format("%A, %B %-d at %-I:%M %p")
        .to_string()
}

fn list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}

/// The deterministic intake script's turn.
pub(crate) async fn intake(
    env: &Env<'_>,
    conversation: &mut Conversation,
    said: Option<&str>,
) -> Result<Reply, AssistantError> {
    let Some(text) = said.map(str::trim).filter(|t| !t.is_empty()) else {
        conversation.silences += 1;
        if conversation.silences >= 2 {
            return take_message(env, conversation, "The caller did not say anything.").await;
        }
        let again = conversation.asked.map_or("How can I help?", question);
        return Ok(finish(
            conversation,
            format!("Sorry, I didn't catch that. {again}"),
            Action::Continue,
            None,
        ));
    };
    conversation.silences = 0;
    conversation.say("caller", text);
    if conversation.asked == Some(Ask::Message) {
        return take_message(env, conversation, text).await;
    }
    let offered = conversation.offered.len();
    match parse_intent(text, offered) {
        Some(Intent::Transfer) => return transfer(env, conversation).await,
        Some(Intent::Message) => return ask(conversation, Ask::Message, "Of course."),
        Some(Intent::Choice(index)) if offered > 0 => return book(env, conversation, index).await,
        Some(Intent::Yes) if offered > 0 => return book(env, conversation, 0).await,
        Some(Intent::No) if offered > 0 => {
            conversation.offered.clear();
            conversation.preferred = None;
            return ask(conversation, Ask::Time, "No problem.");
        }
        _ => {}
    }
    let learned_name = conversation.name.is_none()
        && learn_name(
            conversation,
            parse_name(text, conversation.asked == Some(Ask::Name)),
        );
    let learned_phone = parse_phone(text)
        .map(|p| conversation.phone = Some(p.to_string()))
        .is_some();
    let learned_time = parse_time(text, env.now, &env.zone)
        .map(|at| {
            conversation.preferred = Some(at);
            conversation.offered.clear();
        })
        .is_some();
    if conversation.need.is_none()
        && (conversation.asked == Some(Ask::Need)
            || (!learned_name
                && !learned_phone
                && !learned_time
                && text.split_whitespace().count() >= 2))
    {
        conversation.need = Some(text.chars().take(200).collect());
    }
    let thanks = match (&conversation.name, learned_name) {
        (Some(name), true) => format!("Thanks, {name}."),
        _ => String::new(),
    };
    next_step(env, conversation, &thanks).await
}

fn learn_name(conversation: &mut Conversation, name: Option<String>) -> bool {
    conversation.name = name;
    conversation.name.is_some()
}

fn ask(conversation: &mut Conversation, what: Ask, prefix: &str) -> Result<Reply, AssistantError> {
    conversation.asked = Some(what);
    let text = format!("{prefix} {}", question(what)).trim().to_owned();
    Ok(finish(conversation, text, Action::Continue, None))
}

/// Asks for the first missing fact, or offers slots once all are known.
pub(crate) async fn next_step(
    env: &Env<'_>,
    conversation: &mut Conversation,
    prefix: &str,
) -> Result<Reply, AssistantError> {
    let missing = [
        (conversation.name.is_none(), Ask::Name),
        (conversation.need.is_none(), Ask::Need),
        (conversation.phone.is_none(), Ask::Phone),
        (conversation.preferred.is_none(), Ask::Time),
    ]
    .into_iter()
    .find_map(|(missing, what)| missing.then_some(what));
    match missing {
        Some(what) => ask(conversation, what, prefix),
        None => offer(env, conversation, prefix).await,
    }
}

/// Free slots around the preferred time, for the model's `find_slots` and the script.
pub(crate) async fn find(
    env: &Env<'_>,
    tenant: &TenantId,
    preferred: DateTime<Utc>,
) -> Result<Vec<Slot>, AssistantError> {
    let utx = env.begin(tenant).await?;
    let slots = free_slots(&utx, &env.settings, &env.zone, env.now, preferred, OFFERED).await?;
    utx.finish_read().await?;
    Ok(slots)
}

async fn offer(
    env: &Env<'_>,
    conversation: &mut Conversation,
    prefix: &str,
) -> Result<Reply, AssistantError> {
    let preferred = conversation.preferred.unwrap_or(env.now);
    let slots = find(env, &conversation.tenant_id, preferred).await?;
    if slots.is_empty() {
        conversation.preferred = None;
        return ask(
            conversation,
            Ask::Time,
            &format!("{prefix} I don't have anything open around then."),
        );
    }
    let times: Vec<String> = slots.iter().map(|s| spoken(&env.zone, s.starts)).collect();
    conversation.offered = slots;
    conversation.asked = Some(Ask::Choice);
    let text = format!("{prefix} I can do {}. Which works best?", list(&times));
    Ok(finish(
        conversation,
        text.trim().to_owned(),
        Action::Continue,
        None,
    ))
}

fn completed_event(utx: &TenantTxn, conversation: &Conversation, outcome: Outcome) {
    let mut event = utx.event(
        ASSISTANT_CONVERSATION_COMPLETED,
        json!({
            "conversation_id": conversation.id, "channel": conversation.channel.as_str(),
            "outcome": outcome.as_str(), "appointment_id": conversation.appointment_id,
            "task_id": conversation.task_id, "lead_id": conversation.lead_id,
        }),
    );
    if let Some(lead) = conversation.lead_id {
        event = event.with_lead(lead);
    }
    utx.emit(event);
}

/// Books offered slot `index` (see the module doc); a slot taken meanwhile is offered again.
pub(crate) async fn book(
    env: &Env<'_>,
    conversation: &mut Conversation,
    index: usize,
) -> Result<Reply, AssistantError> {
    let Some(slot) = conversation.offered.get(index).copied() else {
        return ask(conversation, Ask::Choice, "Sorry, which one?");
    };
    let Some(phone) = conversation
        .phone
        .as_deref()
        .and_then(|p| PhoneE164::try_from(p).ok())
    else {
        return ask(conversation, Ask::Phone, "Before I book it:");
    };
    let utx = env.begin(&conversation.tenant_id).await?;
    let lead = crate::calls::lead_by_phone(&utx, &phone, conversation.name.as_deref(), "assistant")
        .await?;
    conversation.lead_id = Some(lead.into());
    let new = NewAppointment {
        lead_id: lead.into(),
        starts_at: slot.starts.to_rfc3339(),
        ends_at: slot.ends.to_rfc3339(),
        title: Some(
            conversation
                .need
                .clone()
                .unwrap_or_else(|| "Service visit".to_owned()),
        ),
        notes: Some(format!(
            "Booked by the receptionist ({}) for {}, {}.",
            conversation.channel.as_str(),
            conversation.name.as_deref().unwrap_or("a caller"),
            phone
        )),
        rep_id: slot.rep_id,
        external_id: Some(conversation.id.clone()),
        company_wide: slot.rep_id.is_none(),
        ..NewAppointment::default()
    };
    completed_event(&utx, conversation, Outcome::Booked);
    match appointments::book(env.ctx, utx, new).await {
        Ok(Booking::Created(row) | Booking::Existing(row)) => {
            metrics::counter!("assistant_bookings_total", "channel" => conversation.channel.as_str())
                .increment(1);
            conversation.outcome = Some(Outcome::Booked);
            conversation.appointment_id = Some(row.id);
            conversation.offered.clear();
            let text = format!(
                "You're all set for {}. We'll see you then. Goodbye!",
                spoken(&env.zone, row.scheduled_start)
            );
            Ok(finish(conversation, text, Action::Hangup, Some(row)))
        }
        Err(AppointmentError::Conflict) => {
            conversation.offered.clear();
            offer(env, conversation, "Sorry, that time was just taken.").await
        }
        Err(AppointmentError::Service(err)) => Err(err.into()),
        Err(other) => Err(ServiceError::invalid("appointment", other.to_string()).into()),
    }
}

/// Leaves a task for the team with the caller's message, and ends.
pub(crate) async fn take_message(
    env: &Env<'_>,
    conversation: &mut Conversation,
    message: &str,
) -> Result<Reply, AssistantError> {
    let utx = env.begin(&conversation.tenant_id).await?;
    if let Some(phone) = conversation
        .phone
        .as_deref()
        .and_then(|p| PhoneE164::try_from(p).ok())
    {
        let lead =
            crate::calls::lead_by_phone(&utx, &phone, conversation.name.as_deref(), "assistant")
                .await?;
        conversation.lead_id = Some(lead.into());
    }
    let who = conversation
        .name
        .clone()
        .or_else(|| conversation.phone.clone())
        .unwrap_or_else(|| "a visitor".to_owned());
    let title: String = format!("Call back {who}: {message}")
        .chars()
        .take(200)
        .collect();
    let (task, _) = tasks::create(
        &utx,
        NewTask {
            title,
            lead_id: conversation.lead_id,
            assignee_id: None,
            due_at: Some(env.now + chrono::Duration::hours(2)),
            unique_key: Some(format!("assistant:{}", conversation.id)),
        },
    )
    .await
    .map_err(|err| match err {
        TaskError::Service(err) => err,
        other => ServiceError::invalid("task", other.to_string()),
    })?;
    conversation.task_id = Some(task.id);
    conversation.outcome = Some(Outcome::Message);
    completed_event(&utx, conversation, Outcome::Message);
    utx.commit(env.ctx).await?;
    Ok(finish(
        conversation,
        "Thanks, I've passed your message on. Someone will call you back soon. Goodbye!".to_owned(),
        Action::Hangup,
        None,
    ))
}

/// To the transfer number, or a message when there is none.
pub(crate) async fn transfer(
    env: &Env<'_>,
    conversation: &mut Conversation,
) -> Result<Reply, AssistantError> {
    let Some(number) = env.settings.transfer_number.clone() else {
        return ask(
            conversation,
            Ask::Message,
            "Nobody can take the call right now.",
        );
    };
    let utx = env.begin(&conversation.tenant_id).await?;
    conversation.outcome = Some(Outcome::Transferred);
    completed_event(&utx, conversation, Outcome::Transferred);
    utx.commit(env.ctx).await?;
    Ok(finish(
        conversation,
        "Connecting you now, please hold.".to_owned(),
        Action::Transfer(number),
        None,
    ))
}
