//! The receptionist through a model (`LLM_BASE_URL`): the model converses and asks for tools
//! (`find_slots`, `book_appointment`, `transfer`, `take_message`); the state machine runs them
//! and stays the authority: only an offered, still free slot is booked, and a refusal goes back
//! to the model as the tool's answer, saying why. Silence is the script's (two, then a message).

use otto_integrations::llm::{ChatMessage, LlmClient, LlmError, ToolCall};
use serde_json::{Value, json};

use super::actions;
use super::conversation::{Action, Ask, Conversation};
use super::engine::{AssistantError, Env, Reply};
use super::script::{self, finish, spoken};

/// Model round trips per turn (tool answers included) before the script takes over.
const ROUNDS: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(transparent)]
    Llm(#[from] LlmError),
    #[error("the model gave no answer in {ROUNDS} rounds")]
    NoAnswer,
    #[error(transparent)]
    Engine(#[from] AssistantError),
}

#[derive(Clone)]
pub struct Model {
    pub client: LlmClient,
}

fn tools() -> Vec<Value> {
    let function = |name: &str, description: &str, properties: Value, required: &[&str]| {
        json!({"type": "function", "function": {"name": name, "description": description,
            "parameters": {"type": "object", "properties": properties, "required": required}}})
    };
    vec![
        function(
            "find_slots",
            "Free appointment times at or after the caller's preferred time.",
            json!({"preferred_time": {"type": "string",
                "description": "ISO 8601 local time, e.g. 2026-12-01T10:00"}}),
            &["preferred_time"],
        ),
        function(
            "book_appointment",
            "Book one of the times find_slots returned.",
            json!({"slot_start": {"type": "string", "description": "the start of an offered slot, as returned"},
                "name": {"type": "string"}, "phone": {"type": "string"}, "need": {"type": "string"}}),
            &["slot_start"],
        ),
        function(
            "transfer",
            "Transfer the caller to a person.",
            json!({}),
            &[],
        ),
        function(
            "take_message",
            "Leave a message for the team to call back.",
            json!({"message": {"type": "string"}}),
            &["message"],
        ),
    ]
}

fn system_prompt(env: &Env<'_>, conversation: &Conversation) -> String {
    let offered: Vec<String> = conversation
        .offered
        .iter()
        .map(|s| {
            format!(
                "{} ({})",
                s.starts.to_rfc3339(),
                spoken(&env.zone, s.starts)
            )
        })
        .collect();
    format!(
        "You are the receptionist of a home-services company. Be brief and friendly. \
         Now: {now}. Services: {services}. Collect the caller's name, need, phone and a \
         preferred time, call find_slots, offer the times it returns, and call book_appointment \
         with the one the caller picks. Call transfer when they ask for a person and \
         take_message when they want to leave a message. Known so far: name {name:?}, need \
         {need:?}, phone {phone:?}. Offered: [{offered}].",
        now = spoken(&env.zone, env.now),
        services = env.settings.services.join(", "),
        name = conversation.name,
        need = conversation.need,
        phone = conversation.phone,
        offered = offered.join("; "),
    )
}

fn arguments(call: &ToolCall) -> Value {
    serde_json::from_str(&call.function.arguments).unwrap_or(Value::Null)
}

/// What running a tool gave: an answer for the model, or the turn's final reply.
enum Ran {
    Answer(Value),
    Final(Box<Reply>),
}

impl Model {
    /// One turn through the model.
    ///
    /// # Errors
    /// The model's failure or silence (the caller falls back to the script), engine failures.
    pub(crate) async fn turn(
        &self,
        env: &Env<'_>,
        conversation: &mut Conversation,
        said: Option<&str>,
    ) -> Result<Reply, ModelError> {
        let Some(text) = said.map(str::trim).filter(|t| !t.is_empty()) else {
            return Ok(script::intake(env, conversation, None).await?);
        };
        conversation.silences = 0;
        conversation.say("caller", text);
        let mut messages = vec![ChatMessage::text(
            "system",
            system_prompt(env, conversation),
        )];
        messages.extend(conversation.history.iter().map(|line| {
            let role = if line.from == "caller" {
                "user"
            } else {
                "assistant"
            };
            ChatMessage::text(role, line.text.clone())
        }));
        let tools = tools();
        for _ in 0..ROUNDS {
            let completion = self.client.chat(&messages, &tools).await?;
            metrics::counter!("llm_tokens_total", "tenant_id" => conversation.tenant_id.to_string(),
                "model" => completion.model.clone())
            .increment(completion.usage.total_tokens);
            let message = completion.message;
            let calls = message.tool_calls.clone().unwrap_or_default();
            if calls.is_empty() {
                let content = message.content.unwrap_or_default();
                if content.trim().is_empty() {
                    return Err(ModelError::NoAnswer);
                }
                return Ok(finish(conversation, content, Action::Continue, None));
            }
            messages.push(message);
            for call in calls {
                match self.run(env, conversation, &call).await? {
                    Ran::Final(reply) => return Ok(*reply),
                    Ran::Answer(answer) => {
                        messages.push(ChatMessage::tool_result(&call.id, &answer))
                    }
                }
            }
        }
        Err(ModelError::NoAnswer)
    }

    async fn run(
        &self,
        env: &Env<'_>,
        conversation: &mut Conversation,
        call: &ToolCall,
    ) -> Result<Ran, ModelError> {
        let args = arguments(call);
        let text = |key: &str| args[key].as_str().map(str::to_owned);
        match call.function.name.as_str() {
            "find_slots" => {
                let Some(preferred) =
                    text("preferred_time").and_then(|t| env.zone.parse_instant(&t).ok())
                else {
                    return Ok(Ran::Answer(
                        json!({"error": "preferred_time must be an ISO 8601 time"}),
                    ));
                };
                let slots = script::find(env, &conversation.tenant_id, preferred).await?;
                conversation.preferred = Some(preferred);
                conversation.offered = slots.clone();
                conversation.asked = Some(Ask::Choice);
                let listed: Vec<Value> = slots
                    .iter()
                    .map(|s| json!({"slot_start": s.starts.to_rfc3339(), "spoken": spoken(&env.zone, s.starts)}))
                    .collect();
                Ok(Ran::Answer(json!({"slots": listed})))
            }
            "book_appointment" => {
                if let Some(name) = text("name") {
                    conversation.name = Some(name);
                }
                if let Some(need) = text("need") {
                    conversation.need = Some(need);
                }
                if let Some(phone) = text("phone") {
                    match otto_domain::PhoneE164::try_from(phone.as_str()) {
                        Ok(phone) => conversation.phone = Some(phone.to_string()),
                        Err(_) => {
                            return Ok(Ran::Answer(
                                json!({"error": "phone is not a valid phone number"}),
                            ));
                        }
                    }
                }
                let wanted = text("slot_start").and_then(|t| env.zone.parse_instant(&t).ok());
                let Some(index) =
                    wanted.and_then(|at| conversation.offered.iter().position(|s| s.starts == at))
                else {
                    return Ok(Ran::Answer(json!({
                        "error": "refused: that time was not offered (it may be taken or outside business hours); call find_slots and offer one of its times"
                    })));
                };
                if conversation.phone.is_none() {
                    return Ok(Ran::Answer(
                        json!({"error": "refused: ask the caller's phone number first"}),
                    ));
                }
                let reply = actions::book(env, conversation, index).await?;
                if conversation.outcome.is_some() {
                    return Ok(Ran::Final(Box::new(reply)));
                }
                Ok(Ran::Answer(
                    json!({"error": "that time was just taken", "reply_offered": reply.text}),
                ))
            }
            "transfer" => Ok(Ran::Final(Box::new(
                actions::transfer(env, conversation).await?,
            ))),
            "take_message" => {
                let message = text("message").unwrap_or_else(|| "(no message)".to_owned());
                Ok(Ran::Final(Box::new(
                    actions::take_message(env, conversation, &message).await?,
                )))
            }
            other => Ok(Ran::Answer(
                json!({"error": format!("no tool named {other}")}),
            )),
        }
    }
}
