#!/usr/bin/env python3
"""The man page renders without warnings and documents every command and
option the binary knows.  usage: man_test.py BIN PAGE  (exit 77: no man)"""
import os, re, shutil, subprocess, sys


def main():
    binary, page = sys.argv[1], sys.argv[2]
    if shutil.which('man') is None:
        print('man is not installed; skipping')
        return 77
    env = dict(os.environ, MANWIDTH='80', LC_ALL='C.UTF-8')
    p = subprocess.run(['man', '--warnings', '-l', page], capture_output=True, env=env)
    text = p.stdout.decode()
    problems = []
    if p.returncode != 0 or p.stderr.strip():
        problems.append(f'man exited {p.returncode}: {p.stderr.decode()}')
    for section in ('NAME', 'SYNOPSIS', 'DESCRIPTION', 'OPTIONS', 'COMMANDS',
                    'STORES', 'ENVIRONMENT', 'FILES', 'EXIT STATUS'):
        if not re.search(rf'^{section}$', text, re.M):
            problems.append(f'no {section} section')
    # every command in the table (help lists them) has an entry
    help_ = subprocess.run([binary], input=b'help\n', capture_output=True).stdout.decode()
    commands = [line.split()[0] for line in help_.splitlines() if line.strip()]
    if len(commands) < 10:
        problems.append(f'help listed only {commands}')
    for c in commands:
        if not re.search(rf'^ {{7}}(\S+, )?{c}\b', text, re.M):
            problems.append(f'command {c} is not documented')
    # every long option in --help is documented
    usage = subprocess.run([binary, '--help'], capture_output=True).stdout.decode()
    for opt in sorted(set(re.findall(r'--[a-z]+', usage))):
        if opt not in text.replace('\u2010', '-'):
            problems.append(f'option {opt} is not documented')
    for var in ('SIMPLECQRS_STORE', 'SIMPLECQRS_HISTORY', 'NO_COLOR', 'SIMPLECQRS_STATS'):
        if var not in text:
            problems.append(f'{var} is not documented')
    if problems:
        print('\n'.join(problems))
        print('0 passed, 1 failed')
        return 1
    print(f'man page ok: {len(commands)} commands documented')
    print('1 passed, 0 failed')
    return 0


if __name__ == '__main__':
    sys.exit(main())
