#!/usr/bin/env python3
"""Every example in the README runs as written.

usage: readme_test.py BIN README

The README's examples are fenced ```console blocks. A block whose first
command is `$ scripts/run` is the prompt session: it runs in a
pseudo-terminal, each `simplecqrs...> COMMAND` line is typed (`<TAB>` as a
Tab key) and what the shell prints up to the next prompt must be the lines
shown. Every other console block is a transcript: its `$ ` lines run one
after another in one bash, in a fresh empty folder, with `simplecqrs` on
the PATH (BIN), stderr merged into stdout, and what they print must be the
lines shown after each. Times (ISO 8601) are masked on both sides. A block
that needs a program this machine lacks (sqlite3), or a command BIN does
not have yet, is skipped with a note; none may be skipped silently.

Other fences hold what cannot run here (a server, sudo, a second terminal):
```sh blocks, never a `$ ` transcript, so an example is either run or
visibly not one.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import interactive_test as it  # noqa: E402  (the pty driver)

TIME = re.compile(r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z')
FENCE = re.compile(r'^```(\S*)\n(.*?)^```$', re.M | re.S)
PROMPT_LINE = re.compile(r'^(simplecqrs(?: \[\d+ behind\])?>) ?(.*)$')


def blocks(text):
    """(first line number, info string, lines) of each fenced block."""
    for m in FENCE.finditer(text):
        line = text.count('\n', 0, m.start()) + 2
        yield line, m.group(1), m.group(2).rstrip('\n').split('\n')


def mask(lines):
    return [TIME.sub('<time>', l).rstrip() for l in lines]


def diff(want, got):
    want, got = mask(want), mask(got)
    if want == got:
        return None
    out = []
    for i in range(max(len(want), len(got))):
        w = want[i] if i < len(want) else '<nothing>'
        g = got[i] if i < len(got) else '<nothing>'
        if w != g:
            out.append(f'  line {i + 1}: README {w!r}\n          binary {g!r}')
    return '\n'.join(out[:10])


def commands_of(binary):
    p = subprocess.run([binary], input=b'help\n', capture_output=True)
    return {l.split()[0] for l in p.stdout.decode().splitlines() if l.strip()}


def documented_commands(text):
    """The command names in the README's Commands table."""
    m = re.search(r'^## Commands\n(.*?)(?=^##)', text, re.M | re.S)
    return set(re.findall(r'^\| `([a-z]+)', m.group(1), re.M)) if m else set()


def needs(cmds, known, documented):
    """Why a transcript cannot run here, or None: a program this machine
    lacks, or a command the README documents that this build has not got
    (yet: it will run once the build has it)."""
    for c in cmds:
        if re.search(r'(^|[|;]\s*)sqlite3\b', c) and shutil.which('sqlite3') is None:
            return 'sqlite3 is not installed'
        for word in re.findall(r"(?:\\n|')([a-z]+)\b", c):
            if word in documented and word not in known:
                return f'this build has no {word} command'
    return None


def transcript(binary, lines):
    """Run a `$ ` transcript; return (commands, expected, observed)."""
    cmds, want = [], []
    for l in lines:
        if l.startswith('$ '):
            cmds.append(l[2:])
            want.append(l)
        else:
            want.append(l)
    with tempfile.TemporaryDirectory(prefix='scqrs-readme-') as d:
        bindir, work = os.path.join(d, 'bin'), os.path.join(d, 'work')
        os.makedirs(bindir)
        os.makedirs(work)
        link = os.path.join(bindir, 'simplecqrs')
        if it.WRAPPER:      # meson test --setup=valgrind: each run under valgrind
            with open(link, 'w') as f:
                f.write('#!/bin/sh\nexec %s %s "$@"\n' % (
                    ' '.join(map(shquote, it.WRAPPER)), shquote(os.path.abspath(binary))))
            os.chmod(link, 0o755)
        else:
            os.symlink(os.path.abspath(binary), link)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(('SIMPLECQRS_', 'PG', 'LC_'))
               and k not in ('NO_COLOR', 'LANG', 'LANGUAGE')}
        env.update(PATH=bindir + os.pathsep + env.get('PATH', '/usr/bin:/bin'),
                   HOME=d, LC_ALL='C.UTF-8')
        # each command is shown as typed, then what it printed
        # ($? survives the printf: `echo $?` shows the command's status)
        script = 'exec 2>&1\n_s=0\n' + ''.join(
            f'printf "%s\\n" {shquote("$ " + c)}\n(exit $_s)\n{c}\n_s=$?\n'
            for c in cmds)
        p = subprocess.run(['bash', '--norc', '--noprofile', '-c', script], cwd=work,
                           env=env, capture_output=True, timeout=60 * it.SLOW)
    return cmds, want, p.stdout.decode('utf-8', 'replace').rstrip('\n').split('\n')


