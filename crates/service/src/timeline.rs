//! A lead's timeline (SPEC section 13): its calls, messages, appointments, tasks and follow-ups
//! merged newest first, paged by one keyset on `(at, kind, id)` across the five kinds. `at` is
//! when Otto recorded the item (`created_at`). A page of `limit` reads at most `limit` rows of
//! each kind, through the `(company_id, lead_id, created_at, id)` indexes: no kind is loaded
//! whole, and no offset is ever skipped over.

use std::cmp::Ordering;

use chrono::{DateTime, Utc};
use otto_db::TenantTxn;
use otto_db::entities::{TenantOwned, appointment, call, follow_up, lead, message, task};
use otto_domain::LeadId;
use sea_orm::{ColumnTrait, Condition, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use crate::ServiceError;
use crate::visibility::Viewer;

/// The five kinds, in the keyset's order (alphabetical, so the cursor's kind sorts as text).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Appointment,
    Call,
    Followup,
    Message,
    Task,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Appointment => "appointment",
            Self::Call => "call",
            Self::Followup => "followup",
            Self::Message => "message",
            Self::Task => "task",
        }
    }

    fn parse(raw: &str) -> Option<Self> {
        [
            Self::Appointment,
            Self::Call,
            Self::Followup,
            Self::Message,
            Self::Task,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == raw)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub kind: Kind,
    pub id: Uuid,
    pub at: DateTime<Utc>,
    pub summary: String,
}

/// Where a page ends: the last entry's `(at, kind, id)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Cursor {
    at: DateTime<Utc>,
    kind: Kind,
    id: Uuid,
}

impl Cursor {
    pub fn after(entry: &Entry) -> Self {
        Self {
            at: entry.at,
            kind: entry.kind,
            id: entry.id,
        }
    }

    /// `{at in nanoseconds}.{kind}.{id}`: opaque to clients. Nanoseconds, because SQLite keeps
    /// the time as written (PostgreSQL keeps microseconds).
    pub fn encode(&self) -> String {
        format!(
            "{}.{}.{}",
            self.at.timestamp_nanos_opt().unwrap_or(i64::MAX),
            self.kind.as_str(),
            self.id.simple()
        )
    }

    pub fn decode(raw: &str) -> Option<Self> {
        let mut parts = raw.splitn(3, '.');
        let at = DateTime::from_timestamp_nanos(parts.next()?.parse().ok()?);
        let kind = Kind::parse(parts.next()?)?;
        let id = Uuid::parse_str(parts.next()?).ok()?;
        Some(Self { at, kind, id })
    }
}

fn key(entry: &Entry) -> (DateTime<Utc>, Kind, Uuid) {
    (entry.at, entry.kind, entry.id)
}

/// Up to `limit` entries of `lead`'s timeline after `cursor`, newest first; `None` when the
/// viewer may not see the lead.
///
/// # Errors
/// On database failure.
pub async fn page(
    utx: &TenantTxn,
    viewer: &Viewer,
    lead_id: LeadId,
    cursor: Option<&Cursor>,
    limit: u64,
) -> Result<Option<Vec<Entry>>, ServiceError> {
    let lead = Uuid::from(lead_id);
    if !visible_lead(utx, viewer, lead).await? {
        return Ok(None);
    }
    let reader = KindReader {
        utx,
        lead,
        cursor,
        limit,
    };
    let mut entries = Vec::new();
    entries.extend(reader.calls().await?);
    entries.extend(reader.messages().await?);
    entries.extend(reader.appointments().await?);
    entries.extend(reader.tasks().await?);
    entries.extend(reader.followups().await?);
    entries.sort_by_key(|entry| std::cmp::Reverse(key(entry)));
    entries.truncate(limit as usize);
    Ok(Some(entries))
}

async fn visible_lead(utx: &TenantTxn, viewer: &Viewer, lead: Uuid) -> Result<bool, ServiceError> {
    let mut query = utx
        .scope()
        .select::<lead::Entity>()
        .filter(lead::Column::Id.eq(lead));
    if let Some(assigned) = viewer.lead_ids(utx) {
        query = query.filter(lead::Column::Id.in_subquery(assigned));
    }
    Ok(query.one(utx.conn()).await?.is_some())
}

/// Reads one kind's next rows of the lead after the cursor.
struct KindReader<'a> {
    utx: &'a TenantTxn,
    lead: Uuid,
    cursor: Option<&'a Cursor>,
    limit: u64,
}

