//! Role sets a route can require, as types: `Authorized<Leadership>`, `Authorized<Staff>`,
//! `Authorized<AnyRole>`.

use otto_domain::Role;

pub trait RoleSet {
    const ROLES: &'static [Role];
}

/// Owners and managers.
#[derive(Debug, Clone)]
pub struct Leadership;

impl RoleSet for Leadership {
    const ROLES: &'static [Role] = &[Role::Leadership];
}

/// Leadership and customer-service reps: everyone who works all of the company's leads.
#[derive(Debug, Clone)]
pub struct Staff;

impl RoleSet for Staff {
    const ROLES: &'static [Role] = &[Role::Leadership, Role::Csr];
}

/// Any member of the tenant.
#[derive(Debug, Clone)]
pub struct AnyRole;

impl RoleSet for AnyRole {
    const ROLES: &'static [Role] = &[Role::Leadership, Role::Csr, Role::Rep];
}

/// SPEC's wording: `Access denied. Required roles: leadership. User role: rep`.
pub fn refusal_detail(required: &[Role], actual: Role) -> String {
    let names: Vec<&str> = required.iter().map(|r| r.as_str()).collect();
    format!(
        "Access denied. Required roles: {}. User role: {actual}",
        names.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_detail_matches_the_spec() {
        assert_eq!(
            refusal_detail(Leadership::ROLES, Role::Rep),
            "Access denied. Required roles: leadership. User role: rep"
        );
        assert_eq!(
            refusal_detail(Staff::ROLES, Role::Rep),
            "Access denied. Required roles: leadership, csr. User role: rep"
        );
    }
}
