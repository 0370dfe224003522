#!/usr/bin/env python3
"""A program driving simplecqrs through pipes, a line at a time, gets each
answer as soon as it asks (no waiting for 64 KiB or EOF); output into a
closed pipe ends the program quietly; non-blocking pipes (as node leaves
them) are waited on, not fatal; closed descriptors 0-2 never let a ledger
or a server connection take their number; stdin given as `-` is checked
before anything runs.  usage: pipe_test.py BIN"""
import fcntl, os, select, shlex, signal, sqlite3, subprocess, sys, tempfile, time

WRAPPER = shlex.split(os.environ.get('SIMPLECQRS_WRAPPER', ''))
TIMEOUT = 10.0 * (6 if WRAPPER else 1)


def read_line(p, timeout=TIMEOUT):
    """One line from p.stdout, or fail after timeout (the binary held it)."""
    buf = b''
    deadline = time.monotonic() + timeout
    while not buf.endswith(b'\n'):
        left = deadline - time.monotonic()
        ready, _, _ = select.select([p.stdout], [], [], max(left, 0))
        if not ready:
            raise AssertionError(f'no answer within {timeout:g}s (got {buf!r})')
        c = os.read(p.stdout.fileno(), 1)
        if not c:
            raise AssertionError(f'EOF (got {buf!r})')
        buf += c
    return buf.decode()


