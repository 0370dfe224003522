#!/usr/bin/env python3
"""Interactive tests: drive the real simplecqrs binary in a pseudo-terminal.

usage: interactive_test.py BIN

SIMPLECQRS_WRAPPER, if set (meson test --setup=valgrind), is a command the
binary runs under; timeouts are then longer. Each test_* function gets a fresh sandbox (temp HOME, history file, empty
inputrc, clean environment), types keys into the shell and waits for the
screen output it expects. Nothing sleeps and hopes: every step waits for a
regex, with a timeout, and a failure shows what had arrived so far.
"""
import fcntl
import os
import pty
import re
import select
import shutil
import signal
import stat
import struct
import subprocess
import sys
import tempfile
import termios
import time

import shlex

WRAPPER = shlex.split(os.environ.get('SIMPLECQRS_WRAPPER', ''))
SLOW = 6 if WRAPPER else 1    # valgrind starts and runs slower
TIMEOUT = 10.0 * SLOW
ROWS, COLS = 30, 100
SGR = re.compile(rb'\x1b\[[0-9;]*m')
# For matching text: drop every CSI/OSC sequence, keypad-mode switches,
# readline's \001/\002 prompt markers, the bell and carriage returns.
NOISE = re.compile(r'\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07|\x1b[=>]|[\x01\x02\x07\r]')
PROMPT = r'simplecqrs(?: \[\d+ behind\])?> '
BARS = set('█▏▎▍▌▋▊▉')
SPARKS = '▁▂▃▄▅▆▇█'
UP, TAB, CTRL_C, CTRL_D = '\x1b[A', '\t', '\x03', '\x04'
PASTE_BEGIN, PASTE_END = '\x1b[200~', '\x1b[201~'   # what a terminal wraps a paste in


def clean(raw):
    return NOISE.sub('', raw.decode('utf-8', 'replace'))


