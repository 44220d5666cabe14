//! The replica registry (`docs/contract.md` §7, "The replica registry"):
//! [`LeaseStore::announce`](scheduler_core::LeaseStore::announce) and
//! [`ExecutionAudit::replicas`](scheduler_core::ExecutionAudit::replicas).
//! An announcement is one idempotent upsert per runner id at store time,
//! following [`Announcement::apply`]; a read lists every replica in runner-id
//! order; text a store could never hold is refused before anything is
//! written. The kinds a replica runs and the stored-schedule versions of
//! its jobs round trip with the rest.
//!
//! Store time may move on its own (PostgreSQL's `now()`), so instants are
//! checked between two readings of it; every check uses runner ids of its
//! own and reads back only those, so checks may share one database.

use std::time::Duration;

use scheduler_core::model::{CatchUpMode, ScheduleForm, ScopeCount};
use scheduler_core::{
    Announcement, Presence, RegisteredJob, Replica, ReplicaInfo, StoreError, MAX_NAME_BYTES,
};
use time::OffsetDateTime;

use crate::fixtures::{incompressible, unique, Harness};

/// A job as a replica would register it, on a one-minute cadence.
fn job(name: &str) -> RegisteredJob {
    RegisteredJob {
        name: name.to_owned(),
        schedule: "every minute".to_owned(),
        schedule_form: ScheduleForm::Every {
            cadence: Duration::from_secs(60),
            offset: Duration::from_secs(7),
        },
        schedule_delay: Duration::from_secs(5),
        spread: Duration::ZERO,
        scopes: ScopeCount::Fixed(3),
        catch_up: CatchUpMode::EveryPlan,
        catch_up_window: Duration::from_secs(3600),
        max_attempts: 3,
        run_timeout: Duration::from_secs(300),
        stale_timeout: Duration::from_secs(600),
        allow_stale_reentry: false,
        overlap: scheduler_core::model::OverlapPolicy::Skip,
        scope_list: vec![scheduler_core::Scope::new("tenant", "a \"quoted\" ∑")],
        stored_version: Some(3),
    }
}

/// Replica `runner_id` with `jobs`, saying `presence`.
fn announcement(runner_id: &str, jobs: Vec<RegisteredJob>, presence: Presence) -> Announcement {
    Announcement {
        replica: ReplicaInfo {
            runner_id: runner_id.to_owned(),
            host: "host-a".to_owned(),
            pid: 4242,
            version: "0.1.0".to_owned(),
            refresh_interval: Duration::from_secs(15),
            jobs,
            kinds: vec!["digest".to_owned(), "rollup".to_owned()],
        },
        presence,
    }
}

/// Announces `a`, which must succeed; the store times just before and
/// just after.
async fn announce(h: &Harness, a: &Announcement) -> (OffsetDateTime, OffsetDateTime) {
    let before = h.store.now().await.expect("store time");
    h.store.announce(a).await.expect("announce");
    (before, h.store.now().await.expect("store time"))
}

/// The registry's replicas among `runner_ids`, in the order it lists them.
async fn replicas_of(h: &Harness, runner_ids: &[&str]) -> Vec<Replica> {
    h.store
        .replicas()
        .await
        .expect("replicas")
        .into_iter()
        .filter(|r| runner_ids.contains(&r.info.runner_id.as_str()))
        .collect()
}

/// The one replica `runner_id`.
async fn replica(h: &Harness, runner_id: &str) -> Replica {
    let mut found = replicas_of(h, &[runner_id]).await;
    assert_eq!(found.len(), 1, "one row per runner id: {found:#?}");
    found.remove(0)
}

fn assert_within(t: OffsetDateTime, (before, after): (OffsetDateTime, OffsetDateTime)) {
    assert!(before <= t && t <= after, "{t} not in [{before}, {after}]");
}

/// An announcement is read back as announced: the information whole, and
/// `started_at` and `last_seen_at` at the store time of the call, with no
/// `stopped_at`.
pub async fn announced_replicas_are_read_back(h: &Harness) {
    let runner = unique("replica");
    let a = announcement(
        &runner,
        vec![job("rollup"), job("digest")],
        Presence::Started,
    );
    let window = announce(h, &a).await;
    let r = replica(h, &runner).await;
    assert_eq!(r.info, a.replica);
    assert_within(r.last_seen_at, window);
    assert_eq!(r.started_at, r.last_seen_at);
    assert_eq!(r.stopped_at, None);
}

