//! A company's receptionist settings (`GET|PATCH /v1/assistant`): validated on write, created
//! with defaults on first use (so the widget key exists from the first read).

use chrono::{NaiveTime, Utc, Weekday};
use otto_db::TenantTxn;
use otto_db::entities::assistant_setting;
use otto_domain::{PhoneE164, TenantId};
use otto_runtime::crypto::random_token;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use serde::{Deserialize, Deserializer, Serialize};

use crate::ServiceError;

/// Opening hours of one day, `HH:MM` in the company's time zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DayHours {
    pub open: String,
    pub close: String,
}

/// `null` (or absent) = closed that day.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Week {
    #[serde(default)]
    pub monday: Option<DayHours>,
    #[serde(default)]
    pub tuesday: Option<DayHours>,
    #[serde(default)]
    pub wednesday: Option<DayHours>,
    #[serde(default)]
    pub thursday: Option<DayHours>,
    #[serde(default)]
    pub friday: Option<DayHours>,
    #[serde(default)]
    pub saturday: Option<DayHours>,
    #[serde(default)]
    pub sunday: Option<DayHours>,
}

fn hhmm(raw: &str) -> Option<NaiveTime> {
    NaiveTime::parse_from_str(raw, "%H:%M").ok()
}

impl Week {
    fn day(&self, day: Weekday) -> Option<&DayHours> {
        match day {
            Weekday::Mon => self.monday.as_ref(),
            Weekday::Tue => self.tuesday.as_ref(),
            Weekday::Wed => self.wednesday.as_ref(),
            Weekday::Thu => self.thursday.as_ref(),
            Weekday::Fri => self.friday.as_ref(),
            Weekday::Sat => self.saturday.as_ref(),
            Weekday::Sun => self.sunday.as_ref(),
        }
    }

    /// The open and close times of `day`, when open.
    pub fn hours(&self, day: Weekday) -> Option<(NaiveTime, NaiveTime)> {
        let hours = self.day(day)?;
        Some((hhmm(&hours.open)?, hhmm(&hours.close)?))
    }

    fn check(&self) -> Result<(), ServiceError> {
        for day in [
            Weekday::Mon,
            Weekday::Tue,
            Weekday::Wed,
            Weekday::Thu,
            Weekday::Fri,
            Weekday::Sat,
            Weekday::Sun,
        ] {
            let Some(hours) = self.day(day) else {
                continue;
            };
            let (Some(open), Some(close)) = (hhmm(&hours.open), hhmm(&hours.close)) else {
                return Err(ServiceError::invalid(
                    "business_hours",
                    format!("{day}: open and close are HH:MM"),
                ));
            };
            if close <= open {
                return Err(ServiceError::invalid(
                    "business_hours",
                    format!("{day}: close must be after open"),
                ));
            }
        }
        Ok(())
    }

    /// Monday to Friday 08:00-18:00.
    fn weekdays() -> Self {
        let day = || {
            Some(DayHours {
                open: "08:00".to_owned(),
                close: "18:00".to_owned(),
            })
        };
        Self {
            monday: day(),
            tuesday: day(),
            wednesday: day(),
            thursday: day(),
            friday: day(),
            saturday: None,
            sunday: None,
        }
    }
}

/// The settings as the API shows them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Settings {
    pub enabled: bool,
    pub greeting: String,
    pub business_hours: Week,
    pub services: Vec<String>,
    pub transfer_number: Option<String>,
    pub slot_minutes: u32,
    pub min_notice_minutes: u32,
    pub widget_allowed_origins: Vec<String>,
    pub widget_key: String,
}

/// `PATCH /v1/assistant`: absent fields stay; `transfer_number: null` clears it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsPatch {
    pub enabled: Option<bool>,
    pub greeting: Option<String>,
    pub business_hours: Option<Week>,
    pub services: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    pub transfer_number: Option<Option<String>>,
    pub slot_minutes: Option<u32>,
    pub min_notice_minutes: Option<u32>,
    pub widget_allowed_origins: Option<Vec<String>>,
}

