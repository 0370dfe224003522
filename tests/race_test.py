#!/usr/bin/env python3
"""Shells racing on one sqlite ledger never lose money, never overdraw, and
never apply an event to the kept balance sheet twice.  usage: race_test.py BIN

test_racing_writers: accounts are seeded by one run, then six shells at once
(`BIN --json --store sqlite:FILE`, some fed a few lines at a time, some given
their whole script at once) pipe a few hundred random withdrawals, transfers,
deposits, refreshes and `balances` between the same few accounts.  Then, from
the JSON lines of every shell and the file (Python's sqlite3):

  * every shell exits 0, or 1 when it printed a refusal: never 3, never a
    signal; nothing on stderr; one result per command, the command's own;
    refusals are only insufficient_funds or conflict;
  * positions are 1..max without gaps, versions 1..n per stream; each
    acknowledged write's events are at the positions it printed, and every
    event belongs to exactly one acknowledged write (so the count is
    deposits + withdrawals + 2 x transfers);
  * replayed in position order no balance ever goes below zero, and money is
    conserved (seeded + deposited - withdrawn);
  * the successful refreshes' (position - applied, position] tile 0..checkpoint:
    each event applied once; every `balances` printed is the replay to the
    position it shows;
  * a last refresh: `balances` and the balances table equal the replay and
    the checkpoint is the last position;
  * the shells did race: their events interleave, and some withdrawals were
    refused (counts of insufficient_funds and conflict are printed).

test_stale_writer: a shell that cached an account before another shell
wrote to it re-reads and re-decides (a withdrawal that no longer fits is
refused, never an overdraft), and its balance sheet takes up the other
shell's refresh rather than applying those events again.

test_concurrent_refreshes: two shells refresh after almost every deposit
while a third deposits and withdraws and two more only ask for `balances`;
the same checks of the sheet, eight rounds on one file.

Prints 'race: P passed, F failed'; exits 1 on failure.
"""
import json
import os
import random
import re
import select
import shlex
import sqlite3
import subprocess
import sys
import tempfile
import time

from ledger_checks import (Checks, check, check_applied_once, check_balances_shown,
                           check_claims, check_conserved, check_events,
                           check_final_refresh, check_raced, check_refresh_round,
                           check_results_match, check_statuses, env, refresh_scripts,
                           streams_table)
import ledger_checks

WRAPPER = shlex.split(os.environ.get('SIMPLECQRS_WRAPPER', ''))
SLOW = 6 if WRAPPER else 1
TIMEOUT = 60.0 * SLOW
RACERS = 6
COMMANDS = 300
ACCOUNTS = ['A0', 'A1', 'A2', 'A3', 'A4']
REFUSAL_RE = re.compile(r'^(\S+) has (\d+), cannot (?:withdraw|transfer) (\d+)$')


def run_all(path, scripts, slow):
    """Runs one shell per script at once; slow[i] feeds script i a few lines
    at a time.  Returns [(status, [result objects], stderr)]."""
    return ledger_checks.run_all(
        lambda: subprocess.Popen(WRAPPER + [BIN, '--json', '--store', 'sqlite:' + path],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, env=env()),
        scripts, slow, TIMEOUT)


def run_one(path, text):
    """One shell over text; (status, [result objects], stderr)."""
    p = subprocess.run(WRAPPER + [BIN, '--json', '--store', 'sqlite:' + path],
                       input=text.encode(), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=env(), timeout=TIMEOUT)
    return p.returncode, [json.loads(l) for l in p.stdout.decode().splitlines()], p.stderr


def read_db(path):
    db = sqlite3.connect(path)
    try:
        check(db.execute('PRAGMA integrity_check').fetchall() == [('ok',)],
              'integrity_check is not ok')
        events = db.execute('SELECT position, stream, version, type, amount '
                            'FROM events ORDER BY position').fetchall()
        streams = streams_table(db)
        cps = db.execute('SELECT position FROM checkpoint WHERE id = 1').fetchall()
        sheet = dict(db.execute('SELECT account, balance FROM balances'))
        return events, streams, cps[0][0] if len(cps) == 1 else None, sheet
    finally:
        db.close()


def final_refresh(path):
    """A last refresh on its own: its balances, the table, the checkpoint."""
    run = run_one(path, 'refresh\nbalances\nstatus\n')
    events, streams, checkpoint, sheet = read_db(path)
    return check_final_refresh(run, events, sheet, checkpoint, 'sqlite')


