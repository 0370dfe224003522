#!/usr/bin/env python3
"""The order itself: no result is written before the commit of its group
has returned.  usage: order_test.py BIN --store sqlite|postgresql

`BIN --json --store ...` runs under `strace -f -ttt -y -xx` on a script fed
through a pipe in 12 batches, 0.15 s apart, so that the shell meets an
empty pipe after each batch, shows what it has and so commits a group each
time; the last batch is large (1,500 deposits) so that a group holds many
events.  Each batch deposits into accounts that exist nowhere else
(fresh names, fixed width, so no name is part of another), and also
withdraws, transfers, asks `balance` and makes a refused withdrawal (an
error, on the error stream).  The shell's stdout is captured as it comes;
the n-th write(2) to fd 1 or fd 2 is matched to its bytes by the byte counts
the trace shows, so each result line is known to have left in one write W,
which started at W's time in the trace.  The trace is one thread's calls in
the order they were made (the shell is single-threaded: a line is printed
at a call's entry, and the next call starts after this one returned).

sqlite (the ledger FILE; its durable files D are FILE, FILE-wal and
FILE-journal; FILE-shm is an index rebuilt from the WAL, so not in D):

  S1  a file of D is dirty from any write, pwrite64, writev or pwritev to
      it until an fsync or fdatasync of it returns 0. At the start of every
      write to fd 1 or fd 2 that carries bytes, no file of D is dirty: every
      byte of the ledger written before a result was synced before it.
  S2  each fresh account's deposit result, written by W, was preceded by a
      write to a file of D whose bytes hold the account's name (the stream
      row, made in the group that holds its first event). With S1: the sync
      that made that group durable returned before the first byte of its
      results.
  S3  the test saw what it claims: every command has its result, at least
      6 writes to fd 1 each followed a sync of the WAL that came after the
      previous write to fd 1 (6 groups; a slow machine may run batches
      together), `PRAGMA integrity_check` is ok and every fresh account is
      kept.

postgresql (a private cluster started as tests/pg_test.py starts its own,
track_commit_timestamp on; the shell's conversation with the server is
rebuilt from its socket's send/recv calls and read message by message, the
wire protocol v3, whatever statements the store sends):

  P1  at the start of every write to fd 1 or fd 2 that carries bytes,
      nothing is in flight: the StartupMessage, every Query, Sync and
      FunctionCall sent has got its ReadyForQuery (a COMMIT sent is a
      COMMIT answered); and every write the server reported done
      (CommandComplete INSERT, UPDATE, DELETE or MERGE, or a
      CopyInResponse) has been followed by the end of its transaction:
      CommandComplete COMMIT, or ReadyForQuery idle ('I') after an implicit
      transaction with no error. Writes ended by ROLLBACK or an error fail
      the test (nothing in this script may fail on the server).
  P2  each fresh account's deposit event committed (the server's
      pg_xact_commit_timestamp of its row) before the start of the write W
      that printed its result (the same clock: one machine): this holds
      even for a store that would send a group only at its commit.
  P3  every command has its result, at least 6 writes to fd 1 each
      followed a commit acknowledged after the previous write to fd 1, and
      every fresh account's deposit is kept.

A build with `PRAGMA synchronous = NORMAL` fails S1 (the WAL is not synced
at commit); a shell that shows before it commits fails S1 or S2, P1 or P2.
strace missing is a failure, not a skip (scripts/deps.sh installs it).
Under SIMPLECQRS_WRAPPER (valgrind) the test skips: the wrapper's own calls
would be traced. Prints 'order: P passed, F failed'; exits 1 on failure.
"""
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

from ledger_checks import Checks, Failed, check

GROUPS = 12
MIN_GROUPS = GROUPS // 2  # batches a slow machine runs together
PAUSE = 0.15
BIG = 1500
STRSIZE = 1 << 24  # strace -s: every byte of a page or a message
WRITES = ('write', 'pwrite64', 'writev', 'pwritev', 'pwritev2')
SYNCS = ('fsync', 'fdatasync')
SENDS = ('write', 'send', 'sendto')
RECVS = ('read', 'recv', 'recvfrom')
TRACE_SQLITE = ','.join(WRITES + SYNCS)  # -y names each call's file
TRACE_PG = 'network,read,write,writev,close'
BIN = None


# ---- the script ----

def fresh(g, i):
    return f'q{g:03d}n{i:05d}z'