/// Announcing again updates the one row: `last_seen_at` moves, the jobs
/// and the rest are replaced, `started_at` stays for a refresh and moves
/// for a new start; no second row appears.
pub async fn announcing_again_updates_the_row_without_duplicating_it(h: &Harness) {
    let runner = unique("replica");
    announce(h, &announcement(&runner, vec![job("a")], Presence::Started)).await;
    let first = replica(h, &runner).await;
    h.time.advance(Duration::from_secs(20));
    let mut alive = announcement(&runner, vec![job("a"), job("b")], Presence::Alive);
    alive.replica.pid = 4343;
    let window = announce(h, &alive).await;
    let refreshed = replica(h, &runner).await;
    assert_eq!(refreshed.info, alive.replica, "jobs and pid replaced");
    assert_eq!(
        refreshed.started_at, first.started_at,
        "a refresh keeps the start"
    );
    assert_within(refreshed.last_seen_at, window);
    assert!(refreshed.last_seen_at >= first.last_seen_at + Duration::from_secs(20));

    h.time.advance(Duration::from_secs(5));
    let window = announce(h, &announcement(&runner, vec![], Presence::Started)).await;
    let restarted = replica(h, &runner).await;
    assert!(
        restarted.info.jobs.is_empty(),
        "an empty job list replaces the jobs"
    );
    assert_within(restarted.started_at, window);
    assert_eq!(restarted.started_at, restarted.last_seen_at);
}

/// A clean stop sets `stopped_at` to store time; a later announcement of
/// the same runner id (a restart) clears it.
pub async fn a_stop_marks_the_replica_stopped(h: &Harness) {
    let runner = unique("replica");
    announce(h, &announcement(&runner, vec![job("a")], Presence::Started)).await;
    let started = replica(h, &runner).await.started_at;
    h.time.advance(Duration::from_secs(30));
    let window = announce(h, &announcement(&runner, vec![job("a")], Presence::Stopped)).await;
    let stopped = replica(h, &runner).await;
    let at = stopped.stopped_at.expect("stopped_at is set");
    assert_within(at, window);
    assert_eq!(stopped.last_seen_at, at);
    assert_eq!(stopped.started_at, started);
    assert_eq!(
        stopped.info.jobs.len(),
        1,
        "a stopped replica keeps its jobs"
    );

    announce(h, &announcement(&runner, vec![job("a")], Presence::Alive)).await;
    assert_eq!(replica(h, &runner).await.stopped_at, None);
}

/// Every replica is listed, once, in runner-id order, bytewise whatever
/// the database's collation (`B` before `a` before `ä`).
pub async fn every_replica_is_listed_in_runner_id_order(h: &Harness) {
    let prefix = unique("replica");
    let ids = ["ä", "a", "B"].map(|suffix| format!("{prefix}-{suffix}"));
    for (i, id) in ids.iter().enumerate() {
        let jobs = vec![job(&format!("job-{i}"))];
        announce(h, &announcement(id, jobs, Presence::Started)).await;
    }
    let listed = replicas_of(h, &ids.each_ref().map(String::as_str)).await;
    let order: Vec<&str> = listed.iter().map(|r| r.info.runner_id.as_str()).collect();
    assert_eq!(order, [&ids[2], &ids[1], &ids[0]]);
    assert_eq!(listed[0].info.jobs[0].name, "job-2", "each its own jobs");
}