def conversation(args, exchanges):
    env = {k: v for k, v in os.environ.items() if k != 'SIMPLECQRS_STORE'}
    p = subprocess.Popen(WRAPPER + [BIN] + args, stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        for line, want in exchanges:
            p.stdin.write(line.encode() + b'\n')
            p.stdin.flush()
            got = read_line(p)
            assert got.startswith(want), f'{line!r}: got {got!r}, want {want!r}'
        p.stdin.close()
        assert p.wait(TIMEOUT) == 0, f'exit status {p.returncode}'
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_text_line_at_a_time():
    conversation([], [('deposit A 5', 'deposited 5 into A'),
                      ('refresh', 'refreshed: 1 event applied'),
                      ('balance A', 'A: 5 (checkpoint 1, up to date)')])


def test_json_line_at_a_time():
    conversation(['--json'], [('deposit A 5', '{"ok":true,"cmd":"deposit"'),
                              ('status', '{"ok":true,"cmd":"status"')])


def test_one_file_keeps_the_order():
    """stdout and stderr on one pipe (2>&1): results and errors in input
    order, though both are buffered."""
    script = b''.join(b'withdraw NOBODY 1\ndeposit A %d\n' % i for i in range(1, 3001))
    env = {k: v for k, v in os.environ.items() if k != 'SIMPLECQRS_STORE'}
    p = subprocess.run(WRAPPER + [BIN], input=script, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, env=env, timeout=TIMEOUT * 6)
    lines = p.stdout.decode().splitlines()
    assert len(lines) == 6000, f'{len(lines)} lines'
    for i in range(3000):
        assert lines[2 * i] == f'error: {2 * i + 1}: no account NOBODY', lines[2 * i]
        assert lines[2 * i + 1].startswith(f'deposited {i + 1} into A'), lines[2 * i + 1]


def test_a_full_disk_keeps_the_errors():
    """stdout cannot be written (/dev/full): the errors already buffered for
    stderr still come out, then the reason, and the status is 1."""
    env = {k: v for k, v in os.environ.items() if k != 'SIMPLECQRS_STORE'}
    with open('/dev/full', 'wb') as full:
        p = subprocess.run(WRAPPER + [BIN], input=b'withdraw B 1\ndeposit A 1\n',
                           stdout=full, stderr=subprocess.PIPE, env=env,
                           timeout=TIMEOUT)
    err = p.stderr.decode()
    assert p.returncode == 1, f'exit status {p.returncode}'
    assert err.startswith('error: 1: no account B\n'), repr(err)
    assert 'No space left on device' in err, repr(err)


def closed_pipe(sigpipe):
    """Like `simplecqrs < script | head -c 10`, with SIGPIPE as given."""
    with tempfile.TemporaryFile() as script:
        script.write(b'deposit A 1\n' * 200000 + b'balances\n')
        script.seek(0)
        r, w = os.pipe()
        p = subprocess.Popen(WRAPPER + [BIN], stdin=script, stdout=w,
                             stderr=subprocess.PIPE,
                             preexec_fn=lambda: signal.signal(signal.SIGPIPE, sigpipe))
        os.close(w)
        os.read(r, 10)      # read a little, then go away
        os.close(r)
        _, err = p.communicate(timeout=TIMEOUT * 6)
    assert err == b'', f'stderr: {err[:300]!r}'
    return p.returncode


def test_closed_pipe_is_quiet():
    status = closed_pipe(signal.SIG_DFL)
    assert status == -signal.SIGPIPE, f'exit status {status}'


def test_closed_pipe_is_quiet_with_sigpipe_ignored():
    status = closed_pipe(signal.SIG_IGN)   # EPIPE instead: stop, say nothing
    assert status == 1, f'exit status {status}'


NO_STORE_ENV = {k: v for k, v in os.environ.items() if k != 'SIMPLECQRS_STORE'}


def nonblocking_pipe():
    r, w = os.pipe()
    fcntl.fcntl(w, fcntl.F_SETFL, fcntl.fcntl(w, fcntl.F_GETFL) | os.O_NONBLOCK)
    return r, w


def read_slowly(fd, pause=0.2):
    """All of fd until EOF, starting late and in small bites, so that the
    pipe is full most of the time."""
    time.sleep(pause)
    got = []
    while True:
        c = os.read(fd, 4096)
        if not c:
            return b''.join(got)
        got.append(c)
        if len(got) % 64 == 0:
            time.sleep(0.01)


def test_nonblocking_stdout_waits():
    """stdout is a non-blocking pipe read slowly: EAGAIN means wait, so
    every line arrives whole and the run succeeds."""
    n = 100000
    script = b''.join(b'deposit A%d 1\n' % i for i in range(n))
    r, w = nonblocking_pipe()
    with tempfile.TemporaryFile() as f:
        f.write(script)
        f.seek(0)
        p = subprocess.Popen(WRAPPER + [BIN], stdin=f, stdout=w,
                             stderr=subprocess.PIPE, env=NO_STORE_ENV)
        os.close(w)
        out = read_slowly(r)
        os.close(r)
        err = p.stderr.read()
        status = p.wait(TIMEOUT * 6)
    lines = out.split(b'\n')
    assert status == 0, f'exit status {status}, stderr {err[:300]!r}'
    assert err == b'', repr(err[:300])
    assert lines[-1] == b'' and len(lines) == n + 1, f'{len(lines) - 1} lines, last {lines[-2:]!r}'
    for i in (0, n // 2, n - 1):
        assert lines[i] == b'deposited 1 into A%d (version 1, position %d)' % (i, i + 1), lines[i]


def test_nonblocking_stderr_waits():
    """The same for errors on a non-blocking stderr of their own."""
    n = 100000
    script = b'withdraw Nobody 1\n' * n
    r, w = nonblocking_pipe()
    with tempfile.TemporaryFile() as f:
        f.write(script)
        f.seek(0)
        p = subprocess.Popen(WRAPPER + [BIN], stdin=f, stdout=subprocess.DEVNULL,
                             stderr=w, env=NO_STORE_ENV)
        os.close(w)
        err = read_slowly(r)
        os.close(r)
        status = p.wait(TIMEOUT * 6)
    lines = err.split(b'\n')
    assert status == 1, f'exit status {status}, stderr ends {err[-300:]!r}'
    assert lines[-1] == b'' and len(lines) == n + 1, f'{len(lines) - 1} lines, last {lines[-2:]!r}'
    assert lines[n - 1] == b'error: %d: no account Nobody' % n, lines[n - 1]


def test_nonblocking_stdin_waits():
    """stdin a non-blocking pipe whose writer is slow: read waits too."""
    r, w = os.pipe()
    fcntl.fcntl(r, fcntl.F_SETFL, fcntl.fcntl(r, fcntl.F_GETFL) | os.O_NONBLOCK)
    p = subprocess.Popen(WRAPPER + [BIN], stdin=r, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=NO_STORE_ENV)
    os.close(r)
    try:
        for i in range(3):
            time.sleep(0.1)
            os.write(w, b'deposit A %d\n' % (i + 1))
    except BrokenPipeError:
        pass        # it gave up reading: the status says how
    os.close(w)
    out, err = p.communicate(timeout=TIMEOUT)
    assert p.returncode == 0, f'exit status {p.returncode}, stderr {err!r}'
    assert out.count(b'deposited') == 3, repr(out)


SCRIPT = b'deposit A 5\ndeposit B 7\nrefresh\nbalances\n'


def run_closed(fd, args, env=None, script=SCRIPT):
    """Runs BIN with descriptor fd closed (>&- / <&- / 2>&-): the script on
    stdin, or as a file argument when stdin is the one closed."""
    env = env or NO_STORE_ENV
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, 'script.cqrs')
        with open(path, 'wb') as f:
            f.write(script)
        wrapper = WRAPPER
        if WRAPPER and fd == 2:     # valgrind cannot start without a stderr
            wrapper = WRAPPER[:1] + ['--log-file=' + os.path.join(tmp, 'vg.log')] + WRAPPER[1:]
        with open(path, 'rb') as f:
            p = subprocess.run(
                wrapper + [BIN] + args + ([path] if fd == 0 else []),
                stdin=f if fd != 0 else None,
                stdout=subprocess.PIPE if fd != 1 else None,
                stderr=subprocess.PIPE if fd != 2 else None,
                preexec_fn=lambda: os.close(fd), env=env, timeout=TIMEOUT)
    return p.returncode, p.stdout or b'', p.stderr or b''


def check_closed(fd, status, out, err):
    if fd == 1:     # the results are lost, and the status says so, as ever
        assert status == 1, f'stdout closed: exit status {status}, {err!r}'
        assert err == b'simplecqrs: writing output: Bad file descriptor\n', repr(err)
    else:
        assert status == 0, f'fd {fd} closed: exit status {status}, {err!r}'
        assert out.startswith(b'deposited 5 into A'), repr(out)
        assert b'checkpoint 2, up to date' in out, repr(out)


def test_closed_descriptors_sqlite():
    """0, 1 or 2 closed on the sqlite store: the ledger stays a ledger."""
    for fd in (0, 1, 2):
        with tempfile.TemporaryDirectory() as tmp:
            db = os.path.join(tmp, 'ledger.db')
            status, out, err = run_closed(fd, ['--store', 'sqlite:' + db])
            check_closed(fd, status, out, err)
            con = sqlite3.connect(db)
            try:
                assert con.execute('pragma integrity_check').fetchall() == [('ok',)]
                n = con.execute('select count(*) from events').fetchone()[0]
            finally:
                con.close()
            assert n == 2, f'fd {fd} closed: {n} events'


def test_closed_descriptors_postgresql():
    """0, 1 or 2 closed on PostgreSQL: libpq's socket would take the
    number, and results were sent to the server (exit 0, output "written")
    or commands read from it."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import pg_test
    bindir = pg_test.server_bin()
    if bindir is None or subprocess.run([BIN, '--store', 'postgresql:///x'],
                                        input=b'', capture_output=True,
                                        env=NO_STORE_ENV).stderr.find(b'not built') >= 0:
        print('skip closed_descriptors_postgresql: no PostgreSQL server or no libpq')
        return
    cluster = pg_test.Cluster(bindir)
    try:
        cluster.init()
        for fd in (0, 1, 2):
            db = f'closed{fd}'
            subprocess.run(['psql', '-Xq', '-c', f'create database {db}'],
                           env=cluster.env, check=True, capture_output=True)
            status, out, err = run_closed(fd, ['--store', 'postgresql:///' + db],
                                          env=cluster.env)
            check_closed(fd, status, out, err)
            n = subprocess.run(['psql', '-XAt', '-d', db, '-c', 'select count(*) from events'],
                               env=cluster.env, capture_output=True, check=True).stdout
            assert n == b'2\n', f'fd {fd} closed: {n!r} events'
        # stdin closed and nothing else to read: said, not read from libpq
        r = subprocess.run(WRAPPER + [BIN, '--store', 'postgresql:///closed0'],
                           capture_output=True, preexec_fn=lambda: os.close(0),
                           env=cluster.env, timeout=TIMEOUT)
        assert r.returncode == 2, f'stdin closed: exit {r.returncode}, {r.stderr!r}'
        assert r.stderr == b'simplecqrs: cannot read stdin: Bad file descriptor\n', r.stderr
        with open(cluster.log, errors='replace') as f:
            log = f.read()
        assert 'invalid frontend message' not in log, log[-2000:]
    finally:
        cluster.destroy()


def test_closed_stdin_is_not_a_script():
    """`simplecqrs - a.cqrs <&-`: '-' must not read whatever took
    descriptor 0 (here a.cqrs itself)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, 'a.cqrs')
        with open(path, 'wb') as f:
            f.write(b'deposit A 1\n')
        p = subprocess.run(WRAPPER + [BIN, '-', path], capture_output=True,
                           preexec_fn=lambda: os.close(0), env=NO_STORE_ENV,
                           timeout=TIMEOUT)
    assert p.returncode == 2, f'exit status {p.returncode}, {p.stdout!r}'
    assert p.stdout == b'', repr(p.stdout)
    assert p.stderr == b'simplecqrs: cannot read stdin: Bad file descriptor\n', p.stderr