class Session:
    """One run of the binary with a pty as its controlling terminal."""

    def __init__(self, binary, env, cwd, argv=None):
        argv = argv or WRAPPER + [binary]
        pid, fd = pty.fork()
        if pid == 0:  # child: size the terminal before the program asks
            try:
                fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack('HHHH', ROWS, COLS, 0, 0))
                os.chdir(cwd)
                os.execvpe(argv[0], argv, env)
            finally:
                os._exit(127)
        self.pid, self.fd = pid, fd
        self.raw = b''
        self.pos = 0          # offset in self.text up to which output is consumed
        self.eof = False
        self.status = None    # exit code once reaped

    @property
    def text(self):
        return clean(self.raw)

    def _read(self, timeout):
        if self.eof:
            return False
        ready, _, _ = select.select([self.fd], [], [], max(timeout, 0))
        if not ready:
            return False
        try:
            data = os.read(self.fd, 65536)
        except OSError:       # EIO: the child closed the terminal
            data = b''
        if not data:
            self.eof = True
            return False
        self.raw += data
        return True

    def send(self, keys):
        os.write(self.fd, keys.encode() if isinstance(keys, str) else keys)

    def send_all(self, keys, timeout=TIMEOUT * 3):
        """Send much input, reading the echo meanwhile (the terminal's
        buffers are small: a writer that does not read would deadlock)."""
        data = keys.encode() if isinstance(keys, str) else keys
        deadline = time.monotonic() + timeout
        while data:
            if time.monotonic() >= deadline:
                raise AssertionError(f'{len(data)} bytes still unsent after {timeout:g}s')
            _, writable, _ = select.select([], [self.fd], [], 0.05)
            if writable:
                flags = fcntl.fcntl(self.fd, fcntl.F_GETFL)
                fcntl.fcntl(self.fd, fcntl.F_SETFL, flags | os.O_NONBLOCK)
                try:
                    data = data[os.write(self.fd, data[:4096]):]
                except BlockingIOError:
                    pass
                finally:
                    fcntl.fcntl(self.fd, fcntl.F_SETFL, flags)
            while self._read(0):
                pass

    def expect(self, pattern, timeout=TIMEOUT, flags=re.M):
        """Wait until pattern matches the unconsumed output; consume through it."""
        rx = re.compile(pattern, flags)
        deadline = time.monotonic() + timeout
        while True:
            text = self.text
            m = rx.search(text, self.pos)
            if m:
                self.pos = m.end()
                return m
            if self.eof or time.monotonic() >= deadline:
                why = 'child exited' if self.eof else f'{timeout:g}s timeout'
                raise AssertionError(f'expected /{pattern}/ ({why}); received since last '
                                     f'match: {text[self.pos:][-3000:]!r}')
            self._read(deadline - time.monotonic())

    def run(self, line):
        """Type a command and Enter; return its output up to the next prompt."""
        start = len(self.text)
        self.send(line + '\r')
        m = self.expect(PROMPT)
        return self.text[start:m.start()]

    def wait_exit(self, timeout=5.0):
        timeout *= SLOW
        deadline = time.monotonic() + timeout
        while self.status is None:
            pid, st = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = os.waitstatus_to_exitcode(st)
                break
            if time.monotonic() >= deadline:
                raise AssertionError(f'still running after {timeout:g}s; output '
                                     f'since last match: {self.text[self.pos:][-2000:]!r}')
            if self.eof:
                time.sleep(0.01)   # terminal closed; the exit is moments away
            else:
                self._read(0.05)
        while self._read(0):  # drain what is left
            pass
        return self.status

    def alive(self):
        return self.status is None and os.waitpid(self.pid, os.WNOHANG)[0] == 0

    def close(self):
        if self.status is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            _, st = os.waitpid(self.pid, 0)
            self.status = os.waitstatus_to_exitcode(st)
        os.close(self.fd)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Sandbox:
    """Fresh HOME, cwd, history path and inputrc for one test."""

    def __init__(self, binary):
        self.binary = binary
        self.tmp = tempfile.TemporaryDirectory(prefix='scqrs-it-')
        d = self.dir = self.tmp.name
        self.home, self.cwd = os.path.join(d, 'home'), os.path.join(d, 'cwd')
        self.history = os.path.join(d, 'hist', 'history')
        for p in (self.home, self.cwd, os.path.dirname(self.history)):
            os.makedirs(p)
        inputrc = os.path.join(d, 'inputrc')
        open(inputrc, 'w').close()
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(('LC_', 'SIMPLECQRS_', 'XDG_'))
                    and k not in ('LANG', 'LANGUAGE', 'NO_COLOR', 'COLUMNS', 'LINES')}
        self.env.update(HOME=self.home, TERM='xterm-256color', LC_ALL='C.UTF-8',
                        SIMPLECQRS_HISTORY=self.history, INPUTRC=inputrc)

    def spawn(self, args=(), **env):
        e = dict(self.env)
        for k, v in env.items():
            if v is None:
                e.pop(k, None)
            else:
                e[k] = v
        s = Session(self.binary, e, self.cwd, argv=WRAPPER + [self.binary, *args])
        s.expect(PROMPT)      # never type before readline is listening
        return s

    def cleanup(self):
        self.tmp.cleanup()


def history_lines(path):
    assert os.path.exists(path), f'no history file {path}'
    with open(path, encoding='utf-8', errors='replace') as f:
        return [l for l in f.read().split('\n') if l and not re.match(r'#\d+$', l)]


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def files_under(top):
    return [os.path.join(d, f) for d, _, fs in os.walk(top) for f in fs]


# ---- tests ----

def test_banner_and_prompt(sb):
    with sb.spawn() as s:
        before = s.text[:s.pos].rstrip()
        assert before.endswith('simplecqrs>'), repr(before)
        lines = before[:-len('simplecqrs>')].strip('\n').split('\n')
        assert len(lines) == 1, f'banner is not one line: {lines!r}'
        assert lines[0].startswith('simplecqrs 0.1.0'), repr(lines[0])
        assert 'memory' in lines[0] and 'help' in lines[0], repr(lines[0])
        assert s.text.endswith('simplecqrs> '), repr(s.text[-40:])


def test_lag_in_prompt(sb):
    with sb.spawn() as s:
        s.send('deposit XX1 1000\r')
        s.expect(r'^deposited 1000 into XX1')
        s.expect(r'simplecqrs \[1 behind\]> ')
        s.send('refresh\r')
        s.expect(r'^refreshed: 1 event applied, checkpoint 1')
        s.expect(r'\nsimplecqrs> ')


