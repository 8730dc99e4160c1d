//! sea-orm entities, one per table (migrations in `otto-migration` create them).

pub mod api_idempotency_key;
pub mod appointment;
pub mod assistant_feedback;
pub mod assistant_setting;
pub mod audit_log;
pub mod calendar_connection;
pub mod calendar_oauth_state;
pub mod call;
pub mod company;
pub mod daily_report;
pub mod document;
pub mod follow_up;
pub mod idempotency_key;
pub mod lead;
pub mod message;
pub mod outbox_event;
pub mod queued_job;
pub mod recording_session;
pub mod sales_rep;
pub mod schedule_run;
pub mod shunya_job;
pub mod task;
pub mod twilio_number;
pub mod user;
pub mod worker_heartbeat;

use sea_orm::{EntityName, EntityTrait};

/// An entity whose rows belong to one tenant through their `company_id` column. Only these
/// can be reached through [`crate::TenantScope`].
pub trait TenantOwned: EntityTrait {
    fn company_column() -> Self::Column;
}

macro_rules! tenant_owned {
    ($($module:ident),+ $(,)?) => {
        $(
            impl TenantOwned for $module::Entity {
                fn company_column() -> Self::Column {
                    $module::Column::CompanyId
                }
            }
        )+

        /// The tables of every tenant-owned entity (companies included): exactly the tables
        /// PostgreSQL's row-level security must cover (a test compares the two).
        pub fn tenant_owned_tables() -> Vec<&'static str> {
            let mut tables = vec![$($module::Entity.table_name()),+];
            tables.push(company::Entity.table_name());
            tables.sort_unstable();
            tables
        }
    };
}

tenant_owned!(
    api_idempotency_key,
    appointment,
    assistant_feedback,
    assistant_setting,
    calendar_connection,
    calendar_oauth_state,
    call,
    daily_report,
    document,
    follow_up,
    lead,
    message,
    recording_session,
    sales_rep,
    shunya_job,
    task,
    twilio_number,
    user,
);

/// Companies are the tenants themselves: their key is the tenant id.
impl TenantOwned for company::Entity {
    fn company_column() -> Self::Column {
        company::Column::Id
    }
}
