//! What a client sends on one WebSocket: frames decoded from the upgrade request's body, with
//! fragmented text reassembled.

use std::future::poll_fn;
use std::pin::Pin;
use std::task::{Context, Poll};

use actix_http::ws::{Codec, Frame, Item, ProtocolError};
use actix_web::web::{self, Bytes, BytesMut};
use futures_util::Stream;
use tokio_util::codec::Decoder;

/// The largest frame, and the largest reassembled message, a client may send.
const MAX_MESSAGE_BYTES: usize = 64 * 1024;

pub enum ClientMessage {
    Text(Bytes),
    Binary,
    Ping(Bytes),
    Pong,
    Close,
}

/// Frames read from `S`, the upgrade request's body.
pub struct Inbound<S = web::Payload> {
    payload: S,
    buf: BytesMut,
    codec: Codec,
    /// A fragmented message being reassembled: `Some(text?)` between its first and last frame.
    fragments: Option<(bool, BytesMut)>,
}

impl<S, E> Inbound<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    pub fn new(payload: S) -> Self {
        Self {
            payload,
            buf: BytesMut::new(),
            codec: Codec::new().max_size(MAX_MESSAGE_BYTES),
            fragments: None,
        }
    }

    /// The next message; `None` once the client is gone.
    pub async fn next(&mut self) -> Option<Result<ClientMessage, ProtocolError>> {
        poll_fn(|cx| self.poll_message(cx)).await
    }

    fn poll_message(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<ClientMessage, ProtocolError>>> {
        loop {
            match self.codec.decode(&mut self.buf) {
                Ok(Some(frame)) => match self.assemble(frame) {
                    Ok(Some(message)) => return Poll::Ready(Some(Ok(message))),
                    Ok(None) => continue,
                    Err(e) => return Poll::Ready(Some(Err(e))),
                },
                Ok(None) => {}
                Err(e) => return Poll::Ready(Some(Err(e))),
            }
            match Pin::new(&mut self.payload).poll_next(cx) {
                Poll::Ready(Some(Ok(bytes))) => self.buf.extend_from_slice(&bytes),
                Poll::Ready(Some(Err(_))) | Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    fn assemble(&mut self, frame: Frame) -> Result<Option<ClientMessage>, ProtocolError> {
        Ok(Some(match frame {
            Frame::Text(text) => ClientMessage::Text(text),
            Frame::Binary(_) => ClientMessage::Binary,
            Frame::Ping(bytes) => ClientMessage::Ping(bytes),
            Frame::Pong(_) => ClientMessage::Pong,
            Frame::Close(_) => ClientMessage::Close,
            Frame::Continuation(item) => return self.continue_fragments(item),
        }))
    }

    fn continue_fragments(&mut self, item: Item) -> Result<Option<ClientMessage>, ProtocolError> {
        match (item, self.fragments.as_mut()) {
            (Item::FirstText(bytes), None) => {
                self.fragments = Some((true, BytesMut::from(&bytes[..])))
            }
            (Item::FirstBinary(bytes), None) => {
                self.fragments = Some((false, BytesMut::from(&bytes[..])))
            }
            (Item::Continue(bytes), Some((_, so_far))) => so_far.extend_from_slice(&bytes),
            (Item::Last(bytes), Some(_)) => {
                let Some((text, mut whole)) = self.fragments.take() else {
                    return Err(ProtocolError::ContinuationNotStarted);
                };
                whole.extend_from_slice(&bytes);
                if whole.len() > MAX_MESSAGE_BYTES {
                    return Err(ProtocolError::Overflow);
                }
                return Ok(Some(if text {
                    ClientMessage::Text(whole.freeze())
                } else {
                    ClientMessage::Binary
                }));
            }
            (Item::FirstText(_) | Item::FirstBinary(_), Some(_)) => {
                return Err(ProtocolError::ContinuationStarted);
            }
            (Item::Continue(_) | Item::Last(_), None) => {
                return Err(ProtocolError::ContinuationNotStarted);
            }
        }
        if self
            .fragments
            .as_ref()
            .is_some_and(|(_, so_far)| so_far.len() > MAX_MESSAGE_BYTES)
        {
            return Err(ProtocolError::Overflow);
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_http::ws::{Message, OpCode, Parser, ProtocolError};
    use futures_util::stream;
    use tokio_util::codec::Encoder;

    /// Frames as a browser sends them: masked, in client mode.
    fn client_frames(messages: Vec<Message>) -> Result<Bytes, ProtocolError> {
        let mut codec = Codec::new().client_mode();
        let mut out = BytesMut::new();
        for message in messages {
            codec.encode(message, &mut out)?;
        }
        Ok(out.freeze())
    }

    /// The bytes arrive split at every `chunk` bytes, as reads from a socket may split them.
    fn inbound(
        bytes: Bytes,
        chunk: usize,
    ) -> Inbound<impl Stream<Item = Result<Bytes, ()>> + Unpin> {
        let pieces: Vec<Result<Bytes, ()>> = bytes
            .chunks(chunk)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        Inbound::new(stream::iter(pieces))
    }

    fn text_of(message: Option<Result<ClientMessage, ProtocolError>>) -> Option<String> {
        match message {
            Some(Ok(ClientMessage::Text(text))) => String::from_utf8(text.to_vec()).ok(),
            _ => None,
        }
    }

    #[tokio::test]
    async fn fragmented_text_is_reassembled_across_split_reads() -> Result<(), ProtocolError> {
        let bytes = client_frames(vec![
            Message::Continuation(Item::FirstText(Bytes::from_static(b"{\"type\":"))),
            Message::Ping(Bytes::from_static(b"p")),
            Message::Continuation(Item::Continue(Bytes::from_static(b"\"po"))),
            Message::Continuation(Item::Last(Bytes::from_static(b"ng\"}"))),
            Message::Text("second".into()),
        ])?;
        let mut inbound = inbound(bytes, 3);
        // A control frame may arrive between fragments, and is answered at once.
        assert!(matches!(inbound.next().await, Some(Ok(ClientMessage::Ping(p))) if p == "p"));
        assert_eq!(
            text_of(inbound.next().await).as_deref(),
            Some("{\"type\":\"pong\"}")
        );
        assert_eq!(text_of(inbound.next().await).as_deref(), Some("second"));
        assert!(
            inbound.next().await.is_none(),
            "the stream ends with the body"
        );
        Ok(())
    }

    #[tokio::test]
    async fn out_of_order_fragments_and_oversized_messages_are_refused() -> Result<(), ProtocolError>
    {
        // A last fragment with no first one (the client encoder would refuse to write it).
        let mut stray = BytesMut::new();
        Parser::write_message(&mut stray, b"x", OpCode::Continue, true, true);
        let stray = stray.freeze();
        assert!(matches!(
            inbound(stray, 64).next().await,
            Some(Err(ProtocolError::ContinuationNotStarted))
        ));
        let piece = Bytes::from(vec![b'a'; 40 * 1024]);
        let oversized = client_frames(vec![
            Message::Continuation(Item::FirstText(piece.clone())),
            Message::Continuation(Item::Last(piece)),
        ])?;
        assert!(matches!(
            inbound(oversized, 4096).next().await,
            Some(Err(ProtocolError::Overflow))
        ));
        Ok(())
    }
}
