"""Checks shared by the ledger test programs: race_test.py, pg_test.py and
crash_test.py (imported, not run; stdlib only).

They judge what shells printed (`--json` result objects) against what a
store holds.  `events` are rows in position order, (position, stream,
version, type, amount), or with the event's time sixth; `results` are
[(exit status, [result objects], stderr)], one a shell, and `scripts` the
command lines each shell was given.  A failed check raises Failed; Checks
runs named checks, reports and counts them.
"""
import json
import os
import random
import signal
import subprocess
import threading
import time


class Failed(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failed(what)


class Checks:
    """Named checks; a failure is reported and counted, the rest go on."""

    def __init__(self):
        self.passed = self.failed = 0

    def __call__(self, name, fn, *args):
        try:
            value = fn(*args)
            self.passed += 1
            print(f'ok {name}', flush=True)
            return value
        except Failed as e:
            self.failed += 1
            print(f'FAIL {name}: {e}', flush=True)
        except Exception as e:      # a crash of the checker is a failure too
            self.failed += 1
            print(f'FAIL {name}: {type(e).__name__}: {e}', flush=True)


def env():
    """The environment without SIMPLECQRS_STORE (the tests name the store)."""
    return {k: v for k, v in os.environ.items() if k != 'SIMPLECQRS_STORE'}


def bytewise(accounts):
    return sorted(accounts, key=lambda a: a.encode())


def status_text(status):
    return f'{status}' + (f' ({signal.Signals(-status).name})' if status < 0 else '')


def streams_table(db):
    """stream -> version from a sqlite ledger's streams table (the account's
    name is in column `stream`, or `name` where streams are numbered)."""
    cols = [r[1] for r in db.execute('PRAGMA table_info(streams)')]
    name = 'name' if 'name' in cols else 'stream'
    return dict(db.execute(f'SELECT {name}, version FROM streams'))


def replay(events, upto=None):
    """Balances per stream of the events with position <= upto."""
    bal = {}
    for p, s, _, t, a, *_ in events:
        if upto is not None and p > upto:
            break
        bal[s] = bal.get(s, 0) + (a if t == 'AccountCredited' else -a)
    return bal


# ---- running shells at once ----

def run_all(start, scripts, slow, timeout, pause=0.002, settle=0.0):
    """Runs one shell per script at once (start() makes a --json shell with
    pipes); slow[i] feeds script i a few lines at a time, up to `pause`
    seconds apart; they start together `settle` seconds after the last was
    made.  Returns [(status, [result objects], stderr)]."""
    procs, threads, outs = [], [], [None] * len(scripts)
    go = threading.Event()
    for i, lines in enumerate(scripts):
        p = start()
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
                        time.sleep(rng.random() * pause)
                p.stdin.close()
            except (BrokenPipeError, OSError):
                pass

        def read(i=i, p=p):
            outs[i] = (p.stdout.read(), p.stderr.read())

        threads += [threading.Thread(target=feed, daemon=True),
                    threading.Thread(target=read, daemon=True)]
    for t in threads:
        t.start()
    if settle:
        time.sleep(settle)
    go.set()
    deadline = time.monotonic() + timeout
    for i, p in enumerate(procs):
        try:
            p.wait(max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise Failed(f'shell {i} still running after {timeout:g}s')
    for t in threads:
        t.join(timeout)
    results = []
    for i, p in enumerate(procs):
        out, err = outs[i]
        try:
            objs = [json.loads(l) for l in out.decode().splitlines()]
        except ValueError as e:
            raise Failed(f'shell {i}: output is not JSON lines ({e}): {out[:300]!r}')
        results.append((p.returncode, objs, err))
    return results


# ---- what the shells printed ----

def check_statuses(scripts, results):
    """Every shell exits 0, or 1 when it printed a refusal (never 3, never a
    signal), with nothing on stderr and one result per command."""
    for i, (status, objs, err) in enumerate(results):
        check(status in (0, 1), f'shell {i}: exit status {status_text(status)}, '
              f'stderr {err[:300]!r}')
        check(err == b'', f'shell {i}: stderr {err[:300]!r}')
        refused = any(not o.get('ok') for o in objs)
        check(status == (1 if refused else 0),
              f'shell {i}: exit status {status}, refusals printed: {refused}')
        check(len(objs) == len(scripts[i]),
              f'shell {i}: {len(objs)} results for {len(scripts[i])} commands')


def check_results_match(scripts, results, refusals):
    """Each result is its command's; refusals only those allowed (refusals:
    command -> error names). Returns the count of each refusal."""
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


def check_raced(results, counts, more_than):
    """The shells did race: more than `more_than` switches between shells
    in the position order of their writes, and some refusal for want of
    funds (counts: from check_results_match). Returns the switches."""
    who = {}
    for i, (_, objs, _) in enumerate(results):
        for o in objs:
            if o['ok'] and o['cmd'] in ('deposit', 'withdraw', 'transfer'):
                who[o['position']] = i
    order = [who[p] for p in sorted(who)]
    switches = sum(1 for x, y in zip(order, order[1:]) if x != y)
    check(switches > more_than, f'the shells ran one after another '
          f'({switches} switches between shells in position order)')
    check(counts.get('insufficient_funds', 0) > 0, 'no withdrawal was refused')
    return switches


# ---- what the store holds ----

def check_events(events, streams, time_re=None):
    """Positions 1..max, versions 1..n per stream, valid rows (with time_re,
    each row's sixth field is a time it matches), no balance below zero in a
    per-stream replay in position order; the streams table agrees."""
    versions, bal = {}, {}
    for i, (p, s, v, t, a, *rest) in enumerate(events):
        check(p == i + 1, f'positions have a gap: {p} at row {i + 1}')
        check(v == versions.get(s, 0) + 1,
              f'position {p}: {s} version {v} after {versions.get(s, 0)}')
        versions[s] = v
        check(t in ('AccountCredited', 'AccountDebited'), f'position {p}: type {t!r}')
        check(isinstance(a, int) and a > 0, f'position {p}: amount {a!r}')
        if time_re is not None:
            tm = rest[0] if rest else None
            check(isinstance(tm, str) and time_re.match(tm), f'position {p}: time {tm!r}')
        bal[s] = bal.get(s, 0) + (a if t == 'AccountCredited' else -a)
        check(bal[s] >= 0, f'position {p}: {s} goes to {bal[s]} (an overdraft)')
    check(streams == versions, f'streams table {streams} is not the versions {versions}')


def check_claims(results, events):
    """Each acknowledged write's events are where it says; every event is
    exactly one acknowledged write's. Returns the totals of the writes."""
    owner = {}
    tally = {'deposit': 0, 'withdraw': 0, 'transfer': 0, 'deposited': 0, 'withdrawn': 0}

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
                claim(o['position'] - 1, who, o['from'], None, 'AccountDebited', o['amount'])
                claim(o['position'], who, o['to'], None, 'AccountCredited', o['amount'])
    want = tally['deposit'] + tally['withdraw'] + 2 * tally['transfer']
    check(len(events) == want,
          f'{len(events)} events; acknowledged: {tally["deposit"]} deposits + '
          f'{tally["withdraw"]} withdrawals + 2 x {tally["transfer"]} transfers = {want}')
    unowned = [p for p in range(1, len(events) + 1) if p not in owner]
    check(not unowned, f'events nobody acknowledged at positions {unowned[:10]}')
    return tally


def check_conserved(events, results, seeded):
    """Money is conserved: the replay's total is what was seeded plus what
    the results deposited, less what they withdrew."""
    total = sum(replay(events).values())
    deposited = withdrawn = 0
    for _, objs, _ in results:
        for o in objs:
            if o['ok'] and o['cmd'] == 'deposit':
                deposited += o['amount']
            elif o['ok'] and o['cmd'] == 'withdraw':
                withdrawn += o['amount']
    want = seeded + deposited - withdrawn
    check(total == want, f'total {total}, want {seeded} seeded + {deposited} '
          f'deposited - {withdrawn} withdrawn = {want}')


# ---- the kept balance sheet ----

def refresh_spans(objs, who, head=None):
    """(position - applied, position, who) of each successful refresh in
    objs that applied events; with head, every successful refresh must have
    0 <= applied <= position <= head."""
    spans = []
    for o in objs:
        if o['ok'] and o['cmd'] == 'refresh':
            if head is not None:
                check(0 <= o['applied'] <= o['position'] <= head,
                      f'{who}: {json.dumps(o)}')
            if o['applied']:
                spans.append((o['position'] - o['applied'], o['position'], who))
    return spans


def check_spans_join(spans, upto, start=0):
    """The refreshes' (position - applied, position] join end to end from
    start to upto: nothing applied twice, nothing skipped. Returns how many
    spans there are."""
    at = start
    for lo, hi, who in sorted(spans):
        check(lo == at, f'a refresh applied ({lo}, {hi}] ({who}) after the refreshes '
              f'had reached {at}: ' + ('events applied twice' if lo < at
                                       else 'events skipped'))
        at = hi
    check(at == upto, f'refreshes applied up to {at}, want {upto} (the checkpoint)')
    return len(spans)


def check_applied_once(results, checkpoint, events, start=0):
    """The successful refreshes' intervals (position - applied, position]
    tile start..checkpoint (start: where earlier refreshes had brought it):
    no event applied twice, none skipped.  Returns how many applied any."""
    spans = [s for i, (_, objs, _) in enumerate(results)
             for s in refresh_spans(objs, f'shell {i}', len(events))]
    return check_spans_join(spans, checkpoint, start)


def check_balances_shown(results, events):
    """Each `balances` printed is the replay to the position it shows.
    Returns how many were checked."""
    snaps, bal = [{}], {}
    for p, s, _, t, a, *_ in events:
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
            check(0 <= pos < len(snaps) and o['behind'] >= 0 and
                  pos + o['behind'] <= len(events),
                  f'shell {i}: balances at {pos}, behind {o["behind"]}, '
                  f'{len(events)} events')
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


def check_final_refresh(run, events, sheet, checkpoint, store):
    """A last `refresh`, `balances`, `status` run on its own (run: its
    (status, [objects], stderr)), then the store read back: the refresh
    reaches the last event, and `balances`, the kept table (sheet), the
    checkpoint and `status` all equal the replay of every event; no balance
    is negative. Returns the replay."""
    status, objs, err = run
    check(status == 0 and err == b'' and len(objs) == 3,
          f'last refresh: status {status}, stderr {err[:200]!r}, {objs}')
    bal, head = replay(events), len(events)
    check(objs[0]['position'] == head, f'last refresh: {objs[0]}, {head} events')
    want = [{'account': s, 'balance': bal[s]} for s in bytewise(bal)]
    check(objs[1]['balances'] == want and objs[1]['position'] == head and
          objs[1]['behind'] == 0,
          f'balances after the last refresh: {objs[1]}, replay {want}')
    check(sheet == bal, f'balances table {sheet}, replay {bal}')
    check(checkpoint == head, f'checkpoint table {checkpoint}, last position {head}')
    check(objs[2]['store'] == store and objs[2]['head'] == head and
          objs[2]['checkpoint'] == head and objs[2]['behind'] == 0, f'status: {objs[2]}')
    check(all(b >= 0 for b in bal.values()), f'a negative balance: {bal}')
    return bal


# ---- refreshes racing a writer ----

def refresh_scripts(rng, refreshes, writes, writers=1):
    """Two refreshers (`refreshes` times a deposit then a refresh, a
    `balances` every tenth) and `writers` writers that do not refresh
    (`writes` deposits and withdrawals each) on accounts B0..B3."""
    scripts = []
    for _ in range(2):                      # the refreshers
        lines = []
        for n in range(refreshes):
            lines.append(f'deposit B{rng.randrange(4)} {rng.randint(1, 100)}')
            lines.append('refresh')
            if n % 10 == 0:
                lines.append('balances')
        scripts.append(lines)
    for _ in range(writers):                # writers that do not refresh
        lines = []
        for n in range(writes):
            a = f'B{rng.randrange(4)}'
            lines.append(f'deposit {a} {rng.randint(1, 100)}' if n % 3
                         else f'withdraw {a} {rng.randint(1, 50)}')
        scripts.append(lines)
    return scripts


def check_refresh_round(checks, tag, scripts, results, events, streams, checkpoint,
                        start):
    """The checks of one round of refresh_scripts (and readers) run at once,
    through checks: statuses, results, events, each event applied once from
    start to the checkpoint, every `balances` shown the replay. Returns
    (conflicts, refreshes that applied events, balances checked)."""
    checks(f'{tag}: exit statuses and stderr', check_statuses, scripts, results)
    counts = checks(f'{tag}: each result is its command\'s', check_results_match,
                    scripts, results,
                    {'withdraw': ('insufficient_funds', 'conflict', 'unknown_account'),
                     'deposit': ('conflict',), 'refresh': ('conflict',)}) or {}
    checks(f'{tag}: positions and versions without gaps', check_events, events, streams)
    applied = checks(f'{tag}: refreshes applied each event once', check_applied_once,
                     results, checkpoint, events, start) or 0
    shown = checks(f'{tag}: each balances shown is the replay to its position',
                   check_balances_shown, results, events) or 0
    return counts.get('conflict', 0), applied, shown
