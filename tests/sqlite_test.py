#!/usr/bin/env python3
"""The sqlite:PATH store against real files: reopening, bad files, a full disk,
two shells on one file.

usage: sqlite_test.py BIN

Each check runs the real binary on files in a temporary folder and reads them
back with Python's own sqlite3 module, as a curious user would.
"""
import hashlib, json, os, resource, shutil, signal, sqlite3, subprocess, sys, tempfile

BIN = os.path.abspath(sys.argv[1])
TMP = tempfile.mkdtemp(prefix='simplecqrs-sqlite-')
ENV = {k: v for k, v in os.environ.items() if k != 'SIMPLECQRS_STORE'}
passed = failed = 0


def check(name, cond, detail=''):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print(f'FAIL {name}' + (f': {detail}' if detail else ''), flush=True)


def run(path, script, *args, **kw):
    return subprocess.run([BIN, '--store', 'sqlite:' + path, *args],
                          input=script.encode(), capture_output=True, env=ENV,
                          timeout=120, **kw)


def js(path, script):
    p = run(path, script, '--json')
    return p, [json.loads(line) for line in p.stdout.splitlines()]


def fresh(name):
    return os.path.join(TMP, name)


def digest(path):
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


def rows(path, sql):
    db = sqlite3.connect(path)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


# ---- a new file: mode, schema, what sqlite3 shows ----

def test_new_file():
    path = fresh('new.db')
    old = os.umask(0)	# even with nothing masked, the ledger is 0600
    try:
        p = run(path, 'deposit XX1 1000\ntransfer XX1 XX2 50\n')
    finally:
        os.umask(old)
    check('new file: runs', p.returncode == 0, p.stderr.decode())
    mode = os.stat(path).st_mode & 0o777
    check('new file: mode 0600', mode == 0o600, oct(mode))
    got = rows(path, 'select position, stream, version, type, amount from events')
    check('new file: events readable with sqlite3',
          got == [(1, 'XX1', 1, 'AccountCredited', 1000),
                  (2, 'XX1', 2, 'AccountDebited', 50),
                  (3, 'XX2', 1, 'AccountCredited', 50)], got)
    check('new file: WAL', rows(path, 'pragma journal_mode') == [('wal',)])
    check('new file: integrity', rows(path, 'pragma integrity_check') == [('ok',)])


# ---- reopening gives back exactly what was left ----

def snapshot(path, accounts):
    p, out = js(path, 'status\nbalances\n' +
                ''.join(f'history {a}\n' for a in accounts))
    for o in out:
        for e in o.get('events', []):
            assert 'time' in e
    return p.returncode, out


def test_reopen():
    path = fresh('reopen.db')
    script = ''.join(f'deposit A{i % 7} {i + 1}\n' for i in range(300))
    script += 'transfer A1 A2 40\nwithdraw A3 5\nrefresh\n'
    script += 'deposit A0 9\nwithdraw A4 1\n'	# left behind the checkpoint
    p = run(path, script)
    check('reopen: first run', p.returncode == 0, p.stderr.decode())
    accounts = [f'A{i}' for i in range(7)]
    rc1, before = snapshot(path, accounts)
    rc2, after = snapshot(path, accounts)
    check('reopen: same status, sheet, histories', rc1 == rc2 == 0 and before == after)
    st = before[0]
    check('reopen: the checkpoint stays where refresh left it',
          st['head'] == 305 and st['checkpoint'] == 303 and st['behind'] == 2, st)
    p, out = js(path, 'refresh\nbalance A0\n')
    want = sum(i + 1 for i in range(300) if i % 7 == 0) + 9
    check('reopen: refresh applies only the two left',
          out[0]['applied'] == 2 and out[1]['balance'] == want, out)
    kept = dict(rows(path, 'select account, balance from balances'))
    check('reopen: the kept sheet is the replay', kept == replay(path), kept)


def replay(path):
    bal = {}
    for stream, typ, amount in rows(path, 'select stream, type, amount from events order by position'):
        bal[stream] = bal.get(stream, 0) + (amount if typ == 'AccountCredited' else -amount)
    return bal


