//! The local router from channel to connections. One task per API process reads the event bus
//! (itself one Redis subscription per process) and pushes each envelope into the bounded
//! [`Outbound`] queue of every connection subscribed to one of its channels. It never waits on a
//! client: a full queue drops its oldest message instead.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use bytestring::ByteString;
use otto_domain::EventEnvelope;
use otto_runtime::event_bus::EventBus;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use super::outbound::Outbound;

pub type ConnectionId = u64;

pub struct Hub {
    channels: RwLock<HashMap<String, HashMap<ConnectionId, Arc<Outbound>>>>,
    next_id: AtomicU64,
    buffer_size: usize,
    max_message_bytes: usize,
}

impl Hub {
    pub fn new(buffer_size: usize, max_message_bytes: usize) -> Self {
        Self {
            channels: RwLock::default(),
            next_id: AtomicU64::new(1),
            buffer_size,
            max_message_bytes,
        }
    }

    pub fn connect(&self) -> (ConnectionId, Arc<Outbound>) {
        (
            self.next_id.fetch_add(1, Ordering::Relaxed),
            Arc::new(Outbound::new(self.buffer_size)),
        )
    }

    pub fn subscribe(&self, channel: &str, id: ConnectionId, queue: &Arc<Outbound>) {
        if let Ok(mut channels) = self.channels.write() {
            channels
                .entry(channel.to_owned())
                .or_default()
                .insert(id, queue.clone());
        }
    }

    pub fn unsubscribe(&self, channel: &str, id: ConnectionId) {
        if let Ok(mut channels) = self.channels.write()
            && let Some(members) = channels.get_mut(channel)
        {
            members.remove(&id);
            if members.is_empty() {
                channels.remove(channel);
            }
        }
    }

    /// Queues `envelope` for every connection subscribed to one of its channels (once each).
    pub fn dispatch(&self, envelope: &EventEnvelope) {
        let targets: Vec<Arc<Outbound>> = {
            let Ok(channels) = self.channels.read() else {
                return;
            };
            let mut seen = HashSet::new();
            channels_of(envelope)
                .iter()
                .filter_map(|channel| channels.get(channel))
                .flat_map(|members| members.iter())
                .filter(|(id, _)| seen.insert(**id))
                .map(|(_, queue)| queue.clone())
                .collect()
        };
        if targets.is_empty() {
            return;
        }
        let message = ByteString::from(self.render(envelope));
        for queue in targets {
            queue.push_event(message.clone());
        }
    }

    /// The envelope as sent: whole, or as a pointer when it exceeds the size cap.
    pub fn render(&self, envelope: &EventEnvelope) -> String {
        let text = serde_json::to_string(envelope).unwrap_or_default();
        if text.len() <= self.max_message_bytes {
            return text;
        }
        let mut pointer = envelope.clone();
        pointer.data = json!({ "pointer": pointer_of(envelope) });
        serde_json::to_string(&pointer).unwrap_or_default()
    }

    /// Feeds the hub from the bus until shutdown.
    pub fn spawn_router(
        self: Arc<Self>,
        bus: Arc<dyn EventBus>,
        shutdown: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let mut events = bus.subscribe();
        tokio::spawn(async move {
            loop {
                let next = tokio::select! {
                    () = shutdown.cancelled() => return,
                    next = events.recv() => next,
                };
                match next {
                    Ok(envelope) => self.dispatch(&envelope),
                    Err(RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "real-time router lagged behind the bus")
                    }
                    Err(RecvError::Closed) => return,
                }
            }
        })
    }
}

/// Where an envelope goes: its tenant's channel, and its user's and lead's when it names them
/// and the catalog routes it there.
pub fn channels_of(envelope: &EventEnvelope) -> Vec<String> {
    let mut channels = vec![envelope.tenant_channel()];
    let spec = otto_domain::catalog::find(&envelope.event);
    if let Some(user) = &envelope.user_id
        && spec.is_none_or(|s| s.user_channel)
    {
        channels.push(format!("user:{user}:tasks"));
    }
    if let Some(lead) = &envelope.lead_id
        && spec.is_none_or(|s| s.lead_channel)
    {
        channels.push(format!("lead:{lead}:timeline"));
    }
    channels
}

/// `{"resource": "calls", "id": "..."}` from the first `*_id` field of the data.
fn pointer_of(envelope: &EventEnvelope) -> serde_json::Value {
    let found = envelope.data.as_object().and_then(|data| {
        data.iter().find_map(|(key, value)| {
            let resource = key.strip_suffix("_id")?;
            Some((format!("{resource}s"), value.clone()))
        })
    });
    match found {
        Some((resource, id)) => json!({ "resource": resource, "id": id }),
        None => json!({ "resource": "events", "id": envelope.event }),
    }
}
