//! How a record's actor is named to people: a member of staff by their display name, a data
//! subject and Assent's jobs in fixed words.

use assent_shared::api::ActorRef;
use assent_shared::domain::DATA_SUBJECT_SHOWN_AS;

use super::ServiceResult;
use crate::store::{self, StoreError, Tx};

/// The name `actor` is shown by, read inside `tx`.
pub async fn of(tx: &mut Tx, actor: ActorRef) -> ServiceResult<String> {
    Ok(match actor {
        ActorRef::Staff { id } => {
            store::users::get(tx, id)
                .await?
                .ok_or_else(|| {
                    StoreError::corrupt("users", id, "is named by a record but does not exist")
                })?
                .0
                .user
                .display_name
        }
        ActorRef::DataSubject { .. } => DATA_SUBJECT_SHOWN_AS.to_owned(),
        ActorRef::System { job } => job.shown_as().to_owned(),
    })
}
