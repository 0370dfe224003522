#!/usr/bin/env python3
"""simplecqrs survives a failed write, fsync or allocation at every point
where it makes one: it never crashes, never prints a result it did not
keep, and leaves the SQLite file intact.  usage: fault_test.py BIN SHIM

SHIM is tests/faults/faultshim.c built as a shared module; it is preloaded
(LD_PRELOAD) and told by FAULT_KIND / FAULT_AT which call to fail (see the
top of faultshim.c).  A fixed script of 40 commands (deposits, withdrawals,
transfers, refused ones, refresh, rebuild, balances, balance, history,
status) is split over 8 script files, so the sqlite store commits 8 groups.
Three setups: `sqlite`, all 40 on a fresh file (opening makes the schema);
`sqlite-reopened`, the first 20 run without faults, then the last 20 under
faults on the same file (opening reads an existing ledger); `memory`.

Each setup runs with --json once without the shim, for the expected lines,
and once with the shim counting, to learn how many points of each kind
there are and how many of them come before the first command is read
(opening the store).  Then, for each point N, a run with that call failing
(or, "sticky", that call and every later one: a disk that died, memory that
ran out) must end in one of these ways:

  * it finished: the exit status and every line are the fault-free run's;
  * exit 3, stdout a prefix of the expected lines and then exactly one
    `storage` error, or stderr `simplecqrs: out of memory` (allocations);
  * exit 2 with nothing on stdout and one `cannot open store` line on
    stderr: the failure hit while the store was being opened;
  * for a failed write to stdout: exit 1 with `writing output: …` on
    stderr (nothing, for EPIPE), stdout a prefix of the expected lines;

and never a signal, a hang (30 s), a half line, or anything else on stderr.
Then the file (a copy, WAL included) is opened with Python's sqlite3:
PRAGMA integrity_check is ok, it is our ledger (or, only if nothing was
shown, no ledger at all: absent, empty, or an empty database), and its
events, stream versions, checkpoint and balance rows are exactly those of
the first k commands for some k at least the number of results printed: so
every acknowledged write is there at its printed position, and nothing but
whole commands is (an unacknowledged group may be there: its outcome is
unknown).  And the real binary opens the file as the run left it and runs
status, refresh, balances and a deposit on it, agreeing with the file.

Kinds: write (write/pwrite/pwrite64 on any fd but 1 and 2: the database,
WAL and shm files; EIO, ENOSPC and a short write in turn), fsync
(fsync/fdatasync; EIO and ENOSPC in turn), alloc (malloc, calloc, realloc,
aligned allocations: NULL with ENOMEM), stdout (each write of results,
with EIO, ENOSPC, EPIPE, EINTR and a short write; sqlite only).  Output to
a pipe closed by its reader is tests/pipe_test.py's.

Points run: by default every point of the first 50 of each part (opening,
running), then 100 spread over the rest of opening and 300 over the rest of
running (SIMPLECQRS_FAULT_SAMPLE), and 20 + 20 for sticky failures;
SIMPLECQRS_FAULT_ALL=1 runs every point of every kind.  Work files live on
/dev/shm when it is there: the faults are injected, not waited for.

Prints, per setup and kind, the points there are, those run and how each
ended, then `faults: P passed, F failed` (one per run); a failure prints
how to run it again.  Skips itself (exit 77) under SIMPLECQRS_WRAPPER
(valgrind).  Options: --only SETUP:KIND:N[:ERRNO][:sticky] runs one case
and shows its output and the shim's backtrace of the failed call;
--keep DIR writes the scripts there and keeps the failed runs' files.
"""
import concurrent.futures
import json
import os
import shlex
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

TIMEOUT = 30.0
FIRST = 50                 # of each part, every point is run
OPEN_SAMPLE = 100          # then this many spread over opening the store
RUN_SAMPLE = int(os.environ.get('SIMPLECQRS_FAULT_SAMPLE', '300'))  # and running
STICKY_SAMPLE = 20
RUN_ALL = os.environ.get('SIMPLECQRS_FAULT_ALL') == '1'
APPLICATION_ID = 0x53435152
SCHEMA = 2          # the ledger's user_version this build writes
MAX_SHOWN = 15             # failures printed in full