def script():
    """[[line]]: one list per batch; and the fresh accounts, in order."""
    batches, accounts = [], []
    for g in range(GROUPS):
        lines = []
        n = BIG if g == GROUPS - 1 else 4
        for i in range(n):
            lines.append(f'deposit {fresh(g, i)} {100 + i}')
            accounts.append(fresh(g, i))
        lines += [f'deposit keep{g % 3} 50',
                  f'withdraw keep{g % 3} 20',
                  f'transfer keep{g % 3} keep{(g + 1) % 3} 10',
                  f'withdraw {fresh(g, 0)} 1000000',  # refused: an error
                  f'balance {fresh(g, 1)}']
        batches.append(lines)
    return batches, accounts


# ---- running under strace ----

def run_traced(args, env, batches, trace, tmp):
    """Runs BIN args under strace, feeding the batches PAUSE seconds apart.
    Returns (status, stdout, stderr, [calls])."""
    log = os.path.join(tmp, 'trace')
    env = dict(env)
    # LeakSanitizer cannot stop a traced process's world
    env['ASAN_OPTIONS'] = (env.get('ASAN_OPTIONS', '') + ':detect_leaks=0').lstrip(':')
    p = subprocess.Popen(['strace', '-f', '-qq', '-ttt', '-y', '-xx', '-s', str(STRSIZE),
                          '-e', 'trace=' + trace, '-o', log, BIN] + args,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env, cwd=tmp)
    got = {}

    def drain(name, f):
        got[name] = f.read()
    readers = [threading.Thread(target=drain, args=(n, f))
               for n, f in (('out', p.stdout), ('err', p.stderr))]
    for t in readers:
        t.start()
    try:
        time.sleep(0.3)  # strace and the shell are up: batches arrive apart
        for lines in batches:
            p.stdin.write(('\n'.join(lines) + '\n').encode())
            p.stdin.flush()
            time.sleep(PAUSE)
        p.stdin.close()
        status = p.wait(120)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        raise Failed('the traced shell did not end within 120 s')
    for t in readers:
        t.join()
    return status, got['out'], got['err'], parse_trace(log)


class Call:
    __slots__ = ('t', 'name', 'fd', 'path', 'data', 'cut', 'ret')

    def __repr__(self):
        return (f'{self.t:.6f} {self.name}({self.fd}<{self.path}>'
                f'{"" if self.data is None else ", %d bytes" % len(self.data)}) = {self.ret}')


HEX = re.compile(r'((?:\\x[0-9a-f]{2})+)')
LINE = re.compile(r'^(\d+) +(\d+\.\d+) (\w+)\((.*)\) += (-?\d+|\?)')
FD = re.compile(r'(-?\d+)<([^>]*)>')
STR = re.compile(r'"((?:\\x[0-9a-f]{2})*)"(\.\.\.)?')


def unhex(s):
    return bytes.fromhex(s.replace('\\x', ''))


def parse_trace(log):
    """The calls, in order; unfinished calls are joined to their ends."""
    calls, pending = [], {}
    with open(log, errors='replace') as f:
        for raw in f:
            raw = raw.rstrip('\n')
            pid = raw.split(' ', 1)[0]
            if raw.endswith('<unfinished ...>'):
                pending[pid] = raw[:-len('<unfinished ...>')]
                continue
            m = re.match(r'^(\d+) +\d+\.\d+ <\.\.\. \w+ resumed>(.*)$', raw)
            if m and pid in pending:
                raw = pending.pop(pid) + m.group(2)
            m = LINE.match(raw)
            if not m:
                continue  # signals, exits
            c = Call()
            c.t = float(m.group(2))
            c.name = m.group(3)
            args = m.group(4)
            c.ret = int(m.group(5)) if m.group(5) != '?' else None
            r = FD.match(args)  # -y: 3</path>, 4<socket:[123]>, 1<pipe:[45]>
            c.fd = int(r.group(1)) if r else None
            c.path = unhex(r.group(2)).decode(errors='replace') if r else ''
            s = STR.search(args, r.end() if r else 0)
            c.data = unhex(s.group(1)) if s else None
            c.cut = bool(s and s.group(2))
            calls.append(c)
    return calls


def outputs(calls, stdout, stderr):
    """[(call, bytes)] for every write to fd 1 or 2 that wrote bytes, the
    bytes taken from what was captured, by the counts the trace shows."""
    at = {1: 0, 2: 0}
    text = {1: stdout, 2: stderr}
    out = []
    for c in calls:
        if c.fd in (1, 2) and c.name in WRITES and c.ret and c.ret > 0:
            out.append((c, text[c.fd][at[c.fd]:at[c.fd] + c.ret]))
            at[c.fd] += c.ret
    check(at[1] == len(stdout) and at[2] == len(stderr),
          f'the trace shows {at[1]} bytes written to stdout and {at[2]} to stderr, '
          f'the shell wrote {len(stdout)} and {len(stderr)}')
    return out


