#!/usr/bin/env python3
"""A program driving simplecqrs through pipes, a line at a time, gets each
answer as soon as it asks (no waiting for 64 KiB or EOF); and output into a
closed pipe ends the program quietly.  usage: pipe_test.py BIN"""
import os, select, shlex, signal, subprocess, sys, tempfile, time

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
