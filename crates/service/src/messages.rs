//! Text messages as the CRM lists them, and the SMS consent inbound texts give (SPEC section 13).

use chrono::Utc;
use otto_db::TenantTxn;
use otto_db::entities::{lead, message};
use otto_domain::catalog::LEAD_UPDATED;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ExprTrait, QueryFilter, QueryOrder, QuerySelect};
use serde_json::json;
use uuid::Uuid;

use crate::ServiceError;
use crate::visibility::Viewer;

/// Up to `limit` messages the viewer may see (of `lead`, when given), newest first, after
/// `cursor`.
///
/// # Errors
/// On database failure.
pub async fn list(
    utx: &TenantTxn,
    viewer: &Viewer,
    lead: Option<Uuid>,
    cursor: Option<Uuid>,
    limit: u64,
) -> Result<Vec<message::Model>, ServiceError> {
    let mut query = utx
        .scope()
        .select::<message::Entity>()
        .order_by_desc(message::Column::Id)
        .limit(limit);
    if let Some(assigned) = viewer.lead_ids(utx) {
        query = query.filter(message::Column::LeadId.in_subquery(assigned));
    }
    if let Some(cursor) = cursor {
        query = query.filter(message::Column::Id.lt(cursor));
    }
    if let Some(lead) = lead {
        query = query.filter(message::Column::LeadId.eq(lead));
    }
    Ok(query.all(utx.conn()).await?)
}

/// Opt-out keywords (SPEC section 13), compared case-insensitively on the trimmed body.
const OPT_OUT: [&str; 5] = ["STOP", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"];
const OPT_IN: [&str; 2] = ["START", "UNSTOP"];

/// What an inbound text's whole body says about SMS consent, if anything.
pub fn consent_keyword(body: &str) -> Option<bool> {
    let word = body.trim().to_ascii_uppercase();
    if OPT_OUT.contains(&word.as_str()) {
        Some(false)
    } else if OPT_IN.contains(&word.as_str()) {
        Some(true)
    } else {
        None
    }
}

/// Records an inbound text's consent keyword on its lead: a `STOP`-family word opts the lead
/// out of SMS, `START`/`UNSTOP` back in; emits `lead.updated` when the state changes. Returns
/// the lead's new opt-out state when it changed.
///
/// # Errors
/// On database failure.
pub async fn apply_consent_keyword(
    utx: &TenantTxn,
    lead: Uuid,
    body: &str,
) -> Result<Option<bool>, ServiceError> {
    let Some(consents) = consent_keyword(body) else {
        return Ok(None);
    };
    let opted_out = !consents;
    let changed = utx
        .scope()
        .update_many::<lead::Entity>()
        .filter(lead::Column::Id.eq(lead))
        .filter(lead::Column::SmsOptedOut.eq(!opted_out))
        .col_expr(lead::Column::SmsOptedOut, Expr::value(opted_out))
        .col_expr(
            lead::Column::Version,
            Expr::col(lead::Column::Version).add(1),
        )
        .col_expr(lead::Column::UpdatedAt, Expr::value(Utc::now()))
        .exec(utx.conn())
        .await?;
    if changed.rows_affected == 0 {
        return Ok(None);
    }
    utx.emit(
        utx.event(
            LEAD_UPDATED,
            json!({ "lead_id": lead, "change": "sms_consent", "sms_opted_out": opted_out }),
        )
        .with_lead(lead),
    );
    Ok(Some(opted_out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_whole_keyword_speaks_for_consent() {
        for stop in ["STOP", " stop ", "Unsubscribe", "cancel", "END", "quit\n"] {
            assert_eq!(consent_keyword(stop), Some(false), "{stop}");
        }
        for start in ["START", "unstop", " Start"] {
            assert_eq!(consent_keyword(start), Some(true), "{start}");
        }
        for neither in ["stop calling me maybe", "Tuesday works", "", "STOPP"] {
            assert_eq!(consent_keyword(neither), None, "{neither}");
        }
    }
}
