#!/usr/bin/env python3
"""Differential, model-based test of `simplecqrs --json` on the memory store.

usage: model_test.py BIN [--seed N] [--scripts K] [--commands M] [--long L]

A small reference model of SPEC.md (memory store, JSON mode, commands on stdin)
runs alongside a seeded random script generator.  Each script is fed on stdin to
`BIN --json` (SIMPLECQRS_STORE removed from the environment, so the memory
store is used; if SIMPLECQRS_WRAPPER is set, e.g. to a valgrind command line,
it is prefixed to the command) and every stdout line must equal the model's:

  * the same keys in the same order, the same values with the same JSON types;
  * except that an error's "message" only has to be a string and a history
    event's "time" only has to look like YYYY-MM-DDTHH:MM:SS.mmmZ;
  * one object per non-blank, non-comment line, nothing else on stdout;
  * exit status 1 when any command failed, else 0 (stderr is not checked).

Scripts cover deposit, withdraw, transfer (which may open TO), refresh,
balances, balance, history, status and rebuild, interleaved so the balance
sheet lags the store; amounts near balances and near INT64_MAX (exact-balance
withdrawals, overflow); and bad input: unknown commands, wrong argument counts,
invalid ids and amounts, same_account, unknown_account, insufficient_funds,
checked in the SPEC's order.  Lines vary keyword case, spaces/tabs, leading
blanks, `#` comments, blank lines, CRLF endings and a missing final newline.
help/quit/exit, over-long lines and NUL bytes are left to other tests.

Defaults: 40 scripts of 300 lines plus one script of 10,000 lines, all
derived from the seed.  Prints 'model: P passed, F failed'; exits 1 on failure.
"""
import argparse
import json
import os
import random
import re
import shlex
import string
import subprocess
import sys
import tempfile

INT64_MAX = 2**63 - 1
ID_CHARS = string.ascii_letters + string.digits + '_-.'
ID_RE = re.compile(r'[A-Za-z0-9_.-]{1,64}')
AMOUNT_RE = re.compile(r'[1-9][0-9]*')
TIME_RE = re.compile(r'[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z')
ARITY = {'deposit': 2, 'withdraw': 2, 'transfer': 3, 'refresh': 0, 'balances': 0,
         'balance': 1, 'history': 1, 'status': 0, 'rebuild': 0}
LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


class Free:
    """A placeholder in an expected object: any value that passes `ok`."""
    def __init__(self, name, ok):
        self.name, self.ok = name, ok


MESSAGE = Free('<any string>', lambda v: isinstance(v, str))
TIME = Free('<YYYY-MM-DDTHH:MM:SS.mmmZ>',
            lambda v: isinstance(v, str) and TIME_RE.fullmatch(v) is not None)



STORE_KIND = 'memory'  # what `status` names; --store sqlite changes it
LOCATION = None  # `status`'s location: the sqlite file's absolute path

def tokenize(raw):
    """Split one input line (without '\\n') into tokens, dropping comments."""
    if raw.endswith('\r'):
        raw = raw[:-1]
    toks = []
    for t in re.split(r'[ \t]+', raw):
        if t.startswith('#'):
            break
        if t:
            toks.append(t)
    return toks


