//! The shared conformance suite against a real PostgreSQL server, each test
//! in a schema of its own, store time moved by the store's time offset.

mod common;

scheduler_conformance::conformance_tests!(common::harness());
