//! What a conversation does in the CRM: books through the booking operation (the conversation
//! id as `external_id`), leaves a message as a task, transfers; each emits
//! `assistant.conversation.completed` in its own transaction.

use otto_db::TenantTxn;
use otto_domain::PhoneE164;
use otto_domain::catalog::ASSISTANT_CONVERSATION_COMPLETED;
use serde_json::json;

use super::conversation::{Action, Ask, Conversation, Outcome};
use super::engine::{AssistantError, Env, Reply};
use super::script::{ask, finish, offer, spoken};
use crate::ServiceError;
use crate::appointments::{self, AppointmentError, Booking, NewAppointment};
use crate::tasks::{self, NewTask, TaskError};

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