def shquote(s):
    return "'" + s.replace("'", "'\\''") + "'"


TWO_SHELLS = re.compile(r'^\| shell A \| shell B \|\n\|[-|]+\|\n((?:\|.*\|\n)+)', re.M)
STEP = re.compile(r'^`([^`]+)` → `([^`]*)`$')


def two_shells(binary, text):
    """The README's table of two shells on one SQLite file: run each row's
    command, in order, as its own run on one file; (expected, observed)."""
    m = TWO_SHELLS.search(text)
    if not m:
        raise AssertionError('no "| shell A | shell B |" table')
    want, got = [], []
    with tempfile.TemporaryDirectory(prefix='scqrs-readme-') as d:
        for row in m.group(1).splitlines():
            cells = [c.strip() for c in row.strip('|').split('|')]
            step = [c for c in cells if c]
            s = STEP.match(step[0]) if len(step) == 1 else None
            if not s:
                raise AssertionError(f'a row that is not one `COMMAND` → `OUTPUT`: {row!r}')
            who = 'AB'[cells.index(step[0])]
            p = subprocess.run(it.WRAPPER + [binary, '--store', 'sqlite:' + os.path.join(d, 'two.db')],
                               input=s.group(1).encode() + b'\n', capture_output=True,
                               timeout=30)
            # piped, an error carries its line number; at a prompt it does not
            out = re.sub(r'^error: 1: ', 'error: ', (p.stdout + p.stderr).decode()).strip()
            want.append(f'{who}: {s.group(1)} → {s.group(2)}')
            got.append(f'{who}: {s.group(1)} → {out}')
    return want, got


def keys_for(command, typed):
    """The keys to press for a command the session shows: one of the
    README's `typed as` key sequences that could give it, else the command."""
    for k in typed:
        parts = k.split('<TAB>')
        if re.fullmatch(r'\S*\s*'.join(map(re.escape, parts)), command):
            return k.replace('<TAB>', '\t')
    return command


def session(binary, lines, typed_as):
    """Type the prompt session's commands into the real shell in a pty;
    return (expected, observed) as lists of lines, banner first."""
    want, got = [], []
    sb = it.Sandbox(binary)
    try:
        with sb.spawn(NO_COLOR='1') as s:
            # spawn consumed the banner and the first prompt
            head = s.text[:s.pos]
            prompt = head[head.rfind('\n') + 1:]
            got.append(head[:head.rfind('\n')].strip('\n'))
            want.append(lines[1])
            for i, line in enumerate(lines[2:], 2):
                m = PROMPT_LINE.match(line)
                if not m:
                    want.append(line)   # output of the command before
                    continue
                want.append(line)
                command = m.group(2)
                if command == '':       # the last, empty prompt: the shell waits at it
                    got.append(prompt)
                    if i != len(lines) - 1:
                        raise AssertionError('an empty prompt before the end of the session')
                    break
                start = s.pos
                s.send(keys_for(command, typed_as) + '\r')
                p = s.expect(it.PROMPT)
                shown = s.text[start:p.start()].split('\n')
                # the first line is the terminal's echo of what was typed
                got.append(prompt + shown[0])
                got.extend(shown[1:-1] if shown[-1] == '' else shown[1:])
                prompt = p.group(0)
            s.send(it.CTRL_D)
            s.wait_exit()
    finally:
        sb.cleanup()
    return want, got


# The project's documents are the user's contract: they may name nothing the
# user does not have (a spec, a folder beside the checkout, a team's files).
OUTSIDE = re.compile(r"\bSPEC\b|\.\./shared|\bshared (?:README|folder|bench)|team's",
                     re.I)
LINK = re.compile(r'\]\(([^)\s]+)\)')


def slug(heading):
    """GitHub's anchor for a Markdown heading."""
    s = re.sub(r'[^\w\- ]', '', heading.strip().lower())
    return s.replace(' ', '-')