def test_error_in_red(sb):
    with sb.spawn() as s:
        start = len(s.raw)
        s.send('withdraw XX9 5\r')
        s.expect(r'^error: no account XX9$')
        s.expect(PROMPT)
        raw = s.raw[start:]
        assert re.search(rb'\x1b\[(?:[0-9;]*;)?31(?:;[0-9;]*)?m', raw), \
            f'no red SGR in {raw!r}'


def test_no_color(sb):
    with sb.spawn(NO_COLOR='1') as s:
        s.run('deposit XX1 10')             # prompt now shows [1 behind]
        s.run('balances')                   # footer says behind
        s.send('withdraw XX9 5\r')
        s.expect(r'^error: no account XX9$')
        s.expect(PROMPT)
        s.send('quit\r')
        s.wait_exit()
        found = SGR.findall(s.raw)
        assert not found, f'SGR codes with NO_COLOR=1: {found!r} in {s.raw!r}'


def test_ctrl_c_discards_line(sb):
    with sb.spawn() as s:
        s.send('deposit XX1 5')
        s.expect(r'deposit XX1 5')
        s.send(CTRL_C)
        s.expect(r'\^C')
        s.expect(r'^simplecqrs> ')
        s.send(CTRL_C)
        s.expect(r'\^C')
        s.expect(r'^simplecqrs> ')
        assert s.alive(), 'shell died on Ctrl-C'
        s.send('status\r')
        s.expect(r'^head +0$')
        s.expect(r'simplecqrs> ')


def test_ctrl_d_exits_0(sb):
    with sb.spawn() as s:
        s.send(CTRL_D)
        assert s.wait_exit(3) == 0, f'exit status {s.status}'


def test_quit_and_exit(sb):
    for word in ('quit', 'exit'):
        with sb.spawn() as s:
            s.run('deposit XX1 1')
            s.send(word + '\r')
            assert s.wait_exit() == 0, f'{word}: exit status {s.status}'


def test_no_prompt_after_the_end(sb):
    for key in (CTRL_D, 'quit\r'):
        with sb.spawn() as s:
            s.send(key)
            assert s.wait_exit() == 0, f'{key!r}: exit status {s.status}'
            rest = s.text[s.pos:]
            assert 'simplecqrs>' not in rest, f'{key!r}: a prompt after the end: {rest!r}'


def test_history_is_capped(sb):
    with open(sb.history, 'w') as f:
        f.write(''.join(f'deposit H {i}\n' for i in range(1, 1201)))
    os.chmod(sb.history, 0o600)
    with sb.spawn() as s:
        s.send(UP)
        s.expect(r'deposit H 1200')     # the newest old line is offered
        s.send(CTRL_C)
        s.expect(PROMPT)
        s.run('status')
        s.send(CTRL_D)
        assert s.wait_exit() == 0
    lines = history_lines(sb.history)
    assert len(lines) <= 1000, f'{len(lines)} lines kept'
    assert lines[-1] == 'status' and 'deposit H 1200' in lines, lines[-3:]
    assert 'deposit H 1' not in lines, 'the oldest lines were kept'


def test_two_shells_append_to_one_history(sb):
    with sb.spawn() as a, sb.spawn() as b:
        a.run('deposit A1 1')
        b.run('deposit B1 2')
        a.run('balances')
        for s in (a, b):
            s.send(CTRL_D)
            assert s.wait_exit() == 0
    lines = history_lines(sb.history)
    for want in ('deposit A1 1', 'deposit B1 2', 'balances'):
        assert want in lines, f'{want!r} lost from {lines!r}'


def test_hangup_and_term_end_the_session_cleanly(sb):
    """A closed terminal (SIGHUP) or a kill (SIGTERM) ends the prompt as
    Ctrl-D does: the store is closed, so the ledger file alone holds every
    event (no -wal beside it: cp is safe), and the program then ends by
    that signal."""
    import sqlite3
    for sig in (signal.SIGHUP, signal.SIGTERM):
        ledger = os.path.join(sb.cwd, f'end-{sig.name}.db')
        with sb.spawn(args=['--store', 'sqlite:' + ledger]) as s:
            s.run('deposit XX1 5')
            s.send('withdraw XX1 ')	# half typed: dropped
            os.kill(s.pid, sig)
            status = s.wait_exit()
            assert status == -sig, f'{sig.name}: exit status {status}'
        assert not os.path.exists(ledger + '-wal'), f'{sig.name}: the -wal is left'
        db = sqlite3.connect(f'file:{ledger}?mode=ro', uri=True)
        try:
            rows = db.execute('SELECT type, amount FROM event_log').fetchall()
        finally:
            db.close()
        assert rows == [(1, 5)], f'{sig.name}: {rows}'


