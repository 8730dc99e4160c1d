//! Schema migrations. Every migration runs on both SQLite (embedded mode) and PostgreSQL.

pub use sea_orm_migration::prelude::*;

mod m20261122_000001_initial_schema;
pub mod m20261122_000002_row_level_security;
mod m20261122_000003_lead_list_index;
mod m20261123_000004_pipeline_guards;
mod m20261129_000005_call_notes;
mod m20261129_000006_rep_phone;
mod m20261129_000007_timeline_indexes;
mod m20261129_000008_appointments_and_tasks;
mod m20261129_000009_dashboard_index;
mod m20261129_000010_sms_opt_out;
mod m20261129_000011_outbound_sms;
mod m20261129_000012_followup_message;
mod m20261129_000013_google_calendar;
mod m20261129_000014_assistant;
mod m20261129_000015_more_integrations;
mod m20261130_000016_documents_and_recordings;
mod tables;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_initial_schema::Migration),
            Box::new(m20261122_000002_row_level_security::Migration),
            Box::new(m20261122_000003_lead_list_index::Migration),
            Box::new(m20261123_000004_pipeline_guards::Migration),
            Box::new(m20261129_000005_call_notes::Migration),
            Box::new(m20261129_000006_rep_phone::Migration),
            Box::new(m20261129_000007_timeline_indexes::Migration),
            Box::new(m20261129_000008_appointments_and_tasks::Migration),
            Box::new(m20261129_000009_dashboard_index::Migration),
            Box::new(m20261129_000010_sms_opt_out::Migration),
            Box::new(m20261129_000011_outbound_sms::Migration),
            Box::new(m20261129_000012_followup_message::Migration),
            Box::new(m20261129_000013_google_calendar::Migration),
            Box::new(m20261129_000014_assistant::Migration),
            Box::new(m20261129_000015_more_integrations::Migration),
            Box::new(m20261130_000016_documents_and_recordings::Migration),
        ]
    }
}
