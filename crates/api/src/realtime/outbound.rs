//! What the server sends on one WebSocket. The hub and the connection's task put messages into
//! an [`Outbound`]; the connection's HTTP dispatcher drains it through [`OutboundBody`], the
//! response body of the upgrade. An event therefore reaches the socket with one wake-up (the
//! dispatcher's), with no task or channel of our own in between.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use actix_http::ws::{CloseReason, Codec, Message};
use actix_web::body::{BodySize, MessageBody};
use actix_web::web::{Bytes, BytesMut};
use bytestring::ByteString;
use otto_domain::{EventEnvelope, Severity, TenantId, TraceId};
use serde_json::json;
use tokio::sync::Notify;
use tokio_util::codec::Encoder;

/// Control frames (replies, pings, pongs) a client may leave unread before new ones are
/// discarded. Replies are rate limited upstream; this bounds pongs to a client that pings but
/// never reads.
const CONTROL_CAPACITY: usize = 32;
/// Bytes of frames handed to the dispatcher per poll. The dispatcher stops polling while its own
/// write buffer is full, so events beyond this wait here, where the oldest can be dropped.
const BYTES_PER_POLL: usize = 16 * 1024;

/// A connection's pending frames: events (bounded, oldest dropped first), control frames, and
/// the close frame that ends the stream.
pub struct Outbound {
    pending: Mutex<Pending>,
    capacity: usize,
    /// Signalled when the body is dropped: the dispatcher let go of the connection.
    body_gone: Notify,
}

#[derive(Default)]
struct Pending {
    events: VecDeque<ByteString>,
    control: VecDeque<Message>,
    /// `Some` once closing: the close frame (with its reason) is the last thing sent.
    close: Option<Option<CloseReason>>,
    dropped_since_notice: u64,
    waker: Option<Waker>,
}

impl Outbound {
    pub fn new(capacity: usize) -> Self {
        Self {
            pending: Mutex::new(Pending::default()),
            capacity: capacity.max(1),
            body_gone: Notify::new(),
        }
    }

    /// Queues an event; never waits on the client. A full queue drops its oldest event.
    pub fn push_event(&self, message: ByteString) {
        self.update(|pending| {
            if pending.close.is_some() {
                return;
            }
            if pending.events.len() >= self.capacity {
                pending.events.pop_front();
                pending.dropped_since_notice += 1;
                metrics::counter!("ws_messages_dropped_total").increment(1);
            }
            pending.events.push_back(message);
        });
    }

    /// Queues a reply, ping or pong, sent before any queued event.
    pub fn push_control(&self, message: Message) {
        self.update(|pending| {
            if pending.close.is_none() && pending.control.len() < CONTROL_CAPACITY {
                pending.control.push_back(message);
            }
        });
    }

    /// Ends the stream: queued control frames, then the close frame. The first reason wins.
    pub fn close(&self, reason: Option<CloseReason>) {
        self.update(|pending| {
            if pending.close.is_none() {
                pending.close = Some(reason);
            }
        });
    }

    fn take_batch(&self, waker: &Waker) -> Option<Batch> {
        let mut pending = self.pending.lock().ok()?;
        let closing = pending.close.is_some();
        // Taken whole, not drained: a connection that rarely gets control frames keeps no buffer.
        let control = std::mem::take(&mut pending.control);
        let mut events = Vec::new();
        let mut dropped = 0;
        if !closing {
            dropped = std::mem::take(&mut pending.dropped_since_notice);
            let mut bytes = 0;
            while bytes < BYTES_PER_POLL
                && let Some(event) = pending.events.pop_front()
            {
                bytes += event.len();
                events.push(event);
            }
        }
        if control.is_empty() && events.is_empty() && dropped == 0 && !closing {
            pending.waker = Some(waker.clone());
            return None;
        }
        let close = if closing { pending.close.clone() } else { None };
        Some(Batch {
            control,
            dropped,
            events,
            close,
        })
    }

    /// Resolves once the connection's dispatcher has dropped the body (the socket is gone).
    pub async fn body_gone(&self) {
        self.body_gone.notified().await;
    }

