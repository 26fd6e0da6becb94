//! [`ApplicationStore`] in memory.

use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::ApplicationId;
use ports::{
    ApiKeyDigest, Application, ApplicationError, ApplicationRecord, ApplicationSettings,
    ApplicationStatus, ApplicationStore, EncryptedSecret, NewApplication, StoreError,
};

use crate::state::lock;

#[derive(Debug, Clone)]
struct AppRow {
    record: ApplicationRecord,
    api_key: ApiKeyDigest,
}

/// Applications in memory.
#[derive(Default)]
pub struct MemoryApplicationStore {
    inner: Mutex<Vec<AppRow>>,
}

impl MemoryApplicationStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `id` is enabled (an application it does not know is: it has no sessions).
    pub fn is_enabled(&self, id: ApplicationId) -> bool {
        lock(&self.inner)
            .iter()
            .find(|r| r.record.application.id == id)
            .is_none_or(|r| r.record.application.status == ApplicationStatus::Active)
    }
}

#[async_trait]
impl ApplicationStore for MemoryApplicationStore {
    async fn find_by_api_key(
        &self,
        api_key: &ApiKeyDigest,
    ) -> Result<Option<ApplicationRecord>, StoreError> {
        Ok(lock(&self.inner)
            .iter()
            .find(|r| r.api_key == *api_key)
            .map(|r| r.record.clone()))
    }

    async fn find_by_name(&self, name: &str) -> Result<Option<ApplicationRecord>, StoreError> {
        Ok(lock(&self.inner)
            .iter()
            .find(|r| r.record.application.name == name)
            .map(|r| r.record.clone()))
    }

    async fn create(&self, new: NewApplication) -> Result<Application, ApplicationError> {
        let mut rows = lock(&self.inner);
        if rows.iter().any(|r| r.record.application.name == new.name) {
            return Err(ApplicationError::NameTaken(new.name));
        }
        if rows.iter().any(|r| r.api_key == new.api_key) {
            return Err(ApplicationError::ApiKeyTaken);
        }
        let application = Application {
            id: new.id,
            name: new.name,
            status: ApplicationStatus::Active,
            settings: new.settings,
            created_at: new.now,
            rotated_at: new.now,
        };
        rows.push(AppRow {
            record: ApplicationRecord {
                application: application.clone(),
                secret: new.secret,
            },
            api_key: new.api_key,
        });
        Ok(application)
    }

    async fn list(&self) -> Result<Vec<Application>, StoreError> {
        let mut apps: Vec<Application> = lock(&self.inner)
            .iter()
            .map(|r| r.record.application.clone())
            .collect();
        apps.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(apps)
    }

    async fn rotate(
        &self,
        id: ApplicationId,
        api_key: ApiKeyDigest,
        secret: EncryptedSecret,
        now: DateTime<Utc>,
    ) -> Result<Application, ApplicationError> {
        let mut rows = lock(&self.inner);
        if rows
            .iter()
            .any(|r| r.api_key == api_key && r.record.application.id != id)
        {
            return Err(ApplicationError::ApiKeyTaken);
        }
        let row = rows
            .iter_mut()
            .find(|r| r.record.application.id == id)
            .ok_or(ApplicationError::NotFound)?;
        row.api_key = api_key;
        row.record.secret = secret;
        row.record.application.rotated_at = now;
        Ok(row.record.application.clone())
    }

    async fn list_records(&self) -> Result<Vec<ApplicationRecord>, StoreError> {
        let mut records: Vec<ApplicationRecord> =
            lock(&self.inner).iter().map(|r| r.record.clone()).collect();
        records.sort_by(|a, b| a.application.name.cmp(&b.application.name));
        Ok(records)
    }

    async fn reseal(
        &self,
        id: ApplicationId,
        current: &EncryptedSecret,
        resealed: EncryptedSecret,
    ) -> Result<bool, StoreError> {
        let mut rows = lock(&self.inner);
        match rows
            .iter_mut()
            .find(|r| r.record.application.id == id && r.record.secret == *current)
        {
            Some(row) => {
                row.record.secret = resealed;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn set_status(
        &self,
        id: ApplicationId,
        status: ApplicationStatus,
    ) -> Result<Application, ApplicationError> {
        let mut rows = lock(&self.inner);
        let row = rows
            .iter_mut()
            .find(|r| r.record.application.id == id)
            .ok_or(ApplicationError::NotFound)?;
        row.record.application.status = status;
        Ok(row.record.application.clone())
    }

    async fn set_settings(
        &self,
        id: ApplicationId,
        settings: ApplicationSettings,
    ) -> Result<Application, ApplicationError> {
        let mut rows = lock(&self.inner);
        let row = rows
            .iter_mut()
            .find(|r| r.record.application.id == id)
            .ok_or(ApplicationError::NotFound)?;
        row.record.application.settings = settings;
        Ok(row.record.application.clone())
    }
}
