//! The shared conformance suite: one `pub async fn` per guarantee of the
//! lease state machine (the contract, `docs/contract.md` §4), which every
//! [`LeaseStore`](scheduler_core::LeaseStore) implementation runs against
//! itself, in the manner of object_store's `integration` module.
//!
//! **Not semver-stable.** Like scheduler-core's store-author interface,
//! this crate changes with the stores: functions are added, renamed and
//! given new parameters whenever the contract grows. It is a dev-dependency
//! of the store crates and is not published.
//!
//! Each function takes a [`Harness`]: the store and a way to move its store
//! time forward. Capability differences between stores are parameters (e.g.
//! how many concurrent claimers to race), never `cfg` forks. Every function
//! uses job names of its own, so tests may share one database.
//!
//! # Areas
//!
//! Every function is re-exported here, so `scheduler_conformance::name`
//! reaches it whichever area it lives in.
//!
//! - [`claim`]: racing claimers, batches, ids and tokens, the latest-execution view.
//! - [`fencing`]: stolen and swept leases, heartbeats, success is final, `finish_many` guards.
//! - [`retry`]: retry timing, swept non-reentrant rows, attempts, `retry_due` and its limits.
//! - [`audit`]: reads by id and filter, scope summaries, operator retries, pruning.
//! - [`attempts`]: the attempts log: what each transition appends, once, and pruning with the execution.
//! - [`limits`]: names at and past the limit, hostile text, error messages, results, microseconds, store time.
//! - [`registry`]: the replica registry: announcements read back, refreshed without duplicates, stops, order, hostile text.
//! - [`steering`]: controls (pauses, triggers, backfills) stored, read and ended; pauses and overlap policies in the claim; origins, forced retries, skipped counts, progress.
//! - [`schedules`]: stored schedules written by compare-and-set on their version, refused by field, read back in name order; claims of a superseded version; the wake-up.
//! - [`manager`]: manager-over-store checks (an outage at start, an unstorable scope, a control's wake-up), not store guarantees.
//! - [`differential`]: random operation sequences applied to several stores in lockstep.
//!
//! The fixtures the areas share (the harness, claim requests, "claim and
//! collect the leases", "fail each", "one job's rows") are private to the
//! crate but for [`Harness`] and the few in [`fixtures`] that other test
//! suites set their stores up with (announce a replica, claim fresh plans).
//!
//! [`conformance_tests!`](crate::conformance_tests) expands to one
//! `#[tokio::test]` per function (all but
//! [`manager_rides_out_a_store_down_at_start`], whose outage each store
//! causes its own way):
//!
//! ```text
//! scheduler_conformance::conformance_tests!(async {
//!     let clock = ManualClock::new(OffsetDateTime::now_utc());
//!     let store = MemoryLeaseStore::with_clock(Arc::new(clock.clone()));
//!     Some(Harness::new(Arc::new(store), Arc::new(clock)))
//! });
//! ```

pub mod attempts;
pub mod audit;
pub mod claim;
pub mod differential;
pub mod fencing;
pub mod fixtures;
pub mod limits;
pub mod manager;
pub mod registry;
pub mod retry;
pub mod schedules;
pub mod steering;

pub use attempts::*;
pub use audit::*;
pub use claim::*;
pub use fencing::*;
pub use fixtures::Harness;
pub use limits::*;
pub use manager::*;
pub use registry::*;
pub use retry::*;
pub use schedules::*;
pub use steering::*;

