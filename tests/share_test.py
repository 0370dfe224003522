#!/usr/bin/env python3
"""Several shells share one ledger fairly, and racing is not failing.

usage: share_test.py BIN --store sqlite|postgresql [--shells K] [--each N]
                     [--only NAME[,NAME...]]

Tests (NAME for --only):

  many   K shells at once (32 on sqlite, 8 on postgresql) each pipe N
         deposits (sqlite 60,000, postgresql 33,000) into one ledger: the
         first line of every shell is a write, so all of them queue for the
         write lock at once. Every shell exits 0 with nothing on stderr;
         every command is applied once (each shell's own account has N
         events, versions 1..N, and the sum of its amounts; a shared account
         has one event a shell each 100 lines); positions are 1..total
         without gaps; the shells took turns: while all ran, no shell wrote
         more than 16,384 events (one full group) in a row (a group ends when
         its pipe runs empty, about 4,700 deposits here; a shell that
         re-takes the lock at once after each commit writes several groups,
         or its whole script, in a row). Printed: commands/s in all, and the longest gap
         between two events of one shell's account (what the longest single
         wait for the lock came to, from the events' own times).
  bound  a group that hits its time bound: shell A is given a long script
         (1,500 deposits, each made slow by the test hook
         SIMPLECQRS_TEST_APPEND_DELAY_MS=2, so its one group would last 3 s
         without the bound); 0.4 s in, shell B deposits once. B's answer comes
         well before A finishes (within 1.5 s), and its position lies inside
         A's range; A exits 0 with every deposit kept.

  patient  another program holds the write lock for HOLD_S (12) seconds
         but commits all the while (sqlite: a Python connection that
         inserts into a table of its own and re-takes the lock at once
         after each commit, a commit a second;
         postgresql: a psql session holding the advisory lock across
         transactions that each append an event): a shell that wants to
         write meanwhile waits on past the 10 s after which a lock without
         progress is busy, and its deposit goes through when the holder lets
         go (exit 0, answered after more than 10.5 s). A shell that slips in
         between the Python connection's COMMIT and its next BEGIN (a few
         microseconds, but it can happen) proves nothing: the round is run
         again, up to 3 times.

The SQLite file lives in a fresh temporary folder; the PostgreSQL cluster is
a private one, started as tests/pg_test.py starts its own. Prints
'share: P passed, F failed'; exits 1 on failure.
"""
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

from ledger_checks import Checks, Failed, check

BIN = None
STORE = None
TMP = None
ENV = None
DB = None       # pg_test.Database on postgresql
LIMIT = 60.0    # seconds any one test may take before it fails


def fresh_uri(tag):
    if STORE == 'sqlite':
        return 'sqlite:' + os.path.join(TMP, tag + '.db')
    return DB.uri


def ledger_rows(uri, sql_sqlite, sql_pg):
    if STORE == 'sqlite':
        with sqlite3.connect(uri[len('sqlite:'):]) as c:
            return [tuple(r) for r in c.execute(sql_sqlite)]
    return [tuple(int(x) if x.lstrip('-').isdigit() else x for x in r)
            for r in DB.rows(sql_pg)]


def start(uri, args=(), env=None, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL):
    return subprocess.Popen([BIN, '--store', uri, *args], stdin=stdin,
                            stdout=stdout, stderr=subprocess.PIPE, env=env or ENV)