# ---- the tests ----

def test_racing_writers(tmp, checks):
    path = os.path.join(tmp, 'race.db')
    rng = random.Random(int(os.environ.get('SIMPLECQRS_RACE_SEED', '1')))
    seed = [f'deposit {a} {20000 + 1000 * k}' for k, a in enumerate(ACCOUNTS)] + ['refresh']
    seeded = sum(20000 + 1000 * k for k in range(len(ACCOUNTS)))
    scripts = [seed]
    seed_run = run_one(path, '\n'.join(seed) + '\n')
    checks('racing: the seeding run', lambda: check(
        seed_run[0] == 0 and all(o['ok'] for o in seed_run[1]) and
        len(seed_run[1]) == len(seed), f'seeding: {seed_run}'))

    for _ in range(RACERS):
        lines = []
        for _ in range(COMMANDS):
            r = rng.random()
            a, b = rng.sample(ACCOUNTS, 2)
            if r < 0.35:
                lines.append(f'withdraw {a} {rng.randint(1, 3000)}')
            elif r < 0.75:
                lines.append(f'transfer {a} {b} {rng.randint(1, 4000)}')
            elif r < 0.92:
                lines.append(f'deposit {a} {rng.randint(1, 4000)}')
            elif r < 0.97:
                lines.append('refresh')
            else:
                lines.append('balances')
        scripts.append(lines)
    results = [seed_run] + run_all(path, scripts[1:],
                                   [i % 3 != 2 for i in range(RACERS)])
    racers = results[1:]

    checks('racing: exit statuses and stderr', check_statuses, scripts[1:], racers)
    counts = checks('racing: each result is its command\'s', check_results_match,
                    scripts, results, {'withdraw': ('insufficient_funds', 'conflict'),
                                       'transfer': ('insufficient_funds', 'conflict'),
                                       'deposit': ('conflict',),
                                       'refresh': ('conflict',)}) or {}
    events, streams, checkpoint, sheet = read_db(path)
    checks('racing: positions and versions without gaps, no overdraft',
           check_events, events, streams)
    checks('racing: every event is one acknowledged write\'s',
                   check_claims, results, events)

    checks('racing: money is conserved', check_conserved, events, racers, seeded)
    spans = checks('racing: refreshes applied each event once',
                   check_applied_once, results, checkpoint, events)
    checks('racing: each balances shown is the replay to its position',
           check_balances_shown, results, events)

    def refusals_true():
        """A refusal's message names a balance the account really had, short
        of the amount (only when the message reads as it does today)."""
        history, run = {}, {}
        for p, s, v, t, a in events:
            run[s] = run.get(s, 0) + (a if t == 'AccountCredited' else -a)
            history.setdefault(s, set()).add(run[s])
        seen = 0
        for i, (_, objs, _) in enumerate(racers):
            for o in objs:
                m = not o['ok'] and o['error'] == 'insufficient_funds' and \
                    REFUSAL_RE.match(o['message'])
                if m:
                    acct, bal, amount = m.group(1), int(m.group(2)), int(m.group(3))
                    check(bal < amount and bal in history.get(acct, ()),
                          f'shell {i}: {o["message"]!r}, but {acct} never had {bal}')
                    seen += 1
        return seen
    checks('racing: refusals cite real balances', refusals_true)

    switches = checks('racing: the shells did race', check_raced, racers, counts, RACERS)
    checks('racing: a last refresh equals the replay', final_refresh, path)
    print(f'racing: {RACERS} shells x {COMMANDS} commands, {len(events)} events, '
          f'{counts.get("insufficient_funds", 0)} insufficient_funds, '
          f'{counts.get("conflict", 0)} conflict, {switches} switches between shells, '
          f'{"?" if spans is None else spans} refreshes that applied events')


def test_concurrent_refreshes(tmp, checks, rounds=8):
    path = os.path.join(tmp, 'refresh.db')
    conflicts = applied_spans = shown = start = 0
    for r in range(rounds):
        rng = random.Random(100 + r)
        scripts = refresh_scripts(rng, 400, 500)
        scripts += [['balances'] * 1000] * 2  # readers: take up others' sheets
        results = run_all(path, scripts, [True, True, True, True, False])
        tag = f'refreshes round {r + 1}'
        events, streams, checkpoint, sheet = read_db(path)
        c, a, n = check_refresh_round(checks, tag, scripts, results, events, streams,
                                      checkpoint, start)
        conflicts, applied_spans, shown = conflicts + c, applied_spans + a, shown + n
        checks(f'{tag}: a last refresh equals the replay', final_refresh, path)
        start = len(events)
    print(f'refreshes: {rounds} rounds, {applied_spans} refreshes that applied '
          f'events, {shown} balances checked, {conflicts} conflicts')