/// Expands to one `#[tokio::test]` per conformance function. `$setup` is an
/// expression of type `impl Future<Output = Option<Harness>>`, evaluated
/// afresh for each test; `None` means the backend is unavailable and the
/// setup has already reported why (the test returns without running).
/// After a function returns, the test calls [`Harness::tear_down`], which
/// runs the harness's [teardown](Harness::with_teardown), if it has one.
#[macro_export]
macro_rules! conformance_tests {
    ($setup:expr) => {
        $crate::conformance_tests!(@one $setup, concurrent_claimers_have_one_winner, 16);
        $crate::conformance_tests!(@one $setup, concurrent_reclaimers_have_one_winner, 16);
        $crate::conformance_tests!(@each $setup;
            batch_claim_returns_outcomes_in_order,
            stolen_lease_is_fenced,
            swept_lease_is_fenced,
            heartbeat_extends_the_lease,
            sweep_closes_only_stale_running_rows_of_the_job,
            retry_waits_for_next_retry_at,
            non_reentrant_stale_row_is_not_retried,
            attempts_never_exceed_max,
            success_is_final,
            ids_are_v7_and_tokens_v4,
            plan_times_round_trip_at_microseconds,
            latest_executions_view,
            retry_due_lists_older_failed_plans,
            error_messages_are_stored_safely,
            oversized_result_still_succeeds,
            batches_past_every_parameter_limit_go_through_whole,
            hostile_names_are_stored_or_refused_cleanly,
            names_are_stored_up_to_the_limit_and_refused_past_it,
            retry_due_limits_each_scope_on_its_own,
            operator_retries_are_due_whatever_their_plan_time,
            manager_runs_the_storable_scopes_of_a_job,
            audit_reads_filter_and_order,
            operator_retry_repairs_failed_rows_and_refuses_others,
            prune_deletes_only_old_terminal_rows,
            scope_summaries_describe_each_scope,
            summaries_count_ended_failures_through_retries_and_prunes,
            plan_times_since_lists_every_scope_in_one_read,
            claims_with_no_attempt_budget_are_refused,
            finish_many_guards_each_lease,
            store_time_is_utc_micros_and_controllable,
            announced_replicas_are_read_back,
            announcing_again_updates_the_row_without_duplicating_it,
            a_stop_marks_the_replica_stopped,
            every_replica_is_listed_in_runner_id_order,
            prune_deletes_replicas_not_seen_since_the_cutoff,
            hostile_replica_text_is_stored_or_refused_cleanly,
            replica_kinds_and_stored_versions_round_trip,
            failure_then_success_logs_both_attempts,
            swept_attempt_is_logged_as_stale_timeout,
            stolen_attempt_is_logged_for_its_runner,
            prune_deletes_attempts_with_their_execution,
            operator_retries_do_not_stack_messages,
            finish_many_logs_each_item_once,
            controls_are_stored_and_read_back,
            control_reads_select_active_and_recently_ended,
            unstorable_controls_are_refused,
            ending_a_control_is_final,
            a_backfill_cursor_advances_by_compare_and_set,
            a_second_pause_of_the_same_target_conflicts,
            a_job_pause_stops_every_claim_of_the_job,
            a_scope_pause_stops_only_its_scope,
            a_pause_ends_at_its_until_or_when_resumed,
            overlap_skip_records_the_plan_as_skipped,
            overlap_buffer_all_waits_for_the_scope,
            overlap_buffer_one_keeps_the_newest_waiting,
            overlap_cancel_other_replaces_the_live_run,
            overlap_allow_all_runs_both,
            a_stale_lease_does_not_hold_its_scope,
            a_finishing_run_does_not_hold_its_claimers_next_plan,
            keys_of_one_batch_do_not_hold_each_other_up,
            operators_runs_never_hold_up_the_schedule,
            a_backfill_instant_waits_for_a_live_run,
            a_trigger_replaces_only_other_triggers_runs,
            rows_carry_their_origin_and_control,
            failed_operator_runs_are_due_whatever_their_plan_time,
            overlap_rows_count_as_skipped_in_summaries,
            control_progress_counts_the_rows_of_a_control,
            a_created_schedule_is_read_back_at_version_one,
            schedules_are_listed_in_name_order,
            an_update_naming_the_current_version_moves_it_by_one,
            a_write_naming_another_version_conflicts_and_changes_nothing,
            creating_an_existing_name_conflicts,
            writing_a_missing_schedule_conflicts,
            a_deleted_schedule_is_gone_and_its_executions_stay,
            invalid_definitions_are_refused_by_field_and_nothing_is_written,
            schedule_names_past_the_limits_are_refused,
            hostile_text_in_a_definition_round_trips_exactly,
            a_claim_under_the_current_version_is_decided_as_usual,
            a_claim_under_a_superseded_version_claims_nothing,
            a_claim_without_a_version_ignores_stored_schedules,
            a_schedule_write_wakes_the_control_changes_receiver
        );
    };
    (@one $setup:expr, $name:ident, $($arg:expr),*) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            if let Some(harness) = $setup.await {
                $crate::$name(&harness, $($arg),*).await;
                harness.tear_down().await;
            }
        }
    };
    (@each $setup:expr; $($name:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                if let Some(harness) = $setup.await {
                    $crate::$name(&harness).await;
                    harness.tear_down().await;
                }
            }
        )*
    };
}