def feed(p, data):
    """Writes data to p's stdin from a thread, then closes it."""
    def run():
        try:
            p.stdin.write(data)
            p.stdin.close()
        except OSError:
            pass
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def wait_all(procs, deadline):
    out = []
    for p in procs:
        try:
            err = p.stderr.read()
            p.wait(max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise Failed(f'the shells were still running after {LIMIT:.0f} s')
        out.append((p.returncode, err.decode(errors='replace')))
    return out


def events_of(uri):
    """[(position, stream, version, amount, time in ms)] in position order."""
    return ledger_rows(
        uri,
        'SELECT e.position, s.name, e.version, e.amount, e.time FROM event_log e '
        'JOIN streams s ON s.id = e.stream ORDER BY e.position',
        'SELECT position, stream, version, amount, '
        '(extract(epoch FROM time) * 1000)::bigint FROM events ORDER BY position')


def test_many(checks, shells, each):
    uri = fresh_uri('many')
    scripts = []
    for i in range(shells):
        lines = []
        for j in range(each):
            lines.append(f'deposit s{i} {j % 97 + 1}\n')
            if j % 100 == 50:
                lines.append('deposit shared 1\n')
        scripts.append(''.join(lines).encode())
    commands = sum(s.count(b'\n') for s in scripts)
    t0 = time.monotonic()
    procs = [start(uri, ['--quiet']) for _ in scripts]
    for p, s in zip(procs, scripts):
        feed(p, s)
    results = wait_all(procs, t0 + LIMIT)
    took = time.monotonic() - t0
    print(f'many: {shells} shells x {each} deposits on {STORE}: {commands} commands '
          f'in {took:.1f} s, {commands / took:.0f} commands/s', flush=True)

    def statuses():
        bad = [(i, st, err[:300]) for i, (st, err) in enumerate(results) if st != 0 or err]
        check(not bad, f'{len(bad)} of {shells} shells did not exit 0 quietly: {bad[:4]}')
    checks(f'many: all {shells} shells exit 0, nothing on stderr', statuses)

    def applied_once():
        n, lo, hi = ledger_rows(uri, 'SELECT count(*), min(position), max(position) '
                                'FROM event_log', 'SELECT count(*), min(position), '
                                'max(position) FROM events')[0]
        check(n == commands, f'{n} events for {commands} deposits')
        check((lo, hi) == (1, n), f'positions {lo}..{hi} for {n} events: gaps')
        # (stream, version) is unique in both stores: count, min and max
        # of the versions say 1..count
        per = {r[0]: r[1:] for r in ledger_rows(
            uri, 'SELECT s.name, count(*), min(e.version), max(e.version), '
            'sum(e.amount), s.balance FROM event_log e JOIN streams s '
            'ON s.id = e.stream GROUP BY s.id',
            'SELECT e.stream, count(*), min(e.version), max(e.version), '
            'sum(e.amount), max(s.balance) FROM events e JOIN streams s '
            'ON s.name = e.stream GROUP BY e.stream')}
        total = sum(j % 97 + 1 for j in range(each))
        for i in range(shells):
            got = per.get(f's{i}')
            check(got == (each, 1, each, total, total),
                  f's{i}: (events, first and last version, sum, kept balance) '
                  f'{got}, want {(each, 1, each, total, total)}')
        want = shells * sum(1 for j in range(each) if j % 100 == 50)
        check(per.get('shared') == (want, 1, want, want, want),
              f'shared: {per.get("shared")}, want {want} events of 1')
    checks('many: every command applied once (versions 1..N, sums, kept balances), '
           'positions without gaps', applied_once)

    def longest_wait():
        return ledger_rows(
            uri, 'SELECT max(d) FROM (SELECT time - lag(time) OVER '
            '(PARTITION BY stream ORDER BY position) AS d FROM event_log)',
            'SELECT (extract(epoch FROM max(d)) * 1000)::bigint FROM (SELECT '
            'time - lag(time) OVER (PARTITION BY stream ORDER BY position) AS d '
            'FROM events) g')[0][0] or 0
    gap = longest_wait()
    print(f'many: longest gap between two events of one account: {gap} ms', flush=True)

    def longest_run():
        """The most events of one shell's account in a row (the shared
        account's left out), before the first shell finished: how many
        groups one shell had in a row while the others waited."""
        sql = ('SELECT max(n) FROM (SELECT count(*) AS n FROM (SELECT sum(new) OVER '
               '(ORDER BY position) AS run FROM (SELECT position, CASE WHEN '
               'lag(stream) OVER (ORDER BY position) = stream THEN 0 ELSE 1 END '
               'AS new FROM {t} WHERE stream <> {shared} AND position < (SELECT '
               'min(last) FROM (SELECT max(position) AS last FROM {t} GROUP BY '
               'stream) l)) a) b GROUP BY run) c')
        return ledger_rows(uri, sql.format(t='event_log', shared=(
            "(SELECT id FROM streams WHERE name = 'shared')")),
            sql.format(t='events', shared="'shared'"))[0][0] or 0
    run = checks('many: the shells took turns: no shell wrote more than one full group '
                 f'({GROUP_MAX} events) in a row while the others waited', took_turns,
                 longest_run)
    if run is not None:
        print(f'many: longest run of one shell\'s events while all ran: {run}',
              flush=True)
    return took, gap


GROUP_MAX = 16384     # src/store.c: the most events in one group


def took_turns(longest_run):
    run = longest_run()
    check(run <= GROUP_MAX, f'{run} events of one shell in a row')
    return run


def test_bound(checks):
    uri = fresh_uri('bound')
    a_lines = 1500
    env = dict(ENV, SIMPLECQRS_TEST_APPEND_DELAY_MS='2')
    # seed both accounts, so neither shell's first group makes a stream
    seed = subprocess.run([BIN, '--store', uri], input=b'deposit A 1\ndeposit B 1\n',
                          capture_output=True, env=ENV, timeout=LIMIT)
    check(seed.returncode == 0, f'seeding: {seed.returncode} {seed.stderr[:200]!r}')
    script = os.path.join(TMP, 'long.cqrs')
    with open(script, 'w') as f:
        f.write(''.join(f'deposit A {j + 1}\n' for j in range(a_lines)))
    t0 = time.monotonic()
    with open(script, 'rb') as f:
        a = start(uri, ['--quiet'], env=env, stdin=f)
    time.sleep(0.4)
    tb = time.monotonic()
    b = subprocess.run([BIN, '--json', '--store', uri], input=b'deposit B 5\n',
                       capture_output=True, env=ENV, timeout=LIMIT)
    b_took = time.monotonic() - tb
    (a_status, a_err), = wait_all([a], t0 + LIMIT)
    a_took = time.monotonic() - t0
    print(f'bound: A took {a_took:.1f} s, B answered after {b_took:.2f} s', flush=True)

    def a_ok():
        check(a_status == 0 and not a_err, f'A: exit {a_status}, stderr {a_err[:300]!r}')
        check(a_took > 2.0, f'A took {a_took:.1f} s: the hook did not slow it')
    checks('bound: the long shell A exits 0', a_ok)

    def b_between():
        check(b.returncode == 0, f'B: exit {b.returncode}, stderr {b.stderr[:300]!r}')
        check(b_took < 1.5, f'B waited {b_took:.2f} s for a lock held by A\'s group')
        evs = events_of(uri)
        a_pos = [e[0] for e in evs if e[1] == 'A']
        b_pos = [e[0] for e in evs if e[1] == 'B']
        check(len(a_pos) == a_lines + 1 and len(b_pos) == 2,
              f'{len(a_pos)} events of A, {len(b_pos)} of B')
        check(a_pos[1] < b_pos[1] < a_pos[-1],
              f'B\'s deposit at {b_pos[1]} is not inside A\'s range '
              f'{a_pos[1]}..{a_pos[-1]}')
    checks('bound: B\'s deposit is committed inside A\'s range, well before A ends',
           b_between)


HOLD_S = 12


def hold_with_progress(uri, seconds):
    """Starts the foreign writer of `patient`; returns (thread or process,
    a function that waits for it to end and returns what went wrong)."""
    if STORE == 'sqlite':
        errors = []
        started = threading.Event()

        def run():
            try:
                c = sqlite3.connect(uri[len('sqlite:'):], isolation_level=None,
                                    timeout=30)
                # a table of its own: each commit changes a page (a no-op
                # UPDATE writes nothing to the WAL)
                c.execute('CREATE TABLE ticks (n INTEGER)')
                end = time.monotonic() + seconds
                c.execute('BEGIN IMMEDIATE')
                started.set()
                while time.monotonic() < end:
                    c.execute('INSERT INTO ticks VALUES (1)')
                    time.sleep(1.0)
                    # at once, in one call (executescript commits the open
                    # transaction first): no turn given, the lock free for
                    # a few microseconds
                    c.executescript('BEGIN IMMEDIATE')
                c.execute('COMMIT')
                c.close()
            except Exception as e:
                errors.append(repr(e))
                started.set()
        t = threading.Thread(target=run, daemon=True)
        t.start()
        started.wait(10)

        def done():
            t.join(seconds + 30)
            return errors
        return done
    import pg_test
    loop = (f"SELECT pg_advisory_lock({pg_test.LOCK_KEY});\n"
            "DO $$ DECLARE t0 timestamptz := clock_timestamp(); BEGIN\n"
            f"  WHILE clock_timestamp() < t0 + interval '{seconds} seconds' LOOP\n"
            "    INSERT INTO events SELECT coalesce(max(position), 0) + 1, 'X',\n"
            "      (SELECT version + 1 FROM streams WHERE name = 'X'),\n"
            "      'AccountCredited', 1, now() FROM events;\n"
            "    UPDATE streams SET version = version + 1, balance = balance + 1,\n"
            "      balance_version = version + 1\n"
            "      WHERE name = 'X';\n"
            "    COMMIT;\n"
            "    PERFORM pg_sleep(0.05);\n"
            "  END LOOP; END $$;\n"
            f"SELECT pg_advisory_unlock({pg_test.LOCK_KEY});\n")
    p = subprocess.Popen(['psql', '-XAtq', '-v', 'ON_ERROR_STOP=1', '-d', DB.name],
                         stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, env=ENV)
    p.stdin.write(loop.encode())
    p.stdin.close()
    deadline = time.monotonic() + 10
    while not DB.rows(pg_test.ADVISORY_HELD) and time.monotonic() < deadline:
        time.sleep(0.05)

    def done():
        err = p.stderr.read()
        p.wait(seconds + 30)
        return [err.decode(errors='replace')] if p.returncode else []
    return done


def test_patient(checks):
    for attempt in range(3):
        if patient_round(checks, attempt, last=attempt == 2):
            return


def patient_round(checks, attempt, last):
    """False: the shell got the lock early; nothing was shown either way."""
    uri = fresh_uri(f'patient{attempt}')
    if STORE == 'postgresql':
        DB.rows('DROP TABLE IF EXISTS events, streams, balances, checkpoint, '
                'simplecqrs_meta')
    seed = subprocess.run([BIN, '--store', uri], input=b'deposit W 1\ndeposit X 1\n',
                          capture_output=True, env=ENV, timeout=LIMIT)
    check(seed.returncode == 0, f'seeding: {seed.returncode} {seed.stderr[:200]!r}')
    t0 = time.monotonic()
    done = hold_with_progress(uri, HOLD_S)
    time.sleep(1)
    tw = time.monotonic()
    w = subprocess.run([BIN, '--json', '--store', uri], input=b'deposit W 2\n',
                       capture_output=True, env=ENV, timeout=LIMIT)
    w_took = time.monotonic() - tw
    errors = done()
    print(f'patient: the holder held {time.monotonic() - t0:.1f} s, the shell '
          f'answered after {w_took:.1f} s', flush=True)
    if not last and w.returncode == 0 and w_took <= 10.5:
        print('patient: the shell slipped in between two of the holder\'s '
              'transactions: again', flush=True)
        return False

    def waited_on():
        check(not errors, f'the holder failed: {errors}')
        check(w.returncode == 0 and not w.stderr,
              f'exit {w.returncode}, stdout {w.stdout[:300]!r}, stderr {w.stderr[:300]!r}')
        check(b'"ok":true' in w.stdout, f'answer {w.stdout[:300]!r}')
        check(w_took > 10.5, f'answered after {w_took:.1f} s: the holder let go early?')
        kept = dict(ledger_rows(uri, 'SELECT name, balance FROM streams',
                                'SELECT name, balance FROM streams'))
        check(kept.get('W') == 3, f'W kept at {kept.get("W")}, want 3')
    checks('patient: a shell waits past 10 s while the holder commits, and writes '
           'when it lets go', waited_on)
    return True


def main():
    global BIN, STORE, TMP, ENV, DB
    argv = sys.argv[1:]
    if not argv or argv[0].startswith('-') or '--store' not in argv:
        sys.exit(__doc__)
    BIN = os.path.abspath(argv[0])
    STORE = argv[argv.index('--store') + 1]
    opt = lambda name, default: (int(argv[argv.index(name) + 1]) if name in argv
                                 else default)
    shells = opt('--shells', 32 if STORE == 'sqlite' else 8)
    each = opt('--each', 60000 if STORE == 'sqlite' else 33000)
    only = (argv[argv.index('--only') + 1].split(',') if '--only' in argv
            else ['many', 'bound', 'patient'])
    checks = Checks()
    TMP = tempfile.mkdtemp(prefix='simplecqrs-share-')
    ENV = {k: v for k, v in os.environ.items()
           if k not in ('SIMPLECQRS_STORE', 'NO_COLOR')}
    cluster = None
    try:
        if STORE == 'postgresql':
            import pg_test
            bindir = pg_test.server_bin()
            check(bindir is not None and shutil.which('psql'),
                  'the PostgreSQL server binaries (initdb, pg_ctl) or psql are '
                  'missing: install postgresql to run this test')
            cluster = pg_test.Cluster(bindir)
            pg_test.CLUSTER = cluster
            cluster.init()
            ENV = cluster.env
        for name in only:
            t0 = time.monotonic()
            if STORE == 'postgresql':
                import pg_test
                with pg_test.Database(name) as DB:
                    run_one(checks, name, shells, each)
            else:
                run_one(checks, name, shells, each)
            took = time.monotonic() - t0
            print(f'-- {name}: {took:.1f}s', flush=True)
            if took > LIMIT:
                checks.failed += 1
                print(f'FAIL {name}: took {took:.0f} s, more than {LIMIT:.0f} s', flush=True)
    except Failed as e:
        checks.failed += 1
        print(f'FAIL {e}', flush=True)
    finally:
        if cluster is not None:
            cluster.destroy()
        shutil.rmtree(TMP, ignore_errors=True)
    print(f'share: {checks.passed} passed, {checks.failed} failed', flush=True)
    sys.exit(1 if checks.failed else 0)


def run_one(checks, name, shells, each):
    try:
        if name == 'many':
            test_many(checks, shells, each)
        elif name == 'bound':
            test_bound(checks)
        elif name == 'patient':
            test_patient(checks)
        else:
            raise Failed(f'no test {name!r} (many, bound, patient)')
    except Failed as e:
        checks.failed += 1
        print(f'FAIL {name}: {e}', flush=True)


if __name__ == '__main__':
    main()
