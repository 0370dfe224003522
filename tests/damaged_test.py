#!/usr/bin/env python3
"""Ledgers edited by hand: what comes back from a SQLite file is not trusted.

usage: damaged_test.py BIN

Each case makes a ledger with the binary, then changes its rows with
Python's sqlite3 module as someone with the file could (a name holding
control bytes, an amount that takes the running balance below 0, an unknown
type, a gap in the versions, ...). Every command that reads what was changed
must then fail with a clear `storage` error that says what is wrong, or show
the text escaped: no crash, and no raw control byte on stdout or stderr,
whether the output is a pipe, a terminal (where bars and the sparkline are
drawn) or JSON.
"""
import json
import os
import re
import select
import shutil
import sqlite3
import struct
import subprocess
import sys
import tempfile
import fcntl
import termios

BIN = os.path.abspath(sys.argv[1])
TMP = tempfile.mkdtemp(prefix='simplecqrs-damaged-')
ENV = {k: v for k, v in os.environ.items() if k not in ('SIMPLECQRS_STORE', 'NO_COLOR')}
ENV['LANG'] = ENV['LC_ALL'] = 'C.UTF-8'
WRAPPER = os.environ.get('SIMPLECQRS_WRAPPER', '').split()
passed = failed = 0

# XX1: +1000 (position 1), -300 (2), -100 (4); XX2: +50 (3), +100 (5)
BASE = ('deposit XX1 1000\nwithdraw XX1 300\ndeposit XX2 50\n'
        'transfer XX1 XX2 100\nrefresh\n')
COMMANDS = ['balances', 'history XX1', 'history XX2', 'withdraw XX1 1',
            'refresh', 'rebuild']
OSC = 'X\x1b]0;x\x07Y'          # sets the window title, then rings
CSI_C1 = 'X\u009b2JY'           # C1 CSI: clears the screen where taken
UNKNOWN = 'unknown'              # the id is no longer there
SGR = re.compile(rb'\x1b\[[0-9;]*m')    # the shell's own colours


def check(name, cond, detail=''):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print(f'FAIL {name}' + (f': {detail}' if detail else ''), flush=True)


def raw_controls(data):
    """The control bytes in data that a terminal would act on: C0 but LF,
    CR and tab, DEL, and C1 (U+0080..U+009F)."""
    text = data.decode('utf-8', 'replace')
    return [c for c in text if (ord(c) < 0x20 and c not in '\n\r\t')
            or 0x7f <= ord(c) <= 0x9f]


def piped(path, line, *args):
    p = subprocess.run(WRAPPER + [BIN, '--store', 'sqlite:' + path, *args],
                       input=(line + '\n').encode(), capture_output=True,
                       env=ENV, timeout=120)
    return p.returncode, p.stdout, p.stderr


