//! The dialogue engine (SPEC section 16): one state machine for every channel. A turn holds the
//! conversation's lock, reads its state, decides, acts through the service layer (booking with
//! the conversation id as `external_id`, so a retried turn never books twice; a task for a
//! message), and stores the state again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use otto_db::TenantTxn;
use otto_db::entities::{appointment, company};
use otto_domain::{PhoneE164, TenantId, TraceId};
use otto_runtime::AppContext;
use otto_runtime::conversations::StoreError;
use sea_orm::EntityTrait;

use super::conversation::{Action, Ask, Channel, Conversation};
use super::model::Model;
use super::script::{finish, intake, question};
use super::settings::{self, Settings};
use crate::ServiceError;
use crate::zone::Zone;

/// How long a turn waits for the one in progress.
pub const TURN_WAIT: Duration = Duration::from_secs(5);
/// A company's lockdown flag, zone and settings are read at most this often per process: a
/// lockdown or a settings change reaches the receptionist within it.
pub const COMPANY_TTL: Duration = Duration::from_secs(1);

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
    companies: Arc<Recent<TenantId, Company>>,
    widget_keys: Arc<Recent<String, Option<WidgetOwner>>>,
}

/// Values read within the last [`COMPANY_TTL`].
struct Recent<K, V> {
    entries: Mutex<HashMap<K, (Instant, V)>>,
}

impl<K, V> Default for Recent<K, V> {
    fn default() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: std::hash::Hash + Eq, V: Clone> Recent<K, V> {
    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<K, (Instant, V)>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        self.entries()
            .get(key)
            .filter(|(read, _)| read.elapsed() < COMPANY_TTL)
            .map(|(_, value)| value.clone())
    }

    fn put(&self, key: K, value: V) {
        let mut entries = self.entries();
        if entries.len() > 10_000 {
            entries.retain(|_, (read, _)| read.elapsed() < COMPANY_TTL);
        }
        entries.insert(key, (Instant::now(), value));
    }

    fn retain(&self, keep: impl Fn(&V) -> bool) {
        self.entries().retain(|_, (_, value)| keep(value));
    }
}

/// The company a widget key names, and the origins its widget may be served from.
#[derive(Debug, Clone)]
pub struct WidgetOwner {
    pub tenant: TenantId,
    pub allowed_origins: Vec<String>,
}

/// What a turn needs of its company.
#[derive(Clone)]
struct Company {
    lockdown: bool,
    zone: Zone,
    settings: Option<Settings>,
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

/// How a channel's turns are timed and counted.
fn measured(channel: Channel, started: Instant) {
    metrics::counter!("assistant_turns_total", "channel" => channel.as_str()).increment(1);
    metrics::histogram!("assistant_turn_duration_ms", "channel" => channel.as_str())
        .record(started.elapsed().as_secs_f64() * 1000.0);
}

/// What a locked turn leaves: the reply and, when it changed, the state to store.
type Turned = (Channel, Reply, Option<String>);

impl Assistant {
    /// With the model of `LLM_BASE_URL` when it is set.
    pub fn from_config(config: &otto_runtime::Config) -> Self {
        let client = otto_integrations::llm::LlmSettings::from_config(config)
            .and_then(|settings| otto_integrations::llm::LlmClient::new(settings).ok());
        Self {
            model: client.map(|client| Model { client }),
            companies: Arc::default(),
            widget_keys: Arc::default(),
        }
    }

    /// Forgets what this process read of `tenant` (its settings or lockdown just changed here).
    pub fn forget(&self, tenant: &TenantId) {
        self.companies.entries().remove(tenant);
        self.widget_keys
            .retain(|owner| owner.as_ref().is_none_or(|o| o.tenant != *tenant));
    }

    /// The company `key` names (read at most once a second per key and process, like the
    /// company's settings).
    ///
    /// # Errors
    /// On database failure.
    pub async fn widget_owner(
        &self,
        ctx: &AppContext,
        key: &str,
    ) -> Result<Option<WidgetOwner>, AssistantError> {
        if let Some(owner) = self.widget_keys.get(key) {
            return Ok(owner);
        }
        let owner = settings::by_widget_key(&ctx.db, key)
            .await?
            .map(|(tenant, settings)| WidgetOwner {
                tenant,
                allowed_origins: settings.widget_allowed_origins,
            });
        self.widget_keys.put(key.to_owned(), owner.clone());
        Ok(owner)
    }

