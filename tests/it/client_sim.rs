//! The client against the simulator (not a purpose-built stub): the two halves keep each
//! other honest. Pagination over more than 10,000 projects, every fault knob, redirects to
//! another origin, and pacing under a rate limit.

use std::time::Duration;

use futures::TryStreamExt;
use glmirror::gitlab::{ClientConfig, GitLabClient, ProjectQuery, Tuning};
use glmirror::sim::{self, Faults, Fixture, RateLimitShape, SimHandle, SimOptions};
use secrecy::SecretString;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("rt")
}

/// A client with short retry backoff (tests), and the default cap on waits unless
/// `short_waits` (a capped wait would also cap pacing, which spreads requests over the
/// rate-limit window).
fn client_with(sim: &SimHandle, concurrency: u32, short_waits: bool) -> GitLabClient {
    let cfg = ClientConfig::new(sim.base_url(), SecretString::from(sim.admin_token().to_owned()));
    let mut tuning = Tuning::with_concurrency(concurrency);
    tuning.base_delay = Duration::from_millis(5);
    if short_waits {
        tuning.max_delay = Duration::from_secs(2);
    }
    GitLabClient::with_tuning(cfg, tuning).expect("client")
}

fn client(sim: &SimHandle, concurrency: u32) -> GitLabClient {
    client_with(sim, concurrency, true)
}

async fn all_ids(client: &GitLabClient) -> Vec<u64> {
    client
        .projects(ProjectQuery::default())
        .map_ok(|p| p.id)
        .try_collect()
        .await
        .expect("every page read")
}

#[test]
fn keyset_pagination_over_10000_projects_sees_each_once_in_order() {
    let rt = runtime();
    rt.block_on(async {
        let fixture = glmirror::sim::generate(10_250, 3);
        let expected = fixture.projects.len();
        let sim = sim::start(SimOptions::new(fixture)).await.expect("sim");
        let ids = all_ids(&client(&sim, 4)).await;
        assert_eq!(ids.len(), expected);
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids strictly increasing");
        let pages = sim.request_log().iter().filter(|r| r.path == "/api/v4/projects").count();
        assert_eq!(pages, expected.div_ceil(100), "one request per page of 100");
        sim.shutdown().await;
    });
}

#[test]
fn the_client_recovers_from_every_fault_knob_without_losing_a_project() {
    let rt = runtime();
    rt.block_on(async {
        let fixture = glmirror::sim::generate(600, 5);
        let expected = fixture.projects.len();
        let sim = sim::start(SimOptions::new(fixture)).await.expect("sim");
        let knobs = [
            Faults { error_rate: 0.3, seed: 1, ..Faults::default() },
            Faults { drop_rate: 0.3, seed: 2, ..Faults::default() },
            Faults { latency_ms: 30, seed: 3, ..Faults::default() },
            Faults {
                error_rate: 0.15,
                drop_rate: 0.15,
                latency_ms: 5,
                seed: 4,
                ..Faults::default()
            },
        ];
        // (429s: the simulator's window is a minute, so recovering from one takes that long;
        // the pacing test below and the client's own tests cover them.)
        for faults in knobs {
            sim.set_faults(faults.clone());
            let c = client(&sim, 4);
            let ids = all_ids(&c).await;
            assert_eq!(ids.len(), expected, "{faults:?}");
            let mirror = c.pull_mirror(ids[0]).await;
            assert!(mirror.is_ok(), "{faults:?}: {mirror:?}");
        }
        sim.shutdown().await;
    });
}

#[test]
fn a_redirect_to_another_origin_is_an_error_and_the_token_stays_home() {
    let rt = runtime();
    rt.block_on(async {
        let home = sim::start(SimOptions::new(Fixture::demo())).await.expect("sim");
        let elsewhere = sim::start(SimOptions::new(Fixture::demo())).await.expect("sim");
        home.set_faults(Faults {
            redirect_to: Some(elsewhere.base_url().to_string()),
            ..Faults::default()
        });
        let err = client(&home, 1).current_user().await.expect_err("redirect refused");
        let text = format!("{err} {:?}", err.hint());
        assert!(text.contains(elsewhere.base_url().host_str().expect("host")), "{text}");
        assert!(!text.contains(home.admin_token()), "{text}");
        assert!(elsewhere.request_log().is_empty(), "the other origin saw a request");
        home.shutdown().await;
        elsewhere.shutdown().await;
    });
}

#[test]
fn pacing_keeps_429s_rare_under_a_rate_limit() {
    let rt = runtime();
    rt.block_on(async {
        let fixture = glmirror::sim::generate(300, 9);
        let sim = sim::start(SimOptions::new(fixture)).await.expect("sim");
        let c = client_with(&sim, 8, false);
        let ids = all_ids(&c).await;
        // The limit applies from here on: 200 reads at concurrency 8 against 120 a minute.
        // Unpaced, about 80 of them would be answered 429.
        sim.set_faults(Faults {
            rate_limit_per_minute: Some(120),
            rate_limit_shape: RateLimitShape::Throttle,
            seed: 1,
            ..Faults::default()
        });
        let reads = futures::stream::iter(ids.iter().take(200).copied())
            .map(|id| {
                let c = c.clone();
                async move { c.project(&id.to_string()).await.map(|_| ()) }
            })
            .buffer_unordered(8)
            .try_collect::<Vec<_>>();
        // A window of a minute is too long for a test: only check the start of the run,
        // bounded in time. The client paces once the quota runs low.
        let _ = tokio::time::timeout(Duration::from_secs(8), reads).await;
        let log = sim.request_log();
        let limited = log.iter().filter(|r| r.status == 429).count();
        let served = log.iter().filter(|r| r.status == 200).count();
        assert!(served >= 100, "reads went through: {served}");
        assert!(limited * 20 <= served, "too many 429s: {limited} of {served}");
        sim.shutdown().await;
    });
}

use futures::StreamExt;