/// Hostile text (quotes, backslashes, JSON and SQL syntax, control
/// characters, non-ASCII, names of [`MAX_NAME_BYTES`]) is stored and read
/// back as it is; a job name or runner id with a NUL, or one byte over the
/// limit, is refused as [`StoreError::InvalidInput`] and the row stays as
/// it was.
pub async fn hostile_replica_text_is_stored_or_refused_cleanly(h: &Harness) {
    let runner = format!("{}'\"; DROP TABLE x; --", unique("replica"));
    let hostile = [
        "quote'\"\\ back\\slash".to_owned(),
        r#"{"name": "json"}], [{"#.to_owned(),
        "tab\tnew\nline\u{1}bell\u{7f}".to_owned(),
        "日本語 ü 🦀".to_owned(),
        incompressible(MAX_NAME_BYTES),
    ];
    let mut jobs: Vec<RegisteredJob> = hostile.iter().map(|n| job(n)).collect();
    jobs[0].schedule_form = ScheduleForm::Cron {
        expression: "0 9 * * 1-5 'x'".to_owned(),
        zone: "Europe/Berlin".to_owned(),
    };
    jobs[1].schedule = "cron `0 9 * * 1-5` in Europe/Berlin \\ \"".to_owned();
    jobs[2].scopes = ScopeCount::Dynamic;
    let mut a = announcement(&runner, jobs, Presence::Started);
    a.replica.host = "host'; DELETE FROM sys_cron_replicas; --".to_owned();
    announce(h, &a).await;
    assert_eq!(replica(h, &runner).await.info, a.replica);

    let over = incompressible(MAX_NAME_BYTES + 1);
    let refused = [
        announcement(&runner, vec![job("nul\0job")], Presence::Alive),
        announcement(&runner, vec![job(&over)], Presence::Alive),
        announcement(&format!("{runner}\0"), vec![job("a")], Presence::Alive),
        announcement(&over, vec![job("a")], Presence::Alive),
    ];
    for bad in &refused {
        match h.store.announce(bad).await {
            Err(e @ StoreError::InvalidInput(_)) => {
                assert!(!e.is_transient(), "invalid input is never transient")
            }
            other => panic!("expected invalid input, got {other:?}"),
        }
    }
    assert_eq!(
        replica(h, &runner).await.info,
        a.replica,
        "nothing of a refused announcement is written"
    );
    assert!(replicas_of(h, &[over.as_str()]).await.is_empty());
}

/// The kinds a replica registered ([`ReplicaInfo::kinds`]) and the
/// stored-schedule version each of its jobs runs
/// ([`RegisteredJob::stored_version`]) are read back as announced: none or
/// several kinds, hostile text in them, a compiled-in job (`None`) beside
/// stored ones at version 1 and `i64::MAX`; a refresh replaces both.
pub async fn replica_kinds_and_stored_versions_round_trip(h: &Harness) {
    let runner = unique("replica_kinds");
    let mut jobs = vec![job("compiled"), job("stored-first"), job("stored-last")];
    jobs[0].stored_version = None;
    jobs[1].stored_version = Some(1);
    jobs[2].stored_version = Some(i64::MAX);
    let mut a = announcement(&runner, jobs, Presence::Started);
    a.replica.kinds = vec![
        "a \"quoted\" 'kind' \\".to_owned(),
        "digest".to_owned(),
        r#"{"kind": ["json"]}"#.to_owned(),
        "日本語 🦀".to_owned(),
        incompressible(MAX_NAME_BYTES),
    ];
    announce(h, &a).await;
    let read = replica(h, &runner).await.info;
    assert_eq!(read.kinds, a.replica.kinds);
    let versions: Vec<Option<i64>> = read.jobs.iter().map(|j| j.stored_version).collect();
    assert_eq!(versions, [None, Some(1), Some(i64::MAX)]);
    assert_eq!(read, a.replica);

    let mut refreshed = announcement(&runner, vec![job("stored-first")], Presence::Alive);
    refreshed.replica.jobs[0].stored_version = Some(2);
    refreshed.replica.kinds = Vec::new();
    announce(h, &refreshed).await;
    let read = replica(h, &runner).await.info;
    assert!(
        read.kinds.is_empty(),
        "an empty kind list replaces the kinds"
    );
    assert_eq!(read.jobs[0].stored_version, Some(2));
    assert_eq!(read, refreshed.replica);
}

/// A prune also deletes the registry rows of replicas last seen before its
/// cutoff (stopped or vanished long ago: a fleet that restarts often would
/// otherwise pile them up), and keeps the others; a dry run deletes none.
pub async fn prune_deletes_replicas_not_seen_since_the_cutoff(h: &Harness) {
    let (old, recent) = (unique("replica_old"), unique("replica_recent"));
    announce(h, &announcement(&old, vec![job("a")], Presence::Stopped)).await;
    h.time.advance(Duration::from_secs(3600));
    let cutoff = h.store.now().await.unwrap();
    h.time.advance(Duration::from_secs(1));
    announce(h, &announcement(&recent, vec![job("a")], Presence::Started)).await;
    let listed = || async {
        let runners: Vec<String> = h
            .store
            .replicas()
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.info.runner_id)
            .filter(|r| *r == old || *r == recent)
            .collect();
        runners
    };
    h.store
        .prune_finished(&scheduler_core::Prune::count(cutoff))
        .await
        .unwrap();
    assert_eq!(listed().await.len(), 2, "a dry run deletes no replica");
    h.store
        .prune_finished(&scheduler_core::Prune::batch(cutoff, 1000))
        .await
        .unwrap();
    assert_eq!(listed().await, std::slice::from_ref(&recent));
}