    async fn company(
        &self,
        ctx: &AppContext,
        tenant: &TenantId,
    ) -> Result<Company, AssistantError> {
        if let Some(company) = self.companies.get(tenant) {
            return Ok(company);
        }
        let utx = TenantTxn::begin(&ctx.db, tenant, TraceId::generate()).await?;
        let row = company::Entity::find_by_id(tenant.as_str())
            .one(utx.conn())
            .await?
            .ok_or(AssistantError::Disabled)?;
        let settings = settings::stored(&utx).await?;
        utx.finish_read().await?;
        let company = Company {
            lockdown: row.lockdown_mode,
            zone: Zone::parse(&row.time_zone),
            settings,
        };
        self.companies.put(tenant.clone(), company.clone());
        Ok(company)
    }

    /// The company's zone and settings, refusing a company in lockdown or without the
    /// receptionist.
    async fn environment<'a>(
        &self,
        ctx: &'a AppContext,
        tenant: &TenantId,
    ) -> Result<Env<'a>, AssistantError> {
        let company = self.company(ctx, tenant).await?;
        if company.lockdown {
            return Err(AssistantError::Locked);
        }
        let settings = company
            .settings
            .filter(|s| s.enabled)
            .ok_or(AssistantError::Disabled)?;
        Ok(Env {
            ctx,
            settings,
            zone: company.zone,
            now: Utc::now(),
            trace: TraceId::generate(),
        })
    }

    /// Runs `work` under the conversation's lock, with its stored state (if any); stores the
    /// state `work` leaves and releases the lock in one round trip.
    async fn locked<'e, F, Fut>(
        &self,
        env: &Env<'e>,
        id: &str,
        work: F,
    ) -> Result<Reply, AssistantError>
    where
        F: FnOnce(Option<String>) -> Fut,
        Fut: Future<Output = Result<Turned, AssistantError>>,
    {
        let started = Instant::now();
        let store = &env.ctx.conversations;
        let (lock, raw) = store.lock(id, TURN_WAIT).await?;
        match work(raw).await {
            Ok((channel, reply, Some(state))) => {
                store.save_and_unlock(lock, &state).await?;
                measured(channel, started);
                Ok(reply)
            }
            Ok((channel, reply, None)) => {
                store.unlock(lock).await;
                measured(channel, started);
                Ok(reply)
            }
            Err(err) => {
                store.unlock(lock).await;
                Err(err)
            }
        }
    }

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
        let env = self.environment(ctx, tenant).await?;
        self.locked(&env, id, |raw| async {
            let mut conversation = match raw {
                Some(raw) => serde_json::from_str::<Conversation>(&raw)?,
                None => {
                    Conversation::new(id, tenant.clone(), channel, caller.map(|p| p.to_string()))
                }
            };
            if conversation.tenant_id != *tenant {
                return Err(AssistantError::NotFound);
            }
            conversation.asked = Some(Ask::Name);
            let text = format!("{} {}", env.settings.greeting, question(Ask::Name));
            let reply = finish(&mut conversation, text, Action::Continue, None);
            Ok((channel, reply, Some(serde_json::to_string(&conversation)?)))
        })
        .await
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
        let env = self.environment(ctx, tenant).await?;
        self.locked(&env, id, |raw| self.turn_locked(&env, tenant, raw, said))
            .await
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
        raw: Option<String>,
        said: Option<&str>,
    ) -> Result<Turned, AssistantError> {
        let raw = raw.ok_or(AssistantError::NotFound)?;
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
            let state = conversation.state();
            return Ok((
                channel,
                Reply {
                    text,
                    action,
                    state,
                    appointment,
                },
                None,
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
        Ok((channel, reply, Some(serde_json::to_string(&conversation)?)))
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
