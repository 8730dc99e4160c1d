//! Which tenant a delivery acts for, from the provider account's mapping. These run as system
//! queries (outside any tenant scope): finding the tenant is their purpose. They read through
//! `Database`, on its kept connections (no pool ping).

use otto_db::Database;
use otto_db::entities::{call, company, message, twilio_number, user};
use otto_domain::TenantId;
use sea_orm::{ColumnTrait, DbErr, EntityTrait, QueryFilter};

/// A delivery's tenant, with its lockdown flag when the lookup read the company row anyway.
#[derive(Debug, Clone)]
pub struct Tenant {
    pub id: TenantId,
    pub locked: Option<bool>,
}

impl Tenant {
    /// A tenant named by the delivery itself (lockdown checked when processing).
    pub fn new(id: String) -> Option<Tenant> {
        tenant(id)
    }
}

fn tenant(id: String) -> Option<Tenant> {
    TenantId::try_from(id)
        .ok()
        .map(|id| Tenant { id, locked: None })
}

fn company_tenant(row: company::Model) -> Option<Tenant> {
    let locked = row.lockdown_mode;
    TenantId::try_from(row.id).ok().map(|id| Tenant {
        id,
        locked: Some(locked),
    })
}

/// # Errors
/// On database failure.
pub async fn by_callrail_company(
    db: &Database,
    callrail_id: &str,
) -> Result<Option<Tenant>, DbErr> {
    let found = company::Entity::find()
        .filter(company::Column::CallrailCompanyId.eq(callrail_id))
        .one(db)
        .await?;
    Ok(found.and_then(company_tenant))
}

/// # Errors
/// On database failure.
pub async fn by_twilio_number(db: &Database, phone: &str) -> Result<Option<Tenant>, DbErr> {
    let found = twilio_number::Entity::find_by_id(phone.to_owned())
        .one(db)
        .await?;
    Ok(found.and_then(|n| tenant(n.company_id)))
}

/// The company with this id, if Otto knows it.
///
/// # Errors
/// On database failure.
pub async fn known_company(db: &Database, id: &str) -> Result<Option<Tenant>, DbErr> {
    Ok(company::Entity::find_by_id(id.to_owned())
        .one(db)
        .await?
        .and_then(|c| tenant(c.id)))
}

/// The tenant of a Twilio call Otto has already recorded.
///
/// # Errors
/// On database failure.
pub async fn by_twilio_call(db: &Database, call_sid: &str) -> Result<Option<Tenant>, DbErr> {
    let found = call::Entity::find()
        .filter(call::Column::Provider.eq("twilio"))
        .filter(call::Column::ProviderCallId.eq(call_sid))
        .one(db)
        .await?;
    Ok(found.and_then(|c| tenant(c.company_id)))
}

/// The tenant of an outbound message Twilio knows by `message_sid`.
///
/// # Errors
/// On database failure.
pub async fn by_twilio_message(db: &Database, message_sid: &str) -> Result<Option<Tenant>, DbErr> {
    let found = message::Entity::find()
        .filter(message::Column::Provider.eq("twilio"))
        .filter(message::Column::ProviderSid.eq(message_sid))
        .one(db)
        .await?;
    Ok(found.and_then(|m| tenant(m.company_id)))
}

/// The tenant of a known user.
///
/// # Errors
/// On database failure.
pub async fn by_user(db: &Database, user_id: &str) -> Result<Option<Tenant>, DbErr> {
    Ok(user::Entity::find_by_id(user_id.to_owned())
        .one(db)
        .await?
        .and_then(|u| tenant(u.company_id)))
}
