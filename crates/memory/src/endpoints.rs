//! [`EndpointStore`] in memory.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::{ApplicationId, WebhookEndpointId};
use ports::{
    DeliveryStatus, EncryptedSecret, EndpointError, EndpointStore, SealedEndpointSecret,
    SecretSlot, StoreError, WebhookEndpoint,
};

use crate::state::{EndpointRow, MemoryStore};

#[async_trait]
impl EndpointStore for MemoryStore {
    async fn create(
        &self,
        endpoint: &WebhookEndpoint,
        secret: EncryptedSecret,
        limit: u32,
    ) -> Result<(), EndpointError> {
        let mut inner = self.state();
        let count = inner
            .endpoints
            .keys()
            .filter(|(app, _)| *app == endpoint.application)
            .count();
        if count >= limit as usize {
            return Err(EndpointError::TooMany(limit));
        }
        inner.endpoints.insert(
            (endpoint.application, endpoint.id),
            EndpointRow {
                endpoint: endpoint.clone(),
                secret,
                previous: None,
            },
        );
        Ok(())
    }

    async fn list(&self, application: ApplicationId) -> Result<Vec<WebhookEndpoint>, StoreError> {
        let inner = self.state();
        let mut list: Vec<WebhookEndpoint> = inner
            .endpoints
            .iter()
            .filter(|((app, _), _)| *app == application)
            .map(|(_, row)| row.endpoint.clone())
            .collect();
        list.sort_by_key(|e| (e.created_at, e.id));
        Ok(list)
    }

    async fn delete(
        &self,
        application: ApplicationId,
        id: WebhookEndpointId,
    ) -> Result<bool, StoreError> {
        let mut inner = self.state();
        if inner.endpoints.remove(&(application, id)).is_none() {
            return Ok(false);
        }
        for ((_, endpoint), row) in inner.deliveries.iter_mut() {
            if *endpoint == id && row.status == DeliveryStatus::Pending {
                row.status = DeliveryStatus::Failed;
                row.next_attempt_at = None;
                row.lease = None;
            }
        }
        Ok(true)
    }

    async fn rotate_secret(
        &self,
        application: ApplicationId,
        id: WebhookEndpointId,
        secret: EncryptedSecret,
        previous_until: DateTime<Utc>,
    ) -> Result<Option<WebhookEndpoint>, StoreError> {
        let mut inner = self.state();
        let Some(row) = inner.endpoints.get_mut(&(application, id)) else {
            return Ok(None);
        };
        let handed_out = std::mem::replace(&mut row.secret, secret);
        row.previous = Some((handed_out, previous_until));
        Ok(Some(row.endpoint.clone()))
    }

    async fn sealed_secrets(&self) -> Result<Vec<SealedEndpointSecret>, StoreError> {
        let inner = self.state();
        let mut list: Vec<SealedEndpointSecret> = Vec::new();
        for ((application, id), row) in &inner.endpoints {
            list.push(SealedEndpointSecret {
                application: *application,
                endpoint: *id,
                slot: SecretSlot::Current,
                secret: row.secret.clone(),
                signs_until: None,
            });
            if let Some((previous, until)) = &row.previous {
                list.push(SealedEndpointSecret {
                    application: *application,
                    endpoint: *id,
                    slot: SecretSlot::Previous,
                    secret: previous.clone(),
                    signs_until: Some(*until),
                });
            }
        }
        list.sort_by_key(|s| (s.application, s.endpoint, s.slot == SecretSlot::Previous));
        Ok(list)
    }

    async fn reseal_secret(
        &self,
        application: ApplicationId,
        id: WebhookEndpointId,
        slot: SecretSlot,
        current: &EncryptedSecret,
        resealed: EncryptedSecret,
    ) -> Result<bool, StoreError> {
        let mut inner = self.state();
        let Some(row) = inner.endpoints.get_mut(&(application, id)) else {
            return Ok(false);
        };
        let stored = match slot {
            SecretSlot::Current => Some(&mut row.secret),
            SecretSlot::Previous => row.previous.as_mut().map(|(s, _)| s),
        };
        match stored {
            Some(s) if s == current => {
                *s = resealed;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}
