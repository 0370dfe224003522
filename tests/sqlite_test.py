#!/usr/bin/env python3
"""The sqlite:PATH store against real files: reopening, bad files, a full disk,
two shells on one file.

usage: sqlite_test.py BIN [TEST...]  (TEST: a test function's name; none: all)

Each check runs the real binary on files in a temporary folder and reads them
back with Python's own sqlite3 module, as a curious user would.
"""
import hashlib, json, os, random, resource, shutil, signal, sqlite3, subprocess, sys, tempfile, threading

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
    db.execute('pragma user_version = 3')
    db.commit()
    db.close()
    refused('a newer schema', newer, 'schema version 3')

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
    # a few groups fit (16 KiB pages: a group of ~4,000 deposits writes
    # ~300 kB of WAL), then a write fails
    resource.setrlimit(resource.RLIMIT_FSIZE, (600_000, 600_000))


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


# ---- one ledger, one name (issue 11) ----

def ledger_with(path, script):
    p = run(path, script)
    assert p.returncode == 0, p.stderr


def withdrawals(path):
    return rows(path, "select count(*) from events where type = 'AccountDebited'")[0][0]


def test_hard_link():
    """Two names for one file would give each shell its own WAL: both
    withdrawals of 600 from 1000 acknowledged, one of them lost."""
    a, b = fresh('linked-a.db'), fresh('linked-b.db')
    ledger_with(a, 'deposit X 1000\n')
    os.link(a, b)
    shells = [subprocess.Popen([BIN, '--store', 'sqlite:' + f, '--json'], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
              for f in (a, b)]
    outs = [sh.communicate(b'withdraw X 600\n', timeout=60) for sh in shells]
    acked = sum(1 for out, _ in outs if b'"ok":true' in out)
    for (out, err), sh, name in zip(outs, shells, ('first', 'second')):
        check(f'hard link: the {name} name is refused, exit 2',
              sh.returncode == 2 and b'hard link' in err and out == b'', (sh.returncode, err))
    os.unlink(b)
    check('hard link: what was acknowledged is what the file holds',
          withdrawals(a) == acked and acked <= 1, (withdrawals(a), acked))


def test_renamed_while_open():
    """A shell holds the file open, its last write still in its WAL; the
    file is renamed and a second shell opens the new name. The second must
    not see a ledger without that write, and the first must not write on:
    each would acknowledge what the other then loses."""
    a, b = fresh('moved-a.db'), fresh('moved-b.db')
    ledger_with(a, 'deposit X 1000\n')
    first = Shell(a)
    acked = []
    try:
        r = first.ask('withdraw X 100')
        acked += [r] if r.get('ok') else []
        os.rename(a, b)
        p, out = js(b, 'withdraw X 600\n')
        acked += [o for o in out if o.get('ok')]
        check('renamed: the new name is refused while the old one is open, exit 2',
              p.returncode == 2 and b'another name' in p.stderr, (p.returncode, p.stderr, out))
        r = first.ask('withdraw X 600')
        acked += [r] if r.get('ok') else []
        check('renamed: the shell on the old name fails clearly',
              r.get('error') == 'storage' and 'renamed or removed' in r.get('message', ''), r)
    finally:
        code = first.close()
    check('renamed: the old name exits 3', code == 3, code)
    p, out = js(b, 'withdraw X 50\nrefresh\nbalance X\n')
    acked += out[:1] if out and out[0].get('ok') else []
    check('renamed: once it has ended, the new name opens', p.returncode == 0, p.stderr)
    check('renamed: what was acknowledged is what the file holds',
          withdrawals(b) == len(acked) == 2, (withdrawals(b), acked))
    check('renamed: the balance is 850', out[-1].get('balance') == 850, out)


def file_alone(path):
    """The events a copy of the file alone holds (cp, without its -wal)."""
    copy = path + '.copy'
    shutil.copyfile(path, copy)
    try:
        db = sqlite3.connect(copy)
        try:
            return db.execute('SELECT count(*) FROM event_log').fetchone()[0]
        finally:
            db.close()
    finally:
        for f in (copy, copy + '-wal', copy + '-shm'):
            if os.path.exists(f):
                os.remove(f)


def test_ended_by_a_signal():
    """SIGTERM, SIGHUP (a closed terminal) and SIGINT end a piped run as
    its end would: what ran is committed and shown, the store is closed, so
    the file alone (no -wal beside it) holds every event and cp is safe, and
    the program then ends by that signal. Both while it waits for input and
    in the middle of a long script."""
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        name = signal.Signals(sig).name
        path = fresh(f'signal-{name}.db')
        sh = Shell(path)
        r = sh.ask('deposit A 5')
        check(f'{name} while waiting: the deposit', r.get('ok'), r)
        sh.p.send_signal(sig)
        code = sh.p.wait(timeout=60)
        check(f'{name} while waiting: ended by the signal', code == -sig, code)
        check(f'{name} while waiting: no write-ahead log left',
              not os.path.exists(path + '-wal'), sorted(os.listdir(TMP)))
        check(f'{name} while waiting: the file alone holds the event',
              file_alone(path) == 1)

        path = fresh(f'signal-long-{name}.db')
        p = subprocess.Popen([BIN, '--store', 'sqlite:' + path, '--json'],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=ENV)
        got = {}
        reader = threading.Thread(target=lambda: got.update(out=p.stdout.read()),
                                  daemon=True)
        reader.start()
        try:
            for i in range(40):	# a long script, still coming
                p.stdin.write(b''.join(b'deposit A%d 1\n' % (j % 50)
                                       for j in range(5000)))
                p.stdin.flush()
                if i == 20:
                    p.send_signal(sig)
        except OSError:	# it ended: its status says why
            pass
        code = p.wait(timeout=60)
        reader.join(timeout=60)
        shown = len(got.get('out', b'').splitlines())
        check(f'{name} mid-script: ended by the signal', code == -sig, code)
        check(f'{name} mid-script: it stopped early', 0 < shown < 200000, shown)
        check(f'{name} mid-script: no write-ahead log left',
              not os.path.exists(path + '-wal'))
        check(f'{name} mid-script: the file alone holds each result shown',
              file_alone(path) == shown, (file_alone(path), shown))


def test_stranded_wal_is_not_overwritten():
    """A ledger renamed while a shell had it open, that shell killed (-9,
    so it could not put its last events into the file): those events are in
    OLD-wal. Opening OLD must not make a new ledger there (SQLite would
    delete the log, and the events with it): refused, exit 2, nothing
    touched; moved back, the ledger opens with every event."""
    old, new = fresh('stranded.db'), fresh('stranded-moved.db')
    ledger_with(old, 'deposit A 5\n')
    sh = Shell(old)
    r = sh.ask('deposit A 7')
    check('stranded: the second deposit', r.get('ok') and r['position'] == 2, r)
    os.rename(old, new)
    sh.p.kill()
    sh.p.wait(timeout=60)
    wal = digest(old + '-wal')
    p = run(old, 'status\n')
    check('stranded: the old name is refused, exit 2, naming the log',
          p.returncode == 2 and b'write-ahead log' in p.stderr and
          b'nothing was changed' in p.stderr, (p.returncode, p.stderr))
    check('stranded: no new ledger made', not os.path.exists(old))
    check('stranded: the log is untouched', digest(old + '-wal') == wal)
    os.rename(new, old)
    p, out = js(old, 'history A\n')
    check('stranded: moved back, both events are there',
          p.returncode == 0 and [e['version'] for e in out[0].get('events', [])] == [1, 2],
          (p.returncode, out, p.stderr))


def test_removed_while_open():
    a = fresh('removed.db')
    ledger_with(a, 'deposit X 1000\n')
    sh = Shell(a)
    try:
        sh.ask('status')
        os.unlink(a)
        r = sh.ask('deposit X 5')
        check('removed: a write fails clearly',
              r.get('error') == 'storage' and 'renamed or removed' in r.get('message', ''), r)
    finally:
        code = sh.close()
    check('removed: exit 3', code == 3, code)
    for f in (a + '-wal', a + '-shm'):
        if os.path.exists(f):
            os.unlink(f)


# ---- PATH is a file name, always ----

def test_url_form_refused():
    name = f'simplecqrs-test-{os.getpid()}.db'
    existed = os.path.exists('/' + name)
    p = subprocess.run([BIN, '--store', 'sqlite://' + name], input=b'deposit A 1\n',
                       capture_output=True, env=ENV, cwd=TMP, timeout=60)
    made = os.path.exists('/' + name) and not existed
    if made:
        for f in ('', '-wal', '-shm'):
            if os.path.exists('/' + name + f):
                os.unlink('/' + name + f)
    err = p.stderr.decode()
    check('sqlite://: exit 2 with a hint', p.returncode == 2 and 'sqlite:x.db' in err, (p.returncode, err))
    check('sqlite://: nothing made at /', not made)
    check('sqlite://: nothing made here', not os.path.exists(os.path.join(TMP, name)))


def test_uri_like_names_are_files():
    for name in ('file:x.db', 'file::memory:', 'file:y.db?mode=memory'):
        folder = fresh('uri-' + str(abs(hash(name))))
        os.mkdir(folder)
        p = subprocess.run([BIN, '--store', 'sqlite:' + name, '--json'],
                           input=b'deposit A 7\nstatus\n', capture_output=True, env=ENV,
                           cwd=folder, timeout=60)
        out = [json.loads(l) for l in p.stdout.splitlines()]
        check(f'{name}: runs', p.returncode == 0, p.stderr)
        want = os.path.join(os.path.realpath(folder), name)
        check(f'{name}: location is the file', out[-1].get('location') == want, out)
        check(f'{name}: one file by that very name, nothing else',
              os.listdir(folder) == [name], os.listdir(folder))
        p = subprocess.run([BIN, '--store', 'sqlite:' + name, '--json'], input=b'history A\n',
                           capture_output=True, env=ENV, cwd=folder, timeout=60)
        out = [json.loads(l) for l in p.stdout.splitlines()]
        check(f'{name}: the write survives a reopen',
              out and out[0].get('ok') and out[0]['events'][0]['amount'] == 7, out)


# ---- status says where the ledger is ----

def test_location():
    os.makedirs(fresh('loc/sub'))
    p = subprocess.run([BIN, '--store', 'sqlite:sub/../led.db', '--json'], input=b'status\n',
                       capture_output=True, env=ENV, cwd=fresh('loc'), timeout=60)
    out = json.loads(p.stdout)
    want = os.path.join(os.path.realpath(fresh('loc')), 'led.db')
    check('location: absolute, the folder resolved', out.get('location') == want, out)
    check('location: right after store', list(out)[:4] == ['ok', 'cmd', 'store', 'location'], out)
    real = fresh('loc/real.db')
    ledger_with(real, 'deposit A 3\n')
    link = fresh('loc/link.db')
    os.symlink('real.db', link)
    p = run(link, 'deposit A 4\nstatus\n')
    text = p.stdout.decode()
    check('location: a symlink is a fine name, kept as given',
          p.returncode == 0 and f'location    {os.path.realpath(fresh("loc"))}/link.db\n' in text, text)
    check('location: and both names are one ledger',
          rows(real, 'select count(*) from events')[0][0] == 2)
    held = Shell(real)	# a symlink is no second name: both open at once
    try:
        held.ask('deposit A 1')
        p = run(link, 'deposit A 2\n')
        check('location: a shell on the symlink while one is on the file',
              p.returncode == 0, p.stderr)
        r = held.ask('history A')
        check('location: ... and each sees the other', len(r.get('events', [])) == 4, r)
    finally:
        held.close()
    p = subprocess.run([BIN, '--json'], input=b'status\n', capture_output=True, env=ENV, timeout=60)
    check('location: none on the memory store', 'location' not in json.loads(p.stdout), p.stdout)


# ---- a ledger is a regular file ----

def test_not_regular_files():
    import socket, stat
    for dev in ('/dev/null', '/dev/zero'):
        had = os.path.exists(dev + '-journal')
        refused(dev, dev, 'regular file')
        made = os.path.exists(dev + '-journal') and not had
        if made:
            os.unlink(dev + '-journal')
        check(f'{dev}: no {dev}-journal made', not made)
    folder = fresh('special')
    os.mkdir(folder)
    fifo = os.path.join(folder, 'fifo')
    os.mkfifo(fifo)
    try:
        refused('a FIFO', fifo, 'regular file')
    except subprocess.TimeoutExpired:
        check('a FIFO: open does not block', False)
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(os.path.join(folder, 'sock'))
    try:
        refused('a socket', os.path.join(folder, 'sock'), 'regular file')
    finally:
        sock.close()
    check('special files: nothing left beside them', sorted(os.listdir(folder)) == ['fifo', 'sock'],
          os.listdir(folder))


# ---- backup ----

def events_of(path, upto=None):
    return rows(path, 'select position, stream, version, type, amount, time from events'
                + (f' where position <= {upto}' if upto is not None else '') + ' order by position')


def test_backup_while_writing():
    src = fresh('busy-source.db')
    ledger_with(src, 'deposit A 1\n')
    writer = subprocess.Popen([BIN, '--store', 'sqlite:' + src], stdin=subprocess.PIPE,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV)
    script = ''.join(f'deposit A{i % 13} {i + 1}\n' + ('refresh\n' if i % 500 == 0 else '')
                     for i in range(30000))
    copies = []
    try:
        writer.stdin.write(script[:len(script) // 3].encode())
        writer.stdin.flush()
        for k in range(3):
            dst = fresh(f'busy-backup-{k}.db')
            p, out = js(src, f'backup {dst}\n')
            copies.append((dst, p, out))
        writer.stdin.write(script[len(script) // 3:].encode())
    finally:
        writer.stdin.close()
        check('backup while writing: the writer ran', writer.wait(timeout=300) == 0,
              writer.stderr.read())
    total = rows(src, 'select count(*) from events')[0][0]
    for dst, p, out in copies:
        name = os.path.basename(dst)
        check(f'{name}: ok', p.returncode == 0 and out and out[0].get('ok'), (out, p.stderr))
        if not (out and out[0].get('ok')):
            continue
        n = out[0]['events']
        check(f'{name}: JSON as SPEC shows', list(out[0]) == ['ok', 'cmd', 'path', 'events'] and
              out[0]['path'] == dst, out[0])
        check(f'{name}: a prefix of the ledger', 0 < n <= total, (n, total))
        check(f'{name}: the same events', events_of(dst) == events_of(src, n))
        check(f'{name}: integrity', rows(dst, 'pragma integrity_check') == [('ok',)])
        check(f'{name}: 0600, one file', os.stat(dst).st_mode & 0o777 == 0o600 and
              not [f for f in os.listdir(TMP) if f.startswith(name + '-')])
        kept = dict(rows(dst, 'select account, balance from balances'))
        cp = rows(dst, 'select position from checkpoint')[0][0]
        want = {}
        for _, stream, _, typ, amount, _ in events_of(dst, cp):
            want[stream] = want.get(stream, 0) + amount
        check(f'{name}: its balance sheet is its own events at its checkpoint', kept == want)
        p2, st = js(dst, 'status\nhistory A3\n')
        check(f'{name}: opens as a ledger', p2.returncode == 0 and st[0]['head'] == n and
              st[0]['location'] == dst, st[:1])


def test_backup_of_memory():
    dst = fresh('from-memory.db')
    script = ''.join(f'deposit M{i % 5} {i + 10}\n' for i in range(2000))
    script += 'transfer M1 M2 7\nwithdraw M3 4\nrefresh\nstatus\n'
    script += ''.join(f'history M{i}\n' for i in range(5))
    p = subprocess.run([BIN, '--json'], input=(script + f'backup {dst}\n').encode(),
                       capture_output=True, env=ENV, timeout=120)
    out = [json.loads(l) for l in p.stdout.splitlines()]
    check('memory backup: ok', p.returncode == 0 and out[-1] == {
        'ok': True, 'cmd': 'backup', 'path': dst, 'events': 2003}, out[-1:])
    mem = [o for o in out if o['cmd'] in ('history',)]
    p2, back = js(dst, ''.join(f'history M{i}\n' for i in range(5)) + 'status\n')
    check('memory backup: the same histories (positions, versions, times)', back[:5] == mem)
    check('memory backup: status', back[5]['head'] == 2003 and back[5]['streams'] == 5, back[5])
    p3 = subprocess.run([BIN, '--store', 'sqlite:' + dst], input=b'deposit M9 1\nrefresh\n',
                        capture_output=True, env=ENV, timeout=60)
    check('memory backup: it takes writes', p3.returncode == 0 and b'position 2004' in p3.stdout,
          p3.stdout + p3.stderr)
    # each account's kept state came along: a withdrawal of the whole balance
    # works and one more is refused with the balance the events add up to
    bal = {f'M{k}': sum(i + 10 for i in range(2000) if i % 5 == k) for k in range(5)}
    bal['M1'] -= 7
    bal['M2'] += 7
    bal['M3'] -= 4
    db = sqlite3.connect(dst)
    kept = dict(db.execute("SELECT name, balance FROM streams WHERE name <> 'M9'"))
    db.close()
    check('memory backup: each stream kept with its balance', kept == bal, kept)
    p5 = subprocess.run([BIN, '--store', 'sqlite:' + dst],
                        input=f'withdraw M2 {bal["M2"] + 1}\nwithdraw M2 {bal["M2"]}\n'.encode(),
                        capture_output=True, env=ENV, timeout=60)
    check('memory backup: decided on the copied balance',
          f'M2 has {bal["M2"]}, cannot withdraw'.encode() in p5.stderr and
          f'withdrew {bal["M2"]} from M2'.encode() in p5.stdout, p5.stdout + p5.stderr)
    p4 = subprocess.run([BIN], input=f'deposit Q 1\nbackup {dst}x\n'.encode(),
                        capture_output=True, env=ENV, timeout=60)
    check('backup: one line of text',
          p4.stdout.decode().splitlines()[-1] == f'backed up 1 event to {dst}x', p4.stdout)


def test_backup_refused():
    src = fresh('refusing.db')
    ledger_with(src, 'deposit A 1\n')
    there = fresh('already-there.db')
    with open(there, 'w') as f:
        f.write('mine\n')
    before = sorted(os.listdir(TMP))
    for name, target, want in (('an existing file', there, 'already exists'),
                               ('the ledger itself', src, 'already exists'),
                               ('a missing folder', fresh('nope/b.db'), 'No such file')):
        p, out = js(src, f'backup {target}\nstatus\n')
        check(f'backup to {name}: backup_failed, exit 1',
              p.returncode == 1 and out[0].get('error') == 'backup_failed' and
              want in out[0].get('message', '') and out[1].get('ok'), out)
    with open(there) as f:
        check('backup: the existing file is untouched', f.read() == 'mine\n')
    check('backup: nothing left behind', sorted(os.listdir(TMP)) == before)
    if os.geteuid() == 0:
        locked = fresh('ro-folder')
        os.mkdir(locked, 0o555)
        os.chmod(TMP, 0o755)
        p = subprocess.run(['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups',
                            BIN, '--json'], input=f'backup {locked}/b.db\n'.encode(),
                           capture_output=True, env=ENV, timeout=60)
        out = json.loads(p.stdout or b'{}')
        check('backup to a folder it may not write: backup_failed',
              out.get('error') == 'backup_failed' and 'Permission denied' in out.get('message', ''), out)
        check('backup to a folder it may not write: nothing made', os.listdir(locked) == [])


def limit_size_small():
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))


def test_backup_half_written():
    dst = fresh('half.db')
    script = ''.join(f'deposit H{i % 50} {i + 1}\n' for i in range(20000)) + f'backup {dst}\nstatus\n'
    p = subprocess.run([BIN, '--json'], input=script.encode(), capture_output=True, env=ENV,
                       timeout=120, preexec_fn=limit_size_small)
    out = [json.loads(l) for l in p.stdout.splitlines()]
    check('half-written backup: backup_failed', out[-2].get('error') == 'backup_failed' and
          out[-1].get('ok'), out[-2:])
    check('half-written backup: removed',
          not [f for f in os.listdir(TMP) if f.startswith('half.db')], os.listdir(TMP))


# ---- another program holds the write lock ----

def test_busy():
    path = fresh('locked-by-other.db')
    ledger_with(path, 'deposit A 1\n')
    holder = subprocess.Popen([sys.executable, '-c', (
        'import sqlite3, sys, time\n'
        'db = sqlite3.connect(sys.argv[1], isolation_level=None)\n'
        'db.execute("BEGIN IMMEDIATE")\n'
        'print("locked", flush=True)\n'
        'time.sleep(22)\n'
        'db.execute("COMMIT")\n'), path], stdout=subprocess.PIPE)
    try:
        holder.stdout.readline()
        import time
        t0 = time.monotonic()
        p, out = js(path, 'deposit A 5\nrefresh\nbalances\n')
        took = time.monotonic() - t0
        check('busy: exit 1, not 3', p.returncode == 1, (p.returncode, out))
        check('busy: the deposit fails with busy',
              out and out[0].get('error') == 'busy' and 'write lock' in out[0]['message'], out)
        check("busy: so does the refresh's save",
              len(out) > 1 and out[1].get('error') == 'busy', out)
        check('busy: the query still answers', len(out) == 3 and out[2].get('ok') and
              out[2]['position'] == 0 and out[2]['behind'] == 1, out)
        check('busy: it waited about 10 s each time', 19 <= took <= 22, took)
    finally:
        holder.wait(timeout=60)
    p, out = js(path, 'deposit A 5\n')
    check('busy: after the lock is let go, a write works', p.returncode == 0 and out[0]['version'] == 2, out)


# ---- a damaged ledger is a clear storage error ----

def test_damaged():
    path = fresh('no-checkpoint.db')
    ledger_with(path, 'deposit A 1\n')
    db = sqlite3.connect(path)
    db.execute('delete from checkpoint')
    db.commit()
    db.close()
    p, out = js(path, 'deposit A 2\nbalances\n')
    check('no checkpoint row: the deposit is kept', out[0].get('ok'), out)
    check('no checkpoint row: a storage error naming it, exit 3',
          p.returncode == 3 and out[-1].get('error') == 'storage' and
          'checkpoint row is missing' in out[-1]['message'], out)
    check('no checkpoint row: never "not an error"', b'not an error' not in p.stdout + p.stderr)

    path = fresh('bad-version.db')
    ledger_with(path, 'deposit A 10\n')
    db = sqlite3.connect(path)
    db.execute('update streams set version = 5, balance_version = 5')
    db.commit()
    db.close()
    p, out = js(path, 'withdraw A 1\n')
    check('stream version off its events: a storage error naming it',
          p.returncode == 3 and out[0].get('error') == 'storage' and
          'version 5' in out[0]['message'], out)


# ---- a ledger of schema 1 (the version before the kept balances) ----

# The schema 1 wrote, exactly as its program's SQL had it (git show of
# store_sqlite.c before schema 2): streams had no balance.
SCHEMA_1 = (
    'CREATE TABLE streams (\n'
    '  id INTEGER PRIMARY KEY,\n'
    '  name TEXT NOT NULL UNIQUE,\n'
    '  version INTEGER NOT NULL CHECK (version > 0)\n'
    ');\n'
    'CREATE TABLE event_log (\n'
    '  position INTEGER PRIMARY KEY,\n'
    '  stream INTEGER NOT NULL REFERENCES streams (id),\n'
    '  version INTEGER NOT NULL CHECK (version > 0),\n'
    '  type INTEGER NOT NULL CHECK (type IN (1, 2)),\n'
    '  amount INTEGER NOT NULL CHECK (amount > 0),\n'
    '  time INTEGER NOT NULL,\n'
    '  UNIQUE (stream, version)\n'
    ');\n'
    'CREATE VIEW events AS\n'
    '  SELECT e.position, s.name AS stream, e.version,\n'
    "         CASE e.type WHEN 1 THEN 'AccountCredited' ELSE 'AccountDebited' END AS type,\n"
    '         e.amount,\n'
    "         strftime('%Y-%m-%dT%H:%M:%fZ', e.time / 1000.0, 'unixepoch') AS time\n"
    '  FROM event_log e JOIN streams s ON s.id = e.stream;\n'
    'CREATE TABLE balances (\n'
    '  account TEXT PRIMARY KEY,\n'
    '  balance INTEGER NOT NULL CHECK (balance >= 0)\n'
    ') WITHOUT ROWID;\n'
    'CREATE TABLE checkpoint (\n'
    '  id INTEGER PRIMARY KEY CHECK (id = 1),\n'
    '  position INTEGER NOT NULL\n'
    ');\n'
    'INSERT INTO checkpoint VALUES (1, 0);\n')
CREDIT, DEBIT = 1, 2


def schema_1_ledger(path, ids, events, checkpoint):
    """A schema-1 ledger as its program left it: ids maps each account to
    its stream number, events are (account, type, amount) in position
    order; each stream's row at its last version, and the kept sheet the
    replay of the events up to checkpoint."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute('PRAGMA journal_mode = WAL')
    db.executescript(SCHEMA_1)
    db.execute(f'PRAGMA application_id = {0x53435152}')
    db.execute('PRAGMA user_version = 1')
    db.execute('BEGIN')
    version, sheet = {}, {}
    for pos, (acct, typ, amount) in enumerate(events, 1):
        version[acct] = version.get(acct, 0) + 1
        db.execute('INSERT INTO event_log VALUES (?, ?, ?, ?, ?, ?)',
                   (pos, ids[acct], version[acct], typ, amount, 1795899784000 + 1000 * pos))
        if pos <= checkpoint:
            sheet[acct] = sheet.get(acct, 0) + (amount if typ == CREDIT else -amount)
    for acct, v in version.items():
        db.execute('INSERT INTO streams VALUES (?, ?, ?)', (ids[acct], acct, v))
    db.executemany('INSERT INTO balances VALUES (?, ?)', sheet.items())
    db.execute('UPDATE checkpoint SET position = ?', (checkpoint,))
    db.execute('COMMIT')
    db.close()
    return sheet


NEW_LEDGER = fresh('new-for-columns.db')


def user_version(path):
    return rows(path, 'pragma user_version')[0][0]


def test_upgrade_from_schema_1():
    """A schema-1 ledger opens, upgraded in place: every event, stream
    number, sheet row and the checkpoint as they were; each stream's kept
    balance its events added up; the commands answer as on the old file."""
    path = fresh('schema-1.db')
    # numbers given out of name order, with gaps: they must stay as they are
    ids = {'ALICE': 7, 'BOB': 3, 'CAROL': 12, 'DAVE': 5}
    events = [('ALICE', CREDIT, 1000), ('BOB', CREDIT, 500), ('ALICE', DEBIT, 200),
              ('ALICE', DEBIT, 300), ('CAROL', CREDIT, 300),	# a transfer
              ('BOB', DEBIT, 50), ('DAVE', CREDIT, 9), ('DAVE', DEBIT, 9),
              ('CAROL', CREDIT, 7), ('ALICE', CREDIT, 1)]
    sheet = schema_1_ledger(path, ids, events, checkpoint=5)
    ledger_with(NEW_LEDGER, 'status\n')
    log = rows(path, 'select * from event_log order by position')
    streams = rows(path, 'select id, name, version from streams order by id')
    want = replay(path)
    check('schema 1: the sum the upgrade must find',
          want == {'ALICE': 501, 'BOB': 450, 'CAROL': 307, 'DAVE': 0}, want)

    p, out = js(path, 'balances\nbalance ALICE\nbalance CAROL\nhistory ALICE\n'
                'history DAVE\nstatus\n')
    check('schema 1: opens, exit 0', p.returncode == 0 and p.stderr == b'', (p.returncode, p.stderr))
    check('schema 1: user_version is 2 after', user_version(path) == 2, user_version(path))
    check('schema 1: application id kept',
          rows(path, 'pragma application_id')[0][0] == 0x53435152)
    check('schema 1: every event row unchanged',
          rows(path, 'select * from event_log order by position') == log)
    check('schema 1: stream numbers and versions unchanged',
          rows(path, 'select id, name, version from streams order by id') == streams)
    kept = dict(rows(path, 'select name, balance from streams'))
    check("schema 1: each stream's kept balance is its events added up", kept == want, kept)
    check("schema 1: each stream's balance is taken at its version",
          rows(path, 'select count(*) from streams where balance_version = version') == [(4,)])
    check('schema 1: streams has the columns of a new ledger',
          [r[1:] for r in rows(path, 'pragma table_info(streams)')] ==
          [r[1:] for r in rows(NEW_LEDGER, 'pragma table_info(streams)')],
          rows(path, 'pragma table_info(streams)'))
    check('schema 1: the events view is there again',
          len(rows(path, 'select * from events')) == len(log))
    check('schema 1: the sheet rows unchanged',
          dict(rows(path, 'select account, balance from balances')) == sheet ==
          {'ALICE': 500, 'BOB': 500, 'CAROL': 300})
    check('schema 1: the checkpoint unchanged', rows(path, 'select * from checkpoint') == [(1, 5)])
    check('schema 1: still WAL, integrity ok', rows(path, 'pragma journal_mode') == [('wal',)] and
          rows(path, 'pragma integrity_check') == [('ok',)])
    check('schema 1: six answers', len(out) == 6 and all(o['ok'] for o in out), out)
    if len(out) == 6:
        check('schema 1: balances is the kept sheet at its checkpoint', out[0] == {
            'ok': True, 'cmd': 'balances', 'position': 5, 'behind': 5,
            'balances': [{'account': 'ALICE', 'balance': 500}, {'account': 'BOB', 'balance': 500},
                         {'account': 'CAROL', 'balance': 300}]}, out[0])
        check('schema 1: balance reads the sheet',
              out[1]['balance'] == 500 and out[2]['balance'] == 300, out[1:3])
        hist = [(e['version'], e['position'], e['type'], e['amount'], e['balance'], e['time'])
                for e in out[3]['events']]
        check('schema 1: history is the events as they were', hist == [
            (1, 1, 'AccountCredited', 1000, 1000, '2026-11-28T21:03:05.000Z'),
            (2, 3, 'AccountDebited', 200, 800, '2026-11-28T21:03:07.000Z'),
            (3, 4, 'AccountDebited', 300, 500, '2026-11-28T21:03:08.000Z'),
            (4, 10, 'AccountCredited', 1, 501, '2026-11-28T21:03:14.000Z')], hist)
        check('schema 1: an account back at 0 has its history',
              [e['balance'] for e in out[4]['events']] == [9, 0], out[4])
        check('schema 1: status', out[5]['head'] == 10 and out[5]['streams'] == 4 and
              out[5]['checkpoint'] == 5 and out[5]['behind'] == 5, out[5])

    # opened again (now schema 2): refresh has work; writes go on from there
    p, out = js(path, 'refresh\nbalances\nwithdraw ALICE 502\nwithdraw ALICE 501\n'
                'withdraw DAVE 1\ntransfer BOB CAROL 450\ndeposit ERIN 4\nstatus\n')
    check('schema 1, reopened: exit 1 (two refusals)', p.returncode == 1 and len(out) == 8,
          (p.returncode, p.stderr, out))
    if len(out) == 8:
        check('schema 1, reopened: refresh applies the five behind',
              out[0] == {'ok': True, 'cmd': 'refresh', 'applied': 5, 'position': 10}, out[0])
        check('schema 1, reopened: balances is the replay', {
            b['account']: b['balance'] for b in out[1]['balances']} == want, out[1])
        check('schema 1, reopened: a withdrawal past the balance is refused with it',
              out[2].get('error') == 'insufficient_funds' and
              out[2]['message'] == 'ALICE has 501, cannot withdraw 502', out[2])
        check('schema 1, reopened: the whole balance can be withdrawn',
              out[3].get('ok') and out[3]['version'] == 5 and out[3]['position'] == 11, out[3])
        check('schema 1, reopened: an account at 0 has nothing to give',
              out[4].get('message') == 'DAVE has 0, cannot withdraw 1', out[4])
        check('schema 1, reopened: a transfer of all of it',
              out[5].get('ok') and out[5]['position'] == 13, out[5])
        check('schema 1, reopened: status', out[7]['head'] == 14 and out[7]['streams'] == 5, out[7])
    check('schema 1, reopened: the old rows still unchanged',
          rows(path, 'select * from event_log where position <= 10 order by position') == log)
    check('schema 1, reopened: new events under the old numbers',
          rows(path, 'select position, stream, version, type, amount from event_log '
               'where position > 10 order by position') ==
          [(11, 7, 5, DEBIT, 501), (12, 3, 3, DEBIT, 450), (13, 12, 3, CREDIT, 450),
           (14, 13, 1, CREDIT, 4)])
    kept = dict(rows(path, 'select name, balance from streams'))
    check('schema 1, reopened: kept balances follow the writes',
          kept == replay(path) == {'ALICE': 0, 'BOB': 0, 'CAROL': 757, 'DAVE': 0, 'ERIN': 4}, kept)
    check('schema 1, reopened: the sheet after refresh is the replay at 10',
          dict(rows(path, 'select account, balance from balances')) == want and
          rows(path, 'select position from checkpoint') == [(10,)])


def test_upgrade_shells_at_once():
    """Shells opening one schema-1 ledger together: one upgrades it, the
    others wait and use it; each one's deposit is kept."""
    path = fresh('schema-1-together.db')
    schema_1_ledger(path, {'A': 1}, [('A', CREDIT, 5)], checkpoint=0)
    ps = [subprocess.Popen([BIN, '--store', 'sqlite:' + path], stdin=subprocess.PIPE,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV)
          for _ in range(8)]
    errs = [p.communicate(f'deposit A {i + 1}\n'.encode(), timeout=60)[1]
            for i, p in enumerate(ps)]
    codes = [p.returncode for p in ps]
    check('schema 1, shells at once: all ran', codes == [0] * 8, (codes, errs))
    check('schema 1, shells at once: upgraded once, nine events',
          user_version(path) == 2 and rows(path, 'select count(*) from event_log') == [(9,)] and
          rows(path, 'select version, balance from streams') == [(9, 5 + 36)])


def test_upgrade_that_fails():
    """A schema-1 ledger whose events take a balance below 0 cannot be
    upgraded (the kept balance's CHECK fails): the file is refused, exit 2,
    saying so in words (not SQLite's CHECK text), and left exactly as it
    was, still schema 1."""
    path = fresh('schema-1-overdrawn.db')
    schema_1_ledger(path, {'A': 1, 'B': 2}, [('A', CREDIT, 5), ('B', CREDIT, 3),
                                             ('A', DEBIT, 8)], checkpoint=2)
    refused('schema 1 that cannot be upgraded', path,
            "cannot upgrade the ledger from schema 1: account A's events add up to a "
            'balance of -3, below 0 (a damaged ledger); nothing was changed')
    check('schema 1 that cannot be upgraded: still schema 1', user_version(path) == 1)
    check('schema 1 that cannot be upgraded: streams has no balance column',
          [r[1] for r in rows(path, 'pragma table_info(streams)')] == ['id', 'name', 'version'])


# The statements a schema-1 program runs on a ledger it has open, exactly as
# its SQL had them (git show 4b64e3d:src/store_sqlite.c): an append claimed
# each stream's next version (a new stream inserted at version 1), then
# wrote the event; a conflict put the claim back. It never wrote balance.
OLD_STREAM_NEW = 'INSERT INTO streams (name, version) VALUES (?1, 1)'
OLD_STREAM_BUMP = 'UPDATE streams SET version = ?2 + 1 WHERE id = ?1 AND version = ?2'
OLD_STREAM_UNDO = 'UPDATE streams SET version = version - 1 WHERE id = ?1'
OLD_EVENT_ADD = ('INSERT INTO event_log (stream, version, type, amount, time) '
                 'VALUES (?1, ?2, ?3, ?4, ?5)')


def old_program_group(path, steps):
    """Runs steps (sql, params) in one write group as the schema-1 program
    did: the first failure rolls the whole group back. Returns the error
    of the step that failed, or None if all of them ran and committed."""
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute('BEGIN IMMEDIATE')
        for sql, params in steps:
            try:
                db.execute(sql, params)
            except sqlite3.Error as e:
                db.execute('ROLLBACK')
                return str(e)
        db.execute('COMMIT')
        return None
    finally:
        db.close()


def check_old_program_refused(name, path, sid, version):
    """The old program's writes on stream sid (at version) all fail, and
    leave the file as it was."""
    log = rows(path, 'select * from event_log order by position')
    streams = rows(path, 'select * from streams order by id')
    groups = {
        'a withdrawal (claim, then the event)':
            [(OLD_STREAM_BUMP, (sid, version)),
             (OLD_EVENT_ADD, (sid, version + 1, DEBIT, 1, 1795899784000))],
        'a new account': [(OLD_STREAM_NEW, ('NEWBIE',)),
                          (OLD_EVENT_ADD, (999, 1, CREDIT, 5, 1795899784000))],
        "a conflict's undo": [(OLD_STREAM_UNDO, (sid,))],
    }
    for what, steps in groups.items():
        err = old_program_group(path, steps)
        check(f'{name}: the old program\'s {what} fails', err is not None and
              ('CHECK constraint failed' in err or 'NOT NULL constraint failed' in err), err)
    check(f'{name}: nothing of the old program\'s groups is kept',
          rows(path, 'select * from event_log order by position') == log and
          rows(path, 'select * from streams order by id') == streams)


def test_old_program_refused():
    """A schema-1 program still open on a ledger that a newer one upgrades
    writes on: it moves streams.version (and adds streams at version 1)
    but never balance, so the new program would decide on a stale balance
    and let money be spent twice. Schema 2 makes its statements fail, on
    an upgraded ledger and on a new one; the new program then decides on
    the true balance."""
    path = fresh('old-program.db')
    schema_1_ledger(path, {'A': 4}, [('A', CREDIT, 10)], checkpoint=0)
    p, out = js(path, 'status\n')
    check('old program: the upgrade ran', p.returncode == 0 and user_version(path) == 2,
          (p.returncode, p.stderr))
    check('old program: each upgraded row says its balance is taken at its version',
          rows(path, 'select name, version, balance, balance_version from streams') ==
          [('A', 1, 10, 1)])
    check_old_program_refused('old program, upgraded ledger', path, 4, 1)
    p, out = js(path, 'withdraw A 10\nwithdraw A 1\n')
    check('old program, upgraded ledger: the new program decides on the true balance',
          len(out) == 2 and out[0].get('ok') and
          out[1].get('message') == 'A has 0, cannot withdraw 1', out)

    path = fresh('old-program-new.db')
    ledger_with(path, 'deposit A 10\n')
    sid = rows(path, "select id from streams where name = 'A'")[0][0]
    check('old program: a new ledger\'s row says its balance is taken at its version',
          rows(path, 'select name, version, balance, balance_version from streams') ==
          [('A', 1, 10, 1)])
    check_old_program_refused('old program, new ledger', path, sid, 1)
    p, out = js(path, 'withdraw A 10\nwithdraw A 1\n')
    check('old program, new ledger: the new program decides on the true balance',
          len(out) == 2 and out[0].get('ok') and
          out[1].get('message') == 'A has 0, cannot withdraw 1', out)

    # got round the CHECK (by hand): a row whose balance is not taken at its
    # version is a damaged ledger, not a balance to decide on
    db = sqlite3.connect(path, isolation_level=None)
    db.execute('pragma ignore_check_constraints = 1')
    db.execute(OLD_STREAM_BUMP, (sid, 2))
    db.execute(OLD_EVENT_ADD, (sid, 3, CREDIT, 5, 1795899784000))
    db.close()
    p, out = js(path, 'withdraw A 1\n')
    check('old program, CHECK got round: a damaged ledger, exit 3',
          p.returncode == 3 and out and 'is kept at version 3 but its balance was '
          'taken at version 2' in out[0].get('message', ''), (p.returncode, out))


def open_shell(path):
    """A --json shell fed line by line: (its process, ask(line) -> the
    answer, {} once it has ended)."""
    p = subprocess.Popen([BIN, '--store', 'sqlite:' + path, '--json'],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=ENV)

    def ask(line):
        p.stdin.write((line + '\n').encode())
        p.stdin.flush()
        return json.loads(p.stdout.readline() or b'{}')
    return p, ask


# ---- a stream number set by hand far past the others ----

def test_large_stream_id():
    """Someone gives a stream a number of 2^24 or more by hand (the ids'
    arrays stop there): a shell that knows the stream must still catch up
    on another shell's write to it, and write on at the next version (it
    wrote at a version already there: a UNIQUE error, exit 3)."""
    for big in (1 << 24, (1 << 40) + 5):
        path = fresh(f'big-id-{big}.db')
        ledger_with(path, 'deposit A 10\ndeposit B 1\n')
        db = sqlite3.connect(path, isolation_level=None)
        db.execute("UPDATE streams SET id = ? WHERE name = 'A'", (big,))
        db.execute("UPDATE event_log SET stream = ? WHERE stream = 1", (big,))
        db.close()
        p, ask = open_shell(path)
        try:
            first = ask('deposit A 1')
            check(f'id {big}: the shell writes on it', first.get('version') == 2, first)
            _, out = js(path, 'deposit A 2\ntransfer A B 3\n')
            check(f'id {big}: another shell writes on it',
                  [(o.get('ok'), o.get('position')) for o in out] == [(True, 4), (True, 6)],
                  out)
            again = ask('deposit A 4')
            check(f'id {big}: the first shell catches up and writes at version 5',
                  again.get('ok') and again.get('version') == 5 and
                  again.get('position') == 7, again)
            after = ask('withdraw A 15')
            check(f'id {big}: and decides on the caught-up balance (14)',
                  after.get('message') == 'A has 14, cannot withdraw 15', after)
        finally:
            p.stdin.close()
            p.wait(timeout=60)
        check(f'id {big}: exit 1 (one refusal)', p.returncode == 1, p.stderr.read())
        check(f'id {big}: the kept rows are the replay',
              dict(rows(path, 'select name, balance from streams')) == replay(path) ==
              {'A': 14, 'B': 4})


# ---- a reopened hot account answers as a replay does ----

def test_hot_account_reopened():
    """A shell opened on an account with 200,000 events decides on it from
    its kept state (one row) and must answer exactly as replaying them
    does: all of the balance can be withdrawn, one more is refused with the
    replay's balance; beside it an account with one event."""
    path = fresh('hot.db')
    rng = random.Random(13)
    lines, bal, n = [], 0, 200_000
    for i in range(n):
        if bal > 0 and rng.random() < 0.45:
            a = rng.randint(1, bal)
            bal -= a
            lines.append(f'withdraw HOT {a}')
        else:
            a = rng.randint(1, 5000)
            bal += a
            lines.append(f'deposit HOT {a}')
        if i == n // 2:
            lines.append('deposit COLD 17')
    ledger_with(path, '\n'.join(lines) + '\n')
    hot = replay(path)['HOT']
    check('hot account: the replay is the model', hot == bal and replay(path)['COLD'] == 17,
          (hot, bal))
    check('hot account: the kept rows are the replay',
          rows(path, 'select name, version, balance from streams order by name') ==
          [('COLD', 1, 17), ('HOT', n, hot)])

    p, out = js(path, f'withdraw HOT {hot + 1}\nwithdraw COLD 18\n')
    check('hot account, reopened: one more than the balance is refused, exit 1',
          p.returncode == 1 and len(out) == 2 and
          out[0].get('message') == f'HOT has {hot}, cannot withdraw {hot + 1}' and
          out[1].get('message') == 'COLD has 17, cannot withdraw 18', (p.returncode, out))
    p, out = js(path, f'withdraw HOT {hot}\nwithdraw COLD 17\nwithdraw HOT 1\n')
    check('hot account, reopened: the whole balance is withdrawn at the next version',
          len(out) == 3 and out[0].get('ok') and out[0]['version'] == n + 1 and
          out[0]['position'] == n + 2, out[:1])
    check('hot account, reopened: so is the one-event account',
          len(out) == 3 and out[1].get('ok') and out[1]['version'] == 2 and
          out[1]['position'] == n + 3, out[1:2])
    check('hot account, reopened: and then it has 0',
          len(out) == 3 and out[2].get('message') == 'HOT has 0, cannot withdraw 1', out[2:])
    p, out = js(path, 'deposit HOT 5\n')
    check('hot account, reopened again: a deposit at the next version',
          p.returncode == 0 and out[0]['version'] == n + 2 and out[0]['position'] == n + 4, out)
    check('hot account: the kept rows are the replay after it all',
          dict(rows(path, 'select name, balance from streams')) == replay(path) ==
          {'HOT': 5, 'COLD': 0})


def test_kept_balance_edited():
    """The kept balance edited by hand (within its CHECK). What the program
    does today: a write decides on the account's kept state, its streams
    row, once the row's version agrees with where its events end; it does
    not replay them, so it believes the edited balance, and a withdrawal of
    it all is written. `history` and `rebuild` replay the events, and find
    that withdrawal taking the account below 0: a damaged ledger, exit 3.
    Asserted as it is, so that a change of it is noticed."""
    path = fresh('edited.db')
    ledger_with(path, 'deposit E 100\nwithdraw E 30\n')
    db = sqlite3.connect(path)
    db.execute("UPDATE streams SET balance = balance + 5 WHERE name = 'E'")
    db.commit()
    db.close()
    p, out = js(path, 'withdraw E 76\nwithdraw E 75\nhistory E\n')
    check('edited balance: a withdrawal is decided on the kept 75',
          len(out) == 3 and out[0].get('message') == 'E has 75, cannot withdraw 76' and
          out[1].get('ok') and out[1]['version'] == 3, out)
    check('edited balance: history replays and says damaged, exit 3',
          p.returncode == 3 and len(out) == 3 and out[2].get('error') == 'storage' and
          'the balance 70 less 75 goes below 0' in out[2]['message'], (p.returncode, out[2:]))
    check('edited balance: the row went on from the edit',
          rows(path, 'select version, balance from streams') == [(3, 0)])
    p, out = js(path, 'rebuild\n')
    check('edited balance: rebuild replays and says damaged, exit 3',
          p.returncode == 3 and out and out[0].get('error') == 'storage' and
          'below 0' in out[0]['message'], (p.returncode, out))


def main():
    for t in (test_new_file, test_reopen, test_bad_files, test_full_disk, test_two_shells,
              test_first_open_race, test_refresh_always_beaten, test_hard_link,
              test_renamed_while_open, test_removed_while_open, test_ended_by_a_signal,
              test_stranded_wal_is_not_overwritten, test_url_form_refused,
              test_uri_like_names_are_files, test_location, test_not_regular_files,
              test_backup_while_writing, test_backup_of_memory, test_backup_refused,
              test_backup_half_written, test_busy, test_damaged,
              test_upgrade_from_schema_1, test_upgrade_shells_at_once,
              test_upgrade_that_fails, test_old_program_refused, test_large_stream_id,
              test_hot_account_reopened,
              test_kept_balance_edited):
        if sys.argv[2:] and t.__name__ not in sys.argv[2:]:
            continue
        try:
            t()
        except Exception as e:	# a crash of the test is a failure, not a pass
            check(t.__name__, False, repr(e))
    shutil.rmtree(TMP, ignore_errors=True)
    print(f'sqlite: {passed} passed, {failed} failed')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
