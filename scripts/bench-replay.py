#!/usr/bin/env python3
"""Turns one captured RPC into a script that replays its exact SQL.

scripts/bench captures a CreateSubscription and calls, on Postgres (the
server's log at `log_statement = all`), for a pgbench script:

    bench-replay.py LOG OFFSET REQUEST_ID BUSINESS_ID > replay.pgbench

and on SQLite (billingd's JSON log at `RUST_LOG=sea_orm=debug`, whose
statements carry their values), for a sqlite3 script of COUNT calls on
businesses FIRST, FIRST+1, …:

    bench-replay.py --sqlite LOG REQUEST_ID BUSINESS_ID FIRST COUNT > replay.sql

It takes every statement of the connection that ran the request (found by
REQUEST_ID), from the BEGIN before it to the COMMIT that stored its answer,
with the values written in as literals. Each call of the replay must touch
rows of its own, so:

- BUSINESS_ID, and ids the capture created (`sub_…`, `inv_…`, `evt_…`,
  `aud_…`), REQUEST_ID and invoice numbers become expressions of `:n` (the
  replay's business is `load-:n`, provisioned beforehand);
- ids of subscriptions the business held before the call are looked up for
  business `load-:n` by the same offering;
- lock keys that name the business name `load-:n`.

Background work that shared the connection (webhook deliveries, the
background event publisher, job claims, the gauges' sample) is left out: it
is not the request's. Publishing done by the request's own commit is kept.
"""

import json
import re
import sys

LINE = re.compile(r"^\S+ \S+ \S+ \[(\d+)\] \S+ (LOG|DETAIL):  (.*)$")
STATEMENT = re.compile(r"^(?:statement|execute [^:]+): (.*)$", re.S)
PARAM = re.compile(r"\$(\d+) = (NULL|'(?:[^']|'')*')")
ID = re.compile(r"'((?:sub|inv|evt|aud)_[0-9a-f]{32})'")
# Marks of background work: a transaction with one of them is left out whole.
BACKGROUND = (
    "webhook_",
    "IS NOT NULL AS mine",  # the background publisher's turn
    "AS waiting FROM outbox_events",  # its look for work
    "billing entitlements listener",
    "LISTEN",
    "SET lease_owner",  # a worker's claim
    "CAST(COALESCE(SUM(CASE WHEN due_time",  # the gauges' sample
)


def entries(text):
    """(pid, kind, body) per log entry, continuation lines joined."""
    current = None
    for raw in text.split("\n"):
        match = LINE.match(raw)
        if match:
            if current:
                yield current
            current = [match.group(1), match.group(2), match.group(3)]
        elif current:
            current[2] += "\n" + raw
    if current:
        yield current


def statements(text):
    """(pid, sql with parameters written in) in log order."""
    pending = None
    for pid, kind, body in entries(text):
        if kind == "DETAIL" and pending and body.startswith("parameters: "):
            values = dict(PARAM.findall(body[len("parameters: "):]))
            sql = re.sub(r"\$(\d+)\b", lambda m: values.get(m.group(1), m.group(0)), pending[1])
            yield pending[0], sql
            pending = None
            continue
        if pending:
            yield pending
            pending = None
        match = STATEMENT.match(body) if kind == "LOG" else None
        if match:
            pending = (pid, match.group(1).strip())
    if pending:
        yield pending


def without_background(sqls):
    """The statements, less background transactions and statements."""
    kept, group = [], None
    for sql in sqls:
        if sql == "BEGIN":
            group = [sql]
        elif group is not None:
            group.append(sql)
            if sql in ("COMMIT", "ROLLBACK"):
                if not any(mark in one for one in group for mark in BACKGROUND):
                    kept.extend(group)
                group = None
        elif not any(mark in sql for mark in BACKGROUND):
            kept.append(sql)
    return kept


def sqlite_statements(text):
    """SQL in order from billingd's JSON log at RUST_LOG=sea_orm=debug:
    sea-orm's statements (values written in) and the store's BEGIN/COMMIT."""
    for line in text.split("\n"):
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        target = entry.get("target", "")
        if target.startswith("sea_orm") or target == "billing_storage::transaction":
            yield entry.get("message", "").strip()


