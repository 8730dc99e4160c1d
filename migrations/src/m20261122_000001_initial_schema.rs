//! Every table of SPEC section 9, plus the outbox, the database job queue and worker heartbeats.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::tables::{index, tenant_owned};

#[derive(DeriveMigrationName)]
pub struct Migration;

const TENANT_TABLES: [&str; 13] = [
    "sales_reps",
    "leads",
    "calls",
    "appointments",
    "tasks",
    "messages",
    "follow_ups",
    "documents",
    "shunya_jobs",
    "recording_sessions",
    "daily_reports",
    "twilio_numbers",
    "users",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in tables() {
            manager.create_table(table).await?;
        }
        for idx in indexes() {
            manager.create_index(idx).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let others = [
            "companies",
            "idempotency_keys",
            "audit_log",
            "outbox_events",
            "job_queue",
            "worker_heartbeats",
        ];
        for table in TENANT_TABLES.iter().chain(others.iter()) {
            manager
                .drop_table(Table::drop().table(*table).if_exists().take())
                .await?;
        }
        Ok(())
    }
}

fn tables() -> Vec<TableCreateStatement> {
    vec![
        Table::create()
            .table("companies")
            .if_not_exists()
            .col(string("id").primary_key())
            .col(string("name"))
            .col(string("time_zone").default("UTC"))
            .col(string_null("callrail_company_id"))
            .col(boolean("lockdown_mode").default(false))
            .col(timestamp_with_time_zone("created_at"))
            .col(timestamp_with_time_zone("updated_at"))
            .take(),
        Table::create()
            .table("users")
            .if_not_exists()
            .col(string("id").primary_key())
            .col(string("company_id"))
            .col(string("role"))
            .col(string_null("email"))
            .col(string_null("name"))
            .col(timestamp_with_time_zone("created_at"))
            .col(timestamp_with_time_zone("updated_at"))
            .take(),
        Table::create()
            .table("twilio_numbers")
            .if_not_exists()
            .col(string("phone_e164").primary_key())
            .col(string("company_id"))
            .col(timestamp_with_time_zone("created_at"))
            .col(timestamp_with_time_zone("updated_at"))
            .take(),
        tenant_owned(
            "sales_reps",
            vec![
                string("user_id"),
                string("display_name"),
                boolean("active").default(true).take(),
            ],
        ),
        tenant_owned(
            "leads",
            vec![
                string_null("name"),
                string_null("phone"),
                string_null("email"),
                string_null("source"),
                string("status"),
                string_null("assigned_user_id"),
                integer("version"),
            ],
        ),
        tenant_owned(
            "calls",
            vec![
                uuid_null("lead_id"),
                string("provider"),
                string("provider_call_id"),
                string_null("direction"),
                boolean_null("answered"),
                integer_null("duration_seconds"),
                string_null("recording_url"),
                text_null("transcript"),
                json_binary_null("analysis"),
                boolean("booked").default(false).take(),
                string("status"),
                timestamp_with_time_zone_null("started_at"),
            ],
        ),
        tenant_owned(
            "appointments",
            vec![
                uuid("lead_id"),
                string_null("rep_user_id"),
                string_null("external_id"),
                timestamp_with_time_zone("scheduled_start"),
                timestamp_with_time_zone("scheduled_end"),
                string("status"),
                string_null("google_event_id"),
            ],
        ),
        tenant_owned(
            "tasks",
            vec![
                string_null("assignee_user_id"),
                uuid_null("lead_id"),
                string("title"),
                string_null("unique_key"),
                timestamp_with_time_zone_null("due_at"),
                string("status"),
            ],
        ),
        tenant_owned(
            "messages",
            vec![
                uuid_null("lead_id"),
                string("direction"),
                string("from_number"),
                string("to_number"),
                text("body"),
                string("provider"),
                string_null("provider_sid"),
                string("status"),
            ],
        ),
        tenant_owned(
            "follow_ups",
            vec![
                uuid_null("call_id"),
                uuid_null("lead_id"),
                string("channel"),
                text("draft"),
                string("status"),
                timestamp_with_time_zone_null("sent_at"),
            ],
        ),
        tenant_owned(
            "documents",
            vec![
                string("title"),
                string("content_type"),
                string_null("storage_key"),
                string("status"),
                string_null("uwc_document_id"),
            ],
        ),
        tenant_owned(
            "shunya_jobs",
            vec![
                string("shunya_job_id"),
                string("job_type"),
                string("status"),
                uuid_null("call_id"),
                integer("attempts").default(0).take(),
                timestamp_with_time_zone_null("next_retry_at"),
                string_null("processed_output_hash"),
            ],
        ),
        tenant_owned(
            "recording_sessions",
            vec![
                string("user_id"),
                uuid_null("appointment_id"),
                string("status"),
                string_null("audio_key"),
                timestamp_with_time_zone("started_at"),
                timestamp_with_time_zone_null("ended_at"),
                timestamp_with_time_zone_null("expires_at"),
            ],
        ),
        tenant_owned(
            "daily_reports",
            vec![string("report_date"), json_binary("metrics")],
        ),
        Table::create()
            .table("idempotency_keys")
            .if_not_exists()
            .col(big_pk_auto("id"))
            .col(string("provider"))
            .col(string("external_id"))
            .col(string_null("tenant_id"))
            .col(string("status"))
            .col(timestamp_with_time_zone("first_processed_at"))
            .col(timestamp_with_time_zone("last_seen_at"))
            .col(integer("attempts").default(1))
            .take(),
        Table::create()
            .table("audit_log")
            .if_not_exists()
            .col(big_pk_auto("id"))
            .col(string_null("company_id"))
            .col(string_null("user_id"))
            .col(string("action"))
            .col(string_null("route"))
            .col(string_null("trace_id"))
            .col(json_binary_null("detail"))
            .col(timestamp_with_time_zone("created_at"))
            .take(),
        Table::create()
            .table("outbox_events")
            .if_not_exists()
            .col(big_pk_auto("id"))
            .col(string("tenant_id"))
            .col(string("event"))
            .col(text("envelope"))
            .col(timestamp_with_time_zone("created_at"))
            .col(timestamp_with_time_zone_null("published_at"))
            .take(),
        Table::create()
            .table("job_queue")
            .if_not_exists()
            .col(pk_uuid("id"))
            .col(string("queue"))
            .col(string("name"))
            .col(text("payload"))
            .col(string("status"))
            .col(integer("attempts").default(0))
            .col(integer("max_attempts"))
            .col(timestamp_with_time_zone("run_at"))
            .col(timestamp_with_time_zone_null("locked_until"))
            .col(text_null("last_error"))
            .col(timestamp_with_time_zone("created_at"))
            .col(timestamp_with_time_zone("updated_at"))
            .take(),
        Table::create()
            .table("schedule_runs")
            .if_not_exists()
            .col(string("name"))
            .col(timestamp_with_time_zone("slot"))
            .col(timestamp_with_time_zone("fired_at"))
            .primary_key(Index::create().col("name").col("slot"))
            .take(),
        Table::create()
            .table("worker_heartbeats")
            .if_not_exists()
            .col(string("worker_id").primary_key())
            .col(text("queues"))
            .col(integer("in_flight").default(0))
            .col(timestamp_with_time_zone("started_at"))
            .col(timestamp_with_time_zone("last_beat"))
            .take(),
    ]
}

