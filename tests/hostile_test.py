#!/usr/bin/env python3
"""The hostile input catalogue: every rule of SPEC's Input section pushed to
its edge and past it. Each line gets its error code and changes nothing.

usage: hostile_test.py BIN [--store sqlite|postgresql]

Each case is one line put between a known ledger and a `status`; with --json
the line's result must carry the expected error code (or be ok, for the
edges that are still allowed), and `status` must show the store exactly as
before (or as after one more event, for the allowed ones). In text mode the
same lines must never put a raw control byte on the terminal's streams.
Last, a 1 GiB line is piped in and the shell's peak memory must stay small.
With --store sqlite each run is on a fresh SQLite file, and with --store
postgresql on a fresh database of the server libpq's variables name (pg_test
runs it so, on its own cluster); ids that look like SQL must be stored there
as they are.
"""
import json, os, shlex, subprocess, sys, tempfile

BIN = os.path.abspath(sys.argv[1])
STORE = sys.argv[3] if sys.argv[2:3] == ['--store'] else 'memory'
SQLITE = STORE == 'sqlite'
PG = STORE == 'postgresql'
ENV = {k: v for k, v in os.environ.items() if k not in ('SIMPLECQRS_STORE', 'NO_COLOR')}
WRAPPER = shlex.split(os.environ.get('SIMPLECQRS_WRAPPER', ''))	# valgrind …
TMP = tempfile.mkdtemp(prefix='simplecqrs-hostile-')
passed = failed = 0
runs = 0

PREFIX = b'deposit Base 100\nrefresh\n'
BASE_HEAD = 1

X = b'x'
CASES = [
    # (name, line without its newline, expected error or 'ok', new events)
    ('longest line kept', b'deposit A 1' + b' ' * (4096 - 11), 'ok', 1),
    ('one byte too long', b'deposit A 1' + b' ' * (4097 - 11), 'line_too_long', 0),
    ('far too long', b'deposit A 1 ' + X * 100000, 'line_too_long', 0),
    ('too long, then CR', b'deposit A 1' + b' ' * (4096 - 11) + b'\r', 'ok', 1),
    ('NUL first', b'\0deposit A 1', 'invalid_input', 0),
    ('NUL in an id', b'deposit A\0B 1', 'invalid_input', 0),
    ('NUL last', b'deposit A 1\0', 'invalid_input', 0),
    ('NUL in a comment', b'deposit A 1 # \0', 'invalid_input', 0),
    ('invalid UTF-8 in an id', b'deposit A\xff 1', 'invalid_account', 0),
    ('UTF-8 letter in an id', 'deposit Å 1'.encode(), 'invalid_account', 0),
    ('invalid UTF-8 as a command', b'\xc3\x28 A 1', 'unknown_command', 0),
    ('escape codes in an id', b'deposit A\x1b[31mB 1', 'invalid_account', 0),
    ('escape codes as a command', b'\x1b[2J\x1b[H', 'unknown_command', 0),
    ('bell and backspace', b'deposit A\x07\x08 1', 'invalid_account', 0),
    ('C1 control (CSI) in an id', b'deposit A\xc2\x9b31mB 1', 'invalid_account', 0),
    ('C1 control (NEL) as a command', b'\xc2\x85', 'unknown_command', 0),
    ('DEL in an id', b'deposit A\x7f 1', 'invalid_account', 0),
    ('CR in the middle', b'deposit A\r 1', 'invalid_account', 0),
    ('CR before the amount ends', b'deposit A 1\r2', 'invalid_amount', 0),
    ('id of 64', b'deposit ' + b'i' * 64 + b' 1', 'ok', 1),
    ('id of 65', b'deposit ' + b'i' * 65 + b' 1', 'invalid_account', 0),
    ('slash in an id', b'deposit a/b 1', 'invalid_account', 0),
    ('quote in an id', b"deposit a'b 1", 'invalid_account', 0),
    ('semicolon in an id', b'deposit a;b 1', 'invalid_account', 0),
    ('SQL-looking id, refused', b"deposit x');DROP 1", 'invalid_account', 0),
    ('SQL-looking id, allowed', b'deposit events--DROP.TABLE_events 1', 'ok', 1),
    ('amount 0', b'deposit A 0', 'invalid_amount', 0),
    ('amount -1', b'deposit A -1', 'invalid_amount', 0),
    ('amount +1', b'deposit A +1', 'invalid_amount', 0),
    ('amount 01', b'deposit A 01', 'invalid_amount', 0),
    ('amount 1.0', b'deposit A 1.0', 'invalid_amount', 0),
    ('amount 1e3', b'deposit A 1e3', 'invalid_amount', 0),
    ('amount 1_000', b'deposit A 1_000', 'invalid_amount', 0),
    ('amount 1,000', b'deposit A 1,000', 'invalid_amount', 0),
    ('amount 0x10', b'deposit A 0x10', 'invalid_amount', 0),
    ('amount in full-width digits', 'deposit A １'.encode(), 'invalid_amount', 0),
    ('amount 2^63 - 1', b'deposit A 9223372036854775807', 'ok', 1),
    ('amount 2^63', b'deposit A 9223372036854775808', 'invalid_amount', 0),
    ('amount of 30 digits', b'deposit A ' + b'9' * 30, 'invalid_amount', 0),
    ('amount of 5000 digits', b'deposit A ' + b'9' * 4000, 'invalid_amount', 0),
    ('overflow of a balance', b'deposit Base 9223372036854775800', 'overflow', 0),
    ('amount glued to a comment', b'deposit A 1#x', 'invalid_amount', 0),
    ('comment after a command', b'deposit A 1 # note', 'ok', 1),
    ('tabs between tokens', b'\tdeposit\tA\t\t1\t', 'ok', 1),
    ('keyword in capitals', b'DePoSiT A 1', 'ok', 1),
    ('unknown command', b'frobnicate', 'unknown_command', 0),
    ('a command, misspelled', b'deposits A 1', 'unknown_command', 0),
    ('extra argument', b'deposit A 1 2', 'usage', 0),
    ('missing argument', b'deposit A', 'usage', 0),
    ('argument to refresh', b'refresh now', 'usage', 0),
    ('argument to balances', b'balances A', 'usage', 0),
    ('bad id before bad amount', b'deposit a/b 0', 'invalid_account', 0),
    ('bad amount before same account', b'transfer A A 0', 'invalid_amount', 0),
    ('same account', b'transfer Base Base 1', 'same_account', 0),
    ('withdraw from nobody', b'withdraw Nobody 1', 'unknown_account', 0),
    ('withdraw too much', b'withdraw Base 101', 'insufficient_funds', 0),
]


