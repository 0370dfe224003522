#!/usr/bin/env python3
"""A writer killed at any moment loses nothing it acknowledged and leaves no
half-done command in the sqlite store.  usage: crash_test.py BIN

`BIN --json --store sqlite:FILE` is fed a long generated script (deposits,
withdrawals, transfers, refused ones among them, a refresh about every 50
commands, now and then `balances` and `status`) through a pipe, a few lines
at a time, while its stdout is read as it comes; at a random moment (some
within the first milliseconds) it gets SIGKILL.  Again and again, on the same
file: each script is generated from the state the file was left in.

With one writer the outcome of every command is known in advance, so a
reference model predicts every result line, every event and its position.
After each kill the file (a copy of it, WAL included, so the next writer
still meets the dead one's WAL) is checked with Python's sqlite3:

  * PRAGMA integrity_check is 'ok';
  * every result line printed before the kill is the model's, and each
    acknowledged write is in `events` at the position it printed (a transfer:
    the debit at position-1, the credit at position);
  * the events are 1..max without gaps, versions 1..n per stream, the new
    ones exactly the model's events of the first j commands for some j at
    least the number acknowledged: no command is half there (a transfer's
    debit without its credit), none is missing, nothing else was written;
  * `streams` holds each stream's version; the checkpoint is the one the
    model has after those j commands, and `balances` is the replay of the
    events up to it; no balance goes below zero, ever;
  * then `refresh`, `balances` and `status` run on it: everything applied
    once, balances equal to the replay of the whole table.

About 50 s by default; SIMPLECQRS_CRASH_SECONDS sets the budget (seconds),
SIMPLECQRS_CRASH_SEED the seed.  Prints the kills done and the acknowledged
commands verified, then 'crash: P passed, F failed' (one check per run).
"""
import calendar
import json
import os
import random
import re
import select
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

from ledger_checks import (Failed, bytewise, check, check_events, env, replay,
                           streams_table)

