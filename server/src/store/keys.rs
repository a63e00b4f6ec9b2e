//! Keys the server keeps in its database (`public_keys`): made once at random by the first
//! server to need one, the same for every server on the database.

use chrono::{DateTime, Utc};

use super::{Db, StoreError, StoreResult};
use crate::on_writer;

/// The key named `name`: made (32 random bytes) if there is none yet. Two servers making it at
/// once keep the first one written.
pub async fn get_or_make(db: &Db, name: &str, now: DateTime<Utc>) -> StoreResult<[u8; 32]> {
    let mut fresh = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut fresh);
    let key: Vec<u8> = on_writer!(db, pool => {
        sqlx::query("INSERT INTO public_keys (name, key, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .bind(&fresh[..])
            .bind(now)
            .execute(pool)
            .await?;
        sqlx::query_scalar("SELECT key FROM public_keys WHERE name = $1")
            .bind(name)
            .fetch_one(pool)
            .await?
    });
    key.try_into()
        .map_err(|_| StoreError::corrupt("public_keys", name, "a key is not 32 bytes"))
}