class Model:
    """The memory store, its streams and the balance sheet projection."""

    def __init__(self):
        self.log = []        # (account, amount signed) by position - 1
        self.streams = {}    # account -> list of history events
        self.sheet = {}      # balance sheet: account -> balance
        self.checkpoint = 0
        self.failed = False

    def balance(self, acc):
        s = self.streams.get(acc)
        return s[-1]['balance'] if s else None

    def _append(self, acc, kind, amount):
        s = self.streams.setdefault(acc, [])
        bal = (s[-1]['balance'] if s else 0) + (amount if kind == 'AccountCredited' else -amount)
        self.log.append((acc, amount if kind == 'AccountCredited' else -amount))
        s.append({'version': len(s) + 1, 'position': len(self.log), 'type': kind,
                  'amount': amount, 'balance': bal, 'time': TIME})
        return s[-1]

    def _apply(self, upto):
        for acc, delta in self.log[self.checkpoint:upto]:
            self.sheet[acc] = self.sheet.get(acc, 0) + delta
        applied, self.checkpoint = upto - self.checkpoint, upto
        return applied

    def feed(self, lineno, raw):
        """Run one line; return the expected JSON object, or None."""
        toks = tokenize(raw)
        if not toks:
            return None
        out = self._run(lineno, toks[0].translate(LOWER), toks[1:])
        if not out['ok']:
            self.failed = True
        return out

    def _run(self, n, cmd, args):
        def err(code):
            return {'ok': False, 'cmd': cmd, 'line': n, 'error': code, 'message': MESSAGE}
        if cmd not in ARITY:
            return err('unknown_command')
        if len(args) != ARITY[cmd]:
            return err('usage')
        accounts = args[:2] if cmd == 'transfer' else args[:1]
        if any(not ID_RE.fullmatch(a) for a in accounts):
            return err('invalid_account')
        amount = None
        if cmd in ('deposit', 'withdraw', 'transfer'):
            if not AMOUNT_RE.fullmatch(args[-1]) or int(args[-1]) > INT64_MAX:
                return err('invalid_amount')
            amount = int(args[-1])
        head = len(self.log)
        ok = {'ok': True, 'cmd': cmd}
        if cmd == 'deposit':
            acc = args[0]
            if (self.balance(acc) or 0) + amount > INT64_MAX:
                return err('overflow')
            e = self._append(acc, 'AccountCredited', amount)
            return {**ok, 'account': acc, 'amount': amount, 'version': e['version'],
                    'position': e['position']}
        if cmd == 'withdraw':
            acc = args[0]
            bal = self.balance(acc)
            if bal is None:
                return err('unknown_account')
            if bal < amount:
                return err('insufficient_funds')
            e = self._append(acc, 'AccountDebited', amount)
            return {**ok, 'account': acc, 'amount': amount, 'version': e['version'],
                    'position': e['position']}
        if cmd == 'transfer':
            frm, to = accounts
            if frm == to:
                return err('same_account')
            bal = self.balance(frm)
            if bal is None:
                return err('unknown_account')
            if bal < amount:
                return err('insufficient_funds')
            if (self.balance(to) or 0) + amount > INT64_MAX:
                return err('overflow')
            self._append(frm, 'AccountDebited', amount)
            e = self._append(to, 'AccountCredited', amount)
            return {**ok, 'from': frm, 'to': to, 'amount': amount, 'position': e['position']}
        if cmd == 'refresh':
            return {**ok, 'applied': self._apply(head), 'position': self.checkpoint}
        if cmd == 'rebuild':
            self.sheet, self.checkpoint = {}, 0
            return {**ok, 'applied': self._apply(head), 'position': self.checkpoint}
        if cmd == 'balances':
            rows = [{'account': a, 'balance': self.sheet[a]}
                    for a in sorted(self.sheet, key=lambda a: a.encode())]
            return {**ok, 'position': self.checkpoint, 'behind': head - self.checkpoint,
                    'balances': rows}
        if cmd == 'balance':
            if args[0] not in self.sheet:
                return err('unknown_account')
            return {**ok, 'account': args[0], 'balance': self.sheet[args[0]],
                    'position': self.checkpoint}
        if cmd == 'history':
            if args[0] not in self.streams:
                return err('unknown_account')
            return {**ok, 'account': args[0], 'events': [dict(e) for e in self.streams[args[0]]]}
        assert cmd == 'status'
        where = {'location': LOCATION} if LOCATION else {}
        return {**ok, 'store': STORE_KIND, **where, 'head': head, 'streams': len(self.streams),
                'checkpoint': self.checkpoint, 'behind': head - self.checkpoint}


