//! One WebSocket connection's task: the client protocol (subscribe / unsubscribe / pong),
//! channel ACL and the heartbeat. It never writes to the socket itself: everything it sends goes
//! through the connection's [`Outbound`], which the HTTP dispatcher drains.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_http::ws::{CloseCode, CloseReason, Message};
use actix_web::web;
use otto_db::TenantScope;
use otto_db::entities::lead;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::hub::{ConnectionId, Hub};
use super::inbound::{ClientMessage, Inbound};
use super::outbound::Outbound;
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
    pub id: ConnectionId,
    pub outbound: Arc<Outbound>,
}

enum Flow {
    Continue,
    Close(Option<CloseReason>),
}

impl Connection {
    pub async fn serve(self, mut inbound: Inbound) {
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
        let reason = loop {
            let flow = tokio::select! {
                () = shutdown.cancelled() => Flow::Close(Some(CloseReason { code: CloseCode::Away, description: Some("server shutting down".into()) })),
                () = self.outbound.body_gone() => Flow::Close(None),
                message = inbound.next() => match message {
                    Some(Ok(ClientMessage::Text(text))) => {
                        // Boxed: the rare control path (with its database check) is allocated
                        // while it runs instead of enlarging every idle connection's task.
                        Box::pin(self.on_text(&text, &mut subscriptions, &mut control, &mut violations, &mut last_pong)).await
                    }
                    Some(Ok(ClientMessage::Ping(bytes))) => {
                        self.outbound.push_control(Message::Pong(bytes));
                        Flow::Continue
                    }
                    Some(Ok(ClientMessage::Pong)) => {
                        last_pong = Instant::now();
                        Flow::Continue
                    }
                    Some(Ok(ClientMessage::Binary)) => self.violation(&mut violations, "invalid_frame", "binary frames are not part of the protocol", None),
                    Some(Ok(ClientMessage::Close)) | Some(Err(_)) | None => Flow::Close(None),
                },
                _ = ping.tick() => {
                    if last_pong.elapsed() > pong_timeout {
                        tracing::info!(reason = "heartbeat_timeout", "websocket closed: no pong");
                        Flow::Close(Some(CloseReason { code: CloseCode::Away, description: Some("heartbeat_timeout".into()) }))
                    } else {
                        self.outbound.push_control(Message::Text(r#"{"type":"ping"}"#.into()));
                        Flow::Continue
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
        self.outbound.close(reason);
    }

    async fn on_text(
        &self,
        text: &[u8],
        subscriptions: &mut HashSet<String>,
        control: &mut VecDeque<Instant>,
        violations: &mut u32,
        last_pong: &mut Instant,
    ) -> Flow {
        let frame = match serde_json::from_slice::<ClientFrame>(text) {
            Ok(frame) => frame,
            Err(_) => {
                return self.violation(
                    violations,
                    "invalid_frame",
                    "expected {\"type\":\"subscribe|unsubscribe|pong\", ...}",
                    None,
                );
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
            return self.violation(
                violations,
                "rate_limited",
                "at most 10 subscribe/unsubscribe frames per minute",
                Some(&channel),
            );
        }
        control.push_back(now);
        if !subscribe {
            if subscriptions.remove(&channel) {
                self.hub.unsubscribe(&channel, self.id);
            }
            return self.reply(json!({"type": "unsubscribed", "channel": channel}));
        }
        match self.may_subscribe(&channel).await {
            Ok(()) => {
                self.hub.subscribe(&channel, self.id, &self.outbound);
                subscriptions.insert(channel.clone());
                self.reply(json!({"type": "subscribed", "channel": channel}))
            }
            Err((code, message)) => {
                tracing::info!(channel = %channel, code, "websocket subscribe refused");
                self.reply(
                    json!({"type": "error", "code": code, "message": message, "channel": channel}),
                )
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

    fn violation(
        &self,
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
    }

    fn reply(&self, frame: serde_json::Value) -> Flow {
        self.outbound
            .push_control(Message::Text(frame.to_string().into()));
        Flow::Continue
    }
}
