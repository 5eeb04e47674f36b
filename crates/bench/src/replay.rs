//! The same writes per renewal, replayed straight into the database: what
//! the storage engine alone can do with this statement mix, for a ratio that
//! does not depend on the machine.

use std::fmt::Write as _;
use std::time::Instant;

use anyhow::{Context, ensure};
use billing_domain::ids::SubscriptionId;
use billing_storage::{Backend, NUMBER_EVENTS, PUBLISHER_LOCK, Store};

/// Per renewal: the job's three steps as the service runs them (the period
/// roll with its invoice, numbered after every write that does not name it;
/// the payment-method read before the charge; and the payment's record; each
/// commit numbering the events it wrote), against the subscription numbered
/// `{n}`.
const RENEWAL: &str = "
BEGIN;
SELECT * FROM subscriptions WHERE id = (SELECT sub_id FROM bench_ids WHERE n = {n}) {lock};
SELECT * FROM invoices WHERE subscription_id = (SELECT sub_id FROM bench_ids WHERE n = {n}) AND status IN ('OPEN', 'PAYMENT_FAILED') ORDER BY id DESC LIMIT 1;
SELECT * FROM offerings WHERE id = (SELECT offering_id FROM subscriptions WHERE id = (SELECT sub_id FROM bench_ids WHERE n = {n}));
SELECT amount_minor FROM credit_balances WHERE business_id = (SELECT business_id FROM bench_ids WHERE n = {n}) AND currency = 'USD';
UPDATE subscriptions SET period_start = '2026-04-10', period_end = '2026-05-10', version = version + 1, update_time = {now} WHERE id = (SELECT sub_id FROM bench_ids WHERE n = {n});
UPDATE offerings SET has_subscriptions = {true} WHERE id = (SELECT offering_id FROM subscriptions WHERE id = (SELECT sub_id FROM bench_ids WHERE n = {n}));
INSERT INTO jobs (subscription_id, due_time, lease_owner, lease_expires, attempts, last_error) SELECT sub_id, {now}, NULL, NULL, 0, '' FROM bench_ids WHERE n = {n}
  ON CONFLICT (subscription_id) DO UPDATE SET due_time = excluded.due_time, lease_owner = NULL, lease_expires = NULL, attempts = 0, last_error = '';
SELECT * FROM subscriptions WHERE business_id = (SELECT business_id FROM bench_ids WHERE n = {n}) ORDER BY id;
SELECT * FROM entitlements WHERE business_id = (SELECT business_id FROM bench_ids WHERE n = {n});
UPDATE counters SET value = value + 1 WHERE name = 'invoice' RETURNING value;
INSERT INTO invoices (id, number, subscription_id, business_id, currency, lines, subtotal_minor, discount_minor, total_minor, credit_applied_minor, amount_due_minor, credit_balance_after_minor, coupon_applied, status, attempt_count, next_attempt_time, create_time, paid_time)
  SELECT 'inv_r' || {n}, 'R-' || {n}, sub_id, business_id, 'USD', '[{\"kind\":\"PLAN\",\"amount_minor\":1000}]', 1000, 0, 1000, 0, 1000, 0, {false}, 'OPEN', 0, {now}, {now}, NULL FROM bench_ids WHERE n = {n};
INSERT INTO audit_entries (id, subscription_id, business_id, action, actor, request_id, detail, create_time) SELECT 'aud_r' || {n} || 'a', sub_id, business_id, 'job:renew', 'system', '', 'subscription.renewed, invoice.created', {now} FROM bench_ids WHERE n = {n};
INSERT INTO outbox_events (id, event_type, business_id, subscription_id, occur_time, payload) VALUES
  ('evt_r' || {n} || 'a', 'subscription.renewed', (SELECT business_id FROM bench_ids WHERE n = {n}), (SELECT sub_id FROM bench_ids WHERE n = {n}), {now}, '{}'),
  ('evt_r' || {n} || 'b', 'invoice.created', (SELECT business_id FROM bench_ids WHERE n = {n}), (SELECT sub_id FROM bench_ids WHERE n = {n}), {now}, '{}');
{publish}
COMMIT;
SELECT * FROM payment_methods WHERE business_id = (SELECT business_id FROM bench_ids WHERE n = {n});
BEGIN;
SELECT * FROM subscriptions WHERE id = (SELECT sub_id FROM bench_ids WHERE n = {n}) {lock};
SELECT * FROM invoices WHERE id = 'inv_r' || {n};
UPDATE subscriptions SET version = version, update_time = {now} WHERE id = (SELECT sub_id FROM bench_ids WHERE n = {n});
UPDATE invoices SET status = 'PAID', attempt_count = 1, next_attempt_time = NULL, paid_time = {now} WHERE id = 'inv_r' || {n};
UPDATE offerings SET has_subscriptions = {true} WHERE id = (SELECT offering_id FROM subscriptions WHERE id = (SELECT sub_id FROM bench_ids WHERE n = {n}));
INSERT INTO jobs (subscription_id, due_time, lease_owner, lease_expires, attempts, last_error) SELECT sub_id, '2026-05-10 00:00:00+00:00', NULL, NULL, 0, '' FROM bench_ids WHERE n = {n}
  ON CONFLICT (subscription_id) DO UPDATE SET due_time = excluded.due_time, lease_owner = NULL, lease_expires = NULL, attempts = 0, last_error = '';