def run_model(data):
    """Expected outputs for a whole script: list of (lineno, raw line, object)."""
    model, out = Model(), []
    lines = data.split('\n')
    if lines[-1] == '':
        lines.pop()
    for n, raw in enumerate(lines, 1):
        exp = model.feed(n, raw)
        if exp is not None:
            out.append((n, raw, exp))
    return out, model.failed


# ---------------------------------------------------------------- generation

LONG_ID = ID_CHARS[:64]
VALID_IDS = ['A', 'B', 'C', 'a', 'acc_1', 'x.y-z', 'Z9', '_', '0', '-.', 'deposit', LONG_ID]
INVALID_IDS = ['a/b', LONG_ID + 'x', 'a"b', 'back\\slash', 'a:b', '(A)', 'x*', 'A#b']
BAD_AMOUNTS = ['0', '00', '007', '-1', '+1', '-0', '1.00', '1.', '.5', '1e3', '1,000', '1_000',
               '0x10', 'abc', '12a', '5#x', '9223372036854775808', '18446744073709551616',
               '99999999999999999999999999']
UNKNOWN = ['frobnicate', 'FROBNICATE', 'Deposits', 'balanc', 'xfer', 'deposit2', 'refresh!',
           'say"hi"', 'back\\slash', 'ctl\x01x', 'esc\x1b', 'BALANCE-OF', 'withdraw;', '1']


