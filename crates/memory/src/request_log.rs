//! [`RequestLog`] in memory.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ports::{RequestLog, RequestNonce, StoreError};

use crate::state::MemoryStore;

#[async_trait]
impl RequestLog for MemoryStore {
    async fn remember(&self, nonce: &RequestNonce) -> Result<bool, StoreError> {
        Ok(self.state().remember(nonce))
    }

    async fn forget_before(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut inner = self.state();
        let was = inner.nonces.len();
        inner.nonces.retain(|_, until| *until >= before);
        Ok((was - inner.nonces.len()) as u64)
    }
}
