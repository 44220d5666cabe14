//! The shared conformance suite against a store whose table was created
//! partitioned by day (`PgStoreOptions::partitioned`): every guarantee of
//! the unpartitioned table holds on it, each test in a schema of its own.

mod common;

scheduler_conformance::conformance_tests!(common::partitioned_harness());