class Generator:
    def __init__(self, rng, nlines):
        self.rng, self.nlines, self.model = rng, nlines, Model()
        self.pool = rng.sample(VALID_IDS, rng.randint(2, 6))
        ops = {'deposit': 22, 'withdraw': 15, 'transfer': 18, 'refresh': 7, 'balances': 5,
               'balance': 8, 'history': 3, 'status': 3, 'rebuild': 2, 'noise': 12}
        self.ops = list(ops)
        self.weights = [w * rng.uniform(0.3, 2.0) for w in ops.values()]

    # -- pieces
    def account(self, opened=0.7):
        r = self.rng
        if r.random() < 0.03:
            return r.choice(INVALID_IDS)
        if r.random() < 0.02 and len(self.pool) < 14:
            self.pool.append(''.join(r.choice(ID_CHARS) for _ in range(r.randint(1, 10))))
        known = [a for a in self.pool if a in self.model.streams]
        if known and r.random() < opened:
            return r.choice(known)
        return r.choice(self.pool)

    def amount(self, have=None, credited=None):
        """An amount string: near `have` (debit side), near the room left on
        `credited`, near INT64_MAX, small, or invalid."""
        r = self.rng
        room = INT64_MAX - (self.model.balance(credited) or 0) if credited else None
        cands = [(30, r.randint(1, 100)), (15, r.randint(1, 10**9)), (2, INT64_MAX),
                 (3, r.randint(2**62, INT64_MAX)), (5, r.choice(BAD_AMOUNTS)),
                 (1, str(INT64_MAX + r.randint(1, 10**6)))]
        if have:
            cands += [(14, have), (5, have + 1), (4, max(have - 1, 1)), (3, r.randint(1, have))]
        if room is not None and room < INT64_MAX:
            cands += [(5, room), (4, room + 1)]
        v = r.choices([c for _, c in cands], [w for w, _ in cands])[0]
        return v if isinstance(v, str) else str(v)

    def keyword(self, kw):
        r = self.rng.random()
        if r < 0.75:
            return kw
        if r < 0.85:
            return kw.upper()
        if r < 0.93:
            return kw.capitalize()
        return ''.join(c.upper() if self.rng.random() < 0.5 else c for c in kw)

    def render(self, toks):
        r = self.rng
        line = r.choices(['', ' ', '\t', '  \t'], [85, 6, 5, 4])[0] + toks[0]
        for t in toks[1:]:
            line += r.choices([' ', '\t', '  ', ' \t '], [80, 8, 7, 5])[0] + t
        return line + r.choices(['', ' ', '\t', ' # note', '\t#', ' #x y z'], [80, 5, 3, 6, 3, 3])[0]

    # -- lines
    def command(self, op):
        r, m = self.rng, self.model
        if op == 'deposit':
            acc = self.account(0.6)
            return [self.keyword(op), acc, self.amount(credited=acc)]
        if op == 'withdraw':
            acc = self.account(0.9)
            return [self.keyword(op), acc, self.amount(have=m.balance(acc))]
        if op == 'transfer':
            frm = self.account(0.9)
            to = frm if r.random() < 0.05 else self.account(0.5)
            if to == frm and r.random() < 0.7:
                to = self.account(0.3)
            return [self.keyword(op), frm, to, self.amount(have=m.balance(frm), credited=to)]
        if op in ('balance', 'history'):
            return [self.keyword(op), self.account(0.8)]
        return [self.keyword(op)]

    def noise(self):
        r = self.rng
        kind = r.randrange(7)
        if kind == 0:
            return r.choice(['', '', ' ', '\t', ' \t  '])
        if kind == 1:
            return r.choice(['# a comment', '#', '  # deposit A 1', '\t#x', '#deposit A 5'])
        if kind == 2:
            return self.render([r.choice(UNKNOWN)] + [self.account() for _ in range(r.randrange(3))])
        if kind in (3, 4):     # wrong argument count, args possibly invalid too
            kw = r.choice(list(ARITY))
            n = r.choice([k for k in range(5) if k != ARITY[kw]][:4])
            pool = [self.account(), r.choice(INVALID_IDS), r.choice(BAD_AMOUNTS), self.amount()]
            return self.render([self.keyword(kw)] + [r.choice(pool) for _ in range(n)])
        if kind == 5:          # '#' glued inside a token is not a comment
            acc = self.account()
            return r.choice([f'deposit {acc} 5#x', f'deposit {acc}#1 5', f'withdraw {acc} #5',
                             f'transfer {acc} #B 5', f'balance #{acc}', f'deposit {acc} 1#'])
        # several problems at once: the first in SPEC order must win
        ids = [self.account(), r.choice(INVALID_IDS)]
        a, b = r.choice(ids), r.choice(ids)
        return self.render([self.keyword('transfer'), a, r.choice([a, b]),
                            r.choice([r.choice(BAD_AMOUNTS), self.amount()])])

    def script(self):
        r = self.rng
        ending = r.choices(['lf', 'crlf', 'mixed'], [60, 20, 20])[0]
        lines = []
        for n in range(1, self.nlines + 1):
            op = r.choices(self.ops, self.weights)[0]
            line = self.noise() if op == 'noise' else self.render(self.command(op))
            if ending == 'crlf' or (ending == 'mixed' and r.random() < 0.5):
                line += '\r'
            lines.append(line)
            self.model.feed(n, line)   # keep the model current to bias choices
        if r.random() < 0.25 and not lines[-1].endswith('\r'):
            return '\n'.join(lines)
        return '\n'.join(lines) + '\n'


# ---------------------------------------------------------------- checking

def no_dups(pairs):
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError(f'duplicate key in {keys}')
    return dict(pairs)


def diff(exp, act, path='$'):
    """None when `act` matches `exp`, else a description of the first difference."""
    if isinstance(exp, Free):
        return None if exp.ok(act) else f'{path}: expected {exp.name}, got {act!r}'
    if isinstance(exp, dict):
        if not isinstance(act, dict):
            return f'{path}: expected an object, got {act!r}'
        if list(act) != list(exp):
            return f'{path}: keys {list(act)}, expected {list(exp)}'
        for k in exp:
            d = diff(exp[k], act[k], f'{path}.{k}')
            if d:
                return d
        return None
    if isinstance(exp, list):
        if not isinstance(act, list) or len(act) != len(exp):
            got = len(act) if isinstance(act, list) else act
            return f'{path}: expected a list of {len(exp)}, got {got!r}'
        for i, (e, a) in enumerate(zip(exp, act)):
            d = diff(e, a, f'{path}[{i}]')
            if d:
                return d
        return None
    if type(exp) is not type(act) or exp != act:
        return f'{path}: expected {exp!r}, got {act!r}'
    return None