# ---- files that are not ours are refused and left untouched ----

def refused(name, path, want, as_user=None):
    before = digest(path) if os.path.isfile(path) else None
    cmd = [BIN, '--store', 'sqlite:' + path]
    if as_user:
        cmd = as_user + cmd
    p = subprocess.run(cmd, input=b'deposit A 1\n', capture_output=True, env=ENV, timeout=60)
    err = p.stderr.decode()
    check(f'{name}: exit 2', p.returncode == 2, f'{p.returncode} {err}')
    check(f'{name}: one clear line', err.count('\n') == 1 and want in err, err)
    check(f'{name}: nothing on stdout', p.stdout == b'', p.stdout)
    if before is not None:
        check(f'{name}: file untouched', digest(path) == before)
    leftovers = [f for f in (path + '-wal', path + '-shm') if os.path.exists(f)]
    check(f'{name}: no WAL files left', not leftovers, leftovers)


def test_bad_files():
    text = fresh('notes.txt')
    with open(text, 'w') as f:
        f.write('these are my notes, not a ledger\n' * 200)
    refused('a text file', text, 'not a SQLite database')

    other = fresh('other.db')
    db = sqlite3.connect(other)
    db.execute('create table people (name text)')
    db.execute("insert into people values ('ada')")
    db.commit()
    db.close()
    refused("another program's database", other, 'another program')

    newer = fresh('newer.db')
    run(newer, 'deposit A 1\n')
    db = sqlite3.connect(newer)
    db.execute('pragma user_version = 2')
    db.commit()
    db.close()
    refused('a newer schema', newer, 'schema version 2')

    refused('a folder', TMP, 'folder')
    refused('a missing folder', os.path.join(TMP, 'no', 'such', 'ledger.db'),
            'No such file or directory')

    # permissions mean nothing to root, so the last two run as nobody
    locked = fresh('locked')
    os.mkdir(locked)
    ledger = os.path.join(locked, 'ledger.db')
    run(ledger, 'deposit A 1\n')
    os.chmod(ledger, 0o644)
    os.chmod(locked, 0o555)
    nobody = None
    if os.geteuid() == 0:
        nobody = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups']
        os.chmod(TMP, 0o755)
    refused('an unwritable folder', os.path.join(locked, 'new.db'), 'Permission denied', nobody)
    refused('a file it may not write', ledger, 'read-only', nobody)
    os.chmod(locked, 0o755)


# ---- a failing disk: exit 3, and nothing shown that was not kept ----

def limit_file_size():
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)	# write() fails with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))


def test_full_disk():
    path = fresh('full.db')
    script = ''.join(f'deposit A{i % 50} {i + 1}\n' + ('refresh\n' if i % 100 == 0 else '')
                     for i in range(20000))
    p = subprocess.run([BIN, '--store', 'sqlite:' + path, '--json'], input=script.encode(),
                       capture_output=True, env=ENV, timeout=120, preexec_fn=limit_file_size)
    out = [json.loads(line) for line in p.stdout.splitlines()]
    check('full disk: exit 3', p.returncode == 3, p.returncode)
    check('full disk: ends with one storage error',
          out and out[-1].get('error') == 'storage' and
          sum(1 for o in out if not o['ok']) == 1, out[-1:])
    shown = [o for o in out if o['ok'] and o['cmd'] == 'deposit']
    check('full disk: some results were kept and shown first', len(shown) > 0)
    kept = {r[0]: r[1:] for r in rows(path, 'select position, stream, amount from events')}
    missing = [o for o in shown if kept.get(o['position']) != (o['account'], o['amount'])]
    check('full disk: every result shown is in the file', not missing, missing[:3])
    check('full disk: integrity', rows(path, 'pragma integrity_check') == [('ok',)])
    p2, out2 = js(path, 'status\n')
    check('full disk: started again, it reports the truth',
          p2.returncode == 0 and out2[0]['head'] == len(kept), out2)


# ---- two shells on one file ----

