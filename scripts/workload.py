#!/usr/bin/env python3
"""Deterministic benchmark workloads for simplecqrs, with their answers.

    workload.py WORKLOAD COUNT [--seed S] [-o OUT] [--expect FILE]

COUNT account commands (deposit/withdraw lines), plus `refresh` lines, plus a
final `refresh` and `balances`. --expect writes the final balances, one
`ACCOUNT BALANCE` line per account with events, sorted.

  mixed          10,000 accounts: 60% deposits, 30% accepted withdrawals,
                 10% refused ones (overdraft, or an account never opened);
                 amounts 1..1000; `refresh` every 1,000 commands.
  hot            one account: deposits (60%) and withdrawals (40%);
                 `refresh` every 10,000. Its stream grows to ~COUNT events.
  refresh-heavy  100 accounts, the mix of `mixed`, `refresh` after every
                 command.

The same mix as the team's shared yardstick generator, written again here so
that the project needs nothing outside itself. Only random.Random(seed) is
used, so a (workload, count, seed) always gives the same bytes.
"""
import argparse
import random
import sys

AMOUNT_MAX = 1000


def name(i):
    return 'AC%05d' % i


def mixed(write, n, accounts, refresh_every, rnd):
    bal = [0] * (accounts + 1)
    opened = []
    is_open = [False] * (accounts + 1)
    outside = accounts + 1            # ids never deposited to, for refusals
    for k in range(1, n + 1):
        r = rnd()
        line = None
        if 0.6 <= r < 0.9 and opened:     # accepted withdrawal
            for _ in range(16):
                a = opened[int(rnd() * len(opened))]
                if bal[a] >= 1:
                    amt = 1 + int(rnd() * min(AMOUNT_MAX, bal[a]))
                    bal[a] -= amt
                    line = 'withdraw %s %d\n' % (name(a), amt)
                    break
        elif r >= 0.9:                    # refused withdrawal
            for _ in range(4):
                a = 1 + int(rnd() * accounts)
                if not is_open[a]:
                    line = 'withdraw %s %d\n' % (name(a), 1 + int(rnd() * AMOUNT_MAX))
                    break
                if bal[a] < AMOUNT_MAX:
                    lo = bal[a] + 1
                    line = 'withdraw %s %d\n' % (name(a), lo + int(rnd() * (AMOUNT_MAX - lo + 1)))
                    break
            if line is None:
                line = 'withdraw %s %d\n' % (name(outside), 1 + int(rnd() * AMOUNT_MAX))
                outside = outside + 1 if outside < 99999 else accounts + 1
        if line is None:                  # deposit
            a = 1 + int(rnd() * accounts)
            amt = 1 + int(rnd() * AMOUNT_MAX)
            if not is_open[a]:
                is_open[a] = True
                opened.append(a)
            bal[a] += amt
            line = 'deposit %s %d\n' % (name(a), amt)
        write(line)
        if k % refresh_every == 0:
            write('refresh\n')
    return {name(a): bal[a] for a in opened}


def hot(write, n, refresh_every, rnd):
    bal = 0
    for k in range(1, n + 1):
        if k == 1:
            amt = AMOUNT_MAX
            bal += amt
            write('deposit AC00001 %d\n' % amt)
        else:
            r = rnd()
            amt = 1 + int(rnd() * AMOUNT_MAX)
            if r < 0.6:
                bal += amt
                write('deposit AC00001 %d\n' % amt)
            else:
                if amt <= bal:
                    bal -= amt
                write('withdraw AC00001 %d\n' % amt)
        if k % refresh_every == 0:
            write('refresh\n')
    return {'AC00001': bal} if n else {}


def generate(workload, count, seed, out):
    rnd = random.Random(seed).random
    chunks = []

    def write(s):
        chunks.append(s)
        if len(chunks) >= 65536:
            out.write(''.join(chunks))
            chunks.clear()

    write('# simplecqrs workload=%s count=%d seed=%d\n' % (workload, count, seed))
    every = {'mixed': 1000, 'hot': 10000, 'refresh-heavy': 1}[workload]
    if workload == 'hot':
        final = hot(write, count, every, rnd)
    else:
        final = mixed(write, count, 10000 if workload == 'mixed' else 100, every, rnd)
    if count == 0 or count % every:
        write('refresh\n')
    write('balances\n')
    out.write(''.join(chunks))
    return final


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('workload', choices=['mixed', 'hot', 'refresh-heavy'])
    ap.add_argument('count', type=int)
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('-o', '--output')
    ap.add_argument('--expect')
    a = ap.parse_args()
    out = open(a.output, 'w', buffering=1 << 20) if a.output else sys.stdout
    final = generate(a.workload, a.count, a.seed, out)
    out.flush()
    if a.expect:
        with open(a.expect, 'w') as f:
            f.write(''.join('%s %d\n' % (k, final[k]) for k in sorted(final)))


if __name__ == '__main__':
    main()