def check_documents(readme):
    """Problems with the README, docs/*.md and the man page as documents:
    references outside the project, links to files or anchors that are not
    there."""
    root = os.path.dirname(os.path.abspath(readme))
    docs = [readme] + sorted(
        os.path.join(root, 'docs', f) for f in os.listdir(os.path.join(root, 'docs'))
        if f.endswith('.md')) if os.path.isdir(os.path.join(root, 'docs')) else [readme]
    man = os.path.join(root, 'src', 'simplecqrs.1')
    problems = []
    anchors = {}
    for d in docs:
        with open(d, encoding='utf-8') as f:
            anchors[os.path.abspath(d)] = {
                slug(h) for h in re.findall(r'^#+ (.*)$', f.read(), re.M)}
    for d in docs + ([man] if os.path.exists(man) else []):
        name = os.path.relpath(d, root)
        with open(d, encoding='utf-8') as f:
            text = f.read()
        for n, line in enumerate(text.split('\n'), 1):
            if OUTSIDE.search(line):
                problems.append(f'{name}:{n}: refers to something outside the project: '
                                f'{line.strip()!r}')
        if not d.endswith('.md'):
            continue
        for target in LINK.findall(text):
            if re.match(r'[a-z]+:', target):
                continue        # a web address
            path, _, anchor = target.partition('#')
            dest = os.path.abspath(os.path.join(os.path.dirname(d), path)) if path else \
                os.path.abspath(d)
            if not os.path.exists(dest):
                problems.append(f'{name}: link to {target}: no such file')
            elif anchor and dest in anchors and anchor not in anchors[dest]:
                problems.append(f'{name}: link to {target}: no such heading')
    if os.path.exists(man):
        problems += in_step(readme, man)
    return problems


def in_step(readme, man):
    """What the README's tables of commands, error codes, options and
    environment variables name that the man page leaves out."""
    with open(readme, encoding='utf-8') as f:
        text = f.read()
    with open(man, encoding='utf-8') as f:
        page = re.sub(r'\\f[BIRP]|\\%|\\&', '', f.read()).replace('\\-', '-')
    names = set()
    for section in ('Commands', 'Errors', 'Options', 'Environment'):
        m = re.search(rf'^##+ {section}\n(.*?)(?=^##)', text, re.M | re.S)
        if not m:
            names.add(f'(the README has no {section} section)')
            continue
        for row in re.findall(r'^\| (.*?) \|', m.group(1), re.M):
            for cell in re.findall(r'`([^`]+)`', row):
                word = re.match(r'(-[a-z]|--[a-z]+|[A-Za-z_]+)', cell)
                if word and word.group(1) not in ('command', 'code', 'option', 'variable'):
                    names.add(word.group(1))
    return [f'src/simplecqrs.1 does not mention {n}, which the README lists'
            for n in sorted(names)
            if not re.search(rf'(?<![\w-]){re.escape(n)}(?![\w-])', page)]


def main():
    binary, readme = os.path.abspath(sys.argv[1]), sys.argv[2]
    with open(readme, encoding='utf-8') as f:
        text = f.read()
    # the README says how some lines were typed (`wi<TAB>…`): type them so
    typed = re.findall(r'typed\s+as\s+`([^`]+)`', text)
    known = commands_of(binary)
    documented = documented_commands(text)
    passed = failed = skipped = 0
    sessions = 0
    for line, info, lines in blocks(text):
        has_dollar = any(l.startswith('$ ') for l in lines)
        if info != 'console':
            if has_dollar:
                print(f'README:{line}: a ```{info} block with `$ ` lines: make it '
                      f'```console (and runnable) or drop the `$ `')
                failed += 1
            continue
        if not lines or not lines[0].startswith('$ '):
            print(f'README:{line}: a console block must start with a `$ ` command')
            failed += 1
            continue
        try:
            if lines[0] == '$ scripts/run':
                sessions += 1
                want, got = session(binary, lines, typed)
                what = 'the prompt session'
            else:
                cmds = [l[2:] for l in lines if l.startswith('$ ')]
                why = needs(cmds, known, documented)
                if why:
                    print(f'README:{line}: skipped ({why})')
                    skipped += 1
                    continue
                cmds, want, got = transcript(binary, lines)
                what = f'`{cmds[0]}`'
        except AssertionError as e:
            print(f'README:{line}: FAIL {e}')
            failed += 1
            continue
        d = diff(want, got)
        if d:
            print(f'README:{line}: FAIL {what}\n{d}')
            failed += 1
        else:
            print(f'README:{line}: ok {what}')
            passed += 1
    try:
        want, got = two_shells(binary, text)
        d = diff(want, got)
    except AssertionError as e:
        d = str(e)
    if d:
        print(f'README: FAIL the two shells on one file\n{d}')
        failed += 1
    else:
        print('README: ok the two shells on one file')
        passed += 1
    for problem in check_documents(readme):
        print(problem)
        failed += 1
    if sessions != 1:
        print(f'expected one prompt session (```console starting `$ scripts/run`), '
              f'found {sessions}')
        failed += 1
    if passed + failed < 5:
        print(f'only {passed + failed} examples ran; the README has lost its examples?')
        failed += 1
    print(f'{passed} passed, {failed} failed, {skipped} skipped')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