class Shell:
    """A shell on a pipe, asked one line at a time (it flushes, and so
    commits, before it waits for the next)."""

    def __init__(self, path):
        self.p = subprocess.Popen([BIN, '--store', 'sqlite:' + path, '--json'],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  env=ENV)

    def ask(self, line):
        self.p.stdin.write(line.encode() + b'\n')
        self.p.stdin.flush()
        return json.loads(self.p.stdout.readline())

    def close(self):
        self.p.stdin.close()
        self.p.stdout.read()
        return self.p.wait(timeout=60)


def test_two_shells():
    path = fresh('shared.db')
    a, b = Shell(path), Shell(path)
    try:
        check('two shells: B deposits', b.ask('deposit X 10')['version'] == 1)
        r = a.ask('withdraw X 10')
        check("two shells: A sees B's deposit", r['ok'] and r['version'] == 2, r)
        r = b.ask('withdraw X 5')	# B's cache says 10; the store says 0
        check('two shells: the stale writer re-decides',
              r.get('error') == 'insufficient_funds' and 'has 0' in r['message'], r)
        r = b.ask('deposit X 7')
        check('two shells: and then writes after the new version',
              r['ok'] and r['version'] == 3 and r['position'] == 3, r)
        r = a.ask('refresh')
        check('two shells: A refreshes', r['applied'] == 3, r)
        r = b.ask('balances')
        check("two shells: B's balances show A's refresh",
              r['position'] == 3 and r['balances'] == [{'account': 'X', 'balance': 7}], r)
        a.ask('deposit Y 4')
        r = b.ask('refresh')
        check('two shells: B applies only what A did not', r['applied'] == 1, r)
        r = a.ask('status')
        check("two shells: A's status has B's checkpoint",
              r['checkpoint'] == 4 and r['behind'] == 0, r)
    finally:
        check('two shells: both exit 0 or 1', {a.close(), b.close()} <= {0, 1})
    kept = dict(rows(path, 'select account, balance from balances'))
    check('two shells: kept sheet is the replay', kept == replay(path) == {'X': 7, 'Y': 4}, kept)


def test_first_open_race():
    """Shells started together on a file nobody made yet: one makes the
    schema, the others wait and use it."""
    for round in range(5):
        path = fresh(f'race-{round}.db')
        ps = [subprocess.Popen([BIN, '--store', 'sqlite:' + path], stdin=subprocess.PIPE,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV)
              for _ in range(8)]
        errs = [p.communicate(f'deposit A{i} 5\n'.encode(), timeout=60)[1]
                for i, p in enumerate(ps)]
        codes = [p.returncode for p in ps]
        check(f'first open race {round}: all ran', codes == [0] * 8, (codes, errs))
        n = rows(path, 'select count(*) from events')[0][0]
        check(f'first open race {round}: 8 events', n == 8, n)


def test_refresh_always_beaten():
    """A refresh whose checkpoint is moved by others every time it tries
    (here a trigger makes every compare-and-set miss) fails with `conflict`,
    applies nothing and exits 1: the store did not fail."""
    path = fresh('beaten.db')
    run(path, 'deposit A 5\n')
    db = sqlite3.connect(path)
    db.execute('CREATE TRIGGER beaten BEFORE UPDATE ON checkpoint '
               'BEGIN SELECT raise(IGNORE); END')
    db.commit()
    db.close()
    p, out = js(path, 'refresh\nstatus\n')
    check('beaten refresh: exit 1', p.returncode == 1, p.returncode)
    check('beaten refresh: conflict', out[0].get('error') == 'conflict', out[0])
    check('beaten refresh: nothing applied',
          out[1]['checkpoint'] == 0 and rows(path, 'select * from balances') == [], out[1])


def main():
    for t in (test_new_file, test_reopen, test_bad_files, test_full_disk, test_two_shells,
              test_first_open_race, test_refresh_always_beaten):
        try:
            t()
        except Exception as e:	# a crash of the test is a failure, not a pass
            check(t.__name__, False, repr(e))
    shutil.rmtree(TMP, ignore_errors=True)
    print(f'sqlite: {passed} passed, {failed} failed')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