def test_stdin_is_checked_first():
    """`first.cqrs - < folder` (or a write-only stdin): refused before
    first.cqrs runs, exit 2, the ledger untouched."""
    with tempfile.TemporaryDirectory() as tmp:
        first = os.path.join(tmp, 'first.cqrs')
        with open(first, 'wb') as f:
            f.write(b'deposit A 1\n')
        db = os.path.join(tmp, 'ledger.db')
        folder = os.open(tmp, os.O_RDONLY | os.O_DIRECTORY)
        writeonly = os.open(os.path.join(tmp, 'out'), os.O_WRONLY | os.O_CREAT)
        try:
            for stdin, why in ((folder, b'Is a directory'), (writeonly, b'Bad file descriptor')):
                for args in ([first, '-'], []):
                    p = subprocess.run(WRAPPER + [BIN, '--store', 'sqlite:' + db] + args,
                                       stdin=stdin, capture_output=True,
                                       env=NO_STORE_ENV, timeout=TIMEOUT)
                    assert p.returncode == 2, f'{args}: exit {p.returncode}, {p.stderr!r}'
                    assert p.stdout == b'', repr(p.stdout)
                    assert p.stderr == b'simplecqrs: cannot read stdin: ' + why + b'\n', p.stderr
                    assert not os.path.exists(db), f'{args}: the ledger was made'
        finally:
            os.close(folder)
            os.close(writeonly)


def main():
    global BIN
    BIN = os.path.abspath(sys.argv[1])
    tests = [(n, f) for n, f in globals().items() if n.startswith('test_')]
    failed = 0
    for name, fn in tests:
        try:
            fn()
            print(f'ok {name}')
        except Exception as e:
            failed += 1
            print(f'FAIL {name}: {e}')
    print(f'pipe: {len(tests) - failed} passed, {failed} failed')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