fn indexes() -> Vec<IndexCreateStatement> {
    let mut all: Vec<IndexCreateStatement> = TENANT_TABLES
        .iter()
        .filter(|t| !matches!(**t, "users" | "twilio_numbers"))
        .map(|table| index(table, &["company_id", "created_at"], false))
        .collect();
    all.extend([
        index("companies", &["callrail_company_id"], true),
        index("users", &["company_id"], false),
        index("twilio_numbers", &["company_id"], false),
        index("sales_reps", &["company_id", "user_id"], true),
        index("leads", &["company_id", "phone"], true),
        index("leads", &["company_id", "status"], false),
        index("leads", &["company_id", "assigned_user_id"], false),
        index(
            "calls",
            &["company_id", "provider", "provider_call_id"],
            true,
        ),
        index("calls", &["company_id", "lead_id"], false),
        index("appointments", &["company_id", "external_id"], true),
        index("appointments", &["company_id", "scheduled_start"], false),
        index("tasks", &["company_id", "unique_key"], true),
        index(
            "tasks",
            &["company_id", "assignee_user_id", "status"],
            false,
        ),
        index("messages", &["provider", "provider_sid"], true),
        index("shunya_jobs", &["company_id", "shunya_job_id"], true),
        index("shunya_jobs", &["status", "next_retry_at"], false),
        index("daily_reports", &["company_id", "report_date"], true),
        index("idempotency_keys", &["provider", "external_id"], true),
        index("idempotency_keys", &["first_processed_at"], false),
        index("audit_log", &["company_id", "created_at"], false),
        index("outbox_events", &["published_at", "id"], false),
        index("job_queue", &["queue", "status", "run_at"], false),
    ]);
    all
}
