//! Transactional jobs (`docs/contract.md` §13): a handler that writes its
//! effects in a `sqlx` transaction, in which the run's guarded SUCCESS is
//! then written and committed with them. See the crate docs,
//! "Exactly-once effects".

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use scheduler_core::{BoxError, Finish, JobOutput, JobSpec, RunContext, Scopes, StoreError};
use sqlx_postgres::{PgPool, PgTransaction};

use crate::claim::BEGIN;
use crate::finish::finish_statement;
use crate::rows::backend;
use crate::store::PgLeaseStore;

impl PgLeaseStore {
    /// A job whose `handler` writes its effects in a transaction on the
    /// store's own pool, committed together with the run's guarded SUCCESS:
    /// both land, or neither does. The handler gets the run's context and
    /// the open transaction, and gives the transaction back with its
    /// output; the store then writes the SUCCESS in it (guarded by the
    /// execution's id, its lease token and status RUNNING, and logged in
    /// the attempts log, as any finish) and commits.
    ///
    /// ```no_run
    /// # use scheduler_core::{JobOutput, Scopes};
    /// # fn demo(store: &scheduler_postgres::PgLeaseStore) {
    /// let job = store.transactional_job("rollup", Scopes::global(), |ctx, mut tx| async move {
    ///     let rows = sqlx_core::query::query("INSERT INTO rollups (day) VALUES ($1)")
    ///         .bind(ctx.plan_time())
    ///         .execute(&mut *tx)
    ///         .await?
    ///         .rows_affected();
    ///     Ok((JobOutput::rows(rows as i64), tx))
    /// });
    /// # }
    /// ```
    ///
    /// When the handler fails or panics, or the run is dropped (run timeout,
    /// lease lost, shutdown), the transaction rolls back and the failure is
    /// recorded as for any job. When the run was cancelled by the time the
    /// handler returns, the transaction rolls back and the run fails. When
    /// the guard finds the lease taken over, the transaction rolls back and
    /// the run is reported lease-lost. A failed commit is a failed run
    /// (retried as any): the commit did not happen, or, if the server
    /// committed before the connection broke, the failure's own write finds
    /// the row SUCCESS and the run is reported lease-lost.
    ///
    /// The transaction is READ COMMITTED and holds one of the pool's
    /// connections for the whole run, beside the connections heartbeats
    /// and claims need: size the pool for it. Do not raise its isolation
    /// level: the run's heartbeats update its row meanwhile, and under
    /// REPEATABLE READ or SERIALIZABLE the guarded write would then fail
    /// with a serialization error. Do not commit or roll it back yourself.
    pub fn transactional_job<F, Fut>(&self, name: &str, scopes: Scopes, handler: F) -> JobSpec
    where
        F: Fn(RunContext, PgTransaction<'static>) -> Fut + Send + Sync + 'static,
        Fut:
            Future<Output = Result<(JobOutput, PgTransaction<'static>), BoxError>> + Send + 'static,
    {
        self.transactional_job_on(self.pool().clone(), name, scopes, handler)
    }

    /// [`transactional_job`](Self::transactional_job) with its transaction
    /// on `pool`, the caller's: for code written against its own pool (a
    /// user of the `sqlx` facade at this crate's version has the same
    /// types: `sqlx::PgPool`, `sqlx::Transaction<'static, sqlx::Postgres>`).
    ///
    /// `pool` must reach **the same database** as the store: the guarded
    /// SUCCESS is written on the transaction's connection, to this store's
    /// executions table and attempts log, named as the store names them
    /// (its schema and table, never the connection's `search_path` unless
    /// the store was built without a schema). A pool on another database
    /// fails every run (no such table there) or, worse, writes another
    /// scheduler's table of the same name.
    pub fn transactional_job_on<F, Fut>(
        &self,
        pool: PgPool,
        name: &str,
        scopes: Scopes,
        handler: F,
    ) -> JobSpec
    where
        F: Fn(RunContext, PgTransaction<'static>) -> Fut + Send + Sync + 'static,
        Fut:
            Future<Output = Result<(JobOutput, PgTransaction<'static>), BoxError>> + Send + 'static,
    {
        let store = self.clone();
        let handler = Arc::new(handler);
        JobSpec::new(name, scopes, move |ctx: RunContext| {
            let (store, pool, handler) = (store.clone(), pool.clone(), handler.clone());
            async move { store.commit_run(&pool, ctx, &*handler).await }
        })
    }

    /// Begins, runs `handler` in the transaction and, on `Ok`, writes the
    /// guarded SUCCESS in it and commits.
    async fn commit_run<F, Fut>(
        &self,
        pool: &PgPool,
        ctx: RunContext,
        handler: &F,
    ) -> Result<JobOutput, BoxError>
    where
        F: Fn(RunContext, PgTransaction<'static>) -> Fut,
        Fut: Future<Output = Result<(JobOutput, PgTransaction<'static>), BoxError>>,
    {
        let started = Instant::now();
        let tx = pool
            .begin_with(BEGIN)
            .await
            .map_err(backend("transactional begin"))?;
        // An error drops the transaction, which rolls it back.
        let (output, mut tx) = handler(ctx.clone(), tx).await?;
        if ctx.is_cancelled() {
            // Dropping would roll back too; saying so spares the pool the
            // connection's clean-up. Its failure changes nothing: nothing
            // was committed.
            let _ = tx.rollback().await;
            return Err("the run was cancelled before its commit; nothing written".into());
        }
        let lease = ctx.lease();
        let finish = Finish::success(
            started.elapsed(),
            output.rows_affected,
            output.result.clone(),
        );
        let written = finish_statement(self, &self.sql.finish_in_tx, lease, &finish)?
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend("transactional finish"))?;
        if written.is_none() {
            let _ = tx.rollback().await;
            return Err(Box::new(StoreError::LeaseLost { id: lease.id }));
        }
        tx.commit().await.map_err(backend("transactional commit"))?;
        Ok(output.committed())
    }
}
