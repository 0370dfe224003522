#!/usr/bin/env python3
"""scripts/run from another folder: relative paths mean the caller's folder.

usage: run_script_test.py BIN SOURCE_ROOT

`scripts/run --store sqlite:here.db a.cqrs`, started in a folder of the
caller's, must run that folder's a.cqrs and make here.db there, not in the
checkout. First on a copy of scripts/run in a scratch checkout, whose
deps.sh installs nothing and whose `meson` is a stand-in that links BIN in
as the build (quick, no packages, nothing written to the real checkout).
Then, when the real checkout has a build/ already and meson and ninja are
on PATH and every package deps.sh wants is installed (so that it installs
nothing in the middle of a test), the real scripts/run the same way. Exit 77 (skipped) if bash is missing.
"""
import os, shutil, subprocess, sys, tempfile

BIN = os.path.abspath(sys.argv[1])
SRC = os.path.abspath(sys.argv[2])
FAKE_MESON = r'''#!/bin/sh
# a stand-in for meson: "setup DIR" and "compile -C DIR", relative to $PWD
echo "$PWD|$*" >> "$MESON_LOG"
case "$1" in
setup) mkdir -p "$2" && : > "$2/build.ninja" ;;
compile) ln -sf "$REAL_BIN" "$3/simplecqrs" ;;
*) exit 1 ;;
esac
'''
failed = 0


def check(name, cond, detail=''):
    global failed
    if not cond:
        failed += 1
    print(('ok ' if cond else 'FAIL ') + name + ('' if cond else f': {detail}'), flush=True)


def caller_runs(run, caller, env, what):
    """Runs `run --store sqlite:here.db a.cqrs` from caller, relative paths."""
    with open(os.path.join(caller, 'a.cqrs'), 'w') as f:
        f.write('deposit FromHere 7\nrefresh\nbalance FromHere\n')
    p = subprocess.run([run, '--store', 'sqlite:here.db', 'a.cqrs'], cwd=caller,
                       env=env, capture_output=True, timeout=600, stdin=subprocess.DEVNULL)
    check(f'{what}: exit 0', p.returncode == 0,
          f'{p.returncode}: {p.stderr.decode(errors="replace")[-800:]}')
    check(f"{what}: ran the caller's a.cqrs", b'FromHere: 7' in p.stdout, p.stdout)
    check(f"{what}: the ledger is in the caller's folder",
          os.path.exists(os.path.join(caller, 'here.db')), os.listdir(caller))
    return p


def scratch():
    with tempfile.TemporaryDirectory(prefix='simplecqrs-run-') as tmp:
        top = os.path.join(tmp, 'check out')      # a space, for the quoting
        os.makedirs(os.path.join(top, 'scripts'))
        shutil.copy(os.path.join(SRC, 'scripts', 'run'), os.path.join(top, 'scripts', 'run'))
        with open(os.path.join(top, 'scripts', 'deps.sh'), 'w') as f:
            f.write('need_packages() { :; }\nBUILD_PACKAGES=()\nSTORE_PACKAGES=()\n')
        bindir = os.path.join(tmp, 'bin')
        os.mkdir(bindir)
        with open(os.path.join(bindir, 'meson'), 'w') as f:
            f.write(FAKE_MESON)
        os.chmod(os.path.join(bindir, 'meson'), 0o755)
        caller = os.path.join(tmp, 'caller')
        os.mkdir(caller)
        log = os.path.join(tmp, 'meson.log')
        env = {k: v for k, v in os.environ.items() if k not in ('SIMPLECQRS_STORE',)}
        env.update(PATH=bindir + os.pathsep + env.get('PATH', ''), MESON_LOG=log,
                   REAL_BIN=BIN, CDPATH=tmp)     # CDPATH must not lead cd astray
        run = os.path.relpath(os.path.join(top, 'scripts', 'run'), caller)
        caller_runs(run, caller, env, 'scratch checkout')
        with open(log) as f:
            calls = [l.rstrip('\n').split('|') for l in f]
        check('scratch checkout: meson ran in the checkout',
              calls and all(d == top for d, _ in calls), calls)
        check('scratch checkout: no ledger in the checkout',
              not os.path.exists(os.path.join(top, 'here.db')), os.listdir(top))


def missing_packages():
    """What deps.sh would install (as root it would, in the middle of a
    test): then the real scripts/run is not tried."""
    p = subprocess.run(['bash', '-c', '. "$1"; for p in "${BUILD_PACKAGES[@]}" '
                        '"${STORE_PACKAGES[@]}"; do dpkg-query -W -f=\'${Status}\' "$p" '
                        '2>/dev/null | grep -q "ok installed" || echo "$p"; done', '_',
                        os.path.join(SRC, 'scripts', 'deps.sh')],
                       capture_output=True, text=True, timeout=120)
    return p.stdout.split() if p.returncode == 0 else ['(deps.sh failed)']


def real():
    why = None
    if not shutil.which('meson') or not shutil.which('ninja'):
        why = 'meson or ninja is missing'
    elif not os.path.exists(os.path.join(SRC, 'build', 'build.ninja')):
        why = 'the checkout has no build/ yet'
    elif missing_packages():
        why = f'packages deps.sh would install: {missing_packages()}'
    if why:
        print(f'skip the real scripts/run: {why}', flush=True)
        return
    with tempfile.TemporaryDirectory(prefix='simplecqrs-run-') as caller:
        env = {k: v for k, v in os.environ.items() if k != 'SIMPLECQRS_STORE'}
        before = os.path.exists(os.path.join(SRC, 'here.db'))
        caller_runs(os.path.join(SRC, 'scripts', 'run'), caller, env, 'real checkout')
        check('real checkout: no ledger in the checkout',
              before or not os.path.exists(os.path.join(SRC, 'here.db')))


def main():
    if not shutil.which('bash'):
        print('skip: no bash')
        return 77
    scratch()
    real()
    print(f'run_script: {"0 failed" if not failed else f"{failed} failed"}')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