WRAPPER = shlex.split(os.environ.get('SIMPLECQRS_WRAPPER', ''))
SLOW = 6 if WRAPPER else 1
TIMEOUT = 20.0 * SLOW
BUDGET = float(os.environ.get('SIMPLECQRS_CRASH_SECONDS', '50'))
SCRIPT_LEN = 3000          # commands per run (most runs are killed before)
ACCOUNTS = [f'A{i}' for i in range(8)]
TIME_RE = re.compile(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$')
MAX_FAILURES = 5           # stop after this many failed runs


# ---- the state of a ledger, and the model that runs a script on it ----

class State:
    """What a file holds: events (position order), the kept sheet."""

    def __init__(self, events=(), checkpoint=0, sheet=None):
        self.events = list(events)   # (position, stream, version, type, amount, time)
        self.checkpoint = checkpoint
        self.sheet = dict(sheet or {})

    def streams(self):
        """account -> (version, balance)"""
        out = {}
        for _, s, v, t, a, _ in self.events:
            _, bal = out.get(s, (0, 0))
            out[s] = (v, bal + a if t == 'AccountCredited' else bal - a)
        return out


def generate(rng, state, run_no, n):
    """A script of n commands for a ledger in `state`, with, per command,
    the expected result object, the events it appends (position, stream,
    version, type, amount) and the checkpoint after it."""
    streams = state.streams()
    head = len(state.events)
    checkpoint = state.checkpoint
    sheet = dict(state.sheet)
    fresh = 0
    cmds = []     # (line, expected, events, checkpoint_after)

    def append(evs):
        nonlocal head
        out = []
        for s, t, a in evs:
            v, bal = streams.get(s, (0, 0))
            head += 1
            bal = bal + a if t == 'AccountCredited' else bal - a
            streams[s] = (v + 1, bal)
            out.append((head, s, v + 1, t, a))
        return out

    for i in range(n):
        line_no = i + 1
        r = rng.random()
        evs = []
        if i % 50 == 49 or r < 0.01:
            line = 'refresh'
            exp = {'ok': True, 'cmd': 'refresh', 'applied': head - checkpoint,
                   'position': head}
            checkpoint = head
            sheet = {s: b for s, (_, b) in streams.items()}
        elif r < 0.02:
            line = 'balances'
            exp = {'ok': True, 'cmd': 'balances', 'position': checkpoint,
                   'behind': head - checkpoint,
                   'balances': [{'account': s, 'balance': sheet[s]}
                                for s in bytewise(sheet)]}
        elif r < 0.03:
            line = 'status'
            exp = {'ok': True, 'cmd': 'status', 'store': 'sqlite', 'head': head,
                   'streams': len(streams), 'checkpoint': checkpoint,
                   'behind': head - checkpoint}
        elif r < 0.40:
            if rng.random() < 0.03:
                fresh += 1
                acct = f'R{run_no}x{fresh}'
            else:
                acct = rng.choice(ACCOUNTS)
            amount = rng.randint(1, 5000)
            line = f'deposit {acct} {amount}'
            [ev] = evs = append([(acct, 'AccountCredited', amount)])
            exp = {'ok': True, 'cmd': 'deposit', 'account': acct,
                   'amount': amount, 'version': ev[2], 'position': ev[0]}
        elif r < 0.68:
            acct = rng.choice(ACCOUNTS) if rng.random() > 0.02 else f'Nobody{i}'
            v, bal = streams.get(acct, (0, 0))
            if bal > 0 and rng.random() < 0.75:
                amount = rng.randint(1, bal)     # fits (sometimes all of it)
                if rng.random() < 0.1:
                    amount = bal
            else:
                amount = bal + rng.randint(1, 3000)
            line = f'withdraw {acct} {amount}'
            if v == 0:
                exp = {'ok': False, 'cmd': 'withdraw', 'line': line_no,
                       'error': 'unknown_account'}
            elif amount > bal:
                exp = {'ok': False, 'cmd': 'withdraw', 'line': line_no,
                       'error': 'insufficient_funds'}
            else:
                [ev] = evs = append([(acct, 'AccountDebited', amount)])
                exp = {'ok': True, 'cmd': 'withdraw', 'account': acct,
                       'amount': amount, 'version': ev[2], 'position': ev[0]}
        else:
            frm = rng.choice(ACCOUNTS) if rng.random() > 0.02 else f'Nobody{i}'
            if rng.random() < 0.03:
                fresh += 1
                to = f'R{run_no}x{fresh}'
            else:
                to = rng.choice([a for a in ACCOUNTS if a != frm])
            v, bal = streams.get(frm, (0, 0))
            if bal > 0 and rng.random() < 0.8:
                amount = rng.randint(1, bal)
            else:
                amount = bal + rng.randint(1, 3000)
            line = f'transfer {frm} {to} {amount}'
            if v == 0:
                exp = {'ok': False, 'cmd': 'transfer', 'line': line_no,
                       'error': 'unknown_account'}
            elif amount > bal:
                exp = {'ok': False, 'cmd': 'transfer', 'line': line_no,
                       'error': 'insufficient_funds'}
            else:
                evs = append([(frm, 'AccountDebited', amount),
                              (to, 'AccountCredited', amount)])
                exp = {'ok': True, 'cmd': 'transfer', 'from': frm, 'to': to,
                       'amount': amount, 'position': evs[1][0]}
        cmds.append((line, exp, evs, checkpoint))
    return cmds


def same_result(got, exp):
    """got equals exp, keys in order; an error's message is any string, and
    status's location (the file's path, which the copies change) is left out."""
    got = {k: v for k, v in got.items() if k != 'location'}
    if not exp['ok']:
        if not isinstance(got.get('message'), str):
            return False
        got = {k: v for k, v in got.items() if k != 'message'}
    return list(got.items()) == list(exp.items())


# ---- one run: feed, kill, collect ----

def run_and_kill(path, lines, delay, rng):
    """Runs BIN on path, feeding lines in small bursts; SIGKILL after delay
    seconds (None: let it finish).  Returns (complete output lines, killed,
    exit status, stderr)."""
    err = tempfile.TemporaryFile()
    p = subprocess.Popen(WRAPPER + [BIN, '--json', '--store', 'sqlite:' + path],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=err, env=env())
    data = [l.encode() + b'\n' for l in lines]
    feed_rng = random.Random(rng.random())

    def feed():
        try:
            i = 0
            while i < len(data):
                k = feed_rng.choice((1, 1, 2, 3, 5, 10, 40))
                p.stdin.write(b''.join(data[i:i + k]))
                p.stdin.flush()
                i += k
                time.sleep(feed_rng.random() * 0.003)
            p.stdin.close()
        except (BrokenPipeError, OSError, ValueError):
            pass

    feeder = threading.Thread(target=feed, daemon=True)
    start = time.monotonic()
    feeder.start()
    out = b''
    fd = p.stdout.fileno()
    killed = False
    deadline = start + (delay if delay is not None else TIMEOUT * 3)
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                break                     # it finished before the kill
            out += chunk
    if p.poll() is None:
        p.kill()                          # SIGKILL
        killed = True
    # what was in the pipe was printed before the kill: acknowledged too
    while True:
        ready, _, _ = select.select([fd], [], [], TIMEOUT)
        if not ready:
            raise Failed('stdout stays open after the kill')
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        out += chunk
    status = p.wait(TIMEOUT)
    feeder.join(TIMEOUT)
    try:
        p.stdin.close()
    except OSError:
        pass
    p.stdout.close()
    err.seek(0)
    stderr = err.read()
    err.close()
    if killed and status != -signal.SIGKILL:
        killed = False                    # it had exited by itself
    text = out.decode()
    complete = text.split('\n')[:-1]      # a torn last line is not printed
    return complete, killed, status, stderr


# ---- checking the file ----

def snapshot(path, folder):
    """Copies the ledger and its WAL files (nobody has them open)."""
    if os.path.isdir(folder):
        shutil.rmtree(folder)
    os.mkdir(folder)
    copy = os.path.join(folder, 'ledger.db')
    for suffix in ('', '-wal', '-shm'):
        if os.path.exists(path + suffix):
            shutil.copyfile(path + suffix, copy + suffix)
    return copy


def read_file(path):
    """(State, streams table, integrity) of the ledger at path."""
    db = sqlite3.connect(path)
    try:
        integrity = db.execute('PRAGMA integrity_check').fetchall()
        objects = {r[0] for r in db.execute(
            "SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")}
        if 'events' not in objects:       # killed before the schema was made
            check(not objects, f'a partial schema: {sorted(objects)}')
            return State(), {}, integrity
        events = db.execute('SELECT position, stream, version, type, amount, time '
                            'FROM events ORDER BY position').fetchall()
        streams = streams_table(db)
        cps = db.execute('SELECT id, position FROM checkpoint').fetchall()
        check(len(cps) == 1 and cps[0][0] == 1, f'checkpoint table holds {cps}')
        sheet = dict(db.execute('SELECT account, balance FROM balances'))
        return State(events, cps[0][1], sheet), streams, integrity
    finally:
        db.close()


def verify_run(base, cmds, lines, killed, status, stderr, after, stream_versions,
               integrity, run_start_wall):
    """Returns the number of acknowledged commands verified."""
    check(integrity == [('ok',)], f'integrity_check: {integrity}')
    check(stderr == b'', f'stderr: {stderr[:300]!r}')
    acked = len(lines)
    check(acked <= len(cmds), f'{acked} result lines for {len(cmds)} commands')
    for i, l in enumerate(lines):
        try:
            got = json.loads(l)
        except ValueError:
            raise Failed(f'result {i + 1} is not JSON: {l!r}')
        check(same_result(got, cmds[i][1]),
              f'line {i + 1} {cmds[i][0]!r}: got {l}, want {json.dumps(cmds[i][1])}')
    if not killed:
        refused = any(not c[1]['ok'] for c in cmds)
        check(acked == len(cmds), f'finished after {acked} of {len(cmds)} results')
        check(status == (1 if refused else 0), f'exit status {status}')

    events = after.events
    check_events(events, stream_versions, TIME_RE)
    nbase = len(base.events)
    check(len(events) >= nbase, f'{nbase - len(events)} events were lost')
    check(events[:nbase] == base.events, 'events of earlier runs changed')
    new = [e[:5] for e in events[nbase:]]
    want = [ev for c in cmds for ev in c[2]]
    check(new == want[:len(new)],
          'the new events are not the script\'s: first difference at position '
          f'{nbase + next((i for i, (a, b) in enumerate(zip(new, want)) if a != b), len(want)) + 1}')
    now = time.time()
    for e in events[nbase:]:
        t = calendar.timegm(time.strptime(e[5][:19], '%Y-%m-%dT%H:%M:%S'))
        check(run_start_wall - 5 <= t <= now + 5, f'position {e[0]}: time {e[5]}')

    # the committed commands: the first j, j >= acked, ending on a boundary
    done, js = 0, []
    if len(new) == 0:
        js.append(0)
    for j, c in enumerate(cmds):
        done += len(c[2])
        if done == len(new):
            js.append(j + 1)
        elif done > len(new):
            break
    check(js, f'{len(new)} new events: a command is half there')
    check(max(js) >= acked, f'{len(new)} new events: only {max(js)} commands '
          f'committed, but {acked} were acknowledged')
    for i, l in enumerate(lines):        # what the brief asks, said plainly
        exp = cmds[i][1]
        if exp['ok'] and exp['cmd'] in ('deposit', 'withdraw', 'transfer'):
            for ev in cmds[i][2]:
                row = events[ev[0] - 1]
                check(row[:5] == ev, f'acknowledged {cmds[i][0]!r}: position {ev[0]} '
                      f'holds {row[:5]}')

    # the kept sheet: as the model has it after one of those j
    cps = {base.checkpoint if j == 0 else cmds[j - 1][3] for j in js}
    check(after.checkpoint in cps,
          f'checkpoint {after.checkpoint}, want one of {sorted(cps)}')
    want_sheet = replay(events, after.checkpoint)
    check(after.sheet == want_sheet,
          f'balances table {after.sheet} is not the replay to '
          f'{after.checkpoint}: {want_sheet}')
    return acked


def verify_refresh(path, state):
    """refresh, balances, status on path: the replay of every event.
    Returns the state after the refresh."""
    p = subprocess.run(WRAPPER + [BIN, '--json', '--store', 'sqlite:' + path],
                       input=b'refresh\nbalances\nstatus\n', stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=env(), timeout=TIMEOUT * 3)
    check(p.returncode == 0 and p.stderr == b'',
          f'refresh run: status {p.returncode}, stderr {p.stderr[:300]!r}')
    out = [json.loads(l) for l in p.stdout.decode().splitlines()]
    head = len(state.events)
    bal = replay(state.events)
    want = [
        {'ok': True, 'cmd': 'refresh', 'applied': head - state.checkpoint,
         'position': head},
        {'ok': True, 'cmd': 'balances', 'position': head, 'behind': 0,
         'balances': [{'account': s, 'balance': bal[s]} for s in bytewise(bal)]},
        {'ok': True, 'cmd': 'status', 'store': 'sqlite', 'head': head,
         'streams': len(bal), 'checkpoint': head, 'behind': 0},
    ]
    for got, exp in zip(out, want):
        check(same_result(got, exp),
              f'after refresh: got {json.dumps(got)}, want {json.dumps(exp)}')
    check(len(out) == 3, f'{len(out)} result lines to 3 commands')
    check(all(b >= 0 for b in bal.values()), f'a negative balance: {bal}')
    return State(state.events, head, bal)


def main():
    global BIN
    BIN = os.path.abspath(sys.argv[1])
    seed = int(os.environ.get('SIMPLECQRS_CRASH_SEED', random.randrange(1 << 30)))
    rng = random.Random(seed)
    passed = failed = kills = finished = verified = 0
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix='simplecqrs-crash-') as tmp:
        path = os.path.join(tmp, 'ledger.db')
        base = State()
        run_no = 0
        while time.monotonic() - started < BUDGET and failed < MAX_FAILURES:
            run_no += 1
            cmds = generate(rng, base, run_no, SCRIPT_LEN)
            r = rng.random()
            if r < 0.15:
                delay = rng.uniform(0, 0.005)      # at once: maybe mid-open
            elif r < 0.40:
                delay = rng.uniform(0.005, 0.06)
            elif r < 0.97:
                delay = rng.uniform(0.06, 0.5)
            else:
                delay = None                       # now and then, to the end
            try:
                wall = time.time()
                lines, killed, status, stderr = run_and_kill(
                    path, [c[0] for c in cmds], delay, rng)
                kills += killed
                finished += not killed
                if not os.path.exists(path):
                    check(not lines and not base.events,
                          'no file, yet results were printed')
                    passed += 1
                    continue
                # the checks read a copy: the next writer meets the WAL the
                # dead one left (every fourth run, the file itself is used)
                direct = run_no % 4 == 0
                target = path if direct else snapshot(path, os.path.join(tmp, 'copy'))
                after, versions, integrity = read_file(target)
                verified += verify_run(base, cmds, lines, killed, status, stderr,
                                       after, versions, integrity, wall)
                refreshed = verify_refresh(target, after)
                base = refreshed if direct else after
                passed += 1
            except Exception as e:     # Failed, or the checker tripped on bad output
                failed += 1
                print(f'FAIL run {run_no} (seed {seed}, kill after '
                      f'{"-" if delay is None else f"{delay * 1000:.1f} ms"}): {e}')
                try:     # go on from whatever the file holds
                    base = read_file(snapshot(path, os.path.join(tmp, 'copy')))[0]
                except Exception as e2:
                    print(f'cannot go on: {e2}')
                    break
    print(f'crash: {kills} kills, {finished} runs to the end, {verified} '
          f'acknowledged commands verified, {len(base.events)} events, seed {seed}, '
          f'{time.monotonic() - started:.0f}s; {passed} passed, {failed} failed')
    return 1 if failed or passed == 0 else 0


if __name__ == '__main__':
    sys.exit(main())