def test_ctrl_z_and_fg(sb):
    """Under a job-control shell: Ctrl-Z stops the shell, fg brings back a
    working prompt (raw mode again: Tab completes at once)."""
    if WRAPPER:
        return          # job control under valgrind proves nothing more
    env = dict(sb.env, PS1='bash$ ', HISTFILE='/dev/null')
    with Session(None, env, sb.cwd, argv=['bash', '--norc', '--noprofile', '-i']) as s:
        s.expect(r'bash\$ ')
        s.send(shlex.quote(sb.binary) + '\r')
        s.expect(PROMPT)
        s.send('deposit XX1 5\r')
        s.expect(r'deposited 5 into XX1')
        s.expect(PROMPT)
        s.send('\x1a')
        s.expect(r'Stopped')
        s.expect(r'bash\$ ')
        s.send('fg\r')
        s.expect(PROMPT)
        s.send('dep' + TAB)
        s.expect(r'deposit ')
        s.send('XX1 1\r')
        s.expect(r'deposited 1 into XX1 \(version 2')
        s.send('quit\r')
        s.expect(r'bash\$ ')
        s.send('exit\r')


def test_unknown_command_suggestion(sb):
    with sb.spawn() as s:
        s.send('depost XX1 5\r')
        s.expect(r"unknown command 'depost'; did you mean 'deposit'\?")
        s.expect(PROMPT)


def test_help(sb):
    with sb.spawn() as s:
        out = s.run('help')
        assert re.search(r'^deposit ACCOUNT AMOUNT\b', out, re.M), repr(out)
        for cmd in ('withdraw', 'transfer', 'refresh', 'balances', 'balance',
                    'history', 'status', 'rebuild', 'help', 'quit', 'exit'):
            assert re.search(rf'^{cmd}\b', out, re.M), f'no line for {cmd}: {out!r}'
        out = s.run('help transfer')
        assert re.search(r'^usage: transfer FROM TO AMOUNT$', out, re.M), repr(out)
        assert re.search(r'^example:', out, re.M), repr(out)


def test_complete_command(sb):
    with sb.spawn() as s:
        s.send('dep' + TAB)
        s.expect(r'deposit ')
        s.send('XX1 7\r')
        s.expect(r'^deposited 7 into XX1')
        s.expect(PROMPT)


def test_complete_account(sb):
    with sb.spawn() as s:
        s.run('deposit XX1 10')
        s.run('deposit YY2 10')
        s.send('withdraw X' + TAB)
        s.expect(r'withdraw XX1 ')
        s.send('3\r')
        s.expect(r'^withdrew 3 from XX1')
        s.expect(PROMPT)


def test_no_filename_completion(sb):
    open(os.path.join(sb.cwd, 'zzzfile'), 'w').close()
    with sb.spawn() as s:
        s.send('deposit zz')
        s.expect(r'deposit zz')
        start = len(s.text)
        s.send(TAB + ' 1\r')
        s.expect(r'^(deposited 1 into zz|error: .*\bzz\b)')
        s.expect(PROMPT)
        after = s.text[start:]
        assert 'zzzfile' not in after, f'filename completed: {after!r}'


def test_history_persists(sb):
    with sb.spawn() as s:
        s.run('deposit HH1 42')
        s.run('balances')
        s.send(CTRL_D)
        assert s.wait_exit() == 0, f'exit status {s.status}'
    assert os.path.exists(sb.history), 'history file not written'
    assert mode(sb.history) == 0o600, f'mode {oct(mode(sb.history))}'
    assert 'deposit HH1 42' in history_lines(sb.history), history_lines(sb.history)
    with sb.spawn() as s:
        s.send(UP + UP + '\r')
        s.expect(r'^deposited 42 into HH1')
        s.expect(PROMPT)


