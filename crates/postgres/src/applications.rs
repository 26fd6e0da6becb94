//! [`ApplicationStore`] on Postgres.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::{ApplicationId, FrameAncestors, HostedStep, ProofPolicy};
use ports::{
    ApiKeyDigest, Application, ApplicationError, ApplicationRecord, ApplicationSettings,
    ApplicationStatus, ApplicationStore, EncryptedSecret, NewApplication, StoreError,
};
use sqlx::PgPool;
use tracing::instrument;
use uuid::Uuid;

use crate::error::{store_error, unique_violation};

/// Partner applications in Postgres.
#[derive(Debug, Clone)]
pub struct PgApplicationStore {
    pool: PgPool,
}

impl PgApplicationStore {
    /// A store over `pool` (migrated with [`crate::migrate`]).
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

struct AppRow {
    id: Uuid,
    name: String,
    secret_key_id: String,
    secret_sealed: Vec<u8>,
    status: String,
    created_at: DateTime<Utc>,
    rotated_at: DateTime<Utc>,
    ownership_proof_policy: String,
    hosted_travel_rule: bool,
    frame_ancestors: String,
}

impl AppRow {
    fn application(&self) -> Result<Application, StoreError> {
        Ok(Application {
            id: ApplicationId::from_uuid(self.id),
            name: self.name.clone(),
            status: ApplicationStatus::parse(&self.status).ok_or_else(|| {
                StoreError::unexpected(format!("application {}: unknown status", self.id))
            })?,
            created_at: self.created_at,
            rotated_at: self.rotated_at,
            settings: ApplicationSettings {
                proof_policy: ProofPolicy::parse(&self.ownership_proof_policy).map_err(|_| {
                    StoreError::unexpected(format!("application {}: unknown proof policy", self.id))
                })?,
                hosted: HostedStep {
                    enabled: self.hosted_travel_rule,
                    frame_ancestors: FrameAncestors::parse(&self.frame_ancestors).map_err(
                        |_| {
                            StoreError::unexpected(format!(
                                "application {}: invalid frame ancestors",
                                self.id
                            ))
                        },
                    )?,
                },
            },
        })
    }

    fn record(self) -> Result<ApplicationRecord, StoreError> {
        Ok(ApplicationRecord {
            application: self.application()?,
            secret: EncryptedSecret {
                key_id: self.secret_key_id,
                sealed: self.secret_sealed,
            },
        })
    }
}

fn clash(e: sqlx::Error, name: &str) -> ApplicationError {
    match unique_violation(&e).as_deref() {
        Some("applications_name_key") => ApplicationError::NameTaken(name.to_string()),
        Some("applications_api_key_digest_key") => ApplicationError::ApiKeyTaken,
        _ => ApplicationError::Store(store_error(e)),
    }
}

#[async_trait]
impl ApplicationStore for PgApplicationStore {
    #[instrument(skip_all)]
    async fn find_by_api_key(
        &self,
        api_key: &ApiKeyDigest,
    ) -> Result<Option<ApplicationRecord>, StoreError> {
        sqlx::query_as!(
            AppRow,
            r#"select id, name, secret_key_id, secret_sealed, status, created_at, rotated_at,
                      ownership_proof_policy, hosted_travel_rule, frame_ancestors
               from applications where api_key_digest = $1"#,
            api_key.0.as_slice()
        )
        .fetch_optional(&self.pool)
        .await
        .map_err(store_error)?
        .map(AppRow::record)
        .transpose()
    }

    #[instrument(skip_all)]
    async fn find_by_name(&self, name: &str) -> Result<Option<ApplicationRecord>, StoreError> {
        sqlx::query_as!(
            AppRow,
            r#"select id, name, secret_key_id, secret_sealed, status, created_at, rotated_at,
                      ownership_proof_policy, hosted_travel_rule, frame_ancestors
               from applications where name = $1"#,
            name
        )
        .fetch_optional(&self.pool)
        .await
        .map_err(store_error)?
        .map(AppRow::record)
        .transpose()
    }

    #[instrument(skip_all, fields(name = %new.name))]
    async fn create(&self, new: NewApplication) -> Result<Application, ApplicationError> {
        let row = sqlx::query_as!(
            AppRow,
            r#"insert into applications (id, name, api_key_digest, secret_key_id, secret_sealed,
                                         status, created_at, rotated_at, ownership_proof_policy,
                                         hosted_travel_rule, frame_ancestors)
               values ($1, $2, $3, $4, $5, 'active', $6, $6, $7, $8, $9)
               returning id, name, secret_key_id, secret_sealed, status, created_at, rotated_at,
                         ownership_proof_policy, hosted_travel_rule, frame_ancestors"#,
            new.id.as_uuid(),
            new.name,
            new.api_key.0.as_slice(),
            new.secret.key_id,
            new.secret.sealed,
            new.now,
            new.settings.proof_policy.as_str(),
            new.settings.hosted.enabled,
            new.settings.hosted.frame_ancestors.to_stored()
        )
        .fetch_one(&self.pool)
        .await
        .map_err(|e| clash(e, &new.name))?;
        Ok(row.application()?)
    }

