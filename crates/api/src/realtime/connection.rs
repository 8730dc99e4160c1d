//! One WebSocket connection: the client protocol (subscribe / unsubscribe / pong), channel ACL,
//! the heartbeat, and the writer that drains the connection's queue.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::web;
use actix_ws::{AggregatedMessage, AggregatedMessageStream, CloseCode, CloseReason, Session};
use bytestring::ByteString;
use futures_util::StreamExt;
use otto_db::TenantScope;
use otto_db::entities::lead;
use otto_domain::{EventEnvelope, Severity, TraceId};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::hub::{ConnectionId, ConnectionQueue, Hub};
use crate::auth::AuthUser;
use crate::state::ApiState;

/// Subscribe/unsubscribe frames allowed per connection per minute.
const CONTROL_FRAMES_PER_MINUTE: usize = 10;
/// Protocol violations tolerated before the connection is closed with 1008.
const MAX_VIOLATIONS: u32 = 3;

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum ClientFrame {
    Subscribe { channel: String },
    Unsubscribe { channel: String },
    Pong,
}

pub struct Connection {
    /// Shared, not cloned: a connection holds one pointer to the state, not a copy of it.
    pub state: web::Data<ApiState>,
    pub hub: Arc<Hub>,
    pub user: AuthUser,
    pub trace: TraceId,
    pub session: Session,
    pub id: ConnectionId,
    pub queue: Arc<ConnectionQueue>,
}

enum Flow {
    Continue,
    Close(Option<CloseReason>),
}

impl Connection {
    pub async fn serve(mut self, mut stream: AggregatedMessageStream) {
        let realtime = &self.state.ctx.config.realtime;
        let (ping_interval, pong_timeout) = (realtime.ping_interval, realtime.pong_timeout);
        let shutdown = self.state.ctx.shutdown.clone();
        let mut subscriptions = HashSet::new();
        let mut control = VecDeque::new();
        let mut violations = 0;
        let mut last_pong = Instant::now();
        let mut ping =
            tokio::time::interval_at(tokio::time::Instant::now() + ping_interval, ping_interval);
        metrics::gauge!("ws_connections").increment(1.0);
        let flow = loop {
            let flow = tokio::select! {
                () = shutdown.cancelled() => Flow::Close(Some(CloseReason { code: CloseCode::Away, description: Some("server shutting down".into()) })),
                frame = stream.next() => match frame {
                    Some(Ok(AggregatedMessage::Text(text))) => {
                        // Boxed: the rare control path (with its database check) is allocated
                        // while it runs instead of enlarging every idle connection's task.
                        Box::pin(self.on_text(&text, &mut subscriptions, &mut control, &mut violations, &mut last_pong)).await
                    }
                    Some(Ok(AggregatedMessage::Ping(bytes))) => {
                        let _ = self.session.pong(&bytes).await;
                        Flow::Continue
                    }
                    Some(Ok(AggregatedMessage::Pong(_))) => {
                        last_pong = Instant::now();
                        Flow::Continue
                    }
                    Some(Ok(AggregatedMessage::Binary(_))) => self.violation(&mut violations, "invalid_frame", "binary frames are not part of the protocol", None).await,
                    Some(Ok(AggregatedMessage::Close(_))) | Some(Err(_)) | None => Flow::Close(None),
                },
                batch = self.queue.next_batch() => self.deliver(batch, pong_timeout).await,
                _ = ping.tick() => {
                    if last_pong.elapsed() > pong_timeout {
                        tracing::info!(reason = "heartbeat_timeout", "websocket closed: no pong");
                        Flow::Close(Some(CloseReason { code: CloseCode::Away, description: Some("heartbeat_timeout".into()) }))
                    } else if self.send(r#"{"type":"ping"}"#.into(), pong_timeout).await {
                        Flow::Continue
                    } else {
                        Flow::Close(None)
                    }
                }
            };
            if let Flow::Close(reason) = flow {
                break reason;
            }
        };
        for channel in &subscriptions {
            self.hub.unsubscribe(channel, self.id);
        }
        metrics::gauge!("ws_connections").decrement(1.0);
        tracing::info!(
            subscriptions = subscriptions.len(),
            "websocket disconnected"
        );
        let _ = self.session.close(flow).await;
    }

