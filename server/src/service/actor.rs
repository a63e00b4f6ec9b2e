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

    /// An audit record of `action` by this actor, ending `outcome`: it names the actor (kind and
    /// id) and what proved them (a member of staff's session, a data subject's token).
    pub fn record(&self, action: Action, outcome: Outcome) -> AuditRecord {
        let via = match self {
            Actor::Staff(staff) => Some(staff.session_id),
            Actor::DataSubject(subject) => Some(subject.token_id),
            Actor::System(_) => None,
        };
        AuditRecord::new(action, outcome).by(Some(self.reference()), via)
    }

    /// An audit record of `action` by this actor, done.
    pub fn audit(&self, action: Action) -> AuditRecord {
        self.record(action, Outcome::Ok)
    }

    /// One audit record of `action` on every one of `ids` (objects of `kind`), done: a request
    /// that shows or changes many objects makes one record naming them all.
    pub fn audit_each(
        &self,
        action: Action,
        kind: ObjectKind,
        ids: impl IntoIterator<Item = Uuid>,
    ) -> AuditRecord {
        self.audit(action).on_each(kind, ids)
    }
}
