//! A conversation's state between turns (stored as JSON in the conversation store).

use chrono::{DateTime, Utc};
use otto_domain::TenantId;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::slots::Slot;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Voice,
    Sms,
    Widget,
    Chat,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Voice => "voice",
            Self::Sms => "sms",
            Self::Widget => "widget",
            Self::Chat => "chat",
        }
    }
}

/// What the last reply asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ask {
    Name,
    Need,
    Phone,
    Time,
    Choice,
    Message,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Booked,
    Transferred,
    Message,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Booked => "booked",
            Self::Transferred => "transferred",
            Self::Message => "message",
        }
    }
}

/// What the channel does after saying the reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "to")]
pub enum Action {
    Continue,
    Transfer(String),
    Hangup,
}

/// One line of the conversation (the model reads the recent ones).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    pub from: String,
    pub text: String,
}

/// Lines kept for the model.
const HISTORY: usize = 20;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Conversation {
    pub id: String,
    pub tenant_id: TenantId,
    pub channel: Channel,
    pub name: Option<String>,
    pub need: Option<String>,
    pub phone: Option<String>,
    pub preferred: Option<DateTime<Utc>>,
    pub offered: Vec<Slot>,
    pub asked: Option<Ask>,
    pub silences: u8,
    pub outcome: Option<Outcome>,
    pub appointment_id: Option<Uuid>,
    pub task_id: Option<Uuid>,
    pub lead_id: Option<Uuid>,
    pub turns: u32,
    pub history: Vec<Line>,
    /// The last reply, given again for a turn after the conversation ended (a provider's retry).
    pub last_reply: Option<(String, Action)>,
}

impl Conversation {
    pub fn new(id: &str, tenant: TenantId, channel: Channel, phone: Option<String>) -> Self {
        Self {
            id: id.to_owned(),
            tenant_id: tenant,
            channel,
            name: None,
            need: None,
            phone,
            preferred: None,
            offered: Vec::new(),
            asked: None,
            silences: 0,
            outcome: None,
            appointment_id: None,
            task_id: None,
            lead_id: None,
            turns: 0,
            history: Vec::new(),
            last_reply: None,
        }
    }

    pub fn say(&mut self, from: &str, text: &str) {
        self.history.push(Line {
            from: from.to_owned(),
            text: text.to_owned(),
        });
        if self.history.len() > HISTORY {
            let extra = self.history.len() - HISTORY;
            self.history.drain(..extra);
        }
    }

    /// `collecting`, `offering`, `message`, or the outcome.
    pub fn state(&self) -> &'static str {
        match (self.outcome, self.asked) {
            (Some(outcome), _) => outcome.as_str(),
            (None, Some(Ask::Choice)) => "offering",
            (None, Some(Ask::Message)) => "message",
            (None, _) => "collecting",
        }
    }
}
