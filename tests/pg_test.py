#!/usr/bin/env python3
"""The postgresql:// store against a real, throwaway PostgreSQL cluster.

usage: pg_test.py BIN [--probe PG_PROBE] [--test-store TEST_STORE]
                  [--only NAME[,NAME...]]

PG_PROBE is tests/pg_probe.c built: the store's C API over a pipe, for what
the shell cannot show (notify, location, the wait hook in busy).
TEST_STORE is tests/test_store.c built: the store's C contract, the same
cases the memory and sqlite stores pass.

A private cluster is made with initdb and run with pg_ctl (the newest
/usr/lib/postgresql/*/bin, else whatever is on PATH) in a fresh temporary
folder: unix socket only (listen_addresses = ''), port 5432 inside that
folder, trust authentication. Run as root, the server runs as the `postgres`
system user (else `nobody`) through setpriv. It is stopped and removed at the
end whatever happens (finally, atexit, SIGTERM/SIGINT). Missing server
binaries are a failure, not a skip. The database is read back with `psql`.
Every test gets its own database, dropped afterwards.

Tests (NAME for --only):

  contract     (test_store) the store's C contract on this server:
               tests/test_store.c with SIMPLECQRS_TEST_STORE=postgresql, a
               fresh database per case made and dropped through
               SIMPLECQRS_TEST_PG_URI=postgresql:///postgres; no case's
               database is left behind.
  cli          every tests/cli/*.cqrs case that does not pick its own store
               runs with `--store postgresql:///DB` first, on a fresh database,
               and prints what the case expects (`status` names postgresql);
               a case that ran commands must have made the tables.
  model        four random --json scripts (500, 500, 500, 2000 lines) of deposits, withdrawals, transfers,
               refresh, balances, balance, history, status, rebuild and bad
               lines, run on the memory store and on PostgreSQL: identical
               output (times masked, status store name aside), status, stderr.
  race         8 shells x 200 withdrawals and transfers between 4 seeded
               accounts at once: exit 0 or 1 only, one result per command;
               per-stream replay never negative, versions 1..n, positions
               1..max without gaps, every event one acknowledged write's
               (deposits + withdrawals + 2 x transfers = events), money
               conserved, positions in commit order (commit timestamps from
               track_commit_timestamp rise with position, each transaction
               one run of positions), a last refresh equals the replay.
  stale        a shell's group asks about an account with no stream; another
               shell opens it; the first shell's next groups (caught up)
               write on it as the replay says.
  gap          writer A holds its transaction (and a position) open 1.5 s
               (SIMPLECQRS_TEST_COMMIT_DELAY_MS); B and W start after A took
               its position; shell C refreshes every ~20 ms throughout. The
               refreshes' (position - applied, position] join end to end,
               A's position < B's and W's, A committed first and B and W
               answered after A's commit timestamp, the final checkpoint is
               max(position), the table is the replay.
  refresh      two shells refresh after nearly every deposit while a third
               writes (a last round: while four write): refreshes join end
               to end, every `balances` shown is the replay to its position,
               the kept table is the replay.
  stopped      the server stops (pg_ctl stop -m fast) under a shell: its next
               deposit prints a storage error and it exits 3; after a restart
               the ledger holds exactly the writes answered before the stop.
               Stopped under a shell piping 300,000 deposits: exit 3, one
               storage error last, every result shown is in the ledger. A
               read (balances) after a stop is a storage error too.
  faults       a server-side fault (a trigger) in each statement of a bulk
               group's pipeline (streams' rows, checkpoint, sheet's rows,
               events of a refresh's, a full and the last batch) and at its
               COMMIT, under a shell piping 30,000 deposits from a file:
               exit 3, one storage error last, every result shown is kept,
               nothing unacknowledged is, rows agree with their events.
  unreachable  nothing listening: exit 2, one `simplecqrs: cannot open store`
               line, empty stdout; a password in the URI is never printed
               (refused connection, missing database, `status` on a working
               store in text, --echo and --json modes).
  foreign      a database with someone else's `events` (or `checkpoint`)
               table is refused with exit 2 and left untouched; a ledger whose
               simplecqrs_meta schema_version is '3' is refused with exit 2.
  upgrade      a schema-1 ledger (the old schema's SQL, rows made by hand)
               opens upgraded in one transaction: events, stream versions,
               checkpoint and sheet as they were, the new streams.balance
               column each stream's sum, balance_version its version; a
               schema-1 program's statements (still connected) fail, on it
               and on a new ledger, nothing of them kept; it then decides
               as a replay does;
               schema 3 is refused and left alone; a schema-1 ledger whose
               sum breaks the balance check is refused and left as it was.

  restart      pg_ctl restart -m fast between two commands of a shell fed
               slowly (JSON and text): the next command works, nothing is
               said, exit 0; a group cut while open is the one storage
               error; messages are one clean line (libpq's two lines joined).
  defaults     racing shells under ALTER DATABASE ... SET
               default_transaction_isolation = 'repeatable read': no storage
               error; a database search_path naming no schema: the ledger is
               in public; options=-csearch_path=ledger (or PGOPTIONS) puts it
               in schema ledger.
  passwords    each form of a password that defeated the mask (holding '/',
               '@', a bad %-escape, the one-slash typo, any case or
               encoding of password=, key=value) against an unreachable and
               the reachable server, text, --json and --echo: no trace of it
               in stdout or stderr; opened with one, status shows none.
  notify       (probe) poll: unchanged while idle or others only read,
               changed within a second of another shell's write, once; with
               the server down poll answers at once; after it is back, poll
               alone makes the connection again and LISTENs again.
  busy         a psql session holds the write lock: a write answers busy
               after 10 s, nothing written, the next write works; a table
               lock past lock_timeout is busy too; exit 1. (probe) the wait
               hook is asked about every 100 ms and stopping it is busy now.
  location     (probe) store_location is the URI without its password;
               store_created says whether the open made the ledger.

Prints 'pg: P passed, F failed'; exits 1 on failure.
"""
import atexit
import cli_test
import glob
import json
import os
import pwd
import random
import re
import select
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

from ledger_checks import (Checks, Failed, check, check_balances_shown, check_claims,
                           check_conserved, check_events, check_final_refresh,
                           check_raced, check_refresh_round, check_results_match,
                           check_spans_join, check_statuses, refresh_scripts,
                           refresh_spans, replay, status_text)
import ledger_checks

WRAPPER = shlex.split(os.environ.get('SIMPLECQRS_WRAPPER', ''))
SLOW = 6 if WRAPPER else 1
TIMEOUT = 60.0 * SLOW
HERE = os.path.dirname(os.path.abspath(__file__))
CLI_DIR = os.path.join(HERE, 'cli')
TIME_RE = re.compile(rb'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z')
PORT = '5432'
LOCK_KEY = 1396920658
BIN = None
PROBE = None
TEST_STORE = None
CLUSTER = None


# ---- the private cluster ----

def server_bin():
    """The newest /usr/lib/postgresql/N/bin holding initdb and pg_ctl, else
    PATH's; None when there is none."""
    def version(d):
        try:
            return int(d.split('/')[-2])
        except ValueError:
            return -1
    for d in sorted(glob.glob('/usr/lib/postgresql/*/bin'), key=version, reverse=True):
        if all(os.access(os.path.join(d, t), os.X_OK) for t in ('initdb', 'pg_ctl')):
            return d
    initdb, pg_ctl = shutil.which('initdb'), shutil.which('pg_ctl')
    if initdb and pg_ctl and os.path.dirname(initdb) == os.path.dirname(pg_ctl):
        return os.path.dirname(initdb)
    return None


class Cluster:
    def __init__(self, bindir):
        self.bindir = bindir
        self.running = False
        if os.geteuid() == 0:
            for name in ('postgres', 'nobody'):
                try:
                    self.pw = pwd.getpwnam(name)
                    break
                except KeyError:
                    continue
            else:
                raise Failed('running as root, and there is neither a postgres '
                             'nor a nobody user to run the server as')
            self.as_user = ['setpriv', f'--reuid={self.pw.pw_uid}',
                            f'--regid={self.pw.pw_gid}', '--init-groups']
        else:
            self.pw = pwd.getpwuid(os.geteuid())
            self.as_user = []
        self.user = self.pw.pw_name
        base = None
        if self.as_user:   # the server's user must be able to reach the folder
            d = tempfile.gettempdir()
            while d != '/':
                if not os.stat(d).st_mode & 0o001:
                    base = '/tmp'
                    break
                d = os.path.dirname(d)
        self.tmp = tempfile.mkdtemp(prefix='simplecqrs-pg-', dir=base)
        self.data = os.path.join(self.tmp, 'data')
        self.sock = os.path.join(self.tmp, 'sock')
        self.log = os.path.join(self.tmp, 'server.log')
        os.mkdir(self.sock)
        if self.as_user:
            for p in (self.tmp, self.sock):
                os.chown(p, self.pw.pw_uid, self.pw.pw_gid)
        # the environment of every client: only our server, our user
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith('PG') and k not in ('SIMPLECQRS_STORE', 'NO_COLOR')}
        self.env.update(PGHOST=self.sock, PGPORT=PORT, PGUSER=self.user,
                        PGDATABASE='postgres', PGCONNECT_TIMEOUT='10')

    def server_env(self):
        env = {k: v for k, v in self.env.items() if not k.startswith('PG')}
        env.update(HOME=self.tmp, USER=self.user, LOGNAME=self.user, LC_ALL='C')
        return env

    def tool(self, name, *args, timeout=120):
        p = subprocess.run(self.as_user + [os.path.join(self.bindir, name), *args],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, cwd=self.tmp,
                           env=self.server_env(), timeout=timeout)
        if p.returncode != 0:
            tail = ''
            if os.path.exists(self.log):
                with open(self.log, errors='replace') as f:
                    tail = ''.join(f.readlines()[-15:])
            raise Failed(f'{name} {" ".join(args)} failed ({p.returncode}): '
                         f'{p.stdout.decode(errors="replace")[-1500:]}\n{tail}')
        return p

    def init(self):
        self.tool('initdb', '-D', self.data, '-A', 'trust', '-U', self.user,
                  '-E', 'UTF8', '--no-locale', '--no-sync')
        with open(os.path.join(self.data, 'postgresql.conf'), 'a') as f:
            f.write(f"\nlisten_addresses = ''\nport = {PORT}\n"
                    f"unix_socket_directories = '{self.sock}'\n"
                    "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                    "track_commit_timestamp = on\n"
                    "max_connections = 60\nshared_buffers = 16MB\n")
        self.start()

    def start(self):
        self.tool('pg_ctl', '-D', self.data, '-l', self.log, '-w', '-t', '60', 'start')
        self.running = True

    def stop(self, mode='fast'):
        self.tool('pg_ctl', '-D', self.data, '-m', mode, '-w', '-t', '60', 'stop')
        self.running = False

    def destroy(self):
        try:
            if self.running and os.path.exists(os.path.join(self.data, 'postmaster.pid')):
                self.stop('immediate')
        except Exception as e:
            print(f'could not stop the cluster: {e}', flush=True)
        self.running = False
        shutil.rmtree(self.tmp, ignore_errors=True)