    fn update(&self, change: impl FnOnce(&mut Pending)) {
        let waker = match self.pending.lock() {
            Ok(mut pending) => {
                change(&mut pending);
                pending.waker.take()
            }
            Err(_) => None,
        };
        // Woken outside the lock: the dispatcher may run on another thread at once.
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// Who a connection's `system.buffer_dropped` notice is addressed to.
pub struct NoticeTo {
    pub tenant: TenantId,
    pub trace: TraceId,
}

/// The upgrade response's body: the frames of an [`Outbound`], encoded as they are polled.
pub struct OutboundBody {
    outbound: Arc<Outbound>,
    codec: Codec,
    notice_to: NoticeTo,
    finished: bool,
}

impl OutboundBody {
    pub fn new(outbound: Arc<Outbound>, notice_to: NoticeTo) -> Self {
        Self {
            outbound,
            codec: Codec::new(),
            notice_to,
            finished: false,
        }
    }

    fn encode(&mut self, message: Message, into: &mut BytesMut) {
        // Encoding a server frame into memory cannot fail: the codec checks sizes on receipt only.
        let _ = self.codec.encode(message, into);
    }

    fn drop_notice(&self, dropped: u64) -> ByteString {
        let notice = EventEnvelope::new(
            "system.buffer_dropped",
            self.notice_to.tenant.clone(),
            self.notice_to.trace.clone(),
            json!({ "dropped": dropped }),
        )
        .with_severity(Severity::Warning);
        serde_json::to_string(&notice).unwrap_or_default().into()
    }
}

/// What one poll takes out of the queue, under the lock; encoded after it is released.
struct Batch {
    control: VecDeque<Message>,
    dropped: u64,
    events: Vec<ByteString>,
    close: Option<Option<CloseReason>>,
}

impl MessageBody for OutboundBody {
    type Error = Infallible;

    fn size(&self) -> BodySize {
        BodySize::Stream
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let this = self.get_mut();
        if this.finished {
            return Poll::Ready(None);
        }
        let Some(batch) = this.outbound.take_batch(cx.waker()) else {
            return Poll::Pending;
        };
        let mut frames = BytesMut::new();
        for message in batch.control {
            this.encode(message, &mut frames);
        }
        if batch.dropped > 0 {
            let notice = this.drop_notice(batch.dropped);
            this.encode(Message::Text(notice), &mut frames);
        }
        let sent = batch.events.len() as u64;
        for event in batch.events {
            this.encode(Message::Text(event), &mut frames);
        }
        if sent > 0 {
            metrics::counter!("ws_messages_sent_total").increment(sent);
        }
        if let Some(reason) = batch.close {
            this.encode(Message::Close(reason), &mut frames);
            this.finished = true;
        }
        Poll::Ready(Some(Ok(frames.freeze())))
    }
}

impl Drop for OutboundBody {
    fn drop(&mut self) {
        // notify_one keeps a permit when the task is not waiting yet: the signal is never lost.
        self.outbound.body_gone.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_http::ws::{CloseCode, Frame, ProtocolError};
    use actix_web::body::to_bytes;
    use tokio_util::codec::Decoder;

    fn body(outbound: &Arc<Outbound>) -> Result<OutboundBody, Box<dyn std::error::Error>> {
        Ok(OutboundBody::new(
            outbound.clone(),
            NoticeTo {
                tenant: TenantId::try_from("org_outbound")?,
                trace: TraceId::generate(),
            },
        ))
    }

    /// The frames as a client reads them.
    fn frames(mut bytes: BytesMut) -> Result<Vec<Frame>, ProtocolError> {
        let mut codec = Codec::new().client_mode();
        let mut frames = Vec::new();
        while let Some(frame) = codec.decode(&mut bytes)? {
            frames.push(frame);
        }
        Ok(frames)
    }

    fn text(frame: &Frame) -> String {
        match frame {
            Frame::Text(bytes) => String::from_utf8_lossy(bytes).into_owned(),
            other => format!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn control_first_then_the_drop_notice_then_the_newest_events_then_close()
    -> Result<(), Box<dyn std::error::Error>> {
        let outbound = Arc::new(Outbound::new(2));
        for n in 1..=5 {
            outbound.push_event(format!("event {n}").into());
        }
        outbound.push_control(Message::Text(r#"{"type":"subscribed"}"#.into()));
        outbound.close(Some(CloseReason {
            code: CloseCode::Away,
            description: Some("heartbeat_timeout".into()),
        }));
        outbound.push_event("after close".into());
        let sent = frames(BytesMut::from(&to_bytes(body(&outbound)?).await?[..]))?;
        let texts: Vec<String> = sent.iter().map(text).collect();
        // Closing sends what the client must know (control frames), not the events still queued.
        assert_eq!(texts.len(), 2, "{texts:?}");
        assert_eq!(texts[0], r#"{"type":"subscribed"}"#);
        assert!(matches!(&sent[1], Frame::Close(Some(r)) if r.code == CloseCode::Away));

        let outbound = Arc::new(Outbound::new(2));
        for n in 1..=5 {
            outbound.push_event(format!("event {n}").into());
        }
        outbound.push_control(Message::Text(r#"{"type":"ping"}"#.into()));
        let mut body = body(&outbound)?;
        let first = std::future::poll_fn(|cx| Pin::new(&mut body).poll_next(cx)).await;
        let Some(Ok(bytes)) = first else {
            return Err("no frames".into());
        };
        let texts: Vec<String> = frames(BytesMut::from(&bytes[..]))?
            .iter()
            .map(text)
            .collect();
        assert_eq!(texts[0], r#"{"type":"ping"}"#);
        assert!(
            texts[1].contains(r#""event":"system.buffer_dropped""#),
            "{}",
            texts[1]
        );
        assert!(texts[1].contains(r#""dropped":3"#), "{}", texts[1]);
        assert_eq!(texts[2..], ["event 4", "event 5"]);
        Ok(())
    }

    #[tokio::test]
    async fn a_waiting_body_is_woken_by_a_push_and_a_dropped_body_is_reported()
    -> Result<(), Box<dyn std::error::Error>> {
        let outbound = Arc::new(Outbound::new(8));
        let mut body = body(&outbound)?;
        let pusher = {
            let outbound = outbound.clone();
            tokio::spawn(async move {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                outbound.push_event("late".into());
            })
        };
        let next = std::future::poll_fn(|cx| Pin::new(&mut body).poll_next(cx));
        let Some(Ok(bytes)) = tokio::time::timeout(std::time::Duration::from_secs(5), next).await?
        else {
            return Err("no frames".into());
        };
        pusher.await?;
        assert_eq!(text(&frames(BytesMut::from(&bytes[..]))?[0]), "late");
        drop(body);
        tokio::time::timeout(std::time::Duration::from_secs(5), outbound.body_gone()).await?;
        Ok(())
    }
}
