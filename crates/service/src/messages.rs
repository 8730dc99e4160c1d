//! Text messages as the CRM lists them (SPEC section 13).

use otto_db::TenantTxn;
use otto_db::entities::message;
use sea_orm::{ColumnTrait, QueryFilter, QueryOrder, QuerySelect};
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
