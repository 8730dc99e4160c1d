//! The deterministic intake script (SPEC section 16): what to ask next, reading facts out of
//! each utterance (`super::intake`), offering slots, and the replies' wording.

use chrono::{DateTime, Utc};
use otto_db::entities::appointment;
use otto_domain::TenantId;

use super::actions::{book, take_message, transfer};
use super::conversation::{Action, Ask, Conversation};
use super::engine::{AssistantError, Env, Reply};
use super::intake::{Intent, parse_intent, parse_name, parse_phone, parse_time};
use super::slots::{Slot, free_slots};
use crate::zone::Zone;

const OFFERED: usize = 3;

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

pub(crate) fn question(ask: Ask) -> &'static str {
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

pub(crate) fn ask(
    conversation: &mut Conversation,
    what: Ask,
    prefix: &str,
) -> Result<Reply, AssistantError> {
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

pub(crate) async fn offer(
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