/// A field that is present, even as `null`.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

const DEFAULT_GREETING: &str =
    "Thanks for calling! I'm the virtual receptionist and I can book a visit for you.";

fn new_widget_key() -> Result<String, ServiceError> {
    random_token()
        .map(|t| format!("wk_{t}"))
        .map_err(|e| ServiceError::invalid("widget_key", e.to_string()))
}

fn decode(row: assistant_setting::Model) -> Settings {
    Settings {
        enabled: row.enabled,
        greeting: row.greeting,
        business_hours: serde_json::from_str(&row.business_hours).unwrap_or_default(),
        services: serde_json::from_str(&row.services).unwrap_or_default(),
        transfer_number: row.transfer_number,
        slot_minutes: u32::try_from(row.slot_minutes).unwrap_or(60),
        min_notice_minutes: u32::try_from(row.min_notice_minutes).unwrap_or(0),
        widget_allowed_origins: serde_json::from_str(&row.widget_allowed_origins)
            .unwrap_or_default(),
        widget_key: row.widget_key,
    }
}

/// The tenant's settings as stored, if any (a turn reads them; absent means not enabled).
///
/// # Errors
/// On database failure.
pub async fn stored(utx: &TenantTxn) -> Result<Option<Settings>, ServiceError> {
    Ok(utx
        .scope()
        .find_by_id::<assistant_setting::Entity, _>(utx.tenant().to_string())
        .await?
        .map(decode))
}

