//! The per-slot guard of the scheduler: a slot fires only for the process that inserts its row.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};

use crate::entities::schedule_run::{self, Column, Entity};

/// Claims `(name, slot)`; true for exactly one caller however many race.
///
/// # Errors
/// On database failure.
pub async fn claim<C: ConnectionTrait>(
    conn: &C,
    name: &str,
    slot: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let row = schedule_run::ActiveModel {
        name: Set(name.to_owned()),
        slot: Set(slot),
        fired_at: Set(Utc::now()),
    };
    let inserted = Entity::insert(row)
        .on_conflict(
            OnConflict::columns([Column::Name, Column::Slot])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    Ok(inserted == 1)
}

/// Forgets slots older than `cutoff`.
///
/// # Errors
/// On database failure.
pub async fn purge_before<C: ConnectionTrait>(
    conn: &C,
    cutoff: DateTime<Utc>,
) -> Result<u64, DbErr> {
    Ok(Entity::delete_many()
        .filter(Column::Slot.lt(cutoff))
        .exec(conn)
        .await?
        .rows_affected)
}