def show(obj):
    return json.dumps(obj, separators=(',', ':'), default=lambda o: o.name)


def check(cmd, data, timeout):
    """Run one script; None on success, else a multi-line diagnostic."""
    expected, failed = run_model(data)
    env = {k: v for k, v in os.environ.items() if k != 'SIMPLECQRS_STORE'}
    try:
        p = subprocess.run(cmd, input=data.encode(), capture_output=True, env=env,
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        return f'timed out after {timeout}s'
    tail = '\n'.join(p.stderr.decode('utf-8', 'replace').splitlines()[-15:])
    try:
        text = p.stdout.decode('utf-8')
    except UnicodeDecodeError as e:
        return f'stdout is not UTF-8: {e}'
    out = text.split('\n')
    if out[-1] == '':
        out.pop()
    elif text:
        return 'stdout does not end with a newline'
    for i, (n, raw, exp) in enumerate(expected):
        where = f'output line {i + 1}, for script line {n}: {raw!r}\n'
        if i >= len(out):
            return (f'{where}  expected: {show(exp)}\n  actual:   <no more output> '
                    f'(exit status {p.returncode})\n{tail}')
        try:
            act = json.loads(out[i], object_pairs_hook=no_dups)
            d = diff(exp, act)
        except ValueError as e:
            d = f'not a JSON object line ({e})'
        if d:
            return f'{where}  expected: {show(exp)}\n  actual:   {out[i]}\n  {d}'
    if len(out) > len(expected):
        return f'{len(out)} output lines, expected {len(expected)}; extra: {out[len(expected)]!r}'
    want = 1 if failed else 0
    if p.returncode != want:
        return f'exit status {p.returncode}, expected {want}\n{tail}'
    return None


def main():
    ap = argparse.ArgumentParser(description='Model-based differential test of simplecqrs --json.')
    ap.add_argument('bin')
    ap.add_argument('--seed', type=int, default=20261127)
    ap.add_argument('--scripts', type=int, default=40, help='random scripts (default 40)')
    ap.add_argument('--commands', type=int, default=300, help='lines per script (default 300)')
    ap.add_argument('--long', type=int, default=10000,
                    help='lines in the one extra long script, 0 for none (default 10000)')
    ap.add_argument('--store', choices=['memory', 'sqlite'], default='memory',
                    help='sqlite: each script runs on a fresh SQLite file')
    opts = ap.parse_args()
    global STORE_KIND, LOCATION
    STORE_KIND = opts.store
    tmp = tempfile.TemporaryDirectory()
    cmd = shlex.split(os.environ.get('SIMPLECQRS_WRAPPER', ''))
    cmd += [os.path.abspath(opts.bin), '--json']
    timeout = 3600 if os.environ.get('SIMPLECQRS_WRAPPER') else 300
    plan = [opts.commands] * opts.scripts + ([opts.long] if opts.long > 0 else [])
    passed = failed = 0
    for i, nlines in enumerate(plan):
        data = Generator(random.Random(f'{opts.seed}:{i}:{nlines}'), nlines).script()
        run = cmd
        if opts.store == 'sqlite':
            run = cmd + ['--store', f'sqlite:{tmp.name}/ledger-{i}.db']
            LOCATION = os.path.join(os.path.realpath(tmp.name), f'ledger-{i}.db')
        why = check(run, data, timeout)
        if why is None:
            passed += 1
            continue
        failed += 1
        fd, path = tempfile.mkstemp(prefix='simplecqrs-model-', suffix='.cqrs')
        with os.fdopen(fd, 'w', newline='') as f:
            f.write(data)
        print(f'FAIL script {i} (--seed {opts.seed}, {nlines} lines), saved to {path}\n'
              f'  rerun: {shlex.join(run)} < {path}\n  {why}', flush=True)
    print(f'model: {passed} passed, {failed} failed')
    sys.exit(1 if failed else 0)


if __name__ == '__main__':
    main()