    async fn on_text(
        &mut self,
        text: &str,
        subscriptions: &mut HashSet<String>,
        control: &mut VecDeque<Instant>,
        violations: &mut u32,
        last_pong: &mut Instant,
    ) -> Flow {
        let frame = match serde_json::from_str::<ClientFrame>(text) {
            Ok(frame) => frame,
            Err(_) => {
                return self
                    .violation(
                        violations,
                        "invalid_frame",
                        "expected {\"type\":\"subscribe|unsubscribe|pong\", ...}",
                        None,
                    )
                    .await;
            }
        };
        let (subscribe, channel) = match frame {
            ClientFrame::Pong => {
                *last_pong = Instant::now();
                return Flow::Continue;
            }
            ClientFrame::Subscribe { channel } => (true, channel),
            ClientFrame::Unsubscribe { channel } => (false, channel),
        };
        let now = Instant::now();
        while control
            .front()
            .is_some_and(|t| now.duration_since(*t) > Duration::from_secs(60))
        {
            control.pop_front();
        }
        if control.len() >= CONTROL_FRAMES_PER_MINUTE {
            return self
                .violation(
                    violations,
                    "rate_limited",
                    "at most 10 subscribe/unsubscribe frames per minute",
                    Some(&channel),
                )
                .await;
        }
        control.push_back(now);
        if !subscribe {
            if subscriptions.remove(&channel) {
                self.hub.unsubscribe(&channel, self.id);
            }
            return self
                .reply(json!({"type": "unsubscribed", "channel": channel}))
                .await;
        }
        match self.may_subscribe(&channel).await {
            Ok(()) => {
                self.hub.subscribe(&channel, self.id, &self.queue);
                subscriptions.insert(channel.clone());
                self.reply(json!({"type": "subscribed", "channel": channel}))
                    .await
            }
            Err((code, message)) => {
                tracing::info!(channel = %channel, code, "websocket subscribe refused");
                self.reply(
                    json!({"type": "error", "code": code, "message": message, "channel": channel}),
                )
                .await
            }
        }
    }

    /// Own tenant, own user, and leads of the own tenant (checked in the database). No wildcards.
    async fn may_subscribe(&self, channel: &str) -> Result<(), (&'static str, &'static str)> {
        let refused = ("forbidden", "this channel belongs to someone else");
        if channel.contains('*') {
            return Err(("invalid_channel", "wildcards are not allowed"));
        }
        let parts: Vec<&str> = channel.split(':').collect();
        match parts.as_slice() {
            ["tenant", tenant, "events"] => (*tenant == self.user.tenant_id.as_str())
                .then_some(())
                .ok_or(refused),
            ["user", user, "tasks"] => (*user == self.user.user_id.as_str())
                .then_some(())
                .ok_or(refused),
            ["lead", lead, "timeline"] => {
                let id = Uuid::parse_str(lead).map_err(|_| ("invalid_channel", "not a lead id"))?;
                let scope = TenantScope::new(&self.state.ctx.db, self.user.tenant_id.clone());
                match scope.find_by_id::<lead::Entity, _>(id).await {
                    Ok(Some(_)) => Ok(()),
                    Ok(None) => Err(refused),
                    Err(_) => Err(("unavailable", "could not check the lead; retry")),
                }
            }
            _ => Err((
                "invalid_channel",
                "channels are tenant:{id}:events, user:{id}:tasks or lead:{id}:timeline",
            )),
        }
    }

    async fn violation(
        &mut self,
        violations: &mut u32,
        code: &str,
        message: &str,
        channel: Option<&str>,
    ) -> Flow {
        *violations += 1;
        if *violations >= MAX_VIOLATIONS {
            tracing::info!(
                reason = "protocol_violation",
                "websocket closed after repeated protocol violations"
            );
            return Flow::Close(Some(CloseReason {
                code: CloseCode::Policy,
                description: Some("protocol violation".into()),
            }));
        }
        self.reply(json!({"type": "error", "code": code, "message": message, "channel": channel}))
            .await
    }

    async fn reply(&mut self, frame: serde_json::Value) -> Flow {
        let timeout = self.state.ctx.config.realtime.pong_timeout;
        if self.send(frame.to_string().into(), timeout).await {
            Flow::Continue
        } else {
            Flow::Close(None)
        }
    }

    /// Sends queued envelopes, preceded by one drop notice when the queue overflowed.
    async fn deliver(&mut self, batch: Vec<ByteString>, timeout: Duration) -> Flow {
        let dropped = self.queue.take_dropped();
        if dropped > 0 {
            let notice = EventEnvelope::new(
                "system.buffer_dropped",
                self.user.tenant_id.clone(),
                self.trace.clone(),
                json!({ "dropped": dropped }),
            )
            .with_severity(Severity::Warning);
            if !self.send(self.hub.render(&notice).into(), timeout).await {
                return Flow::Close(None);
            }
        }
        for message in batch {
            if !self.send(message, timeout).await {
                return Flow::Close(None);
            }
            metrics::counter!("ws_messages_sent_total").increment(1);
        }
        Flow::Continue
    }

    /// False when the client is gone or has not read for `timeout`.
    async fn send(&mut self, message: ByteString, timeout: Duration) -> bool {
        // ByteString clones share one buffer: every subscriber sends the same bytes, uncopied.
        matches!(
            tokio::time::timeout(timeout, self.session.text(message)).await,
            Ok(Ok(()))
        )
    }
}