# 8 files, 5 commands each: one group commit per file on sqlite
SCRIPT = [
    ['deposit A 1000', 'deposit B 500', 'withdraw A 200', 'transfer A C 300',
     'withdraw B 600'],
    ['refresh', 'balances', 'deposit D 50', 'transfer B D 100', 'withdraw Z 5'],
    ['transfer C A 50', 'deposit A 7', 'history A', 'status', 'withdraw C 250'],
    ['refresh', 'balance A', 'deposit E 1', 'transfer E F 1', 'transfer A A 1'],
    ['deposit C 999', 'withdraw D 150', 'refresh', 'rebuild', 'balances'],
    ['transfer D G 10', 'deposit G 5', 'withdraw A 1', 'transfer A B 2', 'status'],
    ['deposit B 3', 'deposit B 4', 'withdraw B 1', 'refresh', 'history B'],
    ['transfer B H 5', 'deposit H 6', 'refresh', 'balances', 'status'],
]
NCMDS = sum(len(f) for f in SCRIPT)


class Failed(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failed(what)


def base_env():
    env = {k: v for k, v in os.environ.items()
           if k != 'SIMPLECQRS_STORE' and not k.startswith('FAULT_')
           and k != 'LD_PRELOAD'}
    env['LC_ALL'] = 'C'
    return env


def normalise(obj):
    """A result without what may differ between runs: history's times, and
    status's location (each run has a folder of its own)."""
    if obj.get('cmd') == 'status' and 'location' in obj:
        obj = {k: v for k, v in obj.items() if k != 'location'}
    if obj.get('cmd') == 'history' and isinstance(obj.get('events'), list):
        obj = dict(obj)
        obj['events'] = [{k: v for k, v in e.items() if k != 'time'}
                         for e in obj['events']]
    return obj


def parse_lines(text, what):
    check(text == '' or text.endswith('\n'), f'{what}: a half line at the end: {text[-80:]!r}')
    out = []
    for line in text.splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            raise Failed(f'{what}: not a JSON line: {line[:200]!r}')
    return out


# ---- what the file must hold after k commands ----

def states_from(results):
    """From the fault-free results: per k = 0..NCMDS, (events, checkpoint)
    after the first k commands.  An event is (position, stream, version,
    type, amount)."""
    events, versions, checkpoint = [], {}, 0
    states = [(tuple(events), checkpoint)]

    def add(position, stream, etype, amount):
        versions[stream] = versions.get(stream, 0) + 1
        events.append((position, stream, versions[stream], etype, amount))

    for r in results:
        if r['ok']:
            cmd = r['cmd']
            if cmd == 'deposit':
                add(r['position'], r['account'], 'AccountCredited', r['amount'])
            elif cmd == 'withdraw':
                add(r['position'], r['account'], 'AccountDebited', r['amount'])
            elif cmd == 'transfer':
                add(r['position'] - 1, r['from'], 'AccountDebited', r['amount'])
                add(r['position'], r['to'], 'AccountCredited', r['amount'])
            elif cmd in ('refresh', 'rebuild'):
                checkpoint = r['position']
        states.append((tuple(events), checkpoint))
    return states


def replay(events, upto=None):
    bal = {}
    for p, s, _, t, a in events:
        if upto is not None and p > upto:
            break
        bal[s] = bal.get(s, 0) + (a if t == 'AccountCredited' else -a)
    return bal


# setup: (store, script files run without faults first, on the same file)
SETUPS = {
    'sqlite': ('sqlite', 0),            # a fresh file: the schema is made
    'sqlite-reopened': ('sqlite', 4),   # a ledger of 20 commands, reopened
    'memory': ('memory', 0),
}
KINDS = {
    'sqlite': ['write', 'fsync', 'alloc', 'stdout'],
    'sqlite-reopened': ['write', 'fsync', 'alloc'],
    'memory': ['alloc'],
}


class Context:
    def __init__(self, binary, shim, workdir):
        self.binary, self.shim, self.workdir = binary, shim, workdir
        self.scripts = []
        for i, cmds in enumerate(SCRIPT):
            path = os.path.join(workdir, f'part{i + 1}.cqrs')
            with open(path, 'w') as f:
                f.write(''.join(c + '\n' for c in cmds))
            self.scripts.append(path)
        self.reference = {}     # setup -> (exit status, results of the faulty part)
        self.offset = {}        # setup -> commands run before the faulty part
        self.states = None
        self.full = None        # the results of the whole script (sqlite)

    def exec(self, argv, fault_env=None, cwd=None):
        env = base_env()
        if fault_env is not None:
            env['LD_PRELOAD'] = self.shim
            env.update(fault_env)
        try:
            p = subprocess.run(argv, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env=env, timeout=TIMEOUT, cwd=cwd)
        except subprocess.TimeoutExpired:
            raise Failed(f'no exit within {TIMEOUT:g}s (a hang)')
        return p.returncode, p.stdout.decode('utf-8', 'replace'), p.stderr.decode('utf-8', 'replace')

    def run(self, setup, d, fault_env=None):
        """Runs the setup's scripts in folder d, the last part with
        fault_env (None: no shim); returns (rc, stdout, stderr, db)."""
        store, before = SETUPS[setup]
        db = os.path.join(d, 'ledger.db')
        uri = 'sqlite:' + db if store == 'sqlite' else 'memory'
        argv = [self.binary, '--json', '--store', uri]
        if before:
            rc, out, err = self.exec(argv + self.scripts[:before], cwd=d)
            lines = [normalise(r) for r in parse_lines(out, 'the run before')]
            want = self.full[:len(lines)] if self.full else lines
            check(rc in (0, 1) and err == '' and lines == want and
                  len(lines) == sum(len(f) for f in SCRIPT[:before]),
                  f'the fault-free run before: exit {rc}, stderr {err!r}')
        rc, out, err = self.exec(argv + self.scripts[before:], fault_env, cwd=d)
        return rc, out, err, db


# ---- the checks of one run ----

def is_storage(r):
    return r.get('ok') is False and r.get('error') == 'storage'


def check_output(ctx, setup, kind, errno_name, rc, out, err):
    """Checks stdout, stderr and the exit status; returns (how it ended,
    number of results shown)."""
    check(rc >= 0, f'killed by signal {-rc}')
    ref_rc, ref = ctx.reference[setup]
    lines = parse_lines(out, 'stdout')
    storage = [i for i, r in enumerate(lines) if is_storage(r)]
    results = [normalise(r) for r in lines if not is_storage(r)]
    check(len(storage) <= 1, f'{len(storage)} storage errors on stdout')
    check(not storage or storage[0] == len(lines) - 1,
          'lines after the storage error')
    check(len(results) <= len(ref), f'{len(results)} results, {len(ref)} commands')
    for i, (got, want) in enumerate(zip(results, ref)):
        check(got == want, f'result {i + 1} is {json.dumps(got)}, the fault-free run gave {json.dumps(want)}')
    err_lines = err.splitlines()
    oom = 'simplecqrs: out of memory'

    if rc == 2:
        check(out == '', 'exit 2 after printing results')
        check(len(err_lines) == 1 and err.startswith('simplecqrs: cannot open store'),
              f'exit 2 without one "cannot open store" line: {err!r}')
        return 'refused at open (exit 2)', 0
    if rc == 3:
        if storage:
            check(err == '', f'stderr besides the storage error: {err!r}')
            return 'storage error (exit 3)', len(results)
        check(kind == 'alloc' and err_lines == [oom],
              f'exit 3 with neither one storage error nor "{oom}": stderr {err!r}')
        return 'out of memory (exit 3)', len(results)
    check(not storage, f'a storage error, but exit status {rc}')
    if kind == 'stdout' and errno_name not in ('EINTR', 'SHORT') and rc == 1 and len(results) < len(ref):
        if errno_name == 'EPIPE':
            check(err == '', f'EPIPE, but stderr says {err!r}')
        else:
            check(len(err_lines) == 1 and err.startswith('simplecqrs: writing output: '),
                  f'stdout failed, stderr {err!r}')
        return 'output failed (exit 1)', len(results)
    check(rc == ref_rc, f'exit status {rc}, the fault-free run gave {ref_rc}')
    check(len(results) == len(ref), f'exit {rc} after {len(results)} of {len(ref)} results')
    check(err == '', f'stderr: {err!r}')
    return 'completed', len(results)


def read_ledger(path):
    """(events, checkpoint, balances, streams) of the ledger at path, read
    with Python's sqlite3, after its own checks; None for an empty
    database."""
    con = sqlite3.connect(path, timeout=10)
    try:
        ic = con.execute('PRAGMA integrity_check').fetchall()
        check(ic == [('ok',)], f'integrity_check: {ic}')
        app = con.execute('PRAGMA application_id').fetchone()[0]
        ver = con.execute('PRAGMA user_version').fetchone()[0]
        objects = con.execute('SELECT count(*) FROM sqlite_master').fetchone()[0]
        if (app, ver, objects) == (0, 0, 0):
            return None     # an empty database: a new ledger to the binary
        check((app, ver) == (APPLICATION_ID, SCHEMA),
              f'application_id {app:#x}, user_version {ver}: not a ledger')
        events = tuple(con.execute(
            'SELECT position, stream, version, type, amount FROM events ORDER BY position'))
        check(con.execute('SELECT count(*) FROM event_log').fetchone()[0] == len(events),
              'event_log rows without a stream')
        cp = con.execute('SELECT position FROM checkpoint').fetchall()
        check(len(cp) == 1, f'checkpoint rows: {cp}')
        balances = dict(con.execute('SELECT account, balance FROM balances'))
        streams = {n: (v, b) for n, v, b in
                   con.execute('SELECT name, version, balance FROM streams')}
        return events, cp[0][0], balances, streams
    finally:
        con.close()


def check_file(ctx, db, shown):
    """The file after the run: intact, holding the first k commands for some
    k >= shown, and usable by the real binary.  Returns k (None: no ledger)."""
    wal = db + '-wal'
    ledger = None
    if os.path.exists(db) and (os.path.getsize(db) > 0 or
                               (os.path.exists(wal) and os.path.getsize(wal) > 0)):
        # a copy for Python, so that the binary below meets the files
        # exactly as the failed run left them
        copy_dir = tempfile.mkdtemp(dir=os.path.dirname(db))
        copy = os.path.join(copy_dir, 'copy.db')
        shutil.copyfile(db, copy)
        if os.path.exists(wal):
            shutil.copyfile(wal, copy + '-wal')
        try:
            ledger = read_ledger(copy)
        finally:
            shutil.rmtree(copy_dir)
    if ledger is None:
        # no file, an empty one, or an empty database: a first open failed
        check(shown == 0, f'{shown} results shown, but no ledger was written')
        k = None
        events, checkpoint = (), 0
    else:
        events, checkpoint, balances, streams = ledger
        matches = [k for k in range(shown, NCMDS + 1)
                   if ctx.states[k] == (events, checkpoint)]
        if not matches:
            first_missing = [e for e in ctx.states[shown][0] if e not in events]
            extra = [e for e in events if e not in ctx.states[NCMDS][0]]
            raise Failed(
                f'the file holds {len(events)} events (checkpoint {checkpoint}), '
                f'which are not the first k commands for any k >= {shown} shown; '
                f'acknowledged but missing: {first_missing[:3]}; not from the script: {extra[:3]}')
        k = matches[0]
        # each stream's row: its last version and the balance its events
        # add up to (the kept state, written in the same group as they are)
        want_streams = {}
        for _, s, v, t, a in events:
            b = want_streams.get(s, (0, 0))[1]
            want_streams[s] = (v, b + (a if t == 'AccountCredited' else -a))
        check(streams == want_streams, f'streams {streams}, events say {want_streams}')
        check(balances == replay(events, checkpoint),
              f'balances {balances} at checkpoint {checkpoint}, replay says {replay(events, checkpoint)}')

    # the real binary opens what was left, reads it and writes to it
    env = base_env()
    p = subprocess.run([ctx.binary, '--json', '--store', 'sqlite:' + db],
                       input=b'status\nrefresh\nbalances\ndeposit ZZ 1\n',
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                       timeout=TIMEOUT)
    check(p.returncode == 0, f'reopening: exit {p.returncode}, stderr {p.stderr.decode()!r}')
    got = parse_lines(p.stdout.decode(), 'reopening')
    head = len(events)
    check(len(got) == 4, f'reopening: {len(got)} lines')
    st, rf, bs, dp = got
    check(st.get('cmd') == 'status' and st.get('head') == head and
          st.get('checkpoint') == checkpoint,
          f'reopening: status {st}, file has {head} events, checkpoint {checkpoint}')
    check(rf.get('cmd') == 'refresh' and rf.get('applied') == head - checkpoint,
          f'reopening: refresh {rf}')
    want = replay(events)
    check(bs.get('cmd') == 'balances' and
          {b['account']: b['balance'] for b in bs.get('balances', [])} == want,
          f'reopening: balances {bs}, replay says {want}')
    check(dp.get('cmd') == 'deposit' and dp.get('position') == head + 1,
          f'reopening: deposit {dp}')
    return k


# per kind, the errnos the points take in turn (stdout: each at every
# point); SHORT is a write that writes only half (no error)
ERRNOS = {'write': ['EIO', 'ENOSPC', 'SHORT'], 'fsync': ['EIO', 'ENOSPC'],
          'alloc': [None], 'stdout': ['EIO', 'ENOSPC', 'EPIPE', 'EINTR', 'SHORT']}


class Case:
    def __init__(self, setup, kind, n, errno_name, sticky=False):
        self.setup, self.kind, self.n = setup, kind, n
        self.errno_name, self.sticky = errno_name, sticky
        self.unshown = False    # the file held commands not shown

    @property
    def group(self):
        return f'{self.setup} {self.kind}{" sticky" if self.sticky else ""}'

    def fault_env(self):
        env = {'FAULT_KIND': self.kind, 'FAULT_AT': str(self.n)}
        if self.errno_name:
            env['FAULT_ERRNO'] = self.errno_name
        if self.sticky:
            env['FAULT_STICKY'] = '1'
        return env

    def only(self):
        return (f'{self.setup}:{self.kind}:{self.n}:{self.errno_name or ""}' +
                (':sticky' if self.sticky else ''))

    def reproducer(self, ctx):
        """The run by hand, on the scripts `--keep DIR` writes into DIR."""
        store, before = SETUPS[self.setup]
        env = ' '.join(f'{k}={v}' for k, v in self.fault_env().items())
        uri = 'sqlite:/tmp/fault.db' if store == 'sqlite' else 'memory'
        b = shlex.quote(ctx.binary)
        pre = 'rm -f /tmp/fault.db*; ' if store == 'sqlite' else ''
        if before:
            pre += f'{b} --store {uri} ' + ' '.join(f'DIR/part{i + 1}.cqrs' for i in range(before)) + '; '
        rest = ' '.join(f'DIR/part{i + 1}.cqrs' for i in range(before, len(SCRIPT)))
        return (f'{pre}LD_PRELOAD={shlex.quote(ctx.shim)} {env} FAULT_LOG=/dev/stderr '
                f'FAULT_BACKTRACE=1 {b} --json --store {uri} {rest}')

    def __str__(self):
        s = f'{self.group} #{self.n}'
        return s + (f' {self.errno_name}' if self.errno_name else '')


def run_case(ctx, case, keep=None):
    """Runs one case: (how it ended, None) or (None, why it failed)."""
    d = tempfile.mkdtemp(dir=ctx.workdir, prefix='run-')
    ok = False
    try:
        log = os.path.join(d, 'fault.log')
        env = case.fault_env()
        env['FAULT_LOG'] = log
        rc, out, err, db = ctx.run(case.setup, d, env)
        try:
            fired = os.path.exists(log) and os.path.getsize(log) > 0
            how, shown = check_output(ctx, case.setup, case.kind, case.errno_name,
                                      rc, out, err)
            if SETUPS[case.setup][0] == 'sqlite':
                k = check_file(ctx, db, ctx.offset[case.setup] + shown)
                if k is not None and k > ctx.offset[case.setup] + shown:
                    case.unshown = True     # kept, though not acknowledged
            ok = True
            return (how if fired else 'not reached'), None
        except Failed as e:
            detail = f'{e}\n      exit {rc}; stdout ends {out[-300:]!r}; stderr {err[-300:]!r}'
            return None, detail
    except Failed as e:
        return None, str(e)
    except OSError as e:    # the binary could not be started, a file vanished
        return None, f'{type(e).__name__}: {e}'
    finally:
        if keep and not ok:
            shutil.copytree(d, os.path.join(keep, str(case).replace(' ', '-').replace('#', '')),
                            dirs_exist_ok=True)
        shutil.rmtree(d, ignore_errors=True)


def spread(lo, hi, first, sample):
    """lo..hi, or its first `first` and `sample` more spread evenly."""
    if hi < lo:
        return []
    if RUN_ALL or hi - lo + 1 <= first + sample:
        return list(range(lo, hi + 1))
    start = lo + first
    rest = hi - start + 1
    picked = {start + (i * (rest - 1)) // max(sample - 1, 1) for i in range(sample)}
    return list(range(lo, start)) + sorted(picked)


def points(total, opening, open_sample, run_sample):
    """The points to run: those while the store opens (1..opening) and
    those while commands run (the rest), each part sampled."""
    return (spread(1, opening, FIRST, open_sample) +
            spread(opening + 1, total, FIRST, run_sample))


def count_points(ctx, setup):
    d = tempfile.mkdtemp(dir=ctx.workdir, prefix='count-')
    try:
        counts_file = os.path.join(d, 'counts')
        rc, out, err, _ = ctx.run(setup, d, {'FAULT_COUNT_FILE': counts_file})
        ref_rc, ref = ctx.reference[setup]
        check(rc == ref_rc and [normalise(r) for r in parse_lines(out, 'counting run')] == ref
              and err == '', f'{setup}: the counting run differs from the run without '
              f'the shim: exit {rc}, stderr {err!r}')
        counts = {}
        with open(counts_file) as f:
            for line in f:
                *kind, n = line.split()
                counts[' '.join(kind)] = int(n)
        check(counts.get('alloc', 0) > 0, 'the shim counted no allocation: is it preloaded?')
        return counts
    finally:
        shutil.rmtree(d, ignore_errors=True)


def reference(ctx, setup):
    d = tempfile.mkdtemp(dir=ctx.workdir, prefix='ref-')
    try:
        rc, out, err, _ = ctx.run(setup, d)
        results = [normalise(r) for r in parse_lines(out, 'fault-free run')]
        before = sum(len(f) for f in SCRIPT[:SETUPS[setup][1]])
        check(len(results) == NCMDS - before and err == '' and rc in (0, 1),
              f'the fault-free run, {setup}: exit {rc}, {len(results)} results, stderr {err!r}')
        if ctx.full is not None and SETUPS[setup][0] == 'sqlite':
            check(results == ctx.full[before:], f'{setup}: the fault-free run differs '
                  'from the whole script run at once')
        ctx.offset[setup] = before
        return rc, results
    finally:
        shutil.rmtree(d, ignore_errors=True)


def has_sqlite(ctx):
    d = tempfile.mkdtemp(dir=ctx.workdir)
    try:
        p = subprocess.run([ctx.binary, '--store', 'sqlite:' + os.path.join(d, 'x.db')],
                           input=b'status\n', stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, env=base_env(), timeout=TIMEOUT)
        return p.returncode == 0
    finally:
        shutil.rmtree(d, ignore_errors=True)


def main(argv):
    only = keep = None
    args = []
    i = 0
    while i < len(argv):
        if argv[i] == '--only':
            only = argv[i + 1]
            i += 2
        elif argv[i] == '--keep':
            keep = os.path.abspath(argv[i + 1])
            i += 2
        else:
            args.append(argv[i])
            i += 1
    if len(args) != 2:
        print(__doc__.strip().splitlines()[0], file=sys.stderr)
        print('usage: fault_test.py BIN SHIM [--only SETUP:KIND:N[:ERRNO][:sticky]] [--keep DIR]',
              file=sys.stderr)
        return 2
    if os.environ.get('SIMPLECQRS_WRAPPER'):
        print('faults: skipped under a wrapper (valgrind does not mix with LD_PRELOAD of malloc)')
        return 77
    binary, shim = (os.path.abspath(a) for a in args)
    started = time.monotonic()
    # on a tmpfs when there is one: the faults are injected, not awaited,
    # and real fsyncs would only cost time
    shm = '/dev/shm'
    base = shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None
    workdir = tempfile.mkdtemp(prefix='simplecqrs-faults-', dir=base)
    try:
        ctx = Context(binary, shim, workdir)
        if keep:
            os.makedirs(keep, exist_ok=True)
            for s in ctx.scripts:
                shutil.copy(s, keep)
        setups = list(SETUPS) if has_sqlite(ctx) else ['memory']
        if 'sqlite' in setups:
            ctx.reference['sqlite'] = reference(ctx, 'sqlite')
            ctx.full = ctx.reference['sqlite'][1]
            ctx.states = states_from(ctx.full)
        for setup in setups:
            if setup not in ctx.reference:
                ctx.reference[setup] = reference(ctx, setup)

        if only:
            parts = only.split(':') + ['', '']
            check(parts[0] in setups and parts[1] in ERRNOS,
                  f'--only {only}: SETUP:KIND:N[:ERRNO][:sticky], SETUP one of '
                  f'{", ".join(setups)}, KIND one of {", ".join(ERRNOS)}')
            case = Case(parts[0], parts[1], int(parts[2]),
                        parts[3] or ERRNOS[parts[1]][0], sticky=parts[4] == 'sticky')
            env = case.fault_env()
            env['FAULT_LOG'] = '/dev/stderr'
            env['FAULT_BACKTRACE'] = '1'
            d = tempfile.mkdtemp(dir=workdir)
            rc, out, err, _ = ctx.run(case.setup, d, env)
            print(f'exit {rc}\n--- stdout\n{out}--- stderr\n{err}---')
            how, why = run_case(ctx, case, keep)
            print(f'{case}: {how or "FAILED: " + why}')
            return 0 if how else 1

        cases = []
        plan = []      # (group, points there are, points run)
        for setup in setups:
            counts = count_points(ctx, setup)
            for kind in KINDS[setup]:
                total = counts.get(kind, 0)
                opening = counts.get('before-read ' + kind, 0)
                ns = points(total, opening, OPEN_SAMPLE, RUN_SAMPLE)
                errnos = ERRNOS[kind]
                if kind == 'stdout':    # few points: every errno at each
                    for n in ns:
                        cases += [Case(setup, kind, n, e) for e in errnos]
                else:
                    cases += [Case(setup, kind, n, errnos[j % len(errnos)])
                              for j, n in enumerate(ns)]
                plan.append((f'{setup} {kind}', total, opening, len(ns)))
                if kind in ('write', 'fsync', 'alloc'):
                    sn = points(total, opening, STICKY_SAMPLE, STICKY_SAMPLE)
                    cases += [Case(setup, kind, n, errnos[0], sticky=True) for n in sn]
                    plan.append((f'{setup} {kind} sticky', total, opening, len(sn)))
            print(f'{setup}: {ctx.offset[setup]} commands before, {len(ctx.reference[setup][1])} '
                  f'under faults; fault points (opening the store + running): ' +
                  ', '.join(f'{k} {counts.get("before-read " + k, 0)}+'
                            f'{counts.get(k, 0) - counts.get("before-read " + k, 0)}'
                            for k in KINDS[setup]), flush=True)

        outcomes = {}      # group -> {how: count}
        unshown = {}       # group -> runs whose file held more than shown
        failures = []
        workers = max(2, os.cpu_count() or 2)
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            futures = {pool.submit(run_case, ctx, c, keep): c for c in cases}
            for fut in concurrent.futures.as_completed(futures):
                c = futures[fut]
                how, why = fut.result()
                if how is None:
                    failures.append((c, why))
                    how = 'FAILED'
                g = outcomes.setdefault(c.group, {})
                g[how] = g.get(how, 0) + 1
                if c.unshown:
                    unshown[c.group] = unshown.get(c.group, 0) + 1

        for group, total, opening, run in plan:
            g = outcomes.get(group, {})
            runs = sum(g.values())
            survived = runs - g.get('FAILED', 0)
            detail = ', '.join(f'{v} {k}' for k, v in sorted(g.items(), key=lambda kv: -kv[1]))
            if unshown.get(group):
                detail += f'; {unshown[group]} files held commands not shown (allowed)'
            print(f'{group:28s} {total:5d} points ({opening:4d} opening), {run:4d} exercised, '
                  f'{runs:4d} runs, {survived:4d} survived: {detail}')
        failures.sort(key=lambda f: (f[0].group, f[0].n))
        me = ' '.join(shlex.quote(a) for a in [sys.argv[0], binary, shim])
        for c, why in failures[:MAX_SHOWN]:
            print(f'FAIL {c}: {why}\n      again: {me} --only {c.only()}'
                  f'\n      by hand: {c.reproducer(ctx)}')
        if len(failures) > MAX_SHOWN:
            print(f'... and {len(failures) - MAX_SHOWN} more failures')
        print(f'({time.monotonic() - started:.1f} s)')
        passed = len(cases) - len(failures)
        print(f'faults: {passed} passed, {len(failures)} failed')
        return 1 if failures else 0
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == '__main__':
    try:
        sys.exit(main(sys.argv[1:]))
    except Failed as e:     # the setting up went wrong: no case could run
        print(f'FAIL {e}\nfaults: 0 passed, 1 failed')
        sys.exit(1)
