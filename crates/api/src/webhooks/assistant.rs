//! The receptionist on Twilio (SPEC section 16): TwiML for an assistant-enabled company's calls
//! (greeting + `<Gather input="speech">`, then one `POST /webhooks/twilio/voice/turn` per thing
//! said: `<Say>` + `<Gather>`, `<Dial>` to the transfer number, or `<Hangup/>`) and `<Message>`
//! replies to its texts. A `<Gather>` that hears nothing falls through to a `<Redirect>` to the
//! turn URL without `SpeechResult`: the engine's silence turn.

use actix_web::{HttpRequest, HttpResponse, web};
use otto_domain::{PhoneE164, TenantId};
use otto_service::assistant::{Action, AssistantError, Channel, Reply};

use super::tenants;
use crate::error::ApiError;
use crate::state::ApiState;

pub const TURN_PATH: &str = "/webhooks/twilio/voice/turn";
pub const EMPTY_TWIML: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Response/>"#;

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

fn twiml(body: &str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/xml")
        .body(format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><Response>{body}</Response>"#
        ))
}

/// The TwiML of a voice reply.
pub fn voice_twiml(reply: &Reply) -> HttpResponse {
    let say = format!("<Say>{}</Say>", escape(&reply.text));
    match &reply.action {
        Action::Continue => twiml(&format!(
            r#"<Gather input="speech" action="{TURN_PATH}" method="POST" speechTimeout="auto">{say}</Gather><Redirect method="POST">{TURN_PATH}</Redirect>"#
        )),
        Action::Transfer(number) => twiml(&format!("{say}<Dial>{}</Dial>", escape(number))),
        Action::Hangup => twiml(&format!("{say}<Hangup/>")),
    }
}

/// The TwiML of a text reply.
pub fn sms_twiml(reply: &Reply) -> HttpResponse {
    twiml(&format!("<Message>{}</Message>", escape(&reply.text)))
}

/// `Disabled` is not an error on Twilio's routes: the call or text is handled as before.
fn enabled(result: Result<Reply, AssistantError>) -> Result<Option<Reply>, ApiError> {
    match result {
        Ok(reply) => Ok(Some(reply)),
        Err(AssistantError::Disabled) => Ok(None),
        Err(err) => Err(crate::routes::assistant::api_error(err)),
    }
}

/// A call to an assistant-enabled company: the greeting; else the empty answer.
pub async fn answer_call(
    state: &ApiState,
    tenant: &TenantId,
    call_sid: &str,
    caller: Option<&PhoneE164>,
) -> Result<HttpResponse, ApiError> {
    let id = format!("voice_{call_sid}");
    let started = state
        .assistant
        .start(&state.ctx, tenant, Channel::Voice, &id, caller)
        .await;
    Ok(match enabled(started)? {
        Some(reply) => voice_twiml(&reply),
        None => HttpResponse::Ok()
            .content_type("application/xml")
            .body(EMPTY_TWIML),
    })
}

/// A text to an assistant-enabled company: the engine's reply; else the empty answer.
pub async fn answer_text(
    state: &ApiState,
    tenant: &TenantId,
    from: &PhoneE164,
    body: &str,
) -> Result<HttpResponse, ApiError> {
    let replied = state
        .assistant
        .sms_turn(&state.ctx, tenant, from, body)
        .await;
    Ok(match enabled(replied)? {
        Some(reply) => sms_twiml(&reply),
        None => HttpResponse::Ok()
            .content_type("application/xml")
            .body(EMPTY_TWIML),
    })
}

/// `POST /webhooks/twilio/voice/turn` (signed like every Twilio route): `SpeechResult` is what
/// the caller said; absent, nothing was heard.
pub async fn voice_turn(
    state: web::Data<ApiState>,
    req: HttpRequest,
    raw: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let pairs = super::twilio::verified_form(&state, &req, &raw)?;
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let call_sid = get("CallSid").ok_or_else(|| ApiError::validation("CallSid", "is required"))?;
    let to = get("To").ok_or_else(|| ApiError::validation("To", "is required"))?;
    let to = PhoneE164::try_from(to.as_str())?;
    let tenant = tenants::by_twilio_number(&state.ctx.db, to.as_str())
        .await?
        .ok_or(ApiError::NotFound)?;
    let said = get("SpeechResult");
    let reply = state
        .assistant
        .turn(
            &state.ctx,
            &tenant.id,
            &format!("voice_{call_sid}"),
            said.as_deref(),
        )
        .await
        .map_err(crate::routes::assistant::api_error)?;
    Ok(voice_twiml(&reply))
}