def at_terminal(path, line):
    """stdout and stderr on a 100-column pty, the script on stdin: text
    mode with colours, bars and the sparkline, but no prompt."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack('HHHH', 30, 100, 0, 0))
    p = subprocess.Popen(WRAPPER + [BIN, '--store', 'sqlite:' + path],
                         stdin=subprocess.PIPE, stdout=slave, stderr=slave,
                         env=ENV)
    os.close(slave)
    p.stdin.write((line + '\n').encode())
    p.stdin.close()
    out = b''
    while True:
        r, _, _ = select.select([master], [], [], 120)
        if not r:
            break
        try:
            chunk = os.read(master, 65536)
        except OSError:      # EIO: the program closed its end
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    rc = p.wait(timeout=120)
    return rc, SGR.sub(b'', out), b''


def make(name, edits):
    """A ledger made by the binary, then edited: edits are (sql, params)."""
    path = os.path.join(TMP, name + '.db')
    rc, out, err = piped(path, BASE.rstrip('\n'))
    assert rc == 0, err
    db = sqlite3.connect(path)
    db.execute('pragma ignore_check_constraints = 1')
    for sql, params in edits:
        db.execute(sql, params)
    db.commit()
    db.execute('pragma journal_mode = delete')   # the whole ledger in one file
    db.close()
    return path


def run_case(name, edits, expect):
    """expect: command -> None (it must work) or the strings its storage
    error must hold."""
    template = make(name, edits)
    for cmd in COMMANDS:
        want = expect.get(cmd)
        for mode in ('piped', 'terminal', 'json'):
            path = os.path.join(TMP, f'{name}-run.db')
            for suffix in ('', '-wal', '-shm'):
                if os.path.exists(path + suffix):
                    os.remove(path + suffix)
            shutil.copy(template, path)
            if mode == 'piped':
                rc, out, err = piped(path, cmd)
            elif mode == 'terminal':
                rc, out, err = at_terminal(path, cmd)
            else:
                rc, out, err = piped(path, cmd, '--json')
            what = f'{name}: {cmd} ({mode})'
            shown = (out + err).decode('utf-8', 'replace')
            check(f'{what}: no crash', rc >= 0 and rc in (0, 1, 3),
                  f'status {rc}: {shown!r}')
            check(f'{what}: no raw control byte', not raw_controls(out + err),
                  repr(out + err))
            check(f'{what}: no wrapped-around number',
                  not re.search(r'1844674407\d{10}', shown), shown)
            if mode == 'json':
                try:
                    objs = [json.loads(l) for l in out.splitlines()]
                except ValueError as e:
                    check(f'{what}: JSON', False, f'{e}: {out!r}')
                    continue
                check(f'{what}: one JSON line', len(objs) == 1, repr(out))
                if not objs:
                    continue
                o = objs[0]
                if want == UNKNOWN:
                    check(f'{what}: unknown account',
                          o.get('error') == 'unknown_account' and rc == 1, repr(o))
                elif want is None:
                    check(f'{what}: works', o.get('ok') is True and rc == 0, repr(o))
                else:
                    msg = o.get('message', '')
                    check(f'{what}: storage error', o.get('ok') is False and
                          o.get('error') == 'storage' and rc == 3, repr(o))
                    for w in want:
                        check(f'{what}: message says {w!r}',
                              json_form(w) in msg, repr(msg))
                continue
            if want == UNKNOWN:
                check(f'{what}: unknown account', rc == 1 and
                      'no account XX2' in shown, shown)
            elif want is None:
                check(f'{what}: works', rc == 0 and 'error' not in shown, shown)
            else:
                # the SQLite store finds an unknown type itself
                prefix = ('storage failed: ' if name == 'unknown-type'
                          else 'storage failed: damaged ledger: ')
                check(f'{what}: storage error', rc == 3 and prefix in shown, shown)
                for w in want:
                    check(f'{what}: message says {w!r}', w in shown, shown)


def json_form(w):
    r"""The text mode's escaped form as JSON decodes it: each \xNN back to
    its byte, the bytes read as UTF-8."""
    if '\\x' not in w:
        return w
    return re.sub(rb'\\x([0-9a-f]{2})', lambda m: bytes([int(m.group(1), 16)]),
                  w.encode()).decode('utf-8', 'replace')


def test_cached_state():
    """A shell that has XX1 cached at version 1 meets a version 2 put in by
    hand that takes the balance below 0, with the kept row moved to version
    2 but its balance left at 1000: its withdrawal conflicts and is decided
    again on the kept state, as a shell that had nothing cached decides
    (test_kept_balance_edited in sqlite_test); the replay, `history`, finds
    the bad event and says so."""
    path = os.path.join(TMP, 'cached.db')
    p = subprocess.Popen(WRAPPER + [BIN, '--store', 'sqlite:' + path],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, env=ENV)

    def ask(line):
        p.stdin.write((line + '\n').encode())
        p.stdin.flush()
        return p.stdout.readline().decode('utf-8', 'replace')

    first = ask('deposit XX1 1000')
    check('cached: deposit', first.startswith('deposited 1000 into XX1'), first)
    refreshed = ask('refresh')
    db = sqlite3.connect(path, timeout=30)
    db.execute('pragma ignore_check_constraints = 1')
    sid = db.execute("select id from streams where name = 'XX1'").fetchone()[0]
    db.execute('insert into event_log (stream, version, type, amount, time) '
               'values (?, 2, 2, 5000, 0)', (sid,))
    db.execute('update streams set version = 2, balance_version = 2 where id = ?', (sid,))
    db.commit()
    db.close()
    got = ask('withdraw XX1 1')
    check('cached: the retry decides on the kept state',
          got.startswith('withdrew 1 from XX1 (version 3, position 3)'), got)
    got = ask('history XX1')
    check('cached: history is a storage error naming the event',
          'storage failed: damaged ledger: account XX1 version 2 (position 2): '
          'the balance 1000 less 5000 goes below 0' in got, got)
    p.stdin.close()
    rest = p.stdout.read().decode('utf-8', 'replace')
    rc = p.wait(timeout=60)
    check('cached: exit 3', rc == 3, f'{rc} {refreshed!r} {rest!r}')


def test_schema_damaged_while_open():
    """SQLite's own error text names the damaged object, whose name is
    whatever the file says: printed escaped, in text and in JSON."""
    for mode in ([], ['--json']):
        path = os.path.join(TMP, 'schema%d.db' % len(mode))
        p = subprocess.Popen(WRAPPER + [BIN, '--store', 'sqlite:' + path] + mode,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, env=ENV)
        p.stdin.write(b'deposit XX1 1000\n')
        p.stdin.flush()
        p.stdout.readline()
        db = sqlite3.connect(path, timeout=30)
        v = db.execute('pragma schema_version').fetchone()[0]
        db.execute('pragma writable_schema = on')
        db.execute("update sqlite_master set name = ?, sql = ? where name = 'balances'",
                   ('b' + OSC, 'CREATE TABLE "b%s" (x' % OSC))
        db.execute('pragma schema_version = %d' % (v + 1))
        db.commit()
        db.close()
        out, _ = p.communicate(b'refresh\n', timeout=60)
        what = 'damaged schema' + (' (json)' if mode else '')
        check(f'{what}: storage error', p.returncode == 3 and b'storage' in out, repr(out))
        check(f'{what}: no raw control byte', not raw_controls(out), repr(out))
        want = b'\\u001b]0;x\\u0007' if mode else b'\\x1b]0;x\\x07'
        check(f'{what}: the name shown escaped', want in out, repr(out))


def main():
    test_cached_state()
    test_schema_damaged_while_open()
    osc_text = 'X\\x1b]0;x\\x07Y'
    run_case('control-bytes-in-a-name', [
        ('update streams set name = ? where name = ?', (OSC, 'XX2')),
        ('update balances set account = ? where account = ?', (OSC, 'XX2')),
    ], {
        'balances': ['the kept balance sheet has the account id', osc_text],
        'refresh': [osc_text],
        'rebuild': ['position 3', osc_text],
        'history XX2': UNKNOWN,
    })
    run_case('c1-control-in-a-name', [
        ('update streams set name = ? where name = ?', (CSI_C1, 'XX2')),
    ], {
        'rebuild': ['position 3', 'X\\xc2\\x9b2JY'],
        'history XX2': UNKNOWN,
    })
    run_case('negative-running-balance', [
        ('update event_log set amount = 5000 where position = 2', ()),
    ], {
        'history XX1': ['account XX1 version 2 (position 2)', 'below 0'],
        # a write decides on the account's kept state (its row), not a
        # replay: damage inside old events is for the readers to find
        'rebuild': ['account XX1 version 2 (position 2)', 'below 0'],
    })
    run_case('running-balance-past-int64', [
        ('update event_log set amount = 9223372036854775807 where position = 3', ()),
    ], {
        'history XX2': ['account XX2 version 2 (position 5)',
                        'passes 9223372036854775807'],
        'rebuild': ['account XX2 version 2 (position 5)', 'passes 9223372036854775807'],
    })
    run_case('unknown-type', [
        ('update event_log set type = 7 where position = 4', ()),
    ], {
        'history XX1': ['type'],
        'rebuild': ['type'],
    })
    run_case('version-gap', [
        ('update event_log set version = 7 where position = 4', ()),
    ], {
        'history XX1': ['account XX1 goes from version 2 to version 7 (position 4)'],
        # the row says 3, the events end at 7: writing on would collide
        'withdraw XX1 1': ['account XX1 is kept at version 3 but its events '
                           'end at version 7'],
    })
    run_case('amount-not-above-0', [
        ('update event_log set amount = -5 where position = 3', ()),
    ], {
        'history XX2': ['account XX2 version 1 (position 3) has amount -5'],
        'rebuild': ['account XX2 version 1 (position 3) has amount -5'],
    })
    run_case('negative-kept-balance', [
        ('update balances set balance = -5 where account = ?', ('XX1',)),
    ], {
        'balances': ['the kept balance sheet has XX1 at -5'],
        'refresh': ['the kept balance sheet has XX1 at -5'],
    })
    run_case('checkpoint-past-the-head', [
        ('update checkpoint set position = 99', ()),
    ], {
        'balances': ["checkpoint 99 is past the last event (position 5)"],
        'refresh': ["checkpoint 99 is past the last event (position 5)"],
    })
    long_id = 'A' * 65
    run_case('id-too-long', [
        ('update streams set name = ? where name = ?', (long_id, 'XX2')),
    ], {
        'rebuild': ['position 3', 'A' * 64 + '...'],
        'history XX2': UNKNOWN,
    })
    shutil.rmtree(TMP, ignore_errors=True)
    print(f'{passed} passed, {failed} failed')
    sys.exit(1 if failed else 0)


if __name__ == '__main__':
    main()