def test_history_no_repeat(sb):
    with sb.spawn() as s:
        s.run('status')
        s.run('status')
        s.send('quit\r')
        s.wait_exit()
    lines = history_lines(sb.history)
    assert lines.count('status') == 1, f'history: {lines!r}'


def test_history_off(sb):
    for value in ('/dev/null', ''):
        with sb.spawn(SIMPLECQRS_HISTORY=value) as s:
            s.run('deposit HH1 1')
            s.send('quit\r')
            assert s.wait_exit() == 0
        assert stat.S_ISCHR(os.stat('/dev/null').st_mode), '/dev/null replaced!'
        left = files_under(sb.home)
        assert not left, f'SIMPLECQRS_HISTORY={value!r} still wrote {left!r}'
        assert not os.path.exists(sb.history)


def test_history_default_path(sb):
    state = os.path.join(sb.dir, 'state')
    for env, path in ((dict(XDG_STATE_HOME=state), os.path.join(state, 'simplecqrs', 'history')),
                      (dict(XDG_STATE_HOME=None),
                       os.path.join(sb.home, '.local', 'state', 'simplecqrs', 'history'))):
        with sb.spawn(SIMPLECQRS_HISTORY=None, **env) as s:
            s.run('status')
            s.send(CTRL_D)
            assert s.wait_exit() == 0
        assert os.path.exists(path), f'{env}: no {path}; found {files_under(sb.dir)}'
        assert mode(path) == 0o600, f'{path}: mode {oct(mode(path))}'
        assert 'status' in history_lines(path)


def bar_rows(out, count):
    rows = {}
    for acct, amount in (('A', '100'), ('B', '50')):
        m = re.search(rf'^ *{acct} +{amount}\b(.*)$', out, re.M)
        assert m, f'no row for {acct} in {out!r}'
        rows[acct] = count(m.group(1))
    assert rows['A'] > rows['B'] >= 1, f'bar lengths {rows} in {out!r}'


def ledger_for_pictures(s):
    for line in ('deposit A 60', 'deposit A 40', 'deposit B 50', 'refresh'):
        s.run(line)


def test_pictures_utf8(sb):
    with sb.spawn() as s:
        ledger_for_pictures(s)
        bar_rows(s.run('balances'), lambda t: sum(c in BARS for c in t))
        out = s.run('history A')
        last = [l for l in out.split('\n') if l.strip()][-1]
        assert re.search(f'[{SPARKS}]{{2,}}', last), f'no sparkline at end: {out!r}'


def test_pictures_ascii(sb):
    with sb.spawn(LC_ALL='C') as s:
        ledger_for_pictures(s)
        start = len(s.raw)
        bar_rows(s.run('balances'), lambda t: t.count('#'))
        s.run('history A')
        high = [b for b in s.raw[start:] if b >= 0x80]
        assert not high, f'non-ASCII bytes with LC_ALL=C: {s.raw[start:]!r}'


def test_piped_leaks_nothing(sb):
    env = dict(sb.env)
    p = subprocess.run([sb.binary], input=b'deposit A 1\nbalances\nfrobnicate\n',
                       capture_output=True, env=env, cwd=sb.cwd, timeout=TIMEOUT)
    out, err = p.stdout, p.stderr
    assert p.returncode == 1, f'exit status {p.returncode}'
    assert b'simplecqrs>' not in out and b'simplecqrs 0.1.0' not in out, repr(out)
    assert b'\x1b' not in out, repr(out)
    assert all(b < 0x80 for b in out), f'non-ASCII (bars?) in {out!r}'
    assert b'deposited 1 into A' in out, repr(out)
    assert err.startswith(b"error: 3: "), repr(err)
    assert b'\x1b' not in err, repr(err)
    assert not os.path.exists(sb.history), 'piped input wrote the history file'
    assert not files_under(sb.home), f'piped input wrote {files_under(sb.home)!r}'


# ---- pasting (bracketed paste: readline gets the paste as one text) ----

def test_paste_runs_each_line(sb):
    lines = ['deposit PA 10', 'deposit PB 20', 'withdraw PA 3', 'status']
    with sb.spawn() as s:
        s.send(PASTE_BEGIN + '\r'.join(lines) + '\r' + PASTE_END)
        s.expect(r'status')               # shown for the user to accept
        start = len(s.text)
        s.send('\r')
        s.expect(r'^deposited 10 into PA')
        s.expect(r'^deposited 20 into PB')
        s.expect(r'^withdrew 3 from PA')
        s.expect(r'^head +3$')
        s.expect(PROMPT)
        assert 'error' not in s.text[start:], repr(s.text[start:])
        s.send('quit\r')
        assert s.wait_exit() == 0
    assert history_lines(sb.history)[-5:] == lines + ['quit'], history_lines(sb.history)


