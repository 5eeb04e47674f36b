//! The worker pool: three `billingd` with four workers each, on one
//! Postgres, renew 10 000 subscriptions that fall due at one moment (a
//! calendar 1st) — every one exactly once, with one invoice and one charge.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use billing_proto::v1 as pb;
use billing_proto::v1::test_clock_service_client::TestClockServiceClient;
use billing_storage::testing::TestDatabase;
use billing_tests::process::Billingd;
use billing_tests::{Backend, timestamp};

const SUBSCRIPTIONS: usize = 10_000;
const START: &str = "2026-03-10T09:00:00Z";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_servers_of_four_workers_renew_each_due_subscription_once() {
    let database = TestDatabase::create(Backend::Postgres).await;
    let store = database.store().await;
    billing_storage::seed::due_renewals(&store, SUBSCRIPTIONS, START.parse().unwrap())
        .await
        .unwrap();
    let env = [
        ("BILLING__CLOCK__MODE", "manual"),
        ("BILLING__CLOCK__START_TIME", START),
        ("BILLING__JOBS__WORKERS", "4"),
        ("BILLING__DATABASE__MAX_CONNECTIONS", "8"),
        // One AdvanceClock works through a third of the renewals.
        ("BILLING__SERVER__REQUEST_TIMEOUT_SECONDS", "600"),
    ];
    let mut servers = Vec::new();
    for _ in 0..3 {
        servers.push(Billingd::start(database.url(), &env).await);
    }
    let started = std::time::Instant::now();
    // All three advance their clocks past the renewal at once.
    let mut advancing = Vec::new();
    for server in &servers {
        let mut clock = TestClockServiceClient::new(server.channel().await);
        advancing.push(tokio::spawn(async move {
            clock
                .advance_clock(pb::AdvanceClockRequest {
                    to_time: Some(timestamp("2026-04-10T12:00:00Z")),
                })
                .await
                .unwrap()
                .into_inner()
        }));
    }
    let mut worked = Vec::new();
    for handle in advancing {
        let advanced = handle.await.unwrap();
        assert_eq!(advanced.jobs_failed, 0);
        worked.push(advanced.jobs_run);
    }
    assert!(
        worked.iter().filter(|&&jobs| jobs > 0).count() >= 2,
        "the work was not shared: {worked:?}"
    );

    let count = |sql: &'static str| database.count(sql);
    assert_eq!(
        count("SELECT COUNT(*) AS n FROM invoices").await,
        SUBSCRIPTIONS as i64,
        "one renewal invoice per subscription"
    );
    assert_eq!(
        count("SELECT COUNT(DISTINCT subscription_id) AS n FROM invoices WHERE status = 'PAID'").await,
        SUBSCRIPTIONS as i64,
        "every subscription's renewal paid"
    );
    assert_eq!(
        count("SELECT COALESCE(SUM(attempt_count), 0) AS n FROM invoices").await,
        SUBSCRIPTIONS as i64,
        "one charge per invoice"
    );
    assert_eq!(
        count("SELECT COUNT(*) AS n FROM subscriptions WHERE period_start <> '2026-04-10'").await,
        0,
        "every period rolled once"
    );
    assert_eq!(
        count("SELECT COUNT(*) AS n FROM jobs WHERE lease_owner IS NOT NULL OR due_time <= '2026-04-10 12:00:00+00'")
            .await,
        0,
        "nothing left leased or due"
    );
    eprintln!("jobs per server: {worked:?}, {:?} in all", started.elapsed());
}
