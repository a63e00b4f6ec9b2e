//! Saved contact filters: a named search that names an audience, for decisions now and for
//! campaigns later. A filter's search may name a person, so listing and saving are audited.

use assent_shared::api::{NewSavedFilter, SavedFilter};
use assent_shared::domain::{parse_optional_text, parse_text};
use assent_shared::validate::{FieldErrors, NAME_MAX};
use uuid::Uuid;

use super::access::{self, CONTACT_ROLES};
use super::{Actor, ServiceResult};
use crate::audit::{Action, ObjectKind};
use crate::clock;
use crate::store::{self, Db};

/// Every saved filter, by name, returned once the read's audit record is committed.
pub async fn list(db: &Db, actor: &Actor) -> ServiceResult<Vec<SavedFilter>> {
    access::require_any(db, actor, CONTACT_ROLES, None).await?;
    let mut tx = db.begin_read().await?;
    let filters = store::filters::list(&mut tx).await?;
    tx.commit().await?;
    store::audit::record_read(db, actor.audit(Action::FiltersListed)).await?;
    Ok(filters)
}

/// Saves a named search. Names are unique, ignoring case; an empty search is every active
/// contact.
pub async fn save(db: &Db, actor: &Actor, new: &NewSavedFilter) -> ServiceResult<SavedFilter> {
    access::require_any(db, actor, CONTACT_ROLES, None).await?;
    let staff = access::staff(db, actor, "saves filters").await?;
    let mut errors = FieldErrors::default();
    let name = errors.check("name", parse_text(&new.name, NAME_MAX));
    let search = errors
        .check("search", parse_optional_text(Some(&new.search), NAME_MAX))
        .map(Option::unwrap_or_default);
    let (Some(name), Some(search)) = (name, search) else {
        return Err(errors.into());
    };
    let filter = SavedFilter {
        id: Uuid::now_v7(),
        name,
        search,
        created_by: staff.user.id,
        created_at: clock::now(),
    };
    let mut tx = db.begin().await?;
    store::filters::insert(&mut tx, &filter).await?;
    let record = actor
        .audit(Action::FilterSaved)
        .on(ObjectKind::SavedFilter, filter.id);
    store::audit::append(&mut tx, &record).await?;
    tx.commit().await?;
    Ok(filter)
}
