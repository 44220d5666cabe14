//! Where a job's scopes come from: a fixed list, or a provider asked every
//! tick.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::FutureExt;
use time::OffsetDateTime;

use crate::error::BoxError;
use crate::model::{Scope, ScopeCount, MAX_LISTED_SCOPES};

type ScopesFn =
    dyn Fn(OffsetDateTime) -> BoxFuture<'static, Result<Vec<Scope>, BoxError>> + Send + Sync;

/// Where a job's scopes come from, asked once per tick.
#[derive(Clone)]
pub enum Scopes {
    /// The same scopes every tick.
    Fixed(Arc<[Scope]>),
    /// Asked every tick with store time, e.g. to list tenants.
    Dynamic(Arc<ScopesFn>),
}

impl Scopes {
    /// Only [`Scope::global`].
    pub fn global() -> Self {
        Scopes::Fixed(Arc::from([Scope::global()]))
    }

    /// A fixed list.
    pub fn fixed(scopes: impl IntoIterator<Item = Scope>) -> Self {
        Scopes::Fixed(scopes.into_iter().collect())
    }

    /// A provider called every tick with store time.
    pub fn dynamic<F, Fut>(provider: F) -> Self
    where
        F: Fn(OffsetDateTime) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<Scope>, BoxError>> + Send + 'static,
    {
        Scopes::Dynamic(Arc::new(move |now| provider(now).boxed()))
    }

    /// How many scopes, as a replica announces it: the fixed list's
    /// length, or [`ScopeCount::Dynamic`] for a provider.
    pub fn count(&self) -> ScopeCount {
        match self {
            Scopes::Fixed(scopes) => ScopeCount::Fixed(scopes.len()),
            Scopes::Dynamic(_) => ScopeCount::Dynamic,
        }
    }

    /// The fixed list, when it has at most [`MAX_LISTED_SCOPES`] scopes
    /// (what a replica announces); empty otherwise.
    pub fn listed(&self) -> Vec<Scope> {
        match self {
            Scopes::Fixed(scopes) if scopes.len() <= MAX_LISTED_SCOPES => scopes.to_vec(),
            _ => Vec::new(),
        }
    }

    /// The scopes at store time `now`. A fixed list is shared, not
    /// copied: a tick over a million scopes must not copy a million names.
    pub(crate) async fn resolve(&self, now: OffsetDateTime) -> Result<Arc<[Scope]>, BoxError> {
        match self {
            Scopes::Fixed(scopes) => Ok(scopes.clone()),
            Scopes::Dynamic(provider) => provider(now).await.map(Arc::from),
        }
    }
}

impl fmt::Debug for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scopes::Fixed(s) => f.debug_tuple("Fixed").field(&s.len()).finish(),
            Scopes::Dynamic(_) => f.write_str("Dynamic"),
        }
    }
}