def check(name, cond, detail=''):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print(f'FAIL {name}' + (f': {detail}' if detail else ''), flush=True)


def run(data, *args):
    global runs
    runs += 1
    return subprocess.run(WRAPPER + [BIN, *fresh_store(runs), *args], input=data,
                          capture_output=True, env=ENV, timeout=600)


def fresh_store(n):
    """--store options for an empty ledger of its own."""
    if SQLITE:
        return ['--store', 'sqlite:' + os.path.join(TMP, f'ledger-{n}.db')]
    if PG:
        name = f'hostile_{os.getpid()}_{n}'
        subprocess.run(['psql', '-X', '-q', '-c', f'CREATE DATABASE {name}'],
                       env=ENV, check=True, capture_output=True)
        return ['--store', 'postgresql:///' + name]
    return []


def stored_streams(n):
    """The streams of run n's ledger, in position order."""
    if SQLITE:
        import sqlite3
        db = sqlite3.connect(os.path.join(TMP, f'ledger-{n}.db'))
        rows = [r[0] for r in db.execute('select stream from events order by position')]
        db.close()
        return rows
    out = subprocess.run(['psql', '-X', '-At', '-d', f'hostile_{os.getpid()}_{n}', '-c',
                          'select stream from events order by position'],
                         env=ENV, check=True, capture_output=True, text=True).stdout
    return out.splitlines()


def catalogue():
    for name, line, want, new in CASES:
        p = run(PREFIX + line + b'\nstatus\nhistory Base\n', '--json')
        try:
            # split on LF only: str.splitlines() would also split at U+0085
            out = [json.loads(l) for l in p.stdout.decode('utf-8').split('\n') if l]
        except ValueError as e:
            check(name, False, f'output is not JSON lines: {e}')
            continue
        check(f'{name}: three results and the status', len(out) == 5,
              f'{len(out)} lines: {p.stdout[-300:]!r}')
        if len(out) != 5:
            continue
        got = out[2]
        if want == 'ok':
            check(f'{name}: accepted', got.get('ok') is True, got)
        else:
            check(f'{name}: {want}', got.get('error') == want, got)
            check(f'{name}: exit 1', p.returncode == 1, p.returncode)
        st = out[3]
        check(f'{name}: the store has {new} new event(s)',
              st['head'] == BASE_HEAD + new and st['checkpoint'] == BASE_HEAD, st)
        check(f'{name}: Base untouched',
              [e['amount'] for e in out[4]['events']] == [100], out[4])
        if name == 'SQL-looking id, allowed' and (SQLITE or PG):
            rows = stored_streams(runs)
            check(f'{name}: stored as it is', rows[-1:] == ['events--DROP.TABLE_events'], rows)
        # the same line in text mode: nothing raw reaches a terminal
        t = run(PREFIX + line + b'\n')
        text = t.stdout + t.stderr
        raw = [b for b in set(text) if (b < 0x20 and b not in (9, 10)) or b == 0x7f]
        c1 = [text[i + 1] for i in range(len(text) - 1)
              if text[i] == 0xc2 and 0x80 <= text[i + 1] < 0xa0]
        check(f'{name}: no control byte in text output', not raw and not c1,
              f'bytes {sorted(raw)}, C1 {c1} in {t.stderr[-200:]!r}')


