#!/usr/bin/env python3
"""Turns one captured RPC into a pgbench script that replays its exact SQL.

scripts/bench captures a CreateSubscription with Postgres's
`log_statement = all` and calls:

    bench-replay.py LOG OFFSET REQUEST_ID BUSINESS_ID > replay.pgbench

From byte OFFSET of the server log, it takes every statement of the
connection that ran the request (found by REQUEST_ID), from the BEGIN before
it to its last COMMIT, with the logged parameters written in as literals.
Each transaction of the replay must touch rows of its own, so:

- BUSINESS_ID, and ids the capture created (`sub_…`, `inv_…`, `evt_…`,
  `aud_…`), REQUEST_ID and invoice numbers become expressions of pgbench's
  `:n` (the replay's business is `load-:n`, provisioned beforehand);
- ids of subscriptions the business held before the call are looked up for
  business `load-:n` by the same offering;
- lock keys that name the business name `load-:n`.

Background work that shared the connection (webhook deliveries, event
publishing) is left out: it is not the request's.
"""

import re
import sys

LINE = re.compile(r"^\S+ \S+ \S+ \[(\d+)\] \S+ (LOG|DETAIL):  (.*)$")
STATEMENT = re.compile(r"^(?:statement|execute [^:]+): (.*)$", re.S)
PARAM = re.compile(r"\$(\d+) = (NULL|'(?:[^']|'')*')")
ID = re.compile(r"'((?:sub|inv|evt|aud)_[0-9a-f]{32})'")
BACKGROUND = ("webhook_", "pg_try_advisory", "published_sequence", "billing entitlements listener", "LISTEN")


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


def main():
    log, offset, request_id, business = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    with open(log, "rb") as handle:
        handle.seek(offset)
        text = handle.read().decode("utf-8", "replace")
    captured = list(statements(text))
    start = next(i for i, (_, sql) in enumerate(captured) if f"'{request_id}'" in sql)
    pid = captured[start][0]
    mine = [sql for p, sql in captured if p == pid]
    first = mine.index(captured[start][1])
    begin = max(i for i in range(first + 1) if mine[i] == "BEGIN")
    last_commit = max(i for i, sql in enumerate(mine) if sql == "COMMIT")
    replay = [sql for sql in mine[begin : last_commit + 1] if not any(word in sql for word in BACKGROUND)]

    # A row's own id is the first id its INSERT names (also inside a WITH;
    # jobs and entitlements rows are keyed by ids of other rows).
    created = set()
    for sql in replay:
        insert = re.search(r'INSERT INTO "?(\w+)"?', sql)
        if insert and insert.group(1) not in ("jobs", "entitlements"):
            own = ID.search(sql, insert.end())
            if own:
                created.add(own.group(1))
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

    print("SELECT nextval('replay_n') AS n \\gset")
    for sql in replay:
        print(rewrite(sql) + ";")


if __name__ == "__main__":
    main()
