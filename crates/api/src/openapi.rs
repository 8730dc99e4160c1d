//! The OpenAPI document, generated from the handlers' annotations.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::openapi_extra::UnannotatedRoutes;
use crate::problem::{FieldError, Problem};
use crate::routes::{
    appointments, assistant, calendar, calls, companies, dashboard, documents, followups, leads,
    me, messages, ops, recordings, rep_training, reports, sms, tasks, team, timeline,
};

#[derive(OpenApi)]
#[openapi(
    info(title = "Otto API", description = "Sales-call intelligence backend for home-services companies."),
    paths(
        ops::health, ops::ready, ops::worker_heartbeat, ops::metrics, ops::dev_error,
        me::me, me::session,
        companies::get_company, companies::patch_company, companies::lockdown,
        leads::list_leads, leads::create_lead, leads::get_lead, leads::patch_lead, leads::delete_lead,
        timeline::lead_timeline,
        appointments::list_appointments, appointments::create_appointment, appointments::get_appointment,
        appointments::patch_appointment, appointments::assign_appointment,
        tasks::list_tasks, tasks::create_task, tasks::patch_task, sms::send_sms,
        documents::upload_document, documents::list_documents, documents::delete_document,
        documents::ask_otto, documents::serve_file, recordings::open_session,
        recordings::upload_audio, recordings::finish_session, rep_training::get_rep,
        rep_training::train_rep,
        sms::send_followup,
        calls::list_calls, calls::get_call, calls::patch_call,
        team::list_users, team::patch_user, team::list_reps, team::patch_rep,
        followups::list_followups, followups::patch_followup, messages::list_messages,
        reports::list_daily_reports, dashboard::dashboard_metrics,
        calendar::calendar_status, calendar::disconnect_calendar, calendar::authorize_calendar,
        calendar::calendar_callback, calendar::watch_calendar, calendar::calendar_push,
        calendar::calendar_relay,
        assistant::get_settings, assistant::patch_settings, assistant::rotate_widget_key,
        assistant::open_widget_session, assistant::widget_message, assistant::open_chat_session,
        assistant::chat_message, assistant::leave_feedback,
    ),
    components(schemas(Problem, FieldError)),
    modifiers(&BearerAuth, &UnannotatedRoutes),
    tags(
        (name = "ops", description = "Operational endpoints"),
        (name = "identity", description = "The caller"),
        (name = "companies", description = "The caller's company (tenant)"),
        (name = "leads", description = "Leads of the caller's company"),
        (name = "appointments", description = "Bookings of leads with reps"),
        (name = "assistant", description = "The AI receptionist: settings, web widget, staff chat, feedback"),
        (name = "calendar", description = "Google Calendar two-way sync"),
        (name = "tasks", description = "To-dos of the team, from people and from call analysis"),
        (name = "documents", description = "Documents for Ask Otto, questions, and signed file URLs"),
        (name = "recordings", description = "In-person visits recorded on a phone, into the call pipeline"),
        (name = "calls", description = "Calls with their transcripts, analyses and follow-ups"),
        (name = "team", description = "Users and sales reps of the caller's company"),
        (name = "followups", description = "Follow-up drafts"),
        (name = "messages", description = "Text messages"),
        (name = "reports", description = "Stored daily reports"),
        (name = "dashboard", description = "Figures of a range of days"),
        (name = "webhooks", description = "Provider deliveries (SPEC section 6)"),
        (name = "realtime", description = "WebSockets (SPEC section 7)"),
    )
)]
pub struct ApiDoc;

/// Declares the Clerk session token as the `bearer` security scheme.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}