def test_paste_one_line_with_its_newline(sb):
    with sb.spawn() as s:
        s.send(PASTE_BEGIN + 'deposit XX1 1\r' + PASTE_END)
        s.expect(r'deposit XX1 1')
        start = len(s.text)
        s.send('\r')
        s.expect(r'^deposited 1 into XX1')
        s.expect(PROMPT)
        assert 'error' not in s.text[start:], repr(s.text[start:])


def test_paste_huge_line_is_one_error(sb):
    """A 300 kB pasted line is one line_too_long, kept nowhere whole: the
    line buffer holds 4097 bytes of it (what the terminal shows), and the
    history does not get it."""
    huge = 'deposit HUGE ' + '1' * 300000
    with sb.spawn() as s:
        start = len(s.raw)
        s.send_all(PASTE_BEGIN + huge + '\rdeposit AFTER 5' + PASTE_END)
        s.expect(r'deposit AFTER 5', timeout=TIMEOUT * 3)
        shown = len(s.raw) - start
        assert shown < 64 * 1024, f'{shown} bytes echoed for a 300 kB paste'
        out_start = len(s.text)
        s.send('\r')
        s.expect(r'^error: line longer than 4096 bytes; ignored$')
        s.expect(r'^deposited 5 into AFTER')
        s.expect(PROMPT)
        assert s.text[out_start:].count('error') == 1, repr(s.text[out_start:][-500:])
        s.send('quit\r')
        assert s.wait_exit() == 0
    lines = history_lines(sb.history)
    assert all(len(l) <= 4096 for l in lines), [len(l) for l in lines]
    assert 'deposit AFTER 5' in lines, lines


def test_ctrl_c_stops_the_rest_of_a_paste(sb):
    """Ctrl-C while pasted lines run: the rest of the paste is not run."""
    if not shutil.which('sqlite3'):
        return
    ledger = os.path.join(sb.cwd, 'ledger.db')
    with sb.spawn(args=['--store', 'sqlite:' + ledger]) as s, LockHolder(ledger) as lock:
        s.send(PASTE_BEGIN + 'deposit C1 1\rdeposit C2 2\rdeposit C3 3' + PASTE_END)
        s.expect(r'deposit C3 3')
        s.send('\r')
        s.expect(r'waiting for the ledger.s write lock', timeout=TIMEOUT)
        s.send(CTRL_C)
        s.expect(r'error: .*nothing was written')
        s.expect(r'the rest of the paste was not run')
        s.expect(PROMPT)
        lock.release()
        out = s.run('status')
        assert re.search(r'^head +0$', out, re.M), repr(out)


# ---- SPEC's rules for the prompt ----

def test_echo_is_not_for_the_prompt(sb):
    with sb.spawn(args=['--echo']) as s:
        out = s.run('deposit XX1 5')
        assert out.count('deposit XX1 5') == 1, f'the command twice: {out!r}'
        assert 'deposited 5 into XX1' in out, repr(out)


def test_bail_does_not_end_the_prompt(sb):
    with sb.spawn(args=['--bail']) as s:
        out = s.run('frobnicate')
        assert 'error:' in out, repr(out)
        assert s.alive(), '--bail ended the session'
        out = s.run('deposit XX1 5')
        assert 'deposited 5 into XX1' in out, repr(out)
        s.send('quit\r')
        assert s.wait_exit() == 0, f'exit status {s.status}'


def test_failed_command_keeps_exit_0(sb):
    for end in (CTRL_D, 'quit\r', 'exit\r'):
        with sb.spawn() as s:
            s.run('withdraw XX9 5')
            s.run('frobnicate')
            s.send(end)
            assert s.wait_exit() == 0, f'{end!r}: exit status {s.status}'


