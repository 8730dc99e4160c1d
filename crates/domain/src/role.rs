use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::DomainError;

/// What a person may do inside their company.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Owners and managers: everything in the company, settings, users.
    Leadership,
    /// Customer-service reps: calls, bookings, all company leads, own stats.
    Csr,
    /// Sales reps: their own appointments, calls, follow-ups and tasks.
    Rep,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Leadership, Role::Csr, Role::Rep];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Leadership => "leadership",
            Role::Csr => "csr",
            Role::Rep => "rep",
        }
    }

    /// Maps a Clerk organization role (`org:admin`, `manager`, `sales_rep`...) to a role.
    pub fn from_clerk(raw: &str) -> Option<Role> {
        let name = raw.strip_prefix("org:").unwrap_or(raw);
        match name.to_ascii_lowercase().as_str() {
            "admin" | "owner" | "manager" | "leadership" => Some(Role::Leadership),
            "csr" => Some(Role::Csr),
            "rep" | "sales_rep" | "member" => Some(Role::Rep),
            _ => None,
        }
    }
}

impl Role {
    /// The Clerk organization role key Otto writes for this role (the seeds' role names:
    /// `manager`, `csr`, `sales_rep`); reading accepts more (see [`Role::from_clerk`]).
    pub fn clerk_key(self) -> &'static str {
        match self {
            Role::Leadership => "org:manager",
            Role::Csr => "org:csr",
            Role::Rep => "org:sales_rep",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::from_clerk(s).ok_or_else(|| {
            DomainError::invalid(
                "role",
                format!("unknown role '{s}' (leadership, csr or rep)"),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clerk_roles_map_as_the_spec_says() {
        let table = [
            ("org:admin", Role::Leadership),
            ("owner", Role::Leadership),
            ("org:manager", Role::Leadership),
            ("leadership", Role::Leadership),
            ("org:csr", Role::Csr),
            ("rep", Role::Rep),
            ("org:sales_rep", Role::Rep),
            ("org:member", Role::Rep),
        ];
        for (raw, role) in table {
            assert_eq!(Role::from_clerk(raw), Some(role), "{raw}");
        }
        for role in Role::ALL {
            assert_eq!(Role::from_clerk(role.clerk_key()), Some(role), "{role}");
        }
        assert_eq!(Role::from_clerk("org:janitor"), None);
    }
}
