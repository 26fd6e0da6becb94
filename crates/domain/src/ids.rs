//! Identifiers: who a session is for, which application owns it, and the session itself.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

/// The customer a session is for: a user or a business of the calling application.
///
/// ```
/// use domain::Subject;
/// use uuid::Uuid;
/// let id = Uuid::from_u128(7);
/// let s = Subject::User(id);
/// assert_eq!((s.kind(), s.id()), ("user", id));
/// assert_ne!(Subject::User(id), Subject::Business(id));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Subject {
    /// A natural person (`userId`).
    User(Uuid),
    /// A legal entity (`businessId`).
    Business(Uuid),
}

impl Subject {
    /// `"user"` or `"business"`: the stored discriminant.
    pub const fn kind(&self) -> &'static str {
        match self {
            Subject::User(_) => "user",
            Subject::Business(_) => "business",
        }
    }

    /// The subject's id.
    pub const fn id(&self) -> Uuid {
        match self {
            Subject::User(id) | Subject::Business(id) => *id,
        }
    }

    /// Rebuilds a subject from its stored parts; `None` for an unknown kind.
    pub fn from_parts(kind: &str, id: Uuid) -> Option<Self> {
        match kind {
            "user" => Some(Subject::User(id)),
            "business" => Some(Subject::Business(id)),
            _ => None,
        }
    }
}

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Uuid);

        impl $name {
            /// Wraps a UUID.
            pub const fn from_uuid(id: Uuid) -> Self {
                Self(id)
            }

            /// The UUID.
            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                Self(id)
            }
        }
    };
}

uuid_id!(
    /// The partner application that owns a session. Every stored row is keyed by it.
    ///
    /// ```
    /// use domain::ApplicationId;
    /// let id: ApplicationId = "0193a1b2-0000-7000-8000-000000000001".parse().unwrap();
    /// assert_eq!(id.to_string(), "0193a1b2-0000-7000-8000-000000000001");
    /// ```
    ApplicationId
);

uuid_id!(
    /// A session's id (a UUID v7 minted by the id generator port, so ids sort by creation).
    ///
    /// ```
    /// use domain::SessionId;
    /// assert!("not-a-uuid".parse::<SessionId>().is_err());
    /// ```
    SessionId
);