INSERT INTO audit_entries (id, subscription_id, business_id, action, actor, request_id, detail, create_time) SELECT 'aud_r' || {n} || 'b', sub_id, business_id, 'job:charge', 'system', '', 'invoice.paid', {now} FROM bench_ids WHERE n = {n};
INSERT INTO outbox_events (id, event_type, business_id, subscription_id, occur_time, payload) SELECT 'evt_r' || {n} || 'c', 'invoice.paid', business_id, sub_id, {now}, '{}' FROM bench_ids WHERE n = {n};
SELECT * FROM subscriptions WHERE business_id = (SELECT business_id FROM bench_ids WHERE n = {n}) ORDER BY id;
SELECT * FROM entitlements WHERE business_id = (SELECT business_id FROM bench_ids WHERE n = {n});
{publish}
COMMIT;
";

/// Replays one renewal's statements per subscription; returns renewals per
/// second and the client count that reached it (pgbench tries 1, 2, 4 and 8;
/// sqlite3 is one writer).
pub async fn run(backend: Backend, url: &str, store: &Store, ids: &[SubscriptionId]) -> anyhow::Result<(f64, usize)> {
    let scratch = std::env::temp_dir().join(format!("billing-replay-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)?;
    let count = ids.len();
    // Row numbers → ids, so the replay addresses real rows by number.
    let mut table = String::from(
        "CREATE TABLE bench_ids (n INTEGER PRIMARY KEY, sub_id TEXT NOT NULL, business_id TEXT NOT NULL);\n",
    );
    for (index, id) in ids.iter().enumerate() {
        if index % 1000 == 0 {
            table.push_str(if index == 0 {
                "INSERT INTO bench_ids VALUES "
            } else {
                ";\nINSERT INTO bench_ids VALUES "
            });
        } else {
            table.push(',');
        }
        write!(table, "({}, '{}', 'bench-{}')", index + 1, id, index)?;
    }
    table.push_str(";\n");
    let setup = scratch.join("setup.sql");
    std::fs::write(&setup, &table)?;

    let measured = match backend {
        Backend::Sqlite => {
            let path = url
                .strip_prefix("sqlite://")
                .and_then(|rest| rest.split('?').next())
                .context("a sqlite:// url")?;
            store.clone().close().await.ok();
            run_tool("sqlite3", &[path], Some(&setup))?;
            let mut script = String::with_capacity(count * RENEWAL.len());
            for n in 1..=count {
                script.push_str(&render(
                    &n.to_string(),
                    "",
                    "'2026-04-10 00:00:01+00:00'",
                    "0",
                    "1",
                    &publish_at_commit(),
                ));
            }
            let file = scratch.join("replay.sql");
            std::fs::write(&file, script)?;
            let started = Instant::now();
            run_tool("sqlite3", &[path], Some(&file))?;
            (count as f64 / started.elapsed().as_secs_f64(), 1)
        }
        Backend::Postgres => {
            run_tool(
                "psql",
                &["-q", "-v", "ON_ERROR_STOP=1", url, "-f", &setup.to_string_lossy()],
                None,
            )?;
            // pgbench runs the script once per transaction number, with :n
            // counting up through every subscription once.
            let script = render_pgbench();
            let file = scratch.join("replay.pgbench");
            std::fs::write(&file, script)?;
            run_tool("psql", &["-q", url, "-c", "CREATE SEQUENCE bench_n"], None)?;
            // pgbench at 1, 2, 4 and 8 clients, each on its own quarter of
            // the subscriptions; the best of them is the baseline.
            let quarter = count / 4;
            let mut best = (0.0_f64, 1_usize);
            for clients in [1_usize, 2, 4, 8] {
                let per_client = (quarter / clients).max(1);
                let started = Instant::now();
                run_tool(
                    "pgbench",
                    &[
                        "-n",
                        "-c",
                        &clients.to_string(),
                        "-j",
                        &clients.min(2).to_string(),
                        "-t",
                        &per_client.to_string(),
                        "-f",
                        &file.to_string_lossy(),
                        url,
                    ],
                    None,
                )?;
                let rate = (per_client * clients) as f64 / started.elapsed().as_secs_f64();
                if rate > best.0 {
                    best = (rate, clients);
                }
            }
            best
        }
    };
    std::fs::remove_dir_all(&scratch).ok();
    Ok(measured)
}

fn render(n: &str, lock: &str, now: &str, false_literal: &str, true_literal: &str, publish: &str) -> String {
    RENEWAL
        .replace("{publish}", publish)
        .replace("{n}", n)
        .replace("{lock}", lock)
        .replace("{now}", now)
        .replace("{false}", false_literal)
        .replace("{true}", true_literal)
}

/// The renewal as a pgbench script: `:n` from a sequence, so each
/// transaction renews the next subscription.
fn render_pgbench() -> String {
    // As the service: only with the publishers' turn.
    let publish = format!(
        "SELECT pg_try_advisory_xact_lock({PUBLISHER_LOCK}) AS mine \\gset\n\\if :mine\n{}\n\\endif",
        publish_at_commit()
    );
    let body = render(":n", "FOR UPDATE", "now()", "false", "true", &publish);
    format!("SELECT nextval('bench_n') AS n \\gset\n{}", body.replace("\n  ", " "))
}

/// What a commit that wrote events runs to number them.
fn publish_at_commit() -> String {
    format!("{};", NUMBER_EVENTS.replace("$1", "1000"))
}

fn run_tool(program: &str, args: &[&str], stdin: Option<&std::path::Path>) -> anyhow::Result<()> {
    let mut command = std::process::Command::new(program);
    command.args(args);
    if let Some(path) = stdin {
        command.stdin(std::fs::File::open(path)?);
    }
    let output = command.output().with_context(|| format!("run {program}"))?;
    ensure!(
        output.status.success(),
        "{program} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}
