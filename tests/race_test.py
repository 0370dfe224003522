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
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

WRAPPER = shlex.split(os.environ.get('SIMPLECQRS_WRAPPER', ''))
SLOW = 6 if WRAPPER else 1
TIMEOUT = 60.0 * SLOW
RACERS = 6
COMMANDS = 300
ACCOUNTS = ['A0', 'A1', 'A2', 'A3', 'A4']
REFUSAL_RE = re.compile(r'^(\S+) has (\d+), cannot (?:withdraw|transfer) (\d+)$')


class Failed(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failed(what)


def env():
    return {k: v for k, v in os.environ.items() if k != 'SIMPLECQRS_STORE'}


def bytewise(accounts):
    return sorted(accounts, key=lambda a: a.encode())


def run_all(path, scripts, slow):
    """Runs one shell per script at once; slow[i] feeds script i a few lines
    at a time.  Returns [(status, [result objects], stderr)]."""
    procs, threads, outs = [], [], [None] * len(scripts)
    go = threading.Event()
    for i, lines in enumerate(scripts):
        p = subprocess.Popen(WRAPPER + [BIN, '--json', '--store', 'sqlite:' + path],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=env())
        procs.append(p)
        data = [l.encode() + b'\n' for l in lines]
        rng = random.Random(i)

        def feed(p=p, data=data, rng=rng, slow=slow[i]):
            go.wait()
            try:
                if not slow:
                    p.stdin.write(b''.join(data))
                else:
                    j = 0
                    while j < len(data):
                        k = rng.choice((1, 1, 1, 2, 3, 8))
                        p.stdin.write(b''.join(data[j:j + k]))
                        p.stdin.flush()
                        j += k
                        time.sleep(rng.random() * 0.002)
                p.stdin.close()
            except (BrokenPipeError, OSError):
                pass

        def read(i=i, p=p):
            outs[i] = (p.stdout.read(), p.stderr.read())

        threads += [threading.Thread(target=feed, daemon=True),
                    threading.Thread(target=read, daemon=True)]
    for t in threads:
        t.start()
    go.set()
    results = []
    deadline = time.monotonic() + TIMEOUT
    for i, p in enumerate(procs):
        try:
            p.wait(max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise Failed(f'shell {i} still running after {TIMEOUT:g}s')
    for t in threads:
        t.join(TIMEOUT)
    for i, p in enumerate(procs):
        out, err = outs[i]
        try:
            objs = [json.loads(l) for l in out.decode().splitlines()]
        except ValueError as e:
            raise Failed(f'shell {i}: output is not JSON lines ({e}): {out[:300]!r}')
        results.append((p.returncode, objs, err))
    return results


def run_one(path, text):
    """One shell over text; (status, [result objects], stderr)."""
    p = subprocess.run(WRAPPER + [BIN, '--json', '--store', 'sqlite:' + path],
                       input=text.encode(), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=env(), timeout=TIMEOUT)
    return p.returncode, [json.loads(l) for l in p.stdout.decode().splitlines()], p.stderr


def streams_table(db):
    """stream -> version from the streams table (the account's name is in
    column `stream`, or `name` where streams are numbered)."""
    cols = [r[1] for r in db.execute('PRAGMA table_info(streams)')]
    name = 'name' if 'name' in cols else 'stream'
    return dict(db.execute(f'SELECT {name}, version FROM streams'))


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


def replay(events, upto=None):
    bal = {}
    for p, s, _, t, a in events:
        if upto is not None and p > upto:
            break
        bal[s] = bal.get(s, 0) + (a if t == 'AccountCredited' else -a)
    return bal


class Checks:
    """Named checks; a failure is reported and counted, the rest go on."""

    def __init__(self):
        self.passed = self.failed = 0

    def __call__(self, name, fn, *args):
        try:
            value = fn(*args)
            self.passed += 1
            print(f'ok {name}')
            return value
        except Failed as e:
            self.failed += 1
            print(f'FAIL {name}: {e}')
        except Exception as e:      # a crash of the checker is a failure too
            self.failed += 1
            print(f'FAIL {name}: {type(e).__name__}: {e}')


# ---- checks shared by both tests ----

def check_statuses(scripts, results):
    for i, (status, objs, err) in enumerate(results):
        check(err == b'', f'shell {i}: stderr {err[:300]!r}')
        check(status in (0, 1), f'shell {i}: exit status {status}'
              + (f' ({signal.Signals(-status).name})' if status < 0 else ''))
        refused = any(not o.get('ok') for o in objs)
        check(status == (1 if refused else 0),
              f'shell {i}: exit status {status}, refusals printed: {refused}')
        check(len(objs) == len(scripts[i]),
              f'shell {i}: {len(objs)} results for {len(scripts[i])} commands')


def check_results_match(scripts, results, refusals):
    """Each result is its command's; refusals only those allowed."""
    counts = {}
    for i, (_, objs, _) in enumerate(results):
        for n, (line, o) in enumerate(zip(scripts[i], objs)):
            words = line.split()
            check(o.get('cmd') == words[0], f'shell {i} line {n + 1} {line!r}: {o}')
            if not o['ok']:
                check(o.get('line') == n + 1 and isinstance(o.get('message'), str),
                      f'shell {i} line {n + 1}: {o}')
                check(o.get('error') in refusals.get(words[0], ()),
                      f'shell {i} line {n + 1} {line!r}: {o}')
                counts[o['error']] = counts.get(o['error'], 0) + 1
                continue
            if words[0] in ('deposit', 'withdraw'):
                check([o.get('account'), o.get('amount')] == [words[1], int(words[2])],
                      f'shell {i} line {n + 1} {line!r}: {o}')
            elif words[0] == 'transfer':
                check([o.get('from'), o.get('to'), o.get('amount')] ==
                      [words[1], words[2], int(words[3])],
                      f'shell {i} line {n + 1} {line!r}: {o}')
    return counts


def check_events(events, streams):
    versions, bal = {}, {}
    for i, (p, s, v, t, a) in enumerate(events):
        check(p == i + 1, f'positions have a gap: {p} at row {i + 1}')
        check(v == versions.get(s, 0) + 1,
              f'position {p}: {s} version {v} after {versions.get(s, 0)}')
        versions[s] = v
        check(t in ('AccountCredited', 'AccountDebited') and a > 0,
              f'position {p}: {t} {a}')
        bal[s] = bal.get(s, 0) + (a if t == 'AccountCredited' else -a)
        check(bal[s] >= 0, f'position {p}: {s} goes to {bal[s]} (an overdraft)')
    check(streams == versions, f'streams table {streams}, versions {versions}')


def check_claims(results, events):
    """Each acknowledged write's events are where it says; every event is
    exactly one acknowledged write's.  Returns the totals of the writes."""
    owner = {}
    tally = {'deposit': 0, 'withdraw': 0, 'transfer': 0, 'deposited': 0,
             'withdrawn': 0}

    def claim(pos, who, stream, version, kind, amount):
        check(1 <= pos <= len(events), f'{who}: position {pos} is not in events')
        got = events[pos - 1]
        check(got[1] == stream and got[3] == kind and got[4] == amount and
              (version is None or got[2] == version),
              f'{who}: position {pos} holds {got}')
        check(pos not in owner, f'{who}: position {pos} is also {owner.get(pos)}\'s')
        owner[pos] = who

    for i, (_, objs, _) in enumerate(results):
        for o in objs:
            if not o['ok'] or o['cmd'] not in tally:
                continue
            who = f'shell {i} {json.dumps(o)}'
            tally[o['cmd']] += 1
            if o['cmd'] == 'deposit':
                claim(o['position'], who, o['account'], o['version'],
                      'AccountCredited', o['amount'])
                tally['deposited'] += o['amount']
            elif o['cmd'] == 'withdraw':
                claim(o['position'], who, o['account'], o['version'],
                      'AccountDebited', o['amount'])
                tally['withdrawn'] += o['amount']
            else:
                claim(o['position'] - 1, who, o['from'], None, 'AccountDebited',
                      o['amount'])
                claim(o['position'], who, o['to'], None, 'AccountCredited',
                      o['amount'])
    want = tally['deposit'] + tally['withdraw'] + 2 * tally['transfer']
    check(len(events) == want,
          f'{len(events)} events; acknowledged: {tally["deposit"]} deposits + '
          f'{tally["withdraw"]} withdrawals + 2 x {tally["transfer"]} transfers = {want}')
    unowned = [p for p in range(1, len(events) + 1) if p not in owner]
    check(not unowned, f'events nobody acknowledged at positions {unowned[:10]}')
    return tally


def check_applied_once(results, checkpoint, events, start=0):
    """The successful refreshes' intervals (position - applied, position]
    tile start..checkpoint (start: where earlier refreshes had brought it):
    no event applied twice, none skipped.  Returns how many applied any."""
    spans = []
    for i, (_, objs, _) in enumerate(results):
        for o in objs:
            if o['ok'] and o['cmd'] == 'refresh':
                check(0 <= o['applied'] <= o['position'] <= len(events),
                      f'shell {i}: {json.dumps(o)}')
                if o['applied']:
                    spans.append((o['position'] - o['applied'], o['position'], i))
    spans.sort()
    at = start
    for lo, hi, i in spans:
        check(lo == at, f'refreshes applied ({lo}, {hi}] (shell {i}) after '
              f'reaching {at}: ' + ('an event applied twice' if lo < at
                                    else 'events skipped'))
        at = hi
    check(at == checkpoint, f'refreshes applied up to {at}, checkpoint is {checkpoint}')
    return len(spans)


def check_balances_shown(results, events):
    """Each `balances` printed is the replay to the position it shows.
    Returns how many were checked."""
    snaps, bal = [{}], {}
    for p, s, _, t, a in events:
        bal = dict(bal)
        bal[s] = bal.get(s, 0) + (a if t == 'AccountCredited' else -a)
        snaps.append(bal)
    shown = bad = 0
    first = None
    for i, (_, objs, _) in enumerate(results):
        for n, o in enumerate(objs):
            if not (o['ok'] and o['cmd'] == 'balances'):
                continue
            shown += 1
            pos = o['position']
            check(0 <= pos and o['behind'] >= 0 and pos + o['behind'] <= len(events),
                  f'shell {i}: balances at {pos}, behind {o["behind"]}')
            got = {r['account']: r['balance'] for r in o['balances']}
            check([r['account'] for r in o['balances']] == bytewise(got),
                  f'shell {i}: balances not sorted: {o["balances"]}')
            if got != snaps[pos]:
                bad += 1
                if first is None:
                    match = [q for q in range(len(snaps)) if snaps[q] == got]
                    first = (f'shell {i} result {n + 1}: balances at position {pos} '
                             f'(behind {o["behind"]}) show {got}; the replay to {pos} '
                             f'is {snaps[pos]}; what it shows is the replay to '
                             f'{match or "no position"}')
    check(not bad, f'{bad} of {shown} balances disagree with the replay; first: {first}')
    return shown


def final_refresh(path):
    """A last refresh on its own: its balances, the table, the checkpoint."""
    status, objs, err = run_one(path, 'refresh\nbalances\nstatus\n')
    check(status == 0 and err == b'' and len(objs) == 3,
          f'last refresh: status {status}, stderr {err[:200]!r}, {objs}')
    events, streams, checkpoint, sheet = read_db(path)
    bal = replay(events)
    head = len(events)
    check(objs[0]['position'] == head, f'last refresh: {objs[0]}')
    want = [{'account': s, 'balance': bal[s]} for s in bytewise(bal)]
    check(objs[1]['balances'] == want and objs[1]['position'] == head and
          objs[1]['behind'] == 0,
          f'balances after the last refresh: {objs[1]}, replay {want}')
    check(sheet == bal, f'balances table {sheet}, replay {bal}')
    check(checkpoint == head, f'checkpoint table {checkpoint}, last position {head}')
    check(objs[2]['head'] == head and objs[2]['checkpoint'] == head and
          objs[2]['behind'] == 0, f'status: {objs[2]}')
    check(all(b >= 0 for b in bal.values()), f'a negative balance: {bal}')
    return bal


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

    def conserved():
        total = sum(replay(events).values())
        deposited = withdrawn = 0
        for _, objs, _ in racers:
            for o in objs:
                if o['ok'] and o['cmd'] == 'deposit':
                    deposited += o['amount']
                elif o['ok'] and o['cmd'] == 'withdraw':
                    withdrawn += o['amount']
        want = seeded + deposited - withdrawn
        check(total == want, f'total {total}, want {seeded} seeded + {deposited} '
              f'deposited - {withdrawn} withdrawn = {want}')
    checks('racing: money is conserved', conserved)
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

    def raced():
        who = {}
        for i, (_, objs, _) in enumerate(racers):
            for o in objs:
                if o['ok'] and o['cmd'] in ('deposit', 'withdraw', 'transfer'):
                    who[o['position']] = i
        order = [who[p] for p in sorted(who)]
        switches = sum(1 for x, y in zip(order, order[1:]) if x != y)
        check(switches > RACERS, f'the shells ran one after another '
              f'({switches} switches between shells in position order)')
        check(counts.get('insufficient_funds', 0) > 0, 'no withdrawal was refused')
        return switches
    switches = checks('racing: the shells did race', raced)
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
        scripts = []
        for k in range(2):               # the refreshers
            lines = []
            for n in range(400):
                lines.append(f'deposit B{rng.randrange(4)} {rng.randint(1, 100)}')
                lines.append('refresh')
                if n % 10 == 0:
                    lines.append('balances')
            scripts.append(lines)
        lines = []                       # a writer that does not refresh
        for n in range(500):
            a = f'B{rng.randrange(4)}'
            lines.append(f'deposit {a} {rng.randint(1, 100)}' if n % 3
                         else f'withdraw {a} {rng.randint(1, 50)}')
        scripts.append(lines)
        scripts += [['balances'] * 1000] * 2  # readers: take up others' sheets
        results = run_all(path, scripts, [True, True, True, True, False])
        tag = f'refreshes round {r + 1}'
        checks(f'{tag}: exit statuses and stderr', check_statuses, scripts, results)
        counts = checks(f'{tag}: each result is its command\'s', check_results_match,
                        scripts, results, {'withdraw': ('insufficient_funds', 'conflict',
                                                        'unknown_account'),
                                           'deposit': ('conflict',),
                                           'refresh': ('conflict',)}) or {}
        conflicts += counts.get('conflict', 0)
        events, streams, checkpoint, sheet = read_db(path)
        checks(f'{tag}: positions and versions without gaps', check_events,
               events, streams)
        applied_spans += checks(f'{tag}: refreshes applied each event once',
                                check_applied_once, results, checkpoint, events,
                                start) or 0
        shown += checks(f'{tag}: each balances shown is the replay to its position',
                        check_balances_shown, results, events) or 0
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
