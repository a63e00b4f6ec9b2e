//! Who is acting: a member of staff (through a session), a data subject (through a link or form
//! of the public pages, proved by its token), or Assent itself (which job). Every service takes
//! one and decides from it what may be done.

use assent_shared::api::{ActorRef, User};
use assent_shared::domain::{Role, SystemJob};
use uuid::Uuid;

use crate::audit::{Action, AuditRecord, ObjectKind, Outcome};

#[derive(Debug, Clone)]
pub enum Actor {
    Staff(Staff),
    DataSubject(DataSubject),
    System(SystemJob),
}

/// A logged-in member of staff: the user as they are now, and the session the request came
/// through.
#[derive(Debug, Clone)]
pub struct Staff {
    pub user: User,
    pub session_id: Uuid,
    pub device_name: String,
}

/// A person in the CRM acting for themselves through the public pages: their contact, and the
/// token (of a link or form) that proved it was them.
#[derive(Debug, Clone, Copy)]
pub struct DataSubject {
    pub contact_id: Uuid,
    pub token_id: Uuid,
}

impl Actor {
    /// How records name this actor.
    pub fn reference(&self) -> ActorRef {
        match self {
            Actor::Staff(staff) => ActorRef::Staff { id: staff.user.id },
            Actor::DataSubject(subject) => ActorRef::DataSubject {
                id: subject.contact_id,
            },
            Actor::System(job) => ActorRef::System { job: *job },
        }
    }

    /// The member of staff, if it is one.
    pub fn staff(&self) -> Option<&Staff> {
        match self {
            Actor::Staff(staff) => Some(staff),
            _ => None,
        }
    }

    /// The acting user's id, for a member of staff.
    pub fn user_id(&self) -> Option<Uuid> {
        self.staff().map(|s| s.user.id)
    }

    /// Whether the actor is a member of staff holding `role`.
    pub fn has(&self, role: Role) -> bool {
        self.staff().is_some_and(|s| s.user.roles.contains(&role))
    }

    /// An audit record of `action` by this actor, ending `outcome`. The record names the user and
    /// session of a member of staff; the kind of the other actors is stored with the audit
    /// trail's next format.
    pub fn record(&self, action: Action, outcome: Outcome) -> AuditRecord {
        let record = AuditRecord::new(action, outcome);
        match self {
            Actor::Staff(staff) => record.by(Some(staff.user.id), Some(staff.session_id)),
            Actor::DataSubject(_) | Actor::System(_) => record,
        }
    }

    /// An audit record of `action` by this actor, done.
    pub fn audit(&self, action: Action) -> AuditRecord {
        self.record(action, Outcome::Ok)
    }

    /// An audit record of `action` on each of `ids` (objects of `kind`), done.
    pub fn audit_each(
        &self,
        action: Action,
        kind: ObjectKind,
        ids: impl IntoIterator<Item = Uuid>,
    ) -> Vec<AuditRecord> {
        ids.into_iter()
            .map(|id| self.audit(action).on(kind, id))
            .collect()
    }
}