impl KindReader<'_> {
    /// Rows of `E` whose `(created_at, kind, id)` sorts after the cursor, newest first. With
    /// the kind fixed per query, the three-part keyset becomes a condition on two columns.
    async fn rows<E: TenantOwned>(
        &self,
        kind: Kind,
        lead: E::Column,
        at: E::Column,
        id: E::Column,
    ) -> Result<Vec<E::Model>, ServiceError> {
        let mut query = self
            .utx
            .scope()
            .select::<E>()
            .filter(lead.eq(self.lead))
            .order_by_desc(at)
            .order_by_desc(id)
            .limit(self.limit);
        if let Some(cursor) = self.cursor {
            query = query.filter(match kind.cmp(&cursor.kind) {
                Ordering::Less => Condition::all().add(at.lte(cursor.at)),
                Ordering::Greater => Condition::all().add(at.lt(cursor.at)),
                Ordering::Equal => Condition::any()
                    .add(at.lt(cursor.at))
                    .add(Condition::all().add(at.eq(cursor.at)).add(id.lt(cursor.id))),
            });
        }
        Ok(query.all(self.utx.conn()).await?)
    }

    async fn calls(&self) -> Result<Vec<Entry>, ServiceError> {
        use call::Column as C;
        let rows = self
            .rows::<call::Entity>(Kind::Call, C::LeadId, C::CreatedAt, C::Id)
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| entry(Kind::Call, row.id, row.created_at, call_summary(&row)))
            .collect())
    }

    async fn messages(&self) -> Result<Vec<Entry>, ServiceError> {
        use message::Column as C;
        let rows = self
            .rows::<message::Entity>(Kind::Message, C::LeadId, C::CreatedAt, C::Id)
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| {
                let summary = format!(
                    "{} SMS: {}",
                    capitalised(&row.direction),
                    excerpt(&row.body)
                );
                entry(Kind::Message, row.id, row.created_at, summary)
            })
            .collect())
    }

    async fn appointments(&self) -> Result<Vec<Entry>, ServiceError> {
        use appointment::Column as C;
        let rows = self
            .rows::<appointment::Entity>(Kind::Appointment, C::LeadId, C::CreatedAt, C::Id)
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| {
                let summary = format!(
                    "Appointment {} for {}",
                    row.status,
                    row.scheduled_start.format("%Y-%m-%d %H:%M UTC")
                );
                entry(Kind::Appointment, row.id, row.created_at, summary)
            })
            .collect())
    }

    async fn tasks(&self) -> Result<Vec<Entry>, ServiceError> {
        use task::Column as C;
        let rows = self
            .rows::<task::Entity>(Kind::Task, C::LeadId, C::CreatedAt, C::Id)
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| {
                let summary = format!("Task ({}): {}", row.status, excerpt(&row.title));
                entry(Kind::Task, row.id, row.created_at, summary)
            })
            .collect())
    }

    async fn followups(&self) -> Result<Vec<Entry>, ServiceError> {
        use follow_up::Column as C;
        let rows = self
            .rows::<follow_up::Entity>(Kind::Followup, C::LeadId, C::CreatedAt, C::Id)
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| {
                let summary = format!("SMS follow-up ({}): {}", row.status, excerpt(&row.draft));
                entry(Kind::Followup, row.id, row.created_at, summary)
            })
            .collect())
    }
}

fn entry(kind: Kind, id: Uuid, at: DateTime<Utc>, summary: String) -> Entry {
    Entry {
        kind,
        id,
        at,
        summary,
    }
}

/// The analysis's summary when there is one, else what the provider told.
fn call_summary(row: &call::Model) -> String {
    if let Some(summary) = row
        .analysis
        .as_ref()
        .and_then(|a| a.get("summary"))
        .and_then(|s| s.as_str())
    {
        return excerpt(summary);
    }
    let direction = row.direction.as_deref().map_or("Call".to_owned(), |d| {
        format!("{} call", capitalised(&d.replace('_', "-")))
    });
    let answered = match row.answered {
        Some(true) => ", answered",
        Some(false) => ", missed",
        None => "",
    };
    let duration = row
        .duration_seconds
        .map(|s| format!(", {s} s"))
        .unwrap_or_default();
    let booked = if row.booked { ", booked" } else { "" };
    format!("{direction}{answered}{duration}{booked}")
}

fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// At most 120 characters, cut at a character boundary.
fn excerpt(text: &str) -> String {
    const MAX: usize = 120;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_survives_encoding() {
        let cursor = Cursor {
            at: DateTime::from_timestamp_nanos(1_764_000_000_123_456_789),
            kind: Kind::Followup,
            id: Uuid::now_v7(),
        };
        assert_eq!(Cursor::decode(&cursor.encode()), Some(cursor));
        assert_eq!(Cursor::decode("nonsense"), None);
        assert_eq!(
            Cursor::decode("12.bogus.00000000000000000000000000000000"),
            None
        );
    }

    #[test]
    fn excerpts_cut_long_text_on_a_character_boundary() {
        let long = "é".repeat(200);
        assert_eq!(excerpt(&long).chars().count(), 121);
        assert_eq!(excerpt("short"), "short");
    }
}