def psql(sql, db='postgres'):
    """Rows of sql as lists of strings (fields split on |)."""
    p = subprocess.run(['psql', '-XAtq', '-v', 'ON_ERROR_STOP=1', '-d', db, '-c', sql],
                       stdin=subprocess.DEVNULL, capture_output=True,
                       env=CLUSTER.env, timeout=TIMEOUT)
    if p.returncode != 0:
        raise Failed(f'psql {sql!r} on {db}: {p.stderr.decode(errors="replace").strip()}')
    return [line.split('|') for line in p.stdout.decode().splitlines()]


class Database:
    """A fresh database, dropped on leaving the with block."""
    count = 0

    def __init__(self, tag):
        Database.count += 1
        self.name = 't%d_%s' % (Database.count, re.sub(r'[^a-z0-9_]', '_', tag.lower()))[:60]
        self.uri = 'postgresql:///' + self.name

    def __enter__(self):
        psql(f'CREATE DATABASE "{self.name}"')
        return self

    def __exit__(self, *exc):
        if CLUSTER.running:
            try:
                psql(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            except Failed as e:
                print(f'note: {e}', flush=True)

    def rows(self, sql):
        return psql(sql, self.name)

    def events(self):
        return [(int(p), s, int(v), t, int(a)) for p, s, v, t, a in self.rows(
            'SELECT position, stream, version, type, amount FROM events ORDER BY position')]

    def commits(self):
        """[(position, xid, commit time in epoch seconds)] in position order:
        which transaction wrote each event, and when it committed."""
        return [(int(p), x, float(t)) for p, x, t in self.rows(
            'SELECT position, xmin::text, '
            'extract(epoch FROM pg_xact_commit_timestamp(xmin)) '
            'FROM events ORDER BY position')]

    def streams(self):
        return {s: int(v) for s, v in self.rows('SELECT name, version FROM streams')}

    def checkpoint(self):
        r = self.rows('SELECT position FROM checkpoint WHERE id = 1')
        return int(r[0][0]) if len(r) == 1 else None

    def sheet(self):
        return {a: int(b) for a, b in self.rows('SELECT account, balance FROM balances')}

    def has(self, table):
        return self.rows(f"SELECT to_regclass('{table}') IS NOT NULL") == [['t']]


# ---- running the binary ----

PROCS = []


def spawn(args, env=None, **kw):
    p = subprocess.Popen(WRAPPER + [BIN] + args, stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=env or CLUSTER.env, **kw)
    PROCS.append(p)
    return p


def run(args, text, env=None, timeout=None, cwd=None):
    p = subprocess.run(WRAPPER + [BIN] + args, input=text.encode(), capture_output=True,
                       env=env or CLUSTER.env, timeout=timeout or TIMEOUT, cwd=cwd)
    return p


def run_json(db, text, env=None):
    """(status, [objects], stderr) of one --json shell over text."""
    p = run(['--json', '--store', db.uri], text, env)
    try:
        objs = [json.loads(l) for l in p.stdout.decode().splitlines()]
    except ValueError as e:
        raise Failed(f'output is not JSON lines ({e}): {p.stdout[:300]!r}')
    return p.returncode, objs, p.stderr


class Coproc:
    """A --json shell on a pipe, asked one line at a time."""

    def __init__(self, db, env=None, extra=()):
        self.p = spawn(['--json', '--store', db.uri, *extra], env)
        self.buf = b''

    def send(self, line):
        self.p.stdin.write(line.encode() + b'\n')
        self.p.stdin.flush()

    def readline(self, timeout=TIMEOUT):
        """One line of stdout, None at EOF; Failed on timeout."""
        deadline = time.monotonic() + timeout
        while b'\n' not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Failed(f'no answer in {timeout:g}s (got {self.buf[:200]!r})')
            ready, _, _ = select.select([self.p.stdout], [], [], left)
            if ready:
                c = os.read(self.p.stdout.fileno(), 65536)
                if not c:
                    return None
                self.buf += c
        line, _, self.buf = self.buf.partition(b'\n')
        return line

    def ask(self, line, timeout=TIMEOUT):
        self.send(line)
        got = self.readline(timeout)
        check(got is not None, f'{line!r}: the shell ended (status {self.p.poll()}, '
              f'stderr {self.p.stderr.read()[:300]!r})' if got is None else '')
        try:
            return json.loads(got)
        except ValueError:
            raise Failed(f'{line!r}: not JSON: {got[:200]!r}')

    def close(self, timeout=TIMEOUT):
        try:
            self.p.stdin.close()
        except OSError:
            pass
        try:
            status = self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            raise Failed(f'the shell did not end within {timeout:g}s of EOF')
        return status, self.p.stderr.read()

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()


def run_all(db, scripts, slow, env=None, pause=0.002):
    """Runs one shell per script at once; slow[i] feeds script i a few lines
    at a time, up to `pause` seconds apart. Returns [(status, [objects],
    stderr)]."""
    # 0.3 s: every shell has started and connected: they race from there
    return ledger_checks.run_all(lambda: spawn(['--json', '--store', db.uri], env),
                                 scripts, slow, TIMEOUT, pause=pause, settle=0.3)


# ---- checks of this store ----

def check_commit_order(commits):
    """Positions are handed out in commit order: each transaction's events
    are one run of positions, and commit times rise with position."""
    seen, last = set(), None
    for p, xid, ts in commits:
        if last is not None and xid == last[1]:
            continue
        check(xid not in seen, f'position {p}: transaction {xid} wrote events before '
              f'and after another transaction\'s')
        if last is not None:
            check(ts > last[2], f'position {p} committed at {ts:.6f}, position '
                  f'{last[0]} (an earlier one, another transaction) at {last[2]:.6f}')
        seen.add(xid)
        last = (p, xid, ts)
    return len(seen)


def final_refresh(db):
    """A last refresh on its own: its answer, `balances`, the kept table and
    the checkpoint all equal the replay of the events. Returns the refresh."""
    run = run_json(db, 'refresh\nbalances\nstatus\n')
    check_final_refresh(run, db.events(), db.sheet(), db.checkpoint(), 'postgresql')
    return run[1][0]


# ---- 1. the CLI cases ----

def cli_case(case):
    """None when the case picks its own store; else checks it with the CLI
    runner's own comparison (tests/cli_test.py), status naming postgresql."""
    args, env, own_store = cli_test.load(case, CLUSTER.env)
    if own_store:
        return None
    with Database('cli_' + os.path.basename(case)) as db:
        p = subprocess.run(WRAPPER + [BIN, '--store', db.uri] + args,
                           input=cli_test.read(case + '.cqrs'), capture_output=True,
                           cwd=CLI_DIR, env=env, timeout=TIMEOUT)
        ran = cli_test.ran_commands(p, args)
        failures = []
        if ran and not db.has('simplecqrs_meta'):
            failures.append('the shell ran, but the tables were not made')
    failures += cli_test.compare(case, args, p, 'postgresql')
    check(not failures, '\n' + '\n'.join(failures))
    return ran


def test_cli(checks):
    cases = sorted(f[:-5] for f in os.listdir(CLI_DIR) if f.endswith('.cqrs'))
    check(cases, f'no cases in {CLI_DIR}')
    ran = skipped = 0
    for name in cases:
        case = os.path.join(CLI_DIR, name)
        if cli_test.load(case, {})[2]:	# it picks its own store
            skipped += 1
            continue
        r = checks(f'cli {name}', cli_case, case)
        ran += bool(r)
    print(f'cli: {len(cases) - skipped} cases on PostgreSQL ({ran} ran commands), '
          f'{skipped} pick their own store', flush=True)


# ---- 2. the same script on memory and on PostgreSQL ----

def model_script(rng, n):
    accts = ['M0', 'M1', 'M2', 'M3', 'm3', 'M.4', 'X' * 64]
    lines = []
    for _ in range(n):
        a, b = rng.sample(accts, 2)
        amt = str(rng.choice([1, 2, 5, 50, 99, 100, 500, 1000, rng.randint(1, 3000),
                              2**63 - 1, 2**62]))
        r = rng.random()
        if r < 0.22:
            lines.append(f'deposit {a} {amt}')
        elif r < 0.40:
            lines.append(f'withdraw {a} {amt}')
        elif r < 0.58:
            lines.append(f'transfer {a} {b} {amt}')
        elif r < 0.66:
            lines.append('refresh')
        elif r < 0.72:
            lines.append('balances')
        elif r < 0.77:
            lines.append(f'balance {a}')
        elif r < 0.82:
            lines.append(f'history {a}')
        elif r < 0.85:
            lines.append('status')
        elif r < 0.87:
            lines.append('rebuild')
        else:
            lines.append(rng.choice([
                f'withdraw NEW{rng.randrange(3)} 5', f'transfer {a} {a} 1',
                f'deposit {a} 0', f'deposit {a} 01', f'deposit bad/id 5', 'deposit',
                f'transfer {a} {b} -3', 'frobnicate', f'DEPOSIT\t{a}  7\r',
                '# a comment', '', f'  balance {a}  # trailing', f'withdraw {a}',
                f'deposit {a} 99999999999999999999']))
    return '\n'.join(lines) + '\n'


def test_model(checks):
    rng = random.Random(int(os.environ.get('SIMPLECQRS_PG_SEED', '7')))
    for k, n in enumerate((500, 500, 500, 2000)):
        text = model_script(rng, n)

        def same(text=text):
            mem = run(['--json'], text)
            with Database(f'model{k}') as db:
                pg = run(['--json', '--store', db.uri], text)

            def mask(b):
                b = TIME_RE.sub(b'<time>', b)
                return b.replace(b'"store":"memory"', b'"store":"postgresql"')
            # postgresql's status says where the ledger is (its URI, which
            # has no password here); memory's has no location
            loc = (',"location":"' + db.uri + '"').encode()
            m = mask(mem.stdout).splitlines()
            g = mask(pg.stdout.replace(loc, b'')).splitlines()
            check(len(m) > n // 2, f'memory printed {len(m)} lines for {n}')
            for i, (x, y) in enumerate(zip(m, g)):
                check(x == y, f'result {i + 1} differs:\n  memory     {x[:300]!r}\n'
                      f'  postgresql {y[:300]!r}')
            check(len(m) == len(g), f'memory printed {len(m)} lines, '
                  f'postgresql {len(g)}')
            check(mem.returncode == pg.returncode and mem.stderr == pg.stderr,
                  f'memory: {mem.returncode} {mem.stderr[:200]!r}; '
                  f'postgresql: {pg.returncode} {pg.stderr[:200]!r}')
            st = [json.loads(l) for l in pg.stdout.splitlines() if b'"cmd":"status"' in l]
            check(st and all(s['store'] == 'postgresql' for s in st),
                  f'status on postgresql: {st[:1]}')
            return len(m)
        checks(f'model: script {k + 1} ({n} lines) prints the same on memory and '
               f'postgresql', same)


# ---- 3. racing writers ----

def test_race(checks, racers=8, rounds=200):
    accounts = ['R0', 'R1', 'R2', 'R3']
    rng = random.Random(int(os.environ.get('SIMPLECQRS_PG_SEED', '1')))
    with Database('race') as db:
        seed = [f'deposit {a} {200000 + 1000 * k}' for k, a in enumerate(accounts)]
        seeded = sum(200000 + 1000 * k for k in range(len(accounts)))
        seed_run = run_json(db, '\n'.join(seed) + '\n')
        checks('race: the seeding run', lambda: check(
            seed_run[0] == 0 and len(seed_run[1]) == len(seed) and
            all(o['ok'] for o in seed_run[1]), f'seeding: {seed_run}'))
        scripts = []
        for _ in range(racers):
            lines = []
            for _ in range(rounds):
                a, b = rng.sample(accounts, 2)
                if rng.random() < 0.45:
                    lines.append(f'withdraw {a} {rng.randint(1, 3000)}')
                else:
                    lines.append(f'transfer {a} {b} {rng.randint(1, 4000)}')
            scripts.append(lines)
        started = time.monotonic()
        results = run_all(db, scripts, [i % 4 != 3 for i in range(racers)], pause=0.012)
        took = time.monotonic() - started
        checks('race: every shell exits 0 or 1 (never 3 or a signal), one result '
               'per command, nothing on stderr', check_statuses, scripts, results)
        counts = checks('race: each result is its command\'s, refusals only '
                        'insufficient_funds or conflict', check_results_match,
                        scripts, results,
                        {'withdraw': ('insufficient_funds', 'conflict'),
                         'transfer': ('insufficient_funds', 'conflict')}) or {}
        events, streams = db.events(), db.streams()
        checks('race: positions 1..max without gaps, versions 1..n, no balance '
               'ever negative', check_events, events, streams)
        everyone = [seed_run] + results
        tally = checks('race: successful deposits + withdrawals + 2 x transfers '
                       '= events, each at its printed position', check_claims,
                       everyone, events)

        checks('race: money is conserved', check_conserved, events, results, seeded)
        txs = checks('race: positions are in commit order (commit timestamps rise, '
                     'each transaction one run of positions)', check_commit_order,
                     db.commits())

        switches = checks('race: the shells did race', check_raced, results, counts,
                          2 * racers)
        checks('race: a last refresh equals the replay', final_refresh, db)
        print(f'race: {racers} shells x {rounds} commands in {took:.1f}s, '
              f'{len(events)} events, {counts.get("insufficient_funds", 0)} '
              f'insufficient_funds, {counts.get("conflict", 0)} conflict, '
              f'{switches} switches between shells, {txs} transactions', flush=True)


def test_stale(checks):
    """A shell's group looks at an account that has no stream yet; another
    shell then opens it; the first shell's next group catches up (its
    writer table knew the account as new) and writes on it as the
    replay says, never as new again, never refusing it as unknown."""
    with Database('stale') as db:
        a, b = Coproc(db), Coproc(db)
        try:
            def caught_up():
                a.send('deposit A 1\nwithdraw N 1')   # one group: N asked in it
                first, second = a.readline(), a.readline()
                check(json.loads(first).get('ok') and
                      json.loads(second).get('error') == 'unknown_account',
                      f'{first!r} {second!r}')
                check(b.ask('deposit N 5').get('ok'), 'deposit N 5 in the other shell')
                for line in ('deposit A 1\nwithdraw N 2', 'withdraw N 3'):
                    a.send(line)
                    got = [json.loads(a.readline()) for _ in line.split('\n')]
                    check(all(o.get('ok') for o in got), f'{line!r}: {got}')
                check(db.rows("SELECT version, balance FROM streams WHERE name = 'N'")
                      == [['3', '0']], f"N's row: {db.rows('SELECT * FROM streams')}")
            checks('stale: a group that knew an account as new catches up with '
                   'the shell that opened it', caught_up)
        finally:
            a.kill()
            b.kill()


# ---- 4. a writer holding its position open: refresh never skips it ----

def holding_insert(db):
    """pids of sessions idle in a transaction whose last statement wrote an
    event (a writer between its INSERT and its COMMIT) in db."""
    return db.rows("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                   "AND state = 'idle in transaction' AND query LIKE 'INSERT INTO events%'")


def test_gap(checks, delay_ms=1500):
    with Database('gap') as db:
        seed = run_json(db, 'deposit GA 1000\ndeposit GB 1000\ndeposit GC 1000\nrefresh\n')
        check(seed[0] == 0, f'seeding: {seed}')
        c_log, c_err, stop = [], [], threading.Event()
        c = Coproc(db)
        a = b = w = None

        def refresher():
            try:
                while not stop.is_set():
                    for cmd in ('refresh', 'balances'):
                        sent = time.time()
                        o = c.ask(cmd)
                        c_log.append((sent, time.time(), cmd, o))
                    time.sleep(0.02)
            except Exception as e:
                c_err.append(e)

        t = threading.Thread(target=refresher, daemon=True)
        try:
            t.start()
            slow_env = dict(CLUSTER.env, SIMPLECQRS_TEST_COMMIT_DELAY_MS=str(delay_ms))
            a, b, w = Coproc(db, slow_env), Coproc(db), Coproc(db)
            time.sleep(0.3)             # all three connected and idle
            a_sent = time.time()
            a.send('deposit GA 5')
            held = None
            while time.time() < a_sent + 5:
                if holding_insert(db):
                    held = time.time()
                    break
                time.sleep(0.01)
            time.sleep(max(0.0, a_sent + 0.2 - time.time()))
            b_sent = time.time()
            b.send('deposit GB 7')
            w.send('transfer GC GD 11')
            arrived = {}
            names = {a: 'A', b: 'B', w: 'W'}
            while len(arrived) < 3 and time.time() < a_sent + TIMEOUT:
                for s in names:
                    if names[s] in arrived:
                        continue
                    ready, _, _ = select.select([s.p.stdout], [], [], 0.005)
                    if ready:
                        line = s.readline()
                        arrived[names[s]] = (time.time(),
                                             json.loads(line) if line else None)
            time.sleep(0.3)             # C refreshes once more after the writers
        finally:
            stop.set()
            t.join(TIMEOUT)
            for s in (a, b, w):
                if s is not None:
                    s.close()
        c_status, c_stderr = c.close()

        def writers():
            check(len(arrived) == 3 and all(o for _, o in arrived.values()),
                  f'answers: {arrived}')
            for k, want in (('A', 'deposit'), ('B', 'deposit'), ('W', 'transfer')):
                check(arrived[k][1].get('ok') and arrived[k][1]['cmd'] == want,
                      f'{k}: {arrived[k][1]}')
            check(held is not None, 'A was never seen holding its transaction open '
                  'after writing its event (is SIMPLECQRS_TEST_COMMIT_DELAY_MS honoured?)')
            check(arrived['A'][0] - a_sent >= delay_ms / 1000 - 0.05,
                  f'A answered {arrived["A"][0] - a_sent:.3f}s after its deposit, '
                  f'before its {delay_ms} ms commit delay was over')
            pa, pb, pw = (arrived[k][1]['position'] for k in 'ABW')
            check(pa < pb and pa < pw - 1, f'positions: A {pa}, B {pb}, W {pw}: '
                  'commit order is not position order')
            committed = {p: ts for p, _, ts in db.commits()}
            check(committed[pa] < committed[pb] and committed[pa] < committed[pw],
                  f'commit times: A {committed[pa]:.6f}, B {committed[pb]:.6f}, '
                  f'W {committed[pw]:.6f}: A committed after a later position')
            check(arrived['B'][0] > committed[pa] and arrived['W'][0] > committed[pa],
                  f'B answered {arrived["B"][0] - committed[pa]:+.6f}s and W '
                  f'{arrived["W"][0] - committed[pa]:+.6f}s after A committed '
                  f'({committed[pa] - a_sent:.3f}s after A\'s deposit)')
            check(arrived['B'][0] - b_sent > 0.8,
                  f'B answered {arrived["B"][0] - b_sent:.3f}s after it was asked: '
                  f'it did not wait for A\'s lock')
        checks('gap: A holds its position open; B and W wait, take later positions '
               'and answer after A commits', writers)

        def refreshes():
            check(not c_err, f'shell C: {c_err[:1]}')
            check(c_stderr == b'' and c_status in (0, 1),
                  f'shell C: status {status_text(c_status)}, stderr {c_stderr[:200]!r}')
            bad = [o for _, _, _, o in c_log if not o['ok'] and o.get('error') != 'conflict']
            check(not bad, f'shell C: {bad[:3]}')
            check(len(c_log) > 20, f'shell C asked only {len(c_log)} times')
            during = [o for sent, answered, cmd, o in c_log if cmd == 'refresh' and
                      sent < arrived['A'][0] - 0.1 and answered > held]
            check(during, 'shell C was not refreshing while A held its position')
            spans = refresh_spans(seed[1], 'seed') + refresh_spans(
                [o for _, _, _, o in c_log], 'C')
            check_spans_join(spans, max(hi for _, hi, _ in spans))
            events = db.events()
            check_balances_shown([(0, [o for _, _, _, o in c_log], b'')], events)
            last = final_refresh(db)
            check_spans_join(spans + refresh_spans([last], 'last'), len(events))
            check_events(events, db.streams())
            return sum(1 for _, _, cmd, _ in c_log if cmd == 'refresh')
        n = checks('gap: every refresh joins the one before (nothing skipped, nothing '
                   'twice); the final checkpoint is max(position), the table the replay',
                   refreshes)
        print(f'gap: A held {delay_ms} ms; shell C refreshed {n} times', flush=True)


# ---- 5. two shells refreshing while a third writes ----

def test_refresh(checks, rounds=3):
    conflicts = applied = shown = 0
    with Database('refresh') as db:
        start = 0
        for r in range(rounds + 1):
            rng = random.Random(100 + r)
            scripts = refresh_scripts(rng, 150, 200)
            if r == rounds:     # the last round: two refresh while four write
                scripts += [refresh_scripts(random.Random(200 + k), 0, 200)[2]
                            for k in range(3)]
            scripts.append(['balances'] * 300)      # a reader
            results = run_all(db, scripts, [True] * len(scripts))
            tag = f'refresh round {r + 1}' + (' (four writers)' if r == rounds else '')
            events = db.events()
            checkpoint = db.checkpoint()
            c, a, n = check_refresh_round(checks, tag, scripts, results, events,
                                          db.streams(), checkpoint, start)
            conflicts, applied, shown = conflicts + c, applied + a, shown + n

            def kept(checkpoint=checkpoint, events=events):
                sheet = db.sheet()
                want = {k: v for k, v in replay(events, checkpoint).items()}
                check(sheet == want, f'balances table {sheet}, replay to the '
                      f'checkpoint {checkpoint}: {want}')
            checks(f'{tag}: the kept table is the replay to its checkpoint', kept)
            last = checks(f'{tag}: a last refresh equals the replay', final_refresh, db)
            start = len(db.events())
            if last and last['applied']:
                applied += 1
    print(f'refresh: {rounds} rounds + 1 with four writers, {applied} refreshes that applied events, '
          f'{shown} balances checked, {conflicts} conflicts', flush=True)


# ---- 6. the server goes away under a shell ----

def test_stopped(checks):
    with Database('stopped') as db:
        s = Coproc(db)
        answered = []
        try:
            def before():
                for amt in (10, 20, 30):
                    o = s.ask(f'deposit X {amt}')
                    check(o.get('ok'), f'deposit X {amt}: {o}')
                    answered.append(o)
            checks('stopped: deposits answered while the server runs', before)
            CLUSTER.stop('fast')

            def after():
                o = s.ask('deposit X 40', timeout=30)
                check(not o['ok'] and o.get('error') == 'storage' and o.get('line') == 4,
                      f'deposit after the stop: {o}')
                try:
                    status = s.p.wait(20)
                except subprocess.TimeoutExpired:
                    raise Failed('the shell printed a storage error but was still '
                                 'running 20 s later with stdin open')
                rest = s.p.stdout.read()
                check(status == 3, f'exit status {status_text(status)}')
                check(rest == b'' and s.buf == b'', f'more output after the storage '
                      f'error: {(s.buf + rest)[:200]!r}')
            checks('stopped: the next deposit prints a storage error, exit 3', after)
        finally:
            s.kill()
            if not CLUSTER.running:
                CLUSTER.start()

        def truth():
            status, objs, err = run_json(db, 'status\nhistory X\n')
            check(status == 0 and len(objs) == 2, f'{status} {objs} {err[:200]!r}')
            st, hist = objs
            check(st['head'] == 3 and st['streams'] == 1, f'status: {st}')
            got = [(e['version'], e['position'], e['amount']) for e in hist['events']]
            want = [(o['version'], o['position'], o['amount']) for o in answered]
            check(got == want, f'history {got}; answered before the stop {want}')
        checks('stopped: after a restart the ledger is exactly what was answered', truth)

    with Database('stopped_stream') as db:
        def mid_stream():
            """Stopped under a shell piping a long script (groups of many
            commands): exit 3, one storage error last, and every result shown
            before it is in the ledger where it said."""
            text = ''.join(f'deposit S{i % 50} {i + 1}\n' for i in range(300000))
            p = spawn(['--json', '--store', db.uri])

            def feed():
                try:
                    p.stdin.write(text.encode())
                    p.stdin.close()
                except (BrokenPipeError, OSError):
                    pass
            threading.Thread(target=feed, daemon=True).start()
            got, stopped = b'', False
            deadline = time.monotonic() + TIMEOUT
            while time.monotonic() < deadline:
                ready, _, _ = select.select([p.stdout], [], [], 0.5)
                c = os.read(p.stdout.fileno(), 1 << 16) if ready else b''
                if ready and not c:
                    break
                got += c
                if not stopped and got.count(b'\n') >= 2000:
                    CLUSTER.stop('fast')
                    stopped = True
            try:
                status = p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
                raise Failed('still running 20 s after its output ended')
            err = p.stderr.read()
            if not CLUSTER.running:
                CLUSTER.start()
            check(stopped, f'the shell ended before 2000 results: status {status}, '
                  f'stderr {err[:200]!r}, {got[-300:]!r}')
            objs = [json.loads(l) for l in got.splitlines()]
            check(status == 3, f'exit status {status_text(status)}')
            check(objs[-1].get('error') == 'storage' and
                  sum(1 for o in objs if not o['ok']) == 1,
                  f'the output does not end with its one storage error: {objs[-2:]}')
            check(len(objs) < 300000, 'every deposit was answered: the stop came too late')
            shown = objs[:-1]
            kept = {e[0]: e for e in db.events()}
            missing = [o for o in shown if kept.get(o['position']) !=
                       (o['position'], o['account'], o['version'], 'AccountCredited',
                        o['amount'])]
            check(not missing, f'{len(missing)} results shown are not in the ledger, '
                  f'first {missing[:2]}')
            return len(shown), len(kept)
        r = checks('stopped: mid-stream, every result shown before the storage error '
                   'is kept', mid_stream)
        if r:
            print(f'stopped: {r[0]} results shown before the stop, {r[1]} events kept',
                  flush=True)

    with Database('killed_commit') as db:
        def killed_commit():
            """The connection dies while a group commits on its own (at
            16,384 events: text results are short, so less than the 1 MiB
            that would make the shell commit first): nothing that group
            printed may be shown, even though later commits would work."""
            env = dict(CLUSTER.env, SIMPLECQRS_TEST_COMMIT_DELAY_MS='3000',
                       PGAPPNAME='victim')
            # from a file: a pipe would make the shell wait for input, and
            # commit, every 64 KiB
            script = tempfile.TemporaryFile()
            script.write(''.join(f'deposit K{i % 400} 1\n' for i in range(16390)).encode())
            script.seek(0)
            p = subprocess.Popen(WRAPPER + [BIN, '--store', db.uri], stdin=script,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
            PROCS.append(p)
            deadline = time.monotonic() + 20
            killed = []
            while time.monotonic() < deadline and not killed:
                time.sleep(0.2)	# the commit sleeps 3 s; idle 1 s is that
                killed = db.rows("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                 "WHERE application_name = 'victim' "
                                 "AND state = 'idle in transaction' "
                                 "AND state_change < now() - interval '1 second'")
            out, err = p.communicate(timeout=TIMEOUT)
            check(killed, 'the shell was never seen holding its group open')
            check(p.returncode == 3, f'exit status {status_text(p.returncode)}')
            check(out == b'', f'{out.count(b"deposited")} results shown: {out[:200]!r}')
            check(err.count(b'\n') == 1 and b'storage failed' in err, f'stderr {err!r}')
            check(db.events() == [], f'{len(db.events())} events kept')
        checks('stopped: a group whose connection dies as it commits shows nothing of it',
               killed_commit)

    with Database('killed_record') as db:
        def killed_record():
            """The connection dies while a long JSON line (a `balances` of
            over 1 MiB) is being written and the group before it commits:
            not a byte of that line may follow the loss."""
            seed = ''.join(f'deposit R{i:05} 1\n' for i in range(40000)) + 'refresh\n'
            status, _, err = run_json(db, seed)
            check(status == 0, f'seeding: {status} {err[:200]!r}')
            env = dict(CLUSTER.env, SIMPLECQRS_TEST_COMMIT_DELAY_MS='3000',
                       PGAPPNAME='victim')
            script = tempfile.TemporaryFile()
            script.write(b'deposit R00000 1\nbalances\n')
            script.seek(0)
            p = subprocess.Popen(WRAPPER + [BIN, '--json', '--store', db.uri], stdin=script,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
            PROCS.append(p)
            deadline = time.monotonic() + 20
            killed = []
            while time.monotonic() < deadline and not killed:
                time.sleep(0.2)
                killed = db.rows("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                 "WHERE application_name = 'victim' "
                                 "AND state = 'idle in transaction' "
                                 "AND state_change < now() - interval '1 second'")
            out, err = p.communicate(timeout=TIMEOUT)
            check(killed, 'the shell was never seen holding its group open')
            check(p.returncode == 3, f'exit status {status_text(p.returncode)}')
            lines = out.splitlines()
            check(len(lines) == 1 and json.loads(lines[0]).get('error') == 'storage',
                  f'{len(lines)} lines, {len(out)} bytes: {out[:120]!r}')
            check(len(db.events()) == 40000, f'{len(db.events())} events kept')
        checks('stopped: no part of a long line follows a group lost under it',
               killed_record)

    with Database('stopped_read') as db:
        r = Coproc(db)
        try:
            def read_after_stop():
                check(r.ask('deposit X 1').get('ok'), 'deposit X 1 failed')
                o = r.ask('status')
                check(o.get('ok') and o['head'] == 1, f'status: {o}')
                CLUSTER.stop('fast')
                o = r.ask('balances', timeout=30)
                check(not o['ok'] and o.get('error') == 'storage',
                      f'balances after the stop: {o}')
                try:
                    status = r.p.wait(20)
                except subprocess.TimeoutExpired:
                    raise Failed('still running 20 s after its storage error')
                check(status == 3, f'exit status {status_text(status)}')
            checks('stopped: a read after the stop is a storage error, exit 3',
                   read_after_stop)
        finally:
            r.kill()
            if not CLUSTER.running:
                CLUSTER.start()


# ---- 6b. a fault at every point of a bulk group ----

# Server-side faults, one per database: a trigger that fails one statement
# of a group's pipeline (the streams' rows, the checkpoint, the sheet's rows,
# the events of a full batch, of a batch a refresh sends, of the last batch),
# or the COMMIT itself (a deferred constraint trigger). The script is read
# from a file, so groups are long (they end at the group bound) and hold
# several batches.
FAULT_FN = """
CREATE FUNCTION simplecqrs_fault() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'injected fault (%)', TG_ARGV[0]; END $$;
CREATE FUNCTION simplecqrs_fault_late() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF (SELECT position FROM checkpoint WHERE id = 1) > 20000 THEN
    RAISE EXCEPTION 'injected fault (%)', TG_ARGV[0];
  END IF;
  RETURN NEW;
END $$;
"""
FAULTS = {
    'streams': 'BEFORE INSERT OR UPDATE ON streams FOR EACH ROW '
               'WHEN (NEW.version > 45) EXECUTE FUNCTION simplecqrs_fault(\'streams\')',
    # the flush's checkpoint row, not the save's move of it (which came first)
    'checkpoint': 'BEFORE UPDATE ON checkpoint FOR EACH ROW WHEN (NEW.position > 20000 '
                  'AND OLD.position = NEW.position) '
                  'EXECUTE FUNCTION simplecqrs_fault(\'checkpoint\')',
    'sheet': 'BEFORE INSERT OR UPDATE ON balances FOR EACH ROW '
             'EXECUTE FUNCTION simplecqrs_fault_late(\'sheet\')',
    'refresh batch': 'BEFORE INSERT ON events FOR EACH ROW WHEN (NEW.position = 17000) '
                     'EXECUTE FUNCTION simplecqrs_fault(\'events\')',
    'full batch': 'BEFORE INSERT ON events FOR EACH ROW WHEN (NEW.position = 23500) '
                  'EXECUTE FUNCTION simplecqrs_fault(\'events\')',
    'last batch': 'BEFORE INSERT ON events FOR EACH ROW WHEN (NEW.position = 29990) '
                  'EXECUTE FUNCTION simplecqrs_fault(\'events\')',
}
FAULT_COMMIT = ('AFTER INSERT ON events DEFERRABLE INITIALLY DEFERRED FOR EACH ROW '
                'WHEN (NEW.position = 29000) EXECUTE FUNCTION simplecqrs_fault(\'commit\')')


def fault_script():
    lines = []
    for i in range(30000):
        lines.append(f'deposit F{i % 500:03} {i % 97 + 1}')
        if i % 10000 == 9999 - 2000:
            lines.append('refresh')
    return ''.join(l + '\n' for l in lines)


def test_faults(checks):
    text = fault_script()
    cases = [(name, f'CREATE TRIGGER simplecqrs_fault {sql}') for name, sql in FAULTS.items()]
    cases.append(('commit', f'CREATE CONSTRAINT TRIGGER simplecqrs_fault {FAULT_COMMIT}'))
    for name, trigger in cases:
        with Database('fault_' + name) as db:
            status, _, err = run_json(db, 'status\n')   # the tables
            check(status == 0, f'making the ledger: {err[:200]!r}')
            db.rows(FAULT_FN)
            db.rows(trigger)

            def faulted(db=db, name=name):
                script = tempfile.TemporaryFile()
                script.write(text.encode())
                script.seek(0)
                p = subprocess.run(WRAPPER + [BIN, '--json', '--store', db.uri],
                                   stdin=script, capture_output=True, env=CLUSTER.env,
                                   timeout=TIMEOUT)
                objs = [json.loads(l) for l in p.stdout.splitlines()]
                check(p.returncode == 3, f'exit status {status_text(p.returncode)}, '
                      f'stderr {p.stderr[:300]!r}')
                check(objs and objs[-1].get('error') == 'storage' and
                      sum(1 for o in objs if not o['ok']) == 1,
                      f'the output does not end with its one storage error: {objs[-2:]}')
                check(b'injected fault' in p.stdout, f'not the injected fault: {objs[-1]}')
                shown = [o for o in objs[:-1] if o['cmd'] == 'deposit']
                events = db.events()
                kept = {e[0]: e for e in events}
                missing = [o for o in shown if kept.get(o['position']) !=
                           (o['position'], o['account'], o['version'], 'AccountCredited',
                            o['amount'])]
                check(not missing, f'{len(missing)} results shown are not in the ledger, '
                      f'first {missing[:2]}')
                check(len(events) == len(shown), f'{len(events)} events kept, '
                      f'{len(shown)} acknowledged: half a group was kept')
                check_events(events, db.streams())
                want = replay(events)
                rows = {s: (int(v), int(b)) for s, v, b in
                        db.rows('SELECT name, version, balance FROM streams')}
                versions = {}
                for _, s, v, _, _ in events:
                    versions[s] = v
                check(rows == {s: (versions[s], want[s]) for s in want},
                      'the streams\' rows are not their events\' versions and sums')
                checkpoint = db.checkpoint()
                check(checkpoint <= len(events) and
                      db.sheet() == replay(events, checkpoint),
                      f'the kept sheet is not the replay to its checkpoint {checkpoint}')
                return len(shown)
            n = checks(f'faults: {name}: the group is lost whole, every result shown '
                       f'is kept and nothing else', faulted)
            if n is not None:
                print(f'faults: {name}: {n} results shown and kept', flush=True)


# ---- 7. unreachable servers, and passwords ----

def test_unreachable(checks):
    def refused(uri, secret=None, want='simplecqrs: cannot open store'):
        p = run(['--store', uri], 'deposit A 1\nstatus\n', timeout=60)
        err = p.stderr.decode(errors='replace')
        check(p.returncode == 2, f'exit status {status_text(p.returncode)}, stderr {err!r}')
        check(err.count('\n') == 1 and err.startswith(want), f'stderr {err!r}')
        check(p.stdout == b'', f'stdout {p.stdout[:200]!r}')
        if secret:
            check(secret.encode() not in p.stdout + p.stderr, f'the password is shown: {err!r}')
        return err.strip()

    checks('unreachable: nothing listening: exit 2, one line, empty stdout',
           refused, 'postgresql://127.0.0.1:1/x')
    checks('unreachable: postgres:// too', refused, 'postgres://127.0.0.1:1/x')
    checks('unreachable: a password in the URI is not shown',
           refused, 'postgresql://u:s3cret@127.0.0.1:1/x', 's3cret')
    checks('unreachable: a password parameter is not shown',
           refused, 'postgresql://u@127.0.0.1:1/x?password=s3cret&connect_timeout=5',
           's3cret')
    checks('unreachable: a missing database with a password: not shown',
           refused, f'postgresql://{CLUSTER.user}:s3cret@/no_such_db_here', 's3cret')
    with Database('password') as db:
        for uri in (f'postgresql://{CLUSTER.user}:s3cret@/{db.name}',
                    f'postgres://{CLUSTER.user}:s3cret@/{db.name}?password=s3cret'):
            for mode in ([], ['--echo'], ['--json']):
                def shown(uri=uri, mode=mode):
                    p = run(['--store', uri] + mode,
                            'deposit A 5\nstatus\nwithdraw A 999999\nbalances\n')
                    out = p.stdout.decode(errors='replace')
                    check(p.returncode == 1, f'exit status {p.returncode}, '
                          f'stderr {p.stderr[:200]!r}')
                    check('postgresql' in out, f'status does not name the store: {out!r}')
                    check(b's3cret' not in p.stdout + p.stderr,
                          f'the password is shown: {(p.stdout + p.stderr)[:400]!r}')
                checks(f'unreachable: a working store with a password in '
                       f'{uri.split(":")[0]}:// {" ".join(mode) or "text"} mode '
                       f'does not show it', shown)


# ---- 8. databases that are not ours ----

def test_foreign(checks):
    def refused(db, want=None):
        p = run(['--store', db.uri], 'deposit A 1\n', timeout=60)
        err = p.stderr.decode(errors='replace')
        check(p.returncode == 2, f'exit status {status_text(p.returncode)}, stderr {err!r}')
        check(err.count('\n') == 1 and err.startswith('simplecqrs: cannot open store'),
              f'stderr {err!r}')
        if want:
            check(want in err, f'stderr {err!r} does not say {want!r}')
        check(p.stdout == b'', f'stdout {p.stdout[:200]!r}')
        return err.strip()

    for table in ('events', 'checkpoint'):
        with Database('foreign_' + table) as db:
            db.rows(f'CREATE TABLE {table} (id int PRIMARY KEY, note text); '
                    f"INSERT INTO {table} VALUES (1, 'mine'), (2, 'also mine')")
            schema = ("SELECT table_name, column_name, data_type FROM "
                      "information_schema.columns WHERE table_schema = 'public' "
                      "ORDER BY 1, ordinal_position")
            before = db.rows(schema), db.rows(f'SELECT * FROM {table} ORDER BY id')

            def untouched(db=db, table=table, before=before):
                refused(db, table)
                after = db.rows(schema), db.rows(f'SELECT * FROM {table} ORDER BY id')
                check(after == before, f'before {before}, after {after}')
            checks(f'foreign: a database with someone else\'s {table} table is refused '
                   'and left untouched', untouched)

    with Database('newer') as db:
        status, objs, err = run_json(db, 'deposit A 5\n')
        check(status == 0, f'making the ledger: {status} {objs} {err!r}')
        db.rows("UPDATE simplecqrs_meta SET value = '3' WHERE key = 'schema_version'")

        def newer():
            refused(db)
            check(db.events() == [(1, 'A', 1, 'AccountCredited', 5)],
                  f'events {db.events()}')
            check(db.rows("SELECT value FROM simplecqrs_meta WHERE key = 'schema_version'")
                  == [['3']], 'the schema version was changed')
        checks('foreign: schema_version 3 is refused, the ledger untouched', newer)

        for bad in ('', '1abc', '-3', '99999999999999999999'):
            db.rows(f"UPDATE simplecqrs_meta SET value = '{bad}' WHERE key = 'schema_version'")

            def damaged(bad=bad):
                err = refused(db)
                check('damaged' in err, f'schema_version {bad!r}: {err!r}')
            checks(f'foreign: schema_version {bad!r} is refused as damaged', damaged)
        db.rows("DELETE FROM simplecqrs_meta")
        checks('foreign: a ledger without its schema_version is refused as damaged',
               lambda: check('damaged' in refused(db), 'no schema_version row'))


# ---- 8b. a schema-1 ledger is upgraded in place ----

# The schema of simplecqrs 0.1 (schema_version 1), as its store_pg.c made it:
# streams without their balance.
SCHEMA_1 = """
CREATE TABLE simplecqrs_meta (
  key text PRIMARY KEY,
  value text NOT NULL
);
CREATE TABLE streams (
  name text PRIMARY KEY,
  version bigint NOT NULL CHECK (version > 0)
);
CREATE TABLE events (
  position bigint PRIMARY KEY CHECK (position > 0),
  stream text NOT NULL REFERENCES streams (name),
  version bigint NOT NULL CHECK (version > 0),
  type text NOT NULL CHECK (type IN ('AccountCredited', 'AccountDebited')),
  amount bigint NOT NULL CHECK (amount > 0),
  time timestamptz NOT NULL,
  UNIQUE (stream, version)
);
CREATE TABLE balances (
  account text PRIMARY KEY,
  balance bigint NOT NULL CHECK (balance >= 0)
);
CREATE TABLE checkpoint (
  id int PRIMARY KEY CHECK (id = 1),
  position bigint NOT NULL
);
INSERT INTO checkpoint VALUES (1, 0);
INSERT INTO simplecqrs_meta VALUES ('schema_version', '1');
"""

# A ledger as schema 1 kept it, made consistent by hand: A deposits 100,
# withdraws 30, deposits 5 (75, version 3); B deposits 50 and withdraws it
# all (0, version 2); C deposits 7; a refresh after position 4.
LEDGER_1 = [('A', 1, 'AccountCredited', 100), ('B', 1, 'AccountCredited', 50),
            ('A', 2, 'AccountDebited', 30), ('C', 1, 'AccountCredited', 7),
            ('B', 2, 'AccountDebited', 50), ('A', 3, 'AccountCredited', 5)]


def make_ledger_1(db, events=LEDGER_1, checkpoint=4):
    db.rows(SCHEMA_1)
    versions = {}
    for s, v, _, _ in events:
        versions[s] = max(versions.get(s, 0), v)
    db.rows('INSERT INTO streams VALUES ' +
            ', '.join(f"('{s}', {v})" for s, v in sorted(versions.items())))
    db.rows('INSERT INTO events VALUES ' + ', '.join(
        f"({p}, '{s}', {v}, '{t}', {a}, timestamptz '2026-01-02 03:04:05.678+00' "
        f"+ {p} * interval '1 second')" for p, (s, v, t, a) in enumerate(events, 1)))
    sheet = {}
    for s, _, t, a in events[:checkpoint]:
        sheet[s] = sheet.get(s, 0) + (a if t == 'AccountCredited' else -a)
    db.rows('INSERT INTO balances VALUES ' +
            ', '.join(f"('{s}', {b})" for s, b in sorted(sheet.items())))
    db.rows(f'UPDATE checkpoint SET position = {checkpoint}')


# The statements a schema-1 program runs on a ledger it is connected to,
# exactly as its SQL had them (git show 4b64e3d:src/store_pg.c): an append
# claimed each stream's next version (a new stream inserted at version 1),
# then wrote the event; a conflict put the claim back. It never wrote
# balance.
OLD_STREAM_NEW = "INSERT INTO streams (name, version) VALUES ('{n}', 1) ON CONFLICT DO NOTHING"
OLD_STREAM_BUMP = "UPDATE streams SET version = version + 1 WHERE name = '{n}' AND version = {v}"
OLD_STREAM_UNDO = "UPDATE streams SET version = version - 1 WHERE name = '{n}'"
OLD_EVENT_ADD = ("INSERT INTO events (position, stream, version, type, amount, time) "
                 "VALUES ({p}, '{n}', {v1}, 'AccountDebited', 1, "
                 "timestamptz 'epoch' + 1795899784000 * interval '1 millisecond')")


def old_program_refused(db, name, version, head):
    """Each of the old program's groups on stream name (at version; the
    ledger's last position head), as one transaction (psql -1: the first
    failure rolls it all back), fails with a constraint's error; nothing
    of them is kept."""
    before = whole(db)
    fields = dict(n=name, v=version, v1=version + 1, p=head + 1)
    groups = {'a withdrawal (claim, then the event)': [OLD_STREAM_BUMP, OLD_EVENT_ADD],
              'a new account': [OLD_STREAM_NEW.replace("'{n}'", "'NEWBIE'"),
                                OLD_EVENT_ADD.replace("'{n}'", "'NEWBIE'")],
              "a conflict's undo": [OLD_STREAM_UNDO]}
    for what, steps in groups.items():
        p = subprocess.run(['psql', '-XAtq1', '-v', 'ON_ERROR_STOP=1', '-d', db.name,
                            '-c', '; '.join(x.format(**fields) for x in steps)],
                           env=CLUSTER.env, capture_output=True, timeout=TIMEOUT)
        err = p.stderr.decode(errors='replace')
        check(p.returncode != 0 and ('streams_balance_taken' in err or
                                     'balance_version' in err),
              f'the old program\'s {what}: exit {p.returncode} {err!r}')
    check(whole(db) == before, f'{name}: the old program\'s groups left something')


def whole(db):
    """Every row of every table, and the columns: what `left alone` means."""
    tables = ('simplecqrs_meta', 'streams', 'events', 'balances', 'checkpoint')
    return ([db.rows(f'SELECT * FROM {t} ORDER BY 1') for t in tables],
            db.rows("SELECT table_name, column_name, data_type, is_nullable, "
                    "column_default FROM information_schema.columns WHERE "
                    "table_schema = 'public' ORDER BY 1, 2"))


def test_upgrade(checks):
    with Database('upgrade') as db:
        make_ledger_1(db)
        events_before = db.rows('SELECT * FROM events ORDER BY position')
        sheet_before = db.sheet()

        def upgraded():
            status, objs, err = run_json(db, 'status\n')
            check(status == 0 and err == b'' and objs and objs[0].get('ok'),
                  f'opening a schema-1 ledger: {status} {objs} {err[:300]!r}')
            check(objs[0]['head'] == 6 and objs[0]['streams'] == 3, f'status {objs[0]}')
            check(db.rows("SELECT value FROM simplecqrs_meta WHERE key = "
                          "'schema_version'") == [['2']], 'schema_version is not 2')
            check(db.rows('SELECT * FROM events ORDER BY position') == events_before,
                  'the events changed')
            kept = {s: (int(v), int(b)) for s, v, b in
                    db.rows('SELECT name, version, balance FROM streams')}
            check(kept == {'A': (3, 75), 'B': (2, 0), 'C': (1, 7)},
                  f'streams (version, balance) {kept}')
            check(db.checkpoint() == 4, f'checkpoint {db.checkpoint()}')
            check(db.sheet() == sheet_before, f'sheet {db.sheet()}, was {sheet_before}')
            col = db.rows("SELECT data_type, is_nullable, column_default FROM "
                          "information_schema.columns WHERE table_name = 'streams' "
                          "AND column_name = 'balance'")
            check(col == [['bigint', 'NO', '0']], f'the balance column: {col}')
            col = db.rows("SELECT data_type, is_nullable, column_default FROM "
                          "information_schema.columns WHERE table_name = 'streams' "
                          "AND column_name = 'balance_version'")
            check(col == [['bigint', 'NO', '']], f'the balance_version column: {col}')
            taken = db.rows('SELECT count(*) FROM streams WHERE balance_version = version')
            check(taken == [['3']], f'rows whose balance is taken at their version: {taken}')
            fk = db.rows("SELECT count(*) FROM pg_constraint WHERE conname = "
                         "'events_stream_fkey'")
            check(fk == [['0']], 'the events\' foreign key is still there')
            p = subprocess.run(['psql', '-XAtq', '-d', db.name, '-c',
                                "UPDATE streams SET balance = -1 WHERE name = 'C'"],
                               env=CLUSTER.env, capture_output=True, timeout=TIMEOUT)
            check(p.returncode != 0 and b'check' in p.stderr.lower(),
                  'a negative balance is not refused by the column\'s check')
        checks('upgrade: a schema-1 ledger opens upgraded in place: events, stream '
               'versions, balances (the new column), checkpoint and sheet as they were',
               upgraded)

        checks('upgrade: the statements of a schema-1 program still connected fail '
               '(its transaction rolls back), nothing of them kept',
               lambda: old_program_refused(db, 'A', 3, 6))

        def decides():
            status, objs, err = run_json(db, 'withdraw A 75\nwithdraw B 1\n'
                                         'withdraw C 8\nrefresh\nbalances\nstatus\n')
            check(err == b'', f'stderr {err[:300]!r}')
            w1, w2, w3, r, b, st = objs
            check(w1.get('ok') and w1['version'] == 4 and w1['position'] == 7,
                  f'withdraw A 75: {w1}')
            check(w2.get('error') == 'insufficient_funds', f'withdraw B 1: {w2}')
            check(w3.get('error') == 'insufficient_funds', f'withdraw C 8: {w3}')
            check(r.get('ok') and r['applied'] == 3, f'refresh {r}')
            got = {x['account']: x['balance'] for x in b['balances']}
            check(got == {'A': 0, 'B': 0, 'C': 7}, f'balances {got}')
            kept = {s: (int(v), int(b)) for s, v, b in
                    db.rows('SELECT name, version, balance FROM streams')}
            check(kept == {'A': (4, 0), 'B': (2, 0), 'C': (1, 7)}, f'streams {kept}')
        checks('upgrade: the upgraded ledger decides on its kept balances as a replay '
               'does', decides)

        db.rows("UPDATE simplecqrs_meta SET value = '3' WHERE key = 'schema_version'")
        before = whole(db)

        def newer():
            p = run(['--store', db.uri], 'deposit A 1\n', timeout=60)
            err = p.stderr.decode(errors='replace')
            check(p.returncode == 2 and 'newer' in err, f'exit {p.returncode}: {err!r}')
            check(whole(db) == before, 'the ledger at schema 3 was changed')
        checks('upgrade: a ledger at schema 3 is refused and left alone', newer)

    with Database('old_program_new') as db:
        def fresh_refuses():
            status, _, err = run_json(db, 'deposit A 10\n')
            check(status == 0, f'making the ledger: {err[:200]!r}')
            old_program_refused(db, 'A', 1, 1)
            status, objs, err = run_json(db, 'withdraw A 10\nwithdraw A 1\n')
            check(len(objs) == 2 and objs[0].get('ok') and
                  objs[1].get('message') == 'A has 0, cannot withdraw 1', f'{objs}')
        checks('upgrade: a new ledger refuses a schema-1 program\'s statements too; '
               'decisions stay on the true balance', fresh_refuses)

    with Database('orphan') as db:
        def orphan():
            """An event whose stream has no row (the foreign key is gone):
            a damaged ledger, said so, whether the table reads every stream
            (a small ledger) or this one."""
            status, _, err = run_json(db, 'deposit A 5\n')
            check(status == 0, f'making the ledger: {err[:200]!r}')
            db.rows("INSERT INTO events VALUES (2, 'Z', 1, 'AccountCredited', 9, now())")
            for script in ('deposit Z 1\n', 'deposit A 1\n'):
                p = run(['--json', '--store', db.uri], script)
                out = p.stdout.decode(errors='replace')
                check(p.returncode == 3 and 'damaged' in out and 'Z' in out,
                      f'{script!r}: exit {p.returncode}: {out[:300]!r}')
            check(len(db.events()) == 2, f'events {db.events()}')
        checks('upgrade: an event of a stream without a row is a damaged ledger, '
               'nothing written', orphan)

    with Database('upgrade_damaged') as db:
        # B withdraws more than it had: the upgrade's sum breaks the check
        make_ledger_1(db, LEDGER_1[:4] + [('B', 2, 'AccountDebited', 60)], 2)
        before = whole(db)

        def damaged():
            p = run(['--store', db.uri], 'status\n', timeout=60)
            err = p.stderr.decode(errors='replace')
            check(p.returncode == 2 and err.startswith('simplecqrs: cannot open store'),
                  f'exit {p.returncode}: {err!r}')
            check(err.count('\n') == 1 and err.endswith(
                "cannot upgrade the ledger from schema 1: account B's events add up to "
                "a balance of -10, below 0 (a damaged ledger); nothing was changed\n"),
                  f'the message: {err!r}')
            check(whole(db) == before, 'the damaged schema-1 ledger was changed '
                  '(half an upgrade?)')
        checks('upgrade: a schema-1 ledger the upgrade cannot sum (a balance below 0) '
               'is refused and left exactly as it was (one transaction)', damaged)


# ---- 9. a server that restarts under idle shells ----

def restart():
    """pg_ctl restart -m fast: every connection is cut, the server is back."""
    CLUSTER.tool('pg_ctl', '-D', CLUSTER.data, '-l', CLUSTER.log, '-m', 'fast', '-w',
                 '-t', '60', 'restart')


def clean_message(msg):
    """One line for people: libpq's two-line texts joined, no tabs, no runs
    of blanks."""
    check('\n' not in msg and '\t' not in msg and '  ' not in msg and
          'unexpectedly This' not in msg, f'message not joined cleanly: {msg!r}')


def test_restart(checks):
    with Database('restart') as db:
        s = Coproc(db)
        try:
            def survives():
                check(s.ask('deposit X 10').get('ok'), 'deposit X 10 failed')
                check(s.ask('refresh').get('ok'), 'refresh failed')
                restart()
                o = s.ask('balances')
                check(o.get('ok') and o.get('balances') == [{'account': 'X', 'balance': 10}]
                      if 'balances' in o else o.get('ok'), f'balances after the restart: {o}')
                restart()
                o = s.ask('deposit X 5')
                check(o.get('ok') and o['version'] == 2 and o['position'] == 2,
                      f'deposit after the second restart: {o}')
                restart()
                o = s.ask('status')
                check(o.get('ok') and o['head'] == 2, f'status after the third restart: {o}')
                status, err = s.close()
                check(status == 0 and err == b'', f'exit status {status_text(status)}, '
                      f'stderr {err[:300]!r}')
            checks('restart: a shell fed slowly outlives three restarts between its '
                   'commands (a read, a write, status), exit 0, nothing on stderr',
                   survives)
        finally:
            s.kill()

    with Database('restart_text') as db:
        def text_mode():
            p = spawn(['--store', db.uri])
            p.stdin.write(b'deposit A 1\n')
            p.stdin.flush()
            line = p.stdout.readline()
            check(line.startswith(b'deposited'), f'first answer {line!r}')
            restart()
            out, err = p.communicate(b'balances\ndeposit A 2\n', timeout=TIMEOUT)
            check(p.returncode == 0 and err == b'', f'exit status '
                  f'{status_text(p.returncode)}, stderr {err[:300]!r}')
            check(out.count(b'deposited') == 1, f'after the restart: {out!r}')
        checks('restart: text mode, a pipe: balances and a deposit after a restart '
               'work, nothing said', text_mode)

    with Database('restart_group') as db:
        def group_lost():
            """A group whose connection goes while it is open is the one
            storage failure, and its message is one clean line."""
            env = dict(CLUSTER.env, SIMPLECQRS_TEST_COMMIT_DELAY_MS='3000',
                       PGAPPNAME='victim')
            s = Coproc(db, env)
            try:
                s.send('deposit G 1')
                deadline, killed = time.monotonic() + 20, []
                while time.monotonic() < deadline and not killed:
                    time.sleep(0.2)
                    killed = db.rows("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                     "WHERE application_name = 'victim' "
                                     "AND state = 'idle in transaction'")
                check(killed, 'the shell was never seen holding its group open')
                line = s.readline()
                o = json.loads(line)
                check(not o['ok'] and o['error'] == 'storage', f'answer {o}')
                clean_message(o['message'])
                check('server closed the connection unexpectedly' in o['message'] or
                      'terminating connection' in o['message'], f'message {o["message"]!r}')
                status, err = s.close()
                check(status == 3, f'exit status {status_text(status)}')
                check(db.events() == [], f'events {db.events()}')
                return o['message']
            finally:
                s.kill()
        r = checks('restart: a group cut while open is a storage error (exit 3), one '
                   'clean line, nothing kept', group_lost)
        if r:
            print(f'restart: {r}', flush=True)

    with Database('restart_down') as db:
        def stays_down():
            s = Coproc(db)
            try:
                check(s.ask('deposit D 1').get('ok'), 'deposit D 1 failed')
                CLUSTER.stop('fast')
                o = s.ask('balances', timeout=30)
                check(not o['ok'] and o['error'] == 'storage', f'answer {o}')
                clean_message(o['message'])
                status, _ = s.close()
                check(status == 3, f'exit status {status_text(status)}')
                return o['message']
            finally:
                s.kill()
                if not CLUSTER.running:
                    CLUSTER.start()
        r = checks('restart: a server that stays down: storage, exit 3, one clean line',
                   stays_down)
        if r:
            print(f'restart: {r}', flush=True)


# ---- 10. the database's defaults are not the store's ----

def test_defaults(checks):
    with Database('iso') as db:
        psql(f'ALTER DATABASE "{db.name}" SET default_transaction_isolation = '
             "'repeatable read'")
        accounts = ['I0', 'I1', 'I2']
        seed = run_json(db, ''.join(f'deposit {a} 100000\n' for a in accounts))
        check(seed[0] == 0, f'seeding: {seed}')
        rng = random.Random(5)
        scripts = [[f'withdraw {rng.choice(accounts)} {rng.randint(1, 50)}'
                    if rng.random() < 0.5 else
                    'transfer %s %s %d' % (*rng.sample(accounts, 2), rng.randint(1, 50))
                    for _ in range(80)] for _ in range(6)]
        results = run_all(db, scripts, [True] * 6, pause=0.005)
        checks('defaults: racing shells under default_transaction_isolation = '
               '\'repeatable read\': exit 0 or 1, no storage error', check_statuses,
               scripts, results)
        checks('defaults: ... positions without gaps, versions 1..n', check_events,
               db.events(), db.streams())

    with Database('path') as db:
        psql(f'ALTER DATABASE "{db.name}" SET search_path = nosuch')

        def inherited_path():
            status, objs, err = run_json(db, 'deposit P 3\nrefresh\nbalance P\n')
            check(status == 0, f'{status} {objs} {err[:300]!r}')
            check(db.rows("SELECT to_regclass('public.events') IS NOT NULL") == [['t']],
                  'the tables are not in public')
        checks('defaults: a database whose search_path names no schema: the ledger '
               'is in public', inherited_path)

    with Database('schema') as db:
        db.rows('CREATE SCHEMA ledger')

        def own_schema():
            uri = db.uri + '?options=-csearch_path%3Dledger'
            status, objs, err = run_json(Namespace(uri=uri), 'deposit S 4\ndeposit S 5\n')
            check(status == 0, f'{status} {objs} {err[:300]!r}')
            check(db.rows("SELECT to_regclass('ledger.events') IS NOT NULL, "
                          "to_regclass('public.events') IS NULL") == [['t', 't']],
                  'the tables are not in schema ledger (alone)')
            check(db.rows('SELECT count(*) FROM ledger.events') == [['2']], 'events')
            env = dict(CLUSTER.env, PGOPTIONS='-c search_path=ledger')
            status, objs, err = run_json(db, 'refresh\nbalance S\nhistory S\n', env)
            check(status == 0 and len(objs[2].get('events', [])) == 2 and
                  objs[1].get('balance') == 9,
                  f'PGOPTIONS: {status} {objs} {err[:300]!r}')
        checks('defaults: options=-csearch_path=ledger in the URI (or PGOPTIONS) puts '
               'the ledger in schema ledger', own_schema)


class Namespace:
    def __init__(self, **kw):
        self.__dict__.update(kw)


# ---- 11. passwords in every form libpq takes ----

def test_passwords(checks):
    user = CLUSTER.user
    with Database('secrets') as db:
        # (uri, the password as typed, what must never show)
        def forms(host):
            return [
                (f'postgresql://{user}:hunter2/x@{host}/{db.name}', ['hunter2/x', 'hunter2']),
                (f'postgresql://{user}@{host}/{db.name}?password=hunter2%zz',
                 ['hunter2%zz', 'hunter2']),
                (f'postgresql:/{user}:hunter2@{host}/{db.name}', ['hunter2']),
                (f'postgres:{user}:hunter2@{host}/{db.name}', ['hunter2']),
                (f'postgresql://{user}:hunt@er2secret@{host}/{db.name}',
                 ['hunt@er2secret', 'er2secret']),
                (f'postgresql://{user}:hunter2%2Fx%40y@{host}/{db.name}',
                 ['hunter2%2Fx%40y', 'hunter2/x@y', 'hunter2']),
                (f'postgresql://{user}@{host}/{db.name}?PassWord=hunter2', ['hunter2']),
                (f'postgresql://{user}@{host}/{db.name}?pass%77ord=hunter2', ['hunter2']),
                (f'postgresql://{user}@{host}/{db.name}?sslmode=disable&password=hunter2%2F',
                 ['hunter2%2F', 'hunter2']),
                (f'host={host or CLUSTER.sock} password=hunter2 dbname={db.name}',
                 ['hunter2']),
            ]
        for where, host in (('unreachable', '127.0.0.1:1'), ('reachable', '')):
            for uri, secrets in forms(host):
                def hidden(uri=uri, secrets=secrets):
                    outs = []
                    for mode in ([], ['--json'], ['--echo']):
                        p = run(['--store', uri] + mode,
                                'deposit A 5\nstatus\nwithdraw A 999999\n', timeout=60)
                        outs.append((p.returncode, p.stdout + p.stderr))
                    for status, out in outs:
                        for sec in secrets:
                            check(sec.encode() not in out,
                                  f'{sec!r} shown (exit {status}): {out[:400]!r}')
                    return outs[0][1].decode(errors='replace').strip().splitlines()[-1][:160]
                r = checks(f'passwords: {where} {uri.split("@")[0][:40]}...: no form of '
                           f'the password in any output', hidden)
                if r:
                    print(f'   {r}', flush=True)

        def opened():
            for uri, secrets in (
                    (f'postgresql://{user}:se%2Fcr%40et99@/{db.name}',
                     ['se%2Fcr%40et99', 'se/cr@et99', 'et99']),
                    (f'postgresql://{user}@/{db.name}?password=se%2Fcret99&application_name=x',
                     ['se%2Fcret99', 'se/cret99', 'cret99'])):
                for mode in ([], ['--json'], ['--echo']):
                    p = run(['--store', uri] + mode, 'deposit A 5\nstatus\n')
                    out = p.stdout + p.stderr
                    check(p.returncode == 0, f'{uri}: exit {p.returncode} {out[:300]!r}')
                    for sec in secrets:
                        check(sec.encode() not in out, f'{sec!r} shown: {out[:400]!r}')
        checks('passwords: a ledger opened with a password holding / and @ shows '
               'none of it (status, every mode)', opened)


# ---- 12. LISTEN/NOTIFY: an idle prompt learns of other shells' writes ----

def probe(db_uri):
    p = subprocess.Popen([PROBE, db_uri], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=CLUSTER.env)
    PROCS.append(p)

    def ask(line, timeout=TIMEOUT):
        p.stdin.write(line.encode() + b'\n')
        p.stdin.flush()
        ready, _, _ = select.select([p.stdout], [], [], timeout)
        check(ready, f'probe: no answer to {line!r} in {timeout}s')
        return p.stdout.readline().decode().rstrip('\n')
    return p, ask


def poll_until(ask, want, seconds):
    """Polls every 50 ms until the answer is want; the answers seen."""
    seen, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        seen.append(ask('poll'))
        if seen[-1] == want:
            break
        time.sleep(0.05)
    return seen


def test_notify(checks):
    with Database('notify') as db:
        check(run_json(db, 'deposit N 1\n')[0] == 0, 'seeding')
        p, ask = probe(db.uri)
        try:
            def polls():
                seen = poll_until(ask, 'unchanged', 2)
                check(seen[-1] == 'unchanged', f'an idle store: {seen}')
                check(ask('poll') == 'unchanged', 'an idle store says changed')
                status, _, err = run_json(db, 'balances\nstatus\nhistory N\n')
                check(status == 0, f'reader: {err[:200]!r}')
                time.sleep(0.3)
                check(ask('poll') == 'unchanged', 'another shell\'s reads say changed')
                t0 = time.monotonic()
                status, _, err = run_json(db, 'deposit N 2\n')
                check(status == 0, f'writer: {err[:200]!r}')
                seen = poll_until(ask, 'changed', 1.0)
                check(seen[-1] == 'changed', f'within a second of another shell\'s '
                      f'write ({time.monotonic() - t0:.2f}s): {seen}')
                check(ask('poll') == 'unchanged', 'changed twice for one write')
                CLUSTER.stop('fast')
                try:
                    for _ in range(40):	# the server down: poll still answers at once
                        t0 = time.monotonic()
                        got = ask('poll')
                        check(got in ('changed', 'unchanged') and time.monotonic() - t0 < 0.5,
                              f'poll with the server down: {got!r} after '
                              f'{time.monotonic() - t0:.2f}s')
                        time.sleep(0.1)
                finally:
                    CLUSTER.start()
                seen = poll_until(ask, 'unchanged', 10)
                check(seen[-1] == 'unchanged', f'after a restart: {seen}')
                status, _, err = run_json(db, 'transfer N M 1\n')
                check(status == 0, f'writer after the restart: {err[:200]!r}')
                seen = poll_until(ask, 'changed', 1.0)
                check(seen[-1] == 'changed', f'after a restart, a write (LISTEN again): {seen}')
                check(ask('deposit N') .startswith('ok'), 'the probe cannot write')
                check(ask('poll') == 'changed', 'its own write')
                check(ask('poll') == 'unchanged', 'after its own write')
            checks('notify: poll is unchanged while nobody writes (reads included), '
                   'changed within a second of another shell\'s write, again after a '
                   'restart', polls)
        finally:
            p.kill()


# ---- 13. waiting for the write lock ----

class Holder:
    """A psql session that runs sql and holds on until closed; held is a
    query that returns a row once the lock is granted."""

    def __init__(self, db, sql, held):
        self.p = subprocess.Popen(['psql', '-XAtq', '-v', 'ON_ERROR_STOP=1', '-d', db.name],
                                  stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, env=CLUSTER.env)
        PROCS.append(self.p)
        self.p.stdin.write(sql.encode() + b'\n')
        self.p.stdin.flush()
        deadline = time.monotonic() + 20
        while not db.rows(held):
            if time.monotonic() > deadline or self.p.poll() is not None:
                self.p.kill()
                raise Failed(f'psql did not get to hold {sql!r}')
            time.sleep(0.05)

    def close(self):
        try:
            self.p.stdin.close()
        except OSError:
            pass
        self.p.wait(TIMEOUT)


ADVISORY_HELD = ("SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted "
                 f"AND objid = {LOCK_KEY}")
TABLE_HELD = ("SELECT 1 FROM pg_locks WHERE relation = 'events'::regclass AND granted "
              "AND mode = 'AccessExclusiveLock'")


def test_busy(checks):
    with Database('busy') as db:
        s = Coproc(db)
        try:
            def lock_held():
                check(s.ask('deposit B 1').get('ok'), 'deposit B 1')
                h = Holder(db, f'SELECT pg_advisory_lock({LOCK_KEY});', ADVISORY_HELD)
                try:
                    t0 = time.monotonic()
                    o = s.ask('deposit B 2', timeout=40)
                    took = time.monotonic() - t0
                finally:
                    h.close()
                check(not o['ok'] and o['error'] == 'busy', f'answer {o}')
                check("another program holds the ledger's write lock (nobody "
                      "committed for 10 s)" in o['message'],
                      f'message {o["message"]!r}')
                check(9.5 < took < 14, f'answered after {took:.1f}s')
                o = s.ask('deposit B 3')
                check(o.get('ok') and o['version'] == 2, f'the next write: {o}')
                o = s.ask('refresh')
                check(o.get('ok'), f'refresh: {o}')
                check([e[4] for e in db.events()] == [1, 3], f'events {db.events()}')
                return took
            took = checks('busy: a psql session holds the write lock: the write answers '
                          'busy after 10 s, nothing written, the next command works', lock_held)
            if took:
                print(f'busy: answered after {took:.1f}s', flush=True)

            def table_locked():
                h = Holder(db, 'BEGIN; LOCK TABLE events IN ACCESS EXCLUSIVE MODE;', TABLE_HELD)
                try:
                    o = s.ask('deposit B 4', timeout=40)
                finally:
                    h.close()
                check(not o['ok'] and o['error'] == 'busy', f'answer {o}')
                o = s.ask('deposit B 5')
                check(o.get('ok'), f'the next write: {o}')
                status, err = s.close()
                check(status == 1, f'exit status {status_text(status)} (stderr {err[:200]!r})')
                check([e[4] for e in db.events()] == [1, 3, 5], f'events {db.events()}')
            checks('busy: a table lock past lock_timeout, outside a group, is busy too; '
                   'the shell goes on and exits 1', table_locked)
        finally:
            s.kill()

        if PROBE:
            p, ask = probe(db.uri)
            try:
                def hook_stops():
                    h = Holder(db, f'SELECT pg_advisory_lock({LOCK_KEY});', ADVISORY_HELD)
                    try:
                        check(ask('stop-after 700') == 'ok', 'stop-after')
                        t0 = time.monotonic()
                        got = ask('deposit H', timeout=20)
                        took = time.monotonic() - t0
                    finally:
                        h.close()
                    parts = got.split()
                    check(parts[0] == 'busy', f'answer {got!r}')
                    calls, last = int(parts[-2]), int(parts[-1])
                    check(took < 2.5, f'the hook said stop at 0.7 s; answered after {took:.1f}s')
                    check(5 <= calls <= 9 and 700 <= last < 1000,
                          f'the hook was called {calls} times, last at {last} ms')
                    check(ask('stop-after 0') == 'ok', 'stop-after 0')
                    got = ask('deposit H')
                    check(got.startswith('ok '), f'after the lock went: {got!r}')
                checks('busy: the wait hook is asked about every 100 ms and stopping it '
                       'fails the write with busy at once', hook_stops)
            finally:
                p.kill()


# ---- 14. where the ledger is ----

def test_location(checks):
    with Database('location') as db:
        user = CLUSTER.user
        uri = f'postgresql://{user}:pw%2Fsecret@/{db.name}?application_name=probe'
        for want_created in ('yes', 'no'):
            def located(want_created=want_created):
                p, ask = probe(uri)
                try:
                    got = ask('location')
                    check(got == f'postgresql://{user}@/{db.name}?application_name=probe',
                          f'location {got!r}')
                    check(ask('created') == want_created, f'created is not {want_created}')
                finally:
                    p.kill()
            checks(f'location: store_location is the URI without its password '
                   f'(created: {want_created})', located)


# ---- 15. the store's C contract ----

def test_contract(checks):
    """tests/test_store.c on this cluster, as the memory and sqlite stores
    run it; each case makes its own database and drops it."""
    env = dict(CLUSTER.env, SIMPLECQRS_TEST_STORE='postgresql',
               SIMPLECQRS_TEST_PG_URI='postgresql:///postgres')
    if SLOW > 1:
        env['CK_TIMEOUT_MULTIPLIER'] = str(SLOW)

    def contract():
        p = subprocess.run(WRAPPER + [TEST_STORE], env=env, stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=600 * SLOW)
        out = (p.stdout + p.stderr).strip()
        check(p.returncode == 0, f'test_store exited {status_text(p.returncode)}:\n{out[-3000:]}')
        left = [r[0] for r in psql("SELECT datname FROM pg_database "
                                   "WHERE datname LIKE 'test\\_store\\_%'")]
        for name in left:
            psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        check(not left, f'databases left behind: {left}')
        return out.splitlines()[-1] if out else ''
    r = checks('contract: tests/test_store.c passes on PostgreSQL, a fresh database '
               'per case', contract)
    if r:
        print(f'   {r}', flush=True)


# ---- main ----

def test_hostile(checks):
    """The hostile input catalogue (tests/hostile_test.py) on this server,
    each line on a fresh database: SQL-looking ids are stored as they are."""
    def hostile():
        p = subprocess.run([sys.executable, os.path.join(os.path.dirname(__file__),
                                                         'hostile_test.py'),
                            BIN, '--store', 'postgresql'],
                           env=CLUSTER.env, capture_output=True, text=True, timeout=900)
        last = p.stdout.strip().splitlines()[-1:] or ['']
        check(p.returncode == 0, f'{p.stdout[-2000:]}{p.stderr[-1000:]}')
        return last[0]
    r = checks('hostile: every hostile line gets its error and changes nothing', hostile)
    if r:
        print(r, flush=True)


TESTS = {'contract': test_contract, 'cli': test_cli, 'model': test_model, 'race': test_race,
         'stale': test_stale, 'gap': test_gap,
         'refresh': test_refresh, 'stopped': test_stopped,
         'unreachable': test_unreachable, 'foreign': test_foreign, 'upgrade': test_upgrade,
         'hostile': test_hostile, 'faults': test_faults, 'restart': test_restart, 'defaults': test_defaults,
         'passwords': test_passwords, 'notify': test_notify, 'busy': test_busy,
         'location': test_location}
NEEDS_PROBE = ('notify', 'location')
NEEDS_TEST_STORE = ('contract',)


def cleanup():
    for p in PROCS:
        if p.poll() is None:
            p.kill()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                pass
    global CLUSTER
    if CLUSTER is not None:
        c, CLUSTER = CLUSTER, None
        c.destroy()


def on_signal(signum, frame):
    raise SystemExit(128 + signum)


def main():
    global BIN, CLUSTER, PROBE, TEST_STORE
    argv = sys.argv[1:]
    if not argv or argv[0].startswith('-'):
        sys.exit(__doc__)
    BIN = os.path.abspath(argv[0])
    if '--probe' in argv:
        i = argv.index('--probe')
        PROBE = os.path.abspath(argv[i + 1]) if i + 1 < len(argv) else None
    if '--test-store' in argv:
        i = argv.index('--test-store')
        TEST_STORE = os.path.abspath(argv[i + 1]) if i + 1 < len(argv) else None
    only = list(TESTS)
    if '--only' in argv:
        i = argv.index('--only')
        only = argv[i + 1].split(',') if i + 1 < len(argv) else []
        unknown = [n for n in only if n not in TESTS]
        if unknown or not only:
            sys.exit(f'--only takes one or more of {",".join(TESTS)} (got {unknown})')
    checks = Checks()
    started = time.monotonic()
    atexit.register(cleanup)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    try:
        bindir = server_bin()
        missing = [t for t in ('psql',) if shutil.which(t) is None]
        if bindir is None or missing:
            print('FAIL the PostgreSQL server binaries (initdb, pg_ctl in '
                  '/usr/lib/postgresql/*/bin or on PATH) or psql are missing: '
                  'install postgresql to run this test', flush=True)
            checks.failed += 1
        else:
            def up():
                global CLUSTER
                CLUSTER = Cluster(bindir)
                CLUSTER.init()
                return bindir
            if checks(f'a private cluster from {bindir} starts', up):
                for name in only:
                    if name in NEEDS_PROBE and PROBE is None:
                        print(f'FAIL {name}: needs --probe PATH (tests/pg_probe.c)',
                              flush=True)
                        checks.failed += 1
                        continue
                    if name in NEEDS_TEST_STORE and TEST_STORE is None:
                        print(f'FAIL {name}: needs --test-store PATH (tests/test_store.c)',
                              flush=True)
                        checks.failed += 1
                        continue
                    t0 = time.monotonic()
                    try:
                        TESTS[name](checks)
                    except Exception as e:
                        checks.failed += 1
                        print(f'FAIL {name}: {type(e).__name__}: {e}', flush=True)
                    print(f'-- {name}: {time.monotonic() - t0:.1f}s', flush=True)
                    if CLUSTER is not None and not CLUSTER.running:
                        CLUSTER.start()
    finally:
        cleanup()
    print(f'pg: {time.monotonic() - started:.0f}s; '
          f'{checks.passed} passed, {checks.failed} failed', flush=True)
    return 1 if checks.failed else 0


if __name__ == '__main__':
    sys.exit(main())
