//! Every job Otto runs: the call pipeline, the daily reports and the housekeeping jobs. Each is
//! a payload type of `otto_domain::jobs` implementing [`Perform`](crate::typed::Perform) here.

pub mod calendar;
pub mod callrail;
pub mod documents;
pub mod maintenance;
pub mod missed_calls;
pub mod pipeline;
pub mod property;
pub mod reports;
pub mod sms;

use otto_domain::jobs::{
    CheckMissingReports, EnrichCallRailCall, GenerateDailyReports, IndexDocument, LookUpProperty,
    ProcessMissedCalls, PushAppointment, RenewCalendarChannels, SendSms, SyncCalendar, TrainRep,
};

use crate::Registry;

/// Every job Otto runs, with the UWC client of `config` when it is configured.
pub fn registry(config: &otto_runtime::Config) -> Registry {
    let mut registry = Registry::default();
    maintenance::register(&mut registry);
    pipeline::Pipeline::from_config(config).register(&mut registry);
    registry
        .add::<GenerateDailyReports>(())
        .add::<CheckMissingReports>(())
        .add::<SendSms>(sms::sender(config))
        .add::<EnrichCallRailCall>(callrail::client(config))
        .add::<ProcessMissedCalls>(missed_calls::callbacks(config))
        .add::<LookUpProperty>(property::model(config))
        .add::<IndexDocument>(documents::rag_client(config))
        .add::<TrainRep>(documents::training_client(config))
        .add::<SyncCalendar>(calendar::sync(config))
        .add::<PushAppointment>(calendar::sync(config))
        .add::<RenewCalendarChannels>(calendar::sync(config));
    registry
}
