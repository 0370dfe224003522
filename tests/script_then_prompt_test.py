#!/usr/bin/env python3
"""`simplecqrs SCRIPT... -` at a terminal: the scripts run, then the '-'
that is the terminal is the interactive shell (sqlite3's -init habit), with
its banner, prompt, line editing and history, in a pseudo-terminal.

usage: script_then_prompt_test.py BIN

The pty helpers (Session, Sandbox) are interactive_test.py's.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from interactive_test import (PROMPT, UP, CTRL_D, WRAPPER, Sandbox, Session,  # noqa: E402
                              history_lines)

CTRL_A = '\x01'


def spawn(sb, *args):
    return Session(sb.binary, sb.env, sb.cwd, argv=WRAPPER + [sb.binary, *args])


def opening(sb, text):
    path = os.path.join(sb.cwd, 'opening.cqrs')
    with open(path, 'w') as f:
        f.write(text)
    return 'opening.cqrs'


def test_script_then_prompt(sb):
    name = opening(sb, 'deposit XX1 100\nrefresh\n')
    with spawn(sb, name, '-') as s:
        s.expect(r'^deposited 100 into XX1')
        s.expect(r'^refreshed: 1 event applied')
        s.expect(r'^simplecqrs \d+\.\d+')        # the banner, as at a bare prompt
        s.expect(PROMPT)
        # editing: type a wrong first letter, go home, delete it, run
        s.send('xbalance XX1' + CTRL_A + CTRL_D + '\r')
        s.expect(r'^XX1: 100 ')
        s.expect(PROMPT)
        s.send(UP)                                  # history
        s.expect(r'balance XX1')
        s.send('\x15status\r')                      # Ctrl-U, then a new line
        s.expect(r'^head +1$')
        s.expect(PROMPT)
        s.send(CTRL_D)
        status = s.wait_exit()
    assert status == 0, f'exit status {status}'
    lines = history_lines(sb.history)
    assert 'deposit XX1 100' not in lines, f'the script went into the history: {lines}'
    assert lines[-1] == 'status', lines


def test_prompt_errors_carry_no_place(sb):
    """Two SCRIPTs name their FILE in errors, but not the prompt's line."""
    name = opening(sb, 'withdraw XX9 1\n')
    with spawn(sb, name, '-') as s:
        s.expect(r'^error: opening\.cqrs:1: no account XX9$')
        s.expect(PROMPT)
        s.send('withdraw XX9 2\r')
        s.expect(r'^error: no account XX9$')
        s.expect(PROMPT)


def test_quit_in_the_script_ends_it(sb):
    name = opening(sb, 'deposit XX1 1\nquit\n')
    with spawn(sb, name, '-') as s:
        s.expect(r'^deposited 1 into XX1')
        status = s.wait_exit()
        assert 'simplecqrs>' not in s.text, f'a prompt after quit: {s.text!r}'
    assert status == 0, f'exit status {status}'


def test_nothing_after_the_prompt(sb):
    name = opening(sb, 'deposit XX1 1\n')
    for args in (['-', name], ['-', '-']):
        with spawn(sb, *args) as s:
            status = s.wait_exit()
            assert status == 2, f'{args}: exit status {status}: {s.text!r}'
            assert "'-' is the terminal" in s.text and 'deposited' not in s.text, s.text


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
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
            print(f'FAIL {name}: {str(e) or type(e).__name__}', flush=True)
        finally:
            sb.cleanup()
    print(f'script_then_prompt: {len(tests) - failed} passed, {failed} failed')
    sys.exit(1 if failed else 0)


if __name__ == '__main__':
    main()