def request_sql(mine, request_id):
    """The request's statements among one connection's: from the BEGIN
    before its first mention to the commit that stores its answer, less
    background work."""
    first = next(i for i, sql in enumerate(mine) if f"'{request_id}'" in sql)
    begin = max(i for i in range(first + 1) if mine[i] == "BEGIN")
    answered = max(i for i, sql in enumerate(mine) if f"'{request_id}'" in sql)
    last_commit = next(i for i in range(answered, len(mine)) if mine[i] == "COMMIT")
    return without_background(mine[begin : last_commit + 1])


def rewriter(replay, request_id, business):
    """Rewrites a statement for business `load-:n`: the ids the capture
    created, its request id, invoice numbers and lock keys become
    expressions of `:n`."""
    # A row's own id is the first id its INSERT names (also inside a WITH;
    # jobs and entitlements rows are keyed by ids of other rows). History
    # entries and events are written several rows to an insert, and nothing
    # else names them: every `aud_` and `evt_` id an insert names is its own.
    created = set()
    for sql in replay:
        insert = re.search(r'INSERT INTO "?(\w+)"?', sql)
        if insert and insert.group(1) not in ("jobs", "entitlements"):
            own = ID.search(sql, insert.end())
            if own:
                created.add(own.group(1))
            created.update(
                found for found in ID.findall(sql, insert.end()) if found.startswith(("aud_", "evt_"))
            )
    tenant = "('load-' || :n)"

    def rewrite(sql):
        def an_id(match):
            value = match.group(1)
            if value in created:
                return f"('{value[:4]}r' || :n || '_{value[-6:]}')"
            if value.startswith("sub_"):
                return (
                    f"(SELECT id FROM subscriptions WHERE business_id = {tenant} AND offering_code = "
                    f"(SELECT offering_code FROM subscriptions WHERE id = '{value}'))"
                )
            return match.group(0)

        sql = ID.sub(an_id, sql)
        sql = sql.replace(f"'{request_id}'", "('replay-' || :n)")
        sql = sql.replace(f"'{business}'", tenant)
        sql = re.sub(r"'([a-z]+):" + re.escape(business) + "'", lambda m: f"('{m.group(1)}:load-' || :n)", sql)
        sql = re.sub(r"'INV-\d+'", "('R-' || :n)", sql)
        return " ".join(sql.split("\n"))

    return rewrite


def pgbench_script(log, offset, request_id, business):
    with open(log, "rb") as handle:
        handle.seek(offset)
        text = handle.read().decode("utf-8", "replace")
    captured = list(statements(text))
    pid = next(p for p, sql in captured if f"'{request_id}'" in sql)
    replay = request_sql([sql for p, sql in captured if p == pid], request_id)
    print("SELECT nextval('replay_n') AS n \\gset")
    turn = False
    for sql in map(rewriter(replay, request_id, business), replay):
        if "pg_try_advisory_xact_lock" in sql:
            # A commit publishes its events only when it got the turn.
            print(sql + " \\gset")
            turn = True
        elif turn and "published_sequence" in sql:
            print("\\if :mine")
            print(sql + ";")
            print("\\endif")
            turn = False
        else:
            print(sql + ";")


def sqlite_script(log, request_id, business, first, count):
    with open(log, encoding="utf-8", errors="replace") as handle:
        replay = request_sql(list(sqlite_statements(handle.read())), request_id)
    replay = ["BEGIN IMMEDIATE" if sql == "BEGIN" else sql for sql in replay]
    rewritten = list(map(rewriter(replay, request_id, business), replay))
    # As billingd opens the file.
    print("PRAGMA synchronous = NORMAL;")
    print("PRAGMA foreign_keys = ON;")
    print("PRAGMA busy_timeout = 5000;")
    for n in range(first, first + count):
        for sql in rewritten:
            print(re.sub(r":n\b", str(n), sql) + ";")


def main():
    if sys.argv[1] == "--sqlite":
        log, request_id, business, first, count = sys.argv[2:7]
        sqlite_script(log, request_id, business, int(first), int(count))
    else:
        log, offset, request_id, business = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
        pgbench_script(log, offset, request_id, business)


if __name__ == "__main__":
    main()
