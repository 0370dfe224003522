#!/usr/bin/env python3
"""CLI tests: pipe a script to the real binary, compare what it prints.

usage: cli_test.py BIN CASE [--update] [--store sqlite]
       cli_test.py --listed DIR CASE...   (every DIR/*.cqrs is among CASE...)

CASE is a path without extension inside tests/cli/. Files beside it:
  CASE.cqrs    fed on stdin (required)
  CASE.args    command-line arguments, shell-quoted, one line (optional);
               they run with tests/cli/ as the working directory
  CASE.env     KEY=VALUE lines added to the environment (optional)
  CASE.stdout  expected stdout; timestamps are masked as <time>
  CASE.stderr  expected stderr
  CASE.status  expected exit status
With --update the expected files are rewritten from what the binary printed
(review the diff before committing). SIMPLECQRS_WRAPPER, if set, is a
command (e.g. valgrind …) the binary runs under.

With --store sqlite the same case runs on a fresh SQLite file in a temporary
folder (unless the case picks its own store), and must print the same,
except that `status` names the sqlite store: one set of expected files holds
both stores to the same contract.
"""
import json, os, re, shlex, subprocess, sys, tempfile

TIME = re.compile(rb'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z')


def read(path, default=None):
    try:
        with open(path, 'rb') as f:
            return f.read()
    except FileNotFoundError:
        return default


def listed(folder, names):
    on_disk = {f[:-5] for f in os.listdir(folder) if f.endswith('.cqrs')}
    missing = sorted(on_disk - set(names))
    if missing:
        print(f'cases not in tests/meson.build, so never run: {missing}')
        print('0 passed, 1 failed')
        return 1
    print(f'all {len(on_disk)} cases are listed')
    print('1 passed, 0 failed')
    return 0


def load(case, base_env):
    """(args, env, own_store) of a case: its arguments, base_env with its
    .env added, and whether it picks its own store."""
    args = shlex.split(read(case + '.args', b'').decode())
    env = dict(base_env)
    for line in read(case + '.env', b'').decode().splitlines():
        if line.strip():
            k, _, v = line.partition('=')
            env[k] = v
    own_store = 'SIMPLECQRS_STORE' in env or any(
        a in ('-s', '--store') or a.startswith(('--store=', '-s')) for a in args)
    return args, env, own_store


def ran_commands(p, args):
    """Whether a run got as far as opening its store and running commands."""
    return p.returncode in (0, 1) and not any(
        a in ('-h', '--help', '-V', '--version') for a in args)


def observed(p):
    return {'stdout': TIME.sub(b'<time>', p.stdout), 'stderr': p.stderr,
            'status': b'%d\n' % p.returncode}


def compare(case, args, p, store=None):
    """How run p of case differs from the expected files, as a list of
    messages. store, if given, is the kind `status` names instead of
    memory: one set of expected files holds every store to the contract."""
    failures = []
    for ext, data in observed(p).items():
        want = read(f'{case}.{ext}', b'' if ext != 'status' else b'0\n')
        if store:	# where the ledger is differs per run: not compared
            data = re.sub(rb'^location +.*\n', b'', data, flags=re.M)
            data = re.sub(rb',"location":"(?:[^"\\]|\\.)*"', b'', data)
            want = re.sub(rb'^store( +)memory$', rb'store\1' + store.encode(), want,
                          flags=re.M)
            want = want.replace(b'"store":"memory"', b'"store":"%s"' % store.encode())
        if data != want:
            failures.append(f'--- {ext} expected:\n{want.decode(errors="replace")}'
                            f'--- {ext} got:\n{data.decode(errors="replace")}')
    if '--json' in args:
        for i, line in enumerate(p.stdout.splitlines(), 1):
            try:
                json.loads(line)
            except ValueError as e:
                failures.append(f'stdout line {i} is not JSON ({e}): {line[:200]!r}')
    if b'\x1b' in p.stdout + p.stderr:
        failures.append('an escape code reached piped output')
    return failures


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    if sys.argv[1] == '--listed':
        return listed(sys.argv[2], sys.argv[3:])
    binary, case = os.path.abspath(sys.argv[1]), sys.argv[2]
    update = '--update' in sys.argv[3:]
    sqlite = sys.argv[3:5] == ['--store', 'sqlite'] or sys.argv[4:6] == ['--store', 'sqlite']
    base = {k: v for k, v in os.environ.items() if k not in ('SIMPLECQRS_STORE', 'NO_COLOR')}
    args, env, own_store = load(case, base)
    wrapper = shlex.split(os.environ.get('SIMPLECQRS_WRAPPER', ''))
    with tempfile.TemporaryDirectory() as tmp:
        store = [] if not sqlite or own_store else [
            '--store', 'sqlite:' + os.path.join(tmp, 'ledger.db')]
        p = subprocess.run(wrapper + [binary] + store + args,
                           input=read(case + '.cqrs'), capture_output=True,
                           cwd=os.path.dirname(case) or '.', env=env, timeout=600)
        if store and ran_commands(p, args) and \
                not os.path.exists(os.path.join(tmp, 'ledger.db')):
            print(f'FAIL {os.path.basename(case)}: the SQLite file was not made')
            print('0 passed, 1 failed')
            return 1
    if update:
        for ext, data in observed(p).items():
            with open(f'{case}.{ext}', 'wb') as f:
                f.write(data)
        print(f'updated {case}')
        return 0
    failures = compare(case, args, p, 'sqlite' if store else None)
    name = os.path.basename(case)
    if failures:
        print(f'FAIL {name}\n' + '\n'.join(failures))
        print('0 passed, 1 failed')
        return 1
    print(f'ok {name}')
    print('1 passed, 0 failed')
    return 0


if __name__ == '__main__':
    sys.exit(main())
