//! Who is asking: the principal built from a verified token's claims. Authentication (checking
//! the token) happens in the server; this module only turns trusted claims into a [`Principal`]
//! and refuses claim sets that make no sense for their role.

use serde::{Deserialize, Serialize};

use crate::id::{DistrictId, OrgId, PersonId, TeamId, UserId};

/// The `role` claim (SPEC §1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Wijkteam professional in one team and district (or citywide).
    Worker,
    /// The bewoner, linked to persons in dossiers.
    Resident,
    /// Municipal staff deciding a maatwerkvoorziening.
    Backoffice,
    /// Professional of a chain partner organisation.
    Partner,
    /// Team manager: access reports, no dossier content.
    Manager,
    /// Functionaris gegevensbescherming / log manager: audit, no dossier content.
    PrivacyOfficer,
    /// Functional administrator: users, teams, assignments; no dossier content.
    Admin,
}

impl Role {
    /// Every role, in SPEC §1 order.
    pub const ALL: [Role; 7] = [
        Role::Worker,
        Role::Resident,
        Role::Backoffice,
        Role::Partner,
        Role::Manager,
        Role::PrivacyOfficer,
        Role::Admin,
    ];

    /// The claim value, e.g. `privacy_officer`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Worker => "worker",
            Role::Resident => "resident",
            Role::Backoffice => "backoffice",
            Role::Partner => "partner",
            Role::Manager => "manager",
            Role::PrivacyOfficer => "privacy_officer",
            Role::Admin => "admin",
        }
    }
}

/// The Regie claims of a verified token (standard claims such as `exp` are checked by the
/// server's authentication and are not part of this struct).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    /// The role.
    pub role: Role,
    /// The district of a worker, manager or back-office user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub district: Option<String>,
    /// The team of a worker or manager.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// The organisation of a partner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    /// The person a resident is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person: Option<String>,
    /// A citywide worker or back-office user crosses district lines (R3).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub citywide: bool,
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Principal {
    /// The user.
    pub user: UserId,
    /// The role.
    pub role: Role,
    /// The district (workers, managers, back office).
    pub district: Option<DistrictId>,
    /// The team (workers, managers).
    pub team: Option<TeamId>,
    /// The organisation (partners).
    pub org: Option<OrgId>,
    /// The person (residents).
    pub person: Option<PersonId>,
    /// Crosses district lines (R3).
    pub citywide: bool,
}

/// Why a claim set cannot become a principal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimsError {
    /// A claim's value is not a valid id.
    #[error("claim `{claim}` is not a valid id")]
    InvalidId {
        /// The claim name.
        claim: &'static str,
    },
    /// The role needs a claim the token does not carry.
    #[error("a {role} token needs the `{claim}` claim")]
    Missing {
        /// The role's claim value.
        role: &'static str,
        /// The missing claim.
        claim: &'static str,
    },
}

fn parse<T: std::str::FromStr>(
    v: &Option<String>,
    claim: &'static str,
) -> Result<Option<T>, ClaimsError> {
    v.as_deref()
        .map(|s| s.parse().map_err(|_| ClaimsError::InvalidId { claim }))
        .transpose()
}

impl Principal {
    /// Builds a principal from claims, requiring what each role needs: a worker a team and a
    /// district (or `citywide`), a manager a team, a resident a person, a partner an org, a
    /// back-office user a district (or `citywide`).
    pub fn from_claims(c: &Claims) -> Result<Principal, ClaimsError> {
        let p = Principal {
            user: c
                .sub
                .parse()
                .map_err(|_| ClaimsError::InvalidId { claim: "sub" })?,
            role: c.role,
            district: parse(&c.district, "district")?,
            team: parse(&c.team, "team")?,
            org: parse(&c.org, "org")?,
            person: parse(&c.person, "person")?,
            citywide: c.citywide,
        };
        let role = c.role.as_str();
        let need = |ok: bool, claim| {
            if ok {
                Ok(())
            } else {
                Err(ClaimsError::Missing { role, claim })
            }
        };
        match c.role {
            Role::Worker => {
                need(p.team.is_some(), "team")?;
                need(p.district.is_some() || p.citywide, "district")?;
            }
            Role::Manager => need(p.team.is_some(), "team")?,
            Role::Resident => need(p.person.is_some(), "person")?,
            Role::Partner => need(p.org.is_some(), "org")?,
            Role::Backoffice => need(p.district.is_some() || p.citywide, "district")?,
            Role::PrivacyOfficer | Role::Admin => {}
        }
        Ok(p)
    }

    /// The claims this principal was built from (used to mint demo and test tokens).
    pub fn to_claims(&self) -> Claims {
        Claims {
            sub: self.user.to_string(),
            role: self.role,
            district: self.district.as_ref().map(ToString::to_string),
            team: self.team.as_ref().map(ToString::to_string),
            org: self.org.as_ref().map(ToString::to_string),
            person: self.person.as_ref().map(ToString::to_string),
            citywide: self.citywide,
        }
    }
}
