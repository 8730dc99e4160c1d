//! Who sees what (SPEC section 13): leadership and csr see the company's records; a rep sees
//! those of the leads assigned to it.

use otto_db::TenantTxn;
use otto_db::entities::lead;
use otto_domain::UserId;
use sea_orm::ColumnTrait;
use sea_orm::sea_query::{Query, SelectStatement};

#[derive(Debug, Clone)]
pub enum Viewer {
    Company,
    Rep(UserId),
}

impl Viewer {
    /// The ids of the leads `rep` may see, as a subquery; `None` for the whole company.
    pub fn lead_ids(&self, utx: &TenantTxn) -> Option<SelectStatement> {
        match self {
            Viewer::Company => None,
            Viewer::Rep(user) => Some(
                Query::select()
                    .column(lead::Column::Id)
                    .from(lead::Entity)
                    .and_where(lead::Column::CompanyId.eq(utx.tenant().as_str()))
                    .and_where(lead::Column::AssignedUserId.eq(user.as_str()))
                    .to_owned(),
            ),
        }
    }
}