    #[instrument(skip_all)]
    async fn list(&self) -> Result<Vec<Application>, StoreError> {
        sqlx::query_as!(
            AppRow,
            r#"select id, name, secret_key_id, secret_sealed, status, created_at, rotated_at,
                      ownership_proof_policy, hosted_travel_rule, frame_ancestors
               from applications order by name"#
        )
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?
        .iter()
        .map(AppRow::application)
        .collect()
    }

    #[instrument(skip_all)]
    async fn list_records(&self) -> Result<Vec<ApplicationRecord>, StoreError> {
        sqlx::query_as!(
            AppRow,
            r#"select id, name, secret_key_id, secret_sealed, status, created_at, rotated_at,
                      ownership_proof_policy, hosted_travel_rule, frame_ancestors
               from applications order by name"#
        )
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?
        .into_iter()
        .map(AppRow::record)
        .collect()
    }

    #[instrument(skip_all, fields(application = %id))]
    async fn reseal(
        &self,
        id: ApplicationId,
        current: &EncryptedSecret,
        resealed: EncryptedSecret,
    ) -> Result<bool, StoreError> {
        let n = sqlx::query!(
            r#"update applications set secret_key_id = $4, secret_sealed = $5
               where id = $1 and secret_key_id = $2 and secret_sealed = $3"#,
            id.as_uuid(),
            current.key_id,
            current.sealed,
            resealed.key_id,
            resealed.sealed
        )
        .execute(&self.pool)
        .await
        .map_err(store_error)?
        .rows_affected();
        Ok(n == 1)
    }

    #[instrument(skip_all, fields(application = %id))]
    async fn rotate(
        &self,
        id: ApplicationId,
        api_key: ApiKeyDigest,
        secret: EncryptedSecret,
        now: DateTime<Utc>,
    ) -> Result<Application, ApplicationError> {
        let row = sqlx::query_as!(
            AppRow,
            r#"update applications
               set api_key_digest = $2, secret_key_id = $3, secret_sealed = $4, rotated_at = $5
               where id = $1
               returning id, name, secret_key_id, secret_sealed, status, created_at, rotated_at,
                         ownership_proof_policy, hosted_travel_rule, frame_ancestors"#,
            id.as_uuid(),
            api_key.0.as_slice(),
            secret.key_id,
            secret.sealed,
            now
        )
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| clash(e, ""))?
        .ok_or(ApplicationError::NotFound)?;
        Ok(row.application()?)
    }

    #[instrument(skip_all, fields(application = %id))]
    async fn set_status(
        &self,
        id: ApplicationId,
        status: ApplicationStatus,
    ) -> Result<Application, ApplicationError> {
        let row = sqlx::query_as!(
            AppRow,
            r#"update applications set status = $2 where id = $1
               returning id, name, secret_key_id, secret_sealed, status, created_at, rotated_at,
                         ownership_proof_policy, hosted_travel_rule, frame_ancestors"#,
            id.as_uuid(),
            status.as_str()
        )
        .fetch_optional(&self.pool)
        .await
        .map_err(store_error)?
        .ok_or(ApplicationError::NotFound)?;
        Ok(row.application()?)
    }

    #[instrument(skip_all, fields(application = %id))]
    async fn set_settings(
        &self,
        id: ApplicationId,
        settings: ApplicationSettings,
    ) -> Result<Application, ApplicationError> {
        let row = sqlx::query_as!(
            AppRow,
            r#"update applications
               set ownership_proof_policy = $2, hosted_travel_rule = $3, frame_ancestors = $4
               where id = $1
               returning id, name, secret_key_id, secret_sealed, status, created_at, rotated_at,
                         ownership_proof_policy, hosted_travel_rule, frame_ancestors"#,
            id.as_uuid(),
            settings.proof_policy.as_str(),
            settings.hosted.enabled,
            settings.hosted.frame_ancestors.to_stored()
        )
        .fetch_optional(&self.pool)
        .await
        .map_err(store_error)?
        .ok_or(ApplicationError::NotFound)?;
        Ok(row.application()?)
    }
}