def no_final_newline():
    p = run(PREFIX + b'deposit A 7', '--json')
    out = [json.loads(l) for l in p.stdout.splitlines()]
    check('last line without its newline runs', p.returncode == 0 and
          out[-1].get('ok') and out[-1].get('amount') == 7, out[-1:])
    p = run(PREFIX + b'deposit A 1' + b' ' * 5000, '--json')
    out = [json.loads(l) for l in p.stdout.splitlines()]
    check('an overlong last line without its newline fails',
          out[-1].get('error') == 'line_too_long', out[-1:])


# Under valgrind a 1 GiB line takes minutes; 64 MiB goes through the same
# 64 block reads' worth of code, and the full size runs in the other builds.
MIB = 64 if WRAPPER else 1024


def gigabyte_line():
    """1 GiB on one line, then a command: line_too_long, the command runs,
    and memory stays within a few MiB of an empty run."""
    def peak(feed):
        global runs
        runs += 1
        p = subprocess.Popen(WRAPPER + [BIN, '--json', *fresh_store(runs)],
                             stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
        chunk = b'x' * (1 << 20)
        if feed:
            p.stdin.write(b'deposit A ')
            for _ in range(MIB):
                p.stdin.write(chunk)
        p.stdin.write(b'\ndeposit A 5\n')
        p.stdin.close()
        out = p.stdout.read()
        p.stderr.read()
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        return out, usage.ru_maxrss, p.returncode
    empty_out, empty_kib, _ = peak(False)
    out, kib, status = peak(True)
    lines = [json.loads(l) for l in out.splitlines()]
    size = f'{MIB} MiB' if MIB < 1024 else '1 GiB'
    check(f'{size} line: line_too_long, then the next line runs',
          len(lines) == 2 and lines[0].get('error') == 'line_too_long' and
          lines[1].get('ok') is True, lines)
    check(f'{size} line: exit 1', status == 1, status)
    check(f'{size} line: memory stays within 4 MiB of an empty run',
          kib - empty_kib <= 4096, f'{kib} KiB against {empty_kib} KiB')
    print(f'{size} line: peak {kib / 1024:.1f} MiB (an empty run: {empty_kib / 1024:.1f} MiB)',
          flush=True)


def raw_controls(text):
    """Control bytes (C0, DEL, C1) that would reach a terminal raw."""
    raw = sorted({b for b in text if (b < 0x20 and b not in (9, 10)) or b == 0x7f})
    c1 = [text[i + 1] for i in range(len(text) - 1)
          if text[i] == 0xc2 and 0x80 <= text[i + 1] < 0xa0]
    return raw + c1


def hostile_names():
    """Script names and store URIs holding escape codes: every message that
    shows them (FILE:LINE errors, cannot open, cannot open store) escapes
    them; JSON carries the name as a JSON string."""
    evil = b'evil\x1b]0;pwned\x07\x1b[2J\xc2\x9b31m.cqrs'
    path = os.path.join(TMP.encode(), evil)
    with open(path, 'wb') as f:
        f.write(b'frobnicate\n')
    other = os.path.join(TMP.encode(), b'other.cqrs')
    with open(other, 'wb') as f:
        f.write(b'deposit A 1\n')
    p = run(b'', path, other)
    check('a hostile script name: no control byte in its FILE:LINE error',
          not raw_controls(p.stderr), repr(p.stderr))
    check('a hostile script name: shown escaped',
          b'evil\\x1b]0;pwned\\x07\\x1b[2J\\xc2\\x9b31m.cqrs:1: unknown command' in p.stderr,
          repr(p.stderr))
    p = run(b'', path, other, '--json')
    try:
        err = json.loads(p.stdout.split(b'\n')[0])
    except ValueError as e:
        err = {'not JSON': str(e)}
    check('a hostile script name: JSON "file" before "line"',
          list(err)[:4] == ['ok', 'cmd', 'file', 'line'] and err.get('file') == path.decode(), err)
    for args in ([path + b'.missing'], [b'--store', b'sqlite:' + path + b'.d/x.db'],
                 [b'--store', b'x' + evil]):
        p = subprocess.run(WRAPPER + [BIN] + args, input=b'', capture_output=True,
                           env=ENV, timeout=600)
        check(f'{args[-1][-20:]!r}: refused, exit 2', p.returncode == 2, p.returncode)
        check(f'{args[-1][-20:]!r}: no control byte in the message',
              not raw_controls(p.stderr) and b'\\x1b]0;pwned' in p.stderr, repr(p.stderr))


def main():
    catalogue()
    no_final_newline()
    hostile_names()
    gigabyte_line()
    print(f'hostile ({STORE}, {len(CASES)} lines): {passed} passed, {failed} failed')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