def test_stale_writer(tmp, checks):
    """A shell whose cache is stale (another shell wrote since) re-reads
    before it decides: a withdrawal that no longer fits is refused, versions
    and positions follow the other shell's; its sheet takes up the other's
    refresh instead of applying those events again."""
    path = os.path.join(tmp, 'stale.db')
    x = subprocess.Popen(WRAPPER + [BIN, '--json', '--store', 'sqlite:' + path],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env())

    def ask_x(line):
        x.stdin.write(line.encode() + b'\n')
        x.stdin.flush()
        got = b''
        deadline = time.monotonic() + TIMEOUT
        while not got.endswith(b'\n'):
            ready, _, _ = select.select([x.stdout], [], [],
                                        max(deadline - time.monotonic(), 0))
            c = os.read(x.stdout.fileno(), 1) if ready else b''
            check(c, f'x {line!r}: no answer (got {got!r})')
            got += c
        return json.loads(got)

    def ask_y(text):
        status, objs, err = run_one(path, text)
        check(err == b'', f'y: stderr {err[:200]!r}')
        return objs

    def expect(who, got, **want):
        check(all(got.get(k) == v for k, v in want.items()),
              f'{who}: got {json.dumps(got)}, want {want}')

    def steps():
        expect('x', ask_x('deposit S 1000'), ok=True, version=1, position=1)
        expect('x', ask_x('withdraw S 100'), ok=True, version=2, position=2)
        expect('x', ask_x('refresh'), ok=True, applied=2, position=2)
        [y] = ask_y('withdraw S 850\n')                     # S: 50
        expect('y', y, ok=True, version=3, position=3)
        expect('x', ask_x('withdraw S 200'), ok=False, error='insufficient_funds')
        expect('x', ask_x('transfer S T 60'), ok=False, error='insufficient_funds')
        [y] = ask_y('deposit S 5\n')                        # S: 55
        expect('y', y, ok=True, version=4, position=4)
        expect('x', ask_x('deposit S 1'), ok=True, version=5, position=5)   # 56
        [y] = ask_y('transfer S T 6\n')                     # S: 50
        expect('y', y, ok=True, position=7)
        # y refreshes: x's sheet (at 2) must take that up, not apply 3..7 again
        [y] = ask_y('refresh\n')
        expect('y', y, ok=True, applied=5, position=7)
        expect('x', ask_x('balances'), ok=True, position=7, behind=0,
               balances=[{'account': 'S', 'balance': 50},
                         {'account': 'T', 'balance': 6}])
        expect('x', ask_x('withdraw S 51'), ok=False, error='insufficient_funds')
        expect('x', ask_x('withdraw S 50'), ok=True, version=7, position=8)
        expect('x', ask_x('refresh'), ok=True, applied=1, position=8)
        [y] = ask_y('balances\n')
        expect('y', y, ok=True, position=8, behind=0,
               balances=[{'account': 'S', 'balance': 0},
                         {'account': 'T', 'balance': 6}])
        x.stdin.close()
        check(x.wait(TIMEOUT) == 1, f'x: exit status {x.returncode}')
        err = x.stderr.read()
        check(err == b'', f'x: stderr {err[:200]!r}')
        final_refresh(path)

    try:
        checks('stale: a stale shell re-reads, re-decides, takes up the sheet', steps)
    finally:
        if x.poll() is None:
            x.kill()
            x.wait()


def main():
    global BIN
    BIN = os.path.abspath(sys.argv[1])
    checks = Checks()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix='simplecqrs-race-') as tmp:
        for fn in (test_stale_writer, test_racing_writers, test_concurrent_refreshes):
            try:
                fn(tmp, checks)
            except Exception as e:
                checks.failed += 1
                print(f'FAIL {fn.__name__}: {type(e).__name__}: {e}')
    print(f'race: {time.monotonic() - started:.0f}s; '
          f'{checks.passed} passed, {checks.failed} failed')
    return 1 if checks.failed else 0


if __name__ == '__main__':
    sys.exit(main())
