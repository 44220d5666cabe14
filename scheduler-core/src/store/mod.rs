//! The store traits: what a backend must do, in two parts.
//!
//! - [`lease_store`]: [`LeaseStore`], the coordination methods the manager
//!   calls (claim, heartbeat, finish, sweep, the planning reads), with the
//!   written contract every store and wrapper follows.
//! - [`audit`]: [`ExecutionAudit`], the operator's reads and repairs.
//! - [`counting`]: [`CountingStore`], a forwarding wrapper that counts calls
//!   and may stall terminal writes.
//! - [`sql`]: what the SQL stores share (statement templates, limits); part
//!   of the store-author interface.
//! - [`LeaseStoreExt`]: conveniences over [`LeaseStore`] that no store
//!   implements (and so no wrapper can get wrong).

pub mod audit;
pub mod counting;
pub mod lease_store;
pub mod sql;

pub use audit::ExecutionAudit;
pub use counting::CountingStore;
pub use lease_store::LeaseStore;

use async_trait::async_trait;

use crate::error::StoreError;
use crate::model::{Finish, Lease};

/// Conveniences over every [`LeaseStore`], implemented once here for all of
/// them: a store cannot override them, so a wrapper that forwards the
/// trait's methods forwards these too.
#[async_trait]
pub trait LeaseStoreExt: LeaseStore {
    /// Writes one terminal state: [`LeaseStore::finish_many`] with one item.
    ///
    /// # Errors
    /// As one item of [`LeaseStore::finish_many`].
    async fn finish(&self, lease: &Lease, finish: &Finish) -> Result<(), StoreError> {
        self.finish_many(&[(lease, finish)])
            .await
            .pop()
            .unwrap_or_else(|| Err(StoreError::backend_msg("finish_many answered no item")))
    }
}

impl<S: LeaseStore + ?Sized> LeaseStoreExt for S {}