def test_storage_failure_still_exits_3(sb):
    if not shutil.which('sqlite3'):
        return
    ledger = os.path.join(sb.cwd, 'ledger.db')
    with sb.spawn(args=['--store', 'sqlite:' + ledger]) as s:
        s.run('deposit XX1 5')
        s.run('frobnicate')
        subprocess.run(['sqlite3', ledger, 'DROP TABLE event_log'], check=True,
                       capture_output=True, timeout=TIMEOUT)
        s.send('deposit XX1 6\r')
        s.expect(r'^error: storage failed')
        assert s.wait_exit() == 3, f'exit status {s.status}'


# ---- the prompt follows other shells ----

def test_prompt_redraws_when_another_shell_writes(sb):
    ledger = os.path.join(sb.cwd, 'ledger.db')
    store = ['--store', 'sqlite:' + ledger]
    with sb.spawn(args=store) as s:
        idle = len(s.raw)
        time.sleep(2.5)
        while s._read(0):
            pass
        assert len(s.raw) == idle, f'redrawn with nothing changed: {s.raw[idle:]!r}'
        s.send('deposit XY')
        s.expect(r'deposit XY')
        p = subprocess.run([sb.binary] + store, input=b'deposit OTHER 5\ndeposit OTHER 6\n',
                           capture_output=True, env=sb.env, cwd=sb.cwd, timeout=TIMEOUT)
        assert p.returncode == 0, p.stderr
        # within about a second, and what was typed is still there
        s.expect(r'simplecqrs \[2 behind\]> deposit XY', timeout=4 * SLOW)
        s.send(' 7\r')
        s.expect(r'^deposited 7 into XY')
        s.expect(r'simplecqrs \[3 behind\]> ')


# ---- waiting for a lock another program holds ----