def writer_of(outs, accounts):
    """{account: the write (call) that carried its deposit result}"""
    want = {f'"cmd":"deposit","account":"{a}"'.encode(): a for a in accounts}
    found = {}
    for c, data in outs:
        if c.fd != 1:
            continue
        for line in data.split(b'\n'):
            i = line.find(b'"cmd":"deposit","account":"')
            if i >= 0:
                key = line[i:line.find(b'"', i + 27) + 1]
                if key in want:
                    found[want[key]] = c
    missing = [a for a in accounts if a not in found]
    check(not missing, f'{len(missing)} fresh deposits have no result line in a write '
          f'to stdout (first {missing[:3]})')
    return found


def check_ran(status, stdout, stderr, batches):
    check(status == 1, f'exit status {status}, want 1 (the refused withdrawals); '
          f'stderr {stderr[:300]!r}')
    lines = stdout.count(b'\n')
    want = sum(len(b) for b in batches)
    check(lines == want, f'{lines} result lines, want {want}; stderr {stderr[:300]!r}')
    check(b'"ok":false' in stdout and b'storage' not in stdout + stderr,
          f'want refusals and no storage error: {stderr[:300]!r}')


# ---- sqlite ----

def test_sqlite(checks):
    tmp = tempfile.mkdtemp(prefix='simplecqrs-order-')
    try:
        path = os.path.join(tmp, 'ledger')
        durable = {path, path + '-wal', path + '-journal'}
        batches, accounts = script()
        env = {k: v for k, v in os.environ.items() if k != 'SIMPLECQRS_STORE'}
        status, stdout, stderr, calls = run_traced(
            ['--json', '--store', 'sqlite:' + path], env, batches, TRACE_SQLITE, tmp)
        checks('sqlite: the shell ran the script (exit 1, a result a command)',
               check_ran, status, stdout, stderr, batches)
        outs = checks('sqlite: the trace accounts for every byte shown',
                      outputs, calls, stdout, stderr) or []
        cut = [c for c in calls if c.cut and c.path in durable]
        checks('sqlite: strace showed every byte written to the ledger',
               lambda: check(not cut, f'{len(cut)} writes cut short: {cut[:2]}'))

        def check_s1():
            dirty = {}  # file: its first write since its last sync
            for c in calls:
                if c.path in durable and c.name in WRITES and c.ret and c.ret > 0:
                    dirty.setdefault(c.path, c)
                elif c.path in durable and c.name in SYNCS and c.ret == 0:
                    dirty.pop(c.path, None)
                elif c.fd in (1, 2) and c.name in WRITES and c.ret and c.ret > 0:
                    for f, w in dirty.items():
                        raise Failed(f'{os.path.basename(f)} written at {w.t:.6f} '
                                     f'({w.name}, {w.ret} bytes) and not synced before '
                                     f'{c.ret} bytes were written to fd {c.fd} at {c.t:.6f}')
        checks('sqlite: S1 every ledger byte written before a result was synced '
               'before it', check_s1)

        def check_s2():
            writers = writer_of(outs, accounts)
            first = {}  # account: the first durable write holding its name
            names = {a.encode(): a for a in accounts}
            pat = re.compile(rb'q\d{3}n\d{5}z')
            for c in calls:
                if c.path in durable and c.name in WRITES and c.data:
                    for m in pat.finditer(c.data):
                        a = names.get(m.group(0))
                        if a and a not in first:
                            first[a] = c
            for a in accounts:
                w = writers[a]
                check(a in first, f'{a}: its result was written at {w.t:.6f}, its name '
                      f'never to the ledger')
                check(first[a].t < w.t, f'{a}: its result was written at {w.t:.6f}, '
                      f'its name first to {os.path.basename(first[a].path)} at '
                      f'{first[a].t:.6f}: shown before its group was written')
        checks('sqlite: S2 each fresh deposit reached the ledger file before its '
               'result was shown', check_s2)

        def check_s3():
            groups, synced = 0, False
            for c in calls:
                if c.path == path + '-wal' and c.name in SYNCS and c.ret == 0:
                    synced = True
                elif c.fd == 1 and c.name in WRITES and c.ret and c.ret > 0:
                    groups += synced
                    synced = False
            check(groups >= MIN_GROUPS, f'only {groups} writes to stdout followed a '
                  f'sync of the WAL, want at least {MIN_GROUPS}: too few groups, or '
                  f'their commits did not sync')
            db = sqlite3.connect(path)
            try:
                ok = db.execute('PRAGMA integrity_check').fetchone()[0]
                n = db.execute('SELECT count(*) FROM streams WHERE name LIKE '
                               "'q%z'").fetchone()[0]
            finally:
                db.close()
            check(ok == 'ok', f'integrity_check: {ok}')
            check(n == len(accounts), f'{n} fresh streams kept, want {len(accounts)}')
            return groups
        groups = checks('sqlite: S3 the script made groups and the file holds them',
                        check_s3)
        print(f'sqlite: {len(calls)} calls traced, {groups} groups shown', flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ---- postgresql ----

class Conversation:
    """One connection to the server, read message by message as the calls
    go: what the client asked that is unanswered, and whether the server has
    reported writes whose transaction has not ended."""

    def __init__(self):
        self.out = b''  # client to server, not yet parsed
        self.inp = b''  # server to client, not yet parsed
        self.started = False  # the StartupMessage was sent
        self.answer_byte = 0  # SSLRequest / GSSENCRequest answers: one byte
        self.in_flight = 0  # requests awaiting their ReadyForQuery
        self.status = None  # of the last ReadyForQuery
        self.wrote = None  # (time, tag) of the first write not yet ended
        self.error = False  # an error since that write
        self.commits = 0  # transactions with writes whose end was seen
        self.lost = []  # writes ended by a rollback or an error

    def sent(self, data, t):
        self.out += data
        while True:
            if not self.started:
                if len(self.out) < 8:
                    return
                n = int.from_bytes(self.out[:4], 'big')
                code = int.from_bytes(self.out[4:8], 'big')
                if len(self.out) < n:
                    return
                self.out = self.out[n:]
                if code in (80877103, 80877104):  # SSL, GSSENC request
                    self.answer_byte += 1
                elif code == 80877102:  # CancelRequest: no answer
                    pass
                else:
                    self.started = True
                    self.in_flight += 1
                continue
            if len(self.out) < 5:
                return
            n = int.from_bytes(self.out[1:5], 'big')
            if len(self.out) < 1 + n:
                return
            kind = self.out[:1]
            self.out = self.out[1 + n:]
            if kind in (b'Q', b'S', b'F'):
                self.in_flight += 1

    def received(self, data, t):
        self.inp += data
        while self.inp:
            if self.answer_byte:
                self.answer_byte -= 1
                check(self.inp[:1] == b'N', f'the server accepted encryption '
                      f'({self.inp[:1]!r}): the conversation cannot be read')
                self.inp = self.inp[1:]
                continue
            if len(self.inp) < 5:
                return
            n = int.from_bytes(self.inp[1:5], 'big')
            if len(self.inp) < 1 + n:
                return
            kind, body = self.inp[:1], self.inp[5:1 + n]
            self.inp = self.inp[1 + n:]
            if kind == b'C':
                tag = body.rstrip(b'\0').decode(errors='replace')
                word = tag.split(' ', 1)[0]
                if word in ('INSERT', 'UPDATE', 'DELETE', 'MERGE'):
                    self.write(t, tag)
                elif word == 'COMMIT':
                    self.end(t, committed=not self.error, how=tag)
                elif word == 'ROLLBACK':
                    self.end(t, committed=False, how=tag)
            elif kind == b'G':
                self.write(t, 'COPY FROM STDIN')
            elif kind == b'E':
                self.error = True
            elif kind == b'Z':
                self.in_flight -= 1
                self.status = body[:1]
                if self.status == b'I':  # no transaction open now
                    self.end(t, committed=not self.error, how='ReadyForQuery idle')
                    self.error = False

    def write(self, t, tag):
        if self.wrote is None:
            self.wrote = (t, tag)

    def end(self, t, committed, how):
        if self.wrote is not None:
            if committed:
                self.commits += 1
            else:
                self.lost.append((self.wrote, t, how))
        self.wrote = None

    def busy(self):
        """What is unfinished, in words, or None."""
        if self.in_flight > 0:
            return f'{self.in_flight} request(s) to the server unanswered'
        if self.wrote is not None:
            return (f'the server reported {self.wrote[1]} at {self.wrote[0]:.6f} and '
                    f'no end of its transaction')
        return None


def test_postgresql(checks):
    import pg_test
    bindir = pg_test.server_bin()
    check(bindir is not None and shutil.which('psql'),
          'the PostgreSQL server binaries (initdb, pg_ctl) or psql are missing: '
          'install postgresql to run this test')
    cluster = pg_test.Cluster(bindir)
    pg_test.CLUSTER = cluster
    tmp = tempfile.mkdtemp(prefix='simplecqrs-order-')
    try:
        cluster.init()
        with pg_test.Database('order') as db:
            batches, accounts = script()
            status, stdout, stderr, calls = run_traced(
                ['--json', '--store', db.uri], cluster.env, batches, TRACE_PG, tmp)
            checks('postgresql: the shell ran the script (exit 1, a result a command)',
                   check_ran, status, stdout, stderr, batches)
            outs = checks('postgresql: the trace accounts for every byte shown',
                          outputs, calls, stdout, stderr) or []
            shown_after = {}

            def check_p1():
                convs, commits_seen, groups = {}, 0, 0
                for c in calls:
                    if c.name in ('socket', 'connect') and c.ret is not None:
                        fd = c.ret if c.name == 'socket' else c.fd
                        if fd is not None and fd >= 0:
                            convs[fd] = Conversation()
                        continue
                    if c.fd in (1, 2) and c.name in WRITES:
                        if c.ret and c.ret > 0:
                            for fd, conv in convs.items():
                                why = conv.busy()
                                check(why is None, f'fd {fd}: {why}; then at {c.t:.6f} '
                                      f'wrote {c.ret} bytes to fd {c.fd}')
                            if c.fd == 1:
                                now = sum(v.commits for v in convs.values())
                                groups += now > commits_seen
                                commits_seen = now
                        continue
                    conv = convs.get(c.fd)
                    if conv is None or c.ret is None or c.ret <= 0:
                        continue
                    if c.name in ('sendmsg', 'recvmsg', 'writev', 'readv'):
                        raise Failed(f'{c.name} on the server socket: this test reads '
                                     f'only send/recv/read/write')
                    check(not c.cut and c.data is not None and len(c.data) == c.ret,
                          f'strace cut {c!r}')
                    if c.name in SENDS:
                        conv.sent(c.data, c.t)
                    elif c.name in RECVS:
                        conv.received(c.data, c.t)
                lost = [w for v in convs.values() for w in v.lost]
                check(not lost, f'writes ended without a commit: {lost[:3]}')
                check(convs, 'no connection to the server in the trace')
                check(groups >= MIN_GROUPS, f'only {groups} writes to stdout followed '
                      f'a commit acknowledged after the previous one, want at least '
                      f'{MIN_GROUPS}: too few groups')
                return groups
            groups = checks('postgresql: P1 at every result nothing was in flight and '
                            'every reported write had committed', check_p1)

            def check_p2():
                writers = writer_of(outs, accounts)
                rows = db.rows("SELECT stream, extract(epoch FROM "
                               "pg_xact_commit_timestamp(xmin))::text FROM events "
                               "WHERE stream LIKE 'q%z'")
                committed = {s: float(t) for s, t in rows}
                check(len(committed) == len(accounts),
                      f'{len(committed)} fresh deposits kept, want {len(accounts)}')
                for a in accounts:
                    w = writers[a]
                    check(committed[a] < w.t, f'{a}: its result was written at '
                          f'{w.t:.6f}, its event committed at {committed[a]:.6f}')
                    shown_after[a] = w.t - committed[a]
            checks('postgresql: P2 each fresh deposit committed before its result '
                   'was written', check_p2)
            if len(shown_after) == len(accounts):
                print(f'postgresql: {len(calls)} calls traced, {groups} groups shown; '
                      f'commit to result at least {min(shown_after.values()) * 1e6:.0f} us',
                      flush=True)
    finally:
        cluster.destroy()
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    global BIN
    argv = sys.argv[1:]
    if len(argv) != 3 or argv[1] != '--store' or argv[2] not in ('sqlite', 'postgresql'):
        sys.exit(__doc__)
    BIN = os.path.abspath(argv[0])
    if os.environ.get('SIMPLECQRS_WRAPPER'):
        print('order: skipped under SIMPLECQRS_WRAPPER (its own calls would be traced)')
        return 77
    checks = Checks()
    started = time.monotonic()
    if shutil.which('strace') is None:
        print('FAIL strace is missing: install it (scripts/deps.sh lists it)', flush=True)
        checks.failed += 1
    else:
        test = test_sqlite if argv[2] == 'sqlite' else test_postgresql
        try:
            test(checks)
        except Exception as e:
            checks.failed += 1
            print(f'FAIL {argv[2]}: {type(e).__name__}: {e}', flush=True)
    print(f'order: {time.monotonic() - started:.1f}s; '
          f'{checks.passed} passed, {checks.failed} failed', flush=True)
    return 1 if checks.failed else 0


if __name__ == '__main__':
    sys.exit(main())