/// The tenant's settings, created with defaults when absent (in `utx`, which the caller commits).
///
/// # Errors
/// On database failure.
pub async fn ensure(utx: &TenantTxn) -> Result<Settings, ServiceError> {
    // The insert comes first even when the row exists: on SQLite a transaction that writes
    // before it reads holds the write lock and waits for other writers instead of failing.
    let now = Utc::now();
    assistant_setting::Entity::insert(assistant_setting::ActiveModel {
        company_id: Set(utx.tenant().to_string()),
        enabled: Set(false),
        greeting: Set(DEFAULT_GREETING.to_owned()),
        business_hours: Set(serde_json::to_string(&Week::weekdays())?),
        services: Set("[]".to_owned()),
        transfer_number: Set(None),
        slot_minutes: Set(60),
        min_notice_minutes: Set(120),
        widget_allowed_origins: Set("[]".to_owned()),
        widget_key: Set(new_widget_key()?),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .on_conflict(
        OnConflict::column(assistant_setting::Column::CompanyId)
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(utx.conn())
    .await?;
    stored(utx)
        .await?
        .ok_or_else(|| ServiceError::invalid("assistant", "settings vanished"))
}

fn check_origin(origin: &str) -> Result<(), ServiceError> {
    let rest = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"));
    let valid = rest.is_some_and(|host| {
        !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '*'))
    });
    if valid {
        Ok(())
    } else {
        Err(ServiceError::invalid(
            "widget_allowed_origins",
            format!("{origin:?} is not an origin pattern such as https://*.example.com"),
        ))
    }
}

fn check(patch: &SettingsPatch) -> Result<(), ServiceError> {
    if let Some(greeting) = &patch.greeting
        && (greeting.trim().is_empty() || greeting.chars().count() > 500)
    {
        return Err(ServiceError::invalid(
            "greeting",
            "must be 1-500 characters",
        ));
    }
    if let Some(hours) = &patch.business_hours {
        hours.check()?;
    }
    if let Some(services) = &patch.services
        && (services.len() > 30
            || services
                .iter()
                .any(|s| s.trim().is_empty() || s.len() > 100))
    {
        return Err(ServiceError::invalid(
            "services",
            "at most 30, each 1-100 characters",
        ));
    }
    if let Some(Some(number)) = &patch.transfer_number {
        PhoneE164::try_from(number.as_str()).map_err(|_| {
            ServiceError::invalid("transfer_number", "must be E.164, e.g. +15551234567")
        })?;
    }
    if let Some(minutes) = patch.slot_minutes
        && !(15..=480).contains(&minutes)
    {
        return Err(ServiceError::invalid("slot_minutes", "must be 15-480"));
    }
    if let Some(minutes) = patch.min_notice_minutes
        && minutes > 10_080
    {
        return Err(ServiceError::invalid(
            "min_notice_minutes",
            "must be 0-10080 (a week)",
        ));
    }
    if let Some(origins) = &patch.widget_allowed_origins {
        origins.iter().try_for_each(|o| check_origin(o))?;
    }
    Ok(())
}

/// Applies `patch` (validated first: nothing changes on a refusal).
///
/// # Errors
/// `ServiceError::Invalid`, database failures.
pub async fn update(utx: &TenantTxn, patch: SettingsPatch) -> Result<Settings, ServiceError> {
    check(&patch)?;
    ensure(utx).await?;
    let mut row = assistant_setting::ActiveModel {
        company_id: Set(utx.tenant().to_string()),
        updated_at: Set(Utc::now()),
        ..Default::default()
    };
    if let Some(enabled) = patch.enabled {
        row.enabled = Set(enabled);
    }
    if let Some(greeting) = patch.greeting {
        row.greeting = Set(greeting.trim().to_owned());
    }
    if let Some(hours) = patch.business_hours {
        row.business_hours = Set(serde_json::to_string(&hours)?);
    }
    if let Some(services) = patch.services {
        row.services = Set(serde_json::to_string(&services)?);
    }
    if let Some(number) = patch.transfer_number {
        let number = number
            .map(|n| PhoneE164::try_from(n.as_str()).map(String::from))
            .transpose()
            .map_err(|_| ServiceError::invalid("transfer_number", "must be E.164"))?;
        row.transfer_number = Set(number);
    }
    if let Some(minutes) = patch.slot_minutes {
        row.slot_minutes = Set(i32::try_from(minutes).unwrap_or(60));
    }
    if let Some(minutes) = patch.min_notice_minutes {
        row.min_notice_minutes = Set(i32::try_from(minutes).unwrap_or(0));
    }
    if let Some(origins) = patch.widget_allowed_origins {
        let origins: Vec<String> = origins
            .iter()
            .map(|o| o.trim().trim_end_matches('/').to_lowercase())
            .collect();
        row.widget_allowed_origins = Set(serde_json::to_string(&origins)?);
    }
    let updated = assistant_setting::Entity::update(row)
        .exec(utx.conn())
        .await?;
    Ok(decode(updated))
}

/// A new widget key; the old one stops working at once.
///
/// # Errors
/// On database failure.
pub async fn rotate_widget_key(utx: &TenantTxn) -> Result<Settings, ServiceError> {
    ensure(utx).await?;
    let row = assistant_setting::ActiveModel {
        company_id: Set(utx.tenant().to_string()),
        widget_key: Set(new_widget_key()?),
        updated_at: Set(Utc::now()),
        ..Default::default()
    };
    Ok(decode(
        assistant_setting::Entity::update(row)
            .exec(utx.conn())
            .await?,
    ))
}

/// The company a widget key names, with its settings. A system read: finding the company is
/// its purpose.
///
/// # Errors
/// On database failure.
pub async fn by_widget_key(
    db: &DatabaseConnection,
    key: &str,
) -> Result<Option<(TenantId, Settings)>, ServiceError> {
    let row = assistant_setting::Entity::find()
        .filter(assistant_setting::Column::WidgetKey.eq(key))
        .one(db)
        .await?;
    Ok(row.and_then(|row| {
        let tenant = TenantId::try_from(row.company_id.as_str()).ok()?;
        Some((tenant, decode(row)))
    }))
}