class LockHolder:
    """A sqlite3 process holding the ledger's write lock (BEGIN IMMEDIATE)."""

    def __init__(self, path):
        self.p = subprocess.Popen(['sqlite3', path], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.p.stdin.write(b'BEGIN IMMEDIATE;\nSELECT \'locked\';\n')
        self.p.stdin.flush()
        line = self.p.stdout.readline()
        assert line.strip() == b'locked', line

    def release(self):
        if self.p.poll() is None:
            self.p.stdin.write(b'ROLLBACK;\n.quit\n')
            self.p.stdin.close()
            self.p.wait(TIMEOUT)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()


def test_lock_wait_says_so_and_ctrl_c_stops_it(sb):
    if not shutil.which('sqlite3'):
        return
    ledger = os.path.join(sb.cwd, 'ledger.db')
    with sb.spawn(args=['--store', 'sqlite:' + ledger]) as s, LockHolder(ledger) as lock:
        t0 = time.monotonic()
        s.send('deposit XX1 5\r')
        s.expect(r'waiting for the ledger.s write lock, held by another program '
                 r'\(Ctrl-C stops waiting\)', timeout=5 * SLOW)
        assert time.monotonic() - t0 >= 0.9, 'said so before a second'
        s.send(CTRL_C)
        s.expect(r'error: .*nothing was written', timeout=3 * SLOW)
        s.expect(PROMPT)
        assert time.monotonic() - t0 < 8 * SLOW, 'Ctrl-C did not stop the wait'
        assert s.alive()
        assert s.text.count('waiting for the ledger') == 1, 'said more than once'
        lock.release()
        out = s.run('status')
        assert re.search(r'^head +0$', out, re.M), repr(out)
        out = s.run('deposit XX1 5')
        assert 'deposited 5 into XX1 (version 1' in out, repr(out)
        s.send('quit\r')
        assert s.wait_exit() == 0


# ---- the banner ----

def test_banner_names_the_ledger(sb):
    ledger = os.path.join(os.path.realpath(sb.cwd), 'ledger.db')
    for new in (True, False):
        with sb.spawn(args=['--store', 'sqlite:ledger.db']) as s:
            banner = s.text[:s.pos].strip().split('\n')[0]
            assert banner.startswith(f'simplecqrs 0.1.0 on sqlite:{ledger}'), repr(banner)
            assert ('(a new, empty ledger)' in banner) == new, repr(banner)
            assert len(banner) <= 2 * COLS, repr(banner)
            s.run('deposit XX1 1')


# ---- messages ----

def test_balance_suggests_refresh_only_when_it_helps(sb):
    with sb.spawn() as s:
        s.run('deposit XX1 5')
        out = s.run('balance XX1')
        assert re.search(r"no account XX1.*run 'refresh'", out), repr(out)
        out = s.run('balance NOPE')
        assert 'no account NOPE' in out and 'refresh' not in out, repr(out)


def test_help_suggests_a_command(sb):
    with sb.spawn() as s:
        out = s.run('help depost')
        assert "did you mean 'deposit'?" in out, repr(out)


def test_counts_singular(sb):
    p = subprocess.run([sb.binary], input=b'deposit A 1\n', capture_output=True,
                       env=dict(sb.env, SIMPLECQRS_STATS='1'), cwd=sb.cwd, timeout=TIMEOUT)
    assert b'simplecqrs: 1 append, 0 conflicts' in p.stderr, p.stderr


def test_long_ids_cut_on_a_terminal(sb):
    long_id = 'L' * 63 + 'Z'
    with sb.spawn() as s:
        for line in (f'deposit {long_id} 100', 'deposit B 50', 'refresh'):
            s.run(line)
        out = s.run('balances')
        assert long_id not in out, f'the whole id on a terminal: {out!r}'
        assert re.search(r'^L+\u2026 +100\b', out, re.M), repr(out)
        row = re.search(r'^B( +)50\b', out, re.M)
        assert row and len(row.group(1)) < 40, f'the short row widened: {out!r}'
        for l in out.split('\n'):
            assert len(l) <= COLS, f'{len(l)} columns: {l!r}'
    p = subprocess.run([sb.binary], input=f'deposit {long_id} 100\nrefresh\nbalances\n'.encode(),
                       capture_output=True, env=sb.env, cwd=sb.cwd, timeout=TIMEOUT)
    assert long_id.encode() in p.stdout, f'piped, the id was cut: {p.stdout!r}'


# ---- the history file is not trusted ----

def test_history_symlink_refused(sb):
    target = os.path.join(sb.dir, 'precious')
    content = ''.join(f'line {i}\n' for i in range(1200))
    with open(target, 'w') as f:
        f.write(content)
    os.chmod(target, 0o644)
    os.symlink(target, sb.history)
    with sb.spawn() as s:
        assert re.search(r'history not saved: .*symbolic link', s.text), repr(s.text)
        s.run('deposit XX1 1')
        s.send('quit\r')
        assert s.wait_exit() == 0
    with open(target) as f:
        assert f.read() == content, 'the link\'s target was changed'
    assert mode(target) == 0o644, f'target mode now {oct(mode(target))}'


def test_history_fifo_does_not_block(sb):
    os.mkfifo(sb.history)
    e = dict(sb.env)
    with Session(sb.binary, e, sb.cwd) as s:
        s.expect(PROMPT, timeout=3 * SLOW)
        assert re.search(r'history not saved: .*not a regular file', s.text), repr(s.text)
        s.run('deposit XX1 1')
        s.send('quit\r')
        assert s.wait_exit() == 0
    assert stat.S_ISFIFO(os.stat(sb.history).st_mode)


def test_history_skips_an_overlong_line(sb):
    with sb.spawn() as s:
        s.send_all('deposit LONG ' + '2' * 5000)
        s.expect(r'2{100}$', timeout=TIMEOUT * 2)
        s.send('\r')
        s.expect(r'^error: line longer than 4096 bytes; ignored$')
        s.expect(PROMPT)
        s.run('status')
        s.send('quit\r')
        s.wait_exit()
    lines = history_lines(sb.history)
    assert not any('LONG' in l for l in lines), [l[:40] for l in lines]
    assert 'status' in lines, lines


def main():
    if len(sys.argv) != 2:
        sys.exit('usage: interactive_test.py BIN')
    binary = os.path.abspath(sys.argv[1])
    tests = [(n[5:], f) for n, f in globals().items() if n.startswith('test_')]
    failed = 0
    for name, fn in tests:
        sb = Sandbox(binary)
        try:
            fn(sb)
            print(f'ok {name}', flush=True)
        except Exception as e:
            failed += 1
            why = str(e) or type(e).__name__
            print(f'FAIL {name}: {why}', flush=True)
        finally:
            sb.cleanup()
    print(f'interactive: {len(tests) - failed} passed, {failed} failed')
    sys.exit(1 if failed else 0)


if __name__ == '__main__':
    main()
