#!/usr/bin/env python3
"""scripts/bench.py (run it as scripts/bench) — how fast simplecqrs runs a piped script, and in how much
memory, against the floor (the bare C program for the same job) in one run.

    scripts/bench [--quick] [--runs N] [--floor FLOOR.c] [--binary BIN]
    scripts/bench --store sqlite [--runs N] [--binary BIN]
    scripts/bench --store postgresql [--runs N] [--binary BIN]

Builds a release binary (build-bench/), generates the workloads with
scripts/workload.py (cached in build-bench/workloads/), runs the floor, the
text mode and the JSON mode alternately --runs times each (median wall time
reported), checks every run's final balances against the generator's, and
prints commands per second, nanoseconds per command, peak memory and bytes
per stored event. Figures against the floor are only meaningful within one
run: the machine's speed drifts.

The floor is ../shared/bench/floor.c when the checkout sits beside the team's
shared folder, or --floor PATH; without one the ratios are left out.
--quick: 1M instead of 10M commands for `mixed` (the goal is stated at 10M).

--store sqlite: the durable store instead. `mixed` at 100k and 1M commands,
piped, on a fresh SQLite file in build-bench/ (so on the disk the project
sits on) against the memory store, alternately; then one more run of each
under strace to count fsync and fdatasync calls per command; SQLite's own
floor (the same number of rows inserted into the same event_log by one
INSERT ... SELECT); the first withdraw after reopening on an account with
1M events against one with 1 event; and the shared
fsync_floor (one write + fdatasync per record, the most durable appends per
second without grouping) on the same disk, when ../shared is beside us.

--store postgresql: under pg_virtualenv (scripts/bench starts one), `mixed`
100k on the memory store, then piped into one shell, then four shells at once, each with its own 25k
script (other seeds) on the same 10,000 accounts, all on fresh databases over
loopback TCP: commands per second, and the conflicts (appends refused because
another shell moved the account first, each retried) and `conflict` errors;
then the first withdraw after reopening on an account with 200k events
against one with 1 event.
"""
import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORK = os.path.join(ROOT, 'build-bench')


def sh(*cmd, **kw):
    subprocess.run(cmd, check=True, **kw)


def build():
    if not os.path.exists(os.path.join(WORK, 'build.ninja')):
        sh('meson', 'setup', WORK, ROOT, '--buildtype=release', '-Db_ndebug=true',
           '-Dtests=disabled', stdout=subprocess.DEVNULL)
    sh('meson', 'compile', '-C', WORK, stdout=subprocess.DEVNULL)
    return os.path.join(WORK, 'simplecqrs')


def workload(kind, count):
    d = os.path.join(WORK, 'workloads')
    os.makedirs(d, exist_ok=True)
    script = os.path.join(d, f'{kind}-{count}.cqrs')
    expect = script[:-5] + '.expect'
    if not os.path.exists(expect):
        sh(sys.executable, os.path.join(ROOT, 'scripts', 'workload.py'), kind, str(count),
           '-o', script + '.tmp', '--expect', expect + '.tmp')
        os.replace(script + '.tmp', script)
        os.replace(expect + '.tmp', expect)
    with open(script, 'rb') as f:
        lines = sum(1 for line in f if not line.startswith(b'#'))
    return script, expect, lines


def remove_ledger(argv):
    """A sqlite run starts on a fresh file: removes the one argv names."""
    for a in argv:
        if a.startswith('sqlite:'):
            for suffix in ('', '-wal', '-shm'):
                if os.path.exists(a[7:] + suffix):
                    os.remove(a[7:] + suffix)


def run(argv, script, out_path):
    """Wall seconds and peak RSS (KiB) of one run, stdin from script.

    GNU time reports the peak: a child forked straight from this (large)
    Python process would count Python's pages in its own maximum."""
    remove_ledger(argv)
    rss_file = out_path + '.rss'
    with open(script, 'rb') as stdin, open(out_path, 'wb') as out, \
            open(out_path + '.err', 'wb') as err:
        t0 = time.perf_counter()
        p = subprocess.run(['/usr/bin/time', '-f', '%M', '-o', rss_file] + argv,
                           stdin=stdin, stdout=out, stderr=err)
        wall = time.perf_counter() - t0
    with open(rss_file) as f:
        rss = int(f.read().split()[-1])
    return wall, rss, p.returncode


def final_balances(out_path, mode):
    """ACCOUNT BALANCE lines from the last `balances` in a run's output."""
    with open(out_path, 'rb') as f:
        if mode == 'json':
            last = f.read().rstrip(b'\n').rsplit(b'\n', 1)[-1]
            rows = json.loads(last)['balances']
            return ''.join(f"{r['account']} {r['balance']}\n" for r in rows)
        if mode == 'floor':
            return f.read().decode()
        text = f.read().decode().rstrip('\n').split('\n')
        start = max(i for i, l in enumerate(text) if l.startswith('-------'))
        return ''.join(' '.join(l.split()[:2]) + '\n' for l in text[start + 1:-1])


def measure(progs, script, expect, runs):
    """{name: (median wall, peak KiB)}, runs alternated between programs."""
    want = open(expect).read()
    times = {name: [] for name in progs}
    peak = {name: 0 for name in progs}
    out = os.path.join(WORK, 'out')
    for _ in range(runs):
        for name, (argv, mode) in progs.items():
            wall, rss, code = run(argv, script, out)
            if code not in (0, 1):
                sys.exit(f'{name} exited {code}; see {out}.err')
            got = final_balances(out, mode)
            if got != want:
                sys.exit(f'{name}: final balances differ from the generator\'s ({out})')
            times[name].append(wall)
            peak[name] = max(peak[name], rss)
    return {n: (statistics.median(times[n]), peak[n]) for n in progs}


def fsyncs(argv, script):
    """fsync + fdatasync calls in one run, counted by strace."""
    remove_ledger(argv)
    log = os.path.join(WORK, 'strace.txt')
    with open(script, 'rb') as stdin:
        subprocess.run(['strace', '-f', '-c', '-o', log, '-e', 'trace=fsync,fdatasync']
                       + argv, stdin=stdin, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    calls = 0
    for line in open(log):
        f = line.split()
        if f and f[-1] in ('fsync', 'fdatasync'):
            calls += int(f[3])
    return calls


def bench_sqlite(binary, runs):
    ledger = os.path.join(WORK, 'bench-ledger.db')
    print(f'simplecqrs benchmark, sqlite store: {os.cpu_count()} cores, '
          f'{time.strftime("%Y-%m-%d")}, {runs} runs each, medians')
    print(f'{"workload":<18}{"store":<9}{"wall s":>8}{"cmds/s":>12}{"us/cmd":>8}'
          f'{"peak MiB":>10}{"fsyncs/cmd":>12}{"x memory":>10}')
    for count in (100_000, 1_000_000):
        script, expect, lines = workload('mixed', count)
        progs = {'memory': ([binary], 'text'),
                 'sqlite': ([binary, '--store', 'sqlite:' + ledger], 'text')}
        m = measure(progs, script, expect, runs)
        label = f'mixed {count:,}'
        for name, (wall, rss) in m.items():
            f = fsyncs(progs[name][0], script) / lines if shutil.which('strace') else float('nan')
            print(f'{label:<18}{name:<9}{wall:>8.3f}{lines / wall:>12,.0f}'
                  f'{wall / lines * 1e6:>8.2f}{rss / 1024:>10.1f}{f:>12.5f}'
                  f'{wall / m["memory"][0]:>10.2f}')
        if count == 1_000_000:
            events = int(memory_status(binary, script)['head'])
            fl = sqlite_floor(events)
            print(f'{"":<18}{"floor":<9}{fl:>8.3f}{"":>12}{"":>8}{"":>10}{"":>12}'
                  f'{fl / m["memory"][0]:>10.2f}   <- SQLite itself: {events:,} rows '
                  f'into event_log, one statement')
            print(f'{"":<18}sqlite / SQLite floor: {m["sqlite"][0] / fl:.2f}')
    remove_ledger(['sqlite:' + ledger])
    one, hot = reopen_figures(binary, ledger, 1_000_000)
    print(f'first withdraw after reopening: 1,000,000-event account {hot * 1000:.1f} ms, '
          f'1-event account {one * 1000:.1f} ms: {hot / one:.2f}x (goal <= 2)')
    remove_ledger(['sqlite:' + ledger])
    src = os.path.join(ROOT, '..', 'shared', 'bench', 'fsync_floor.c')
    if os.path.exists(src):
        exe = os.path.join(WORK, 'fsync_floor')
        sh('cc', '-O2', '-o', exe, src)
        out = subprocess.run([exe, WORK, '5000', '5'], capture_output=True,
                             text=True).stdout.strip()
        print(f'fsync floor on the same disk (one durable append at a time): {out}')
    print('goal: mixed 1,000,000 on sqlite within 3x the memory store')


def memory_status(binary, script):
    """`status` after the script, on the memory store (the events it makes)."""
    out = subprocess.run([binary, '--json'], input=open(script, 'rb').read()
                         .replace(b'balances\n', b'status\n'),
                         capture_output=True).stdout.rstrip(b'\n').rsplit(b'\n', 1)[-1]
    return json.loads(out)


def sqlite_floor(events):
    """Seconds SQLite itself takes to insert `events` rows into the ledger's
    event_log (its unique (stream, version) index included, random streams
    of 10,000, WAL, synchronous=FULL) in one INSERT ... SELECT: no parsing,
    no statements per row, one commit. What a durable shell cannot beat."""
    import sqlite3
    path = os.path.join(WORK, 'floor.db')
    remove_ledger(['sqlite:' + path])
    db = sqlite3.connect(path, isolation_level=None)
    db.execute('PRAGMA journal_mode = WAL')
    db.execute('PRAGMA synchronous = FULL')
    db.execute('PRAGMA cache_size = -65536')
    db.execute('CREATE TABLE event_log (position INTEGER PRIMARY KEY, stream INTEGER '
               'NOT NULL, version INTEGER NOT NULL, type INTEGER NOT NULL, amount '
               'INTEGER NOT NULL, time INTEGER NOT NULL, UNIQUE (stream, version))')
    t0 = time.perf_counter()
    db.execute('BEGIN')
    db.execute('WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c '
               f'WHERE x < {events}) INSERT INTO event_log SELECT x, '
               'abs(random()) % 10000, x, 1 + x % 2, 1 + x % 997, 1700000000000 + x FROM c')
    db.execute('COMMIT')
    wall = time.perf_counter() - t0
    db.close()
    remove_ledger(['sqlite:' + path])
    return wall


def reopen_figures(binary, ledger, n, uri=None):
    """Median seconds of one `withdraw` run in a new process on an account
    with n events, and on one with 1, of one ledger (made by piping)."""
    target = uri or 'sqlite:' + ledger
    if uri is None:
        remove_ledger([target])
    script = os.path.join(WORK, f'hot-account-{n}.cqrs')
    if not os.path.exists(script):
        with open(script, 'w') as f:
            f.write('deposit ONE 5\n')
            f.write('deposit HOT 1\n' * n)
    with open(script, 'rb') as i:
        subprocess.run([binary, '--store', target], stdin=i,
                       stdout=subprocess.DEVNULL, check=True)

    def once(account):
        t0 = time.perf_counter()
        subprocess.run([binary, '--store', target], input=f'withdraw {account} 1\n'.encode(),
                       stdout=subprocess.DEVNULL, check=True)
        return time.perf_counter() - t0
    one, hot = [], []
    for _ in range(5):
        one.append(once('ONE'))
        hot.append(once('HOT'))
    return statistics.median(one), statistics.median(hot)


def fresh_db(name):
    quiet = dict(os.environ, PGOPTIONS='-c client_min_messages=warning')
    sh('psql', '-q', '-X', '-c', f'DROP DATABASE IF EXISTS {name}', env=quiet)
    sh('psql', '-q', '-X', '-c', f'CREATE DATABASE {name}', env=quiet)
    return f'postgresql:///{name}'


def psql(db, query):
    return subprocess.run(['psql', '-X', '-At', '-d', db, '-c', query], check=True,
                          capture_output=True, text=True).stdout


def pg_floor(db):
    """Seconds PostgreSQL itself takes to put the events the one-shell run
    left into a copy of the events table (its constraints and indexes), in
    one INSERT ... SELECT: what the server needs for those rows, with no
    program around it (the commit's fsync included)."""
    psql(db, 'DROP TABLE IF EXISTS floor_src, floor_events; '
             'CREATE TABLE floor_src AS SELECT * FROM events; '
             'CREATE TABLE floor_events (LIKE events INCLUDING ALL)')
    out = subprocess.run(['psql', '-X', '-At', '-d', db, '-c', '\\timing on', '-c',
                          'INSERT INTO floor_events SELECT * FROM floor_src'],
                         check=True, capture_output=True, text=True).stdout
    ms = [float(line.split()[1]) for line in out.splitlines() if line.startswith('Time:')]
    psql(db, 'DROP TABLE floor_src, floor_events')
    return ms[-1] / 1000


def bench_pg(binary, runs):
    if not os.environ.get('PGHOST'):
        sys.exit('--store postgresql needs a server: run it as scripts/bench, '
                 'which starts one with pg_virtualenv')
    env = dict(os.environ, SIMPLECQRS_STATS='1')
    print(f'simplecqrs benchmark, postgresql store: {os.cpu_count()} cores, '
          f'{time.strftime("%Y-%m-%d")}, {runs} runs each, medians, loopback TCP')
    print(f'{"run":<28}{"wall s":>8}{"cmds/s":>10}{"us/cmd":>8}'
          f'{"conflicts":>11}{"conflict errors":>17}')
    script, expect, lines = workload('mixed', 100_000)
    parts = []
    for seed in range(4):
        part = os.path.join(WORK, 'workloads', f'mixed-25000-seed{seed}.cqrs')
        if not os.path.exists(part):
            sh(sys.executable, os.path.join(ROOT, 'scripts', 'workload.py'), 'mixed', '25000',
               '--seed', str(100 + seed), '-o', part)
        parts.append(part)
    part_lines = sum(sum(1 for line in open(p, 'rb') if not line.startswith(b'#')) for p in parts)
    results = {'memory, mixed 100k': [], 'one shell, mixed 100k': [],
               'four shells, 4 x 25k': []}
    stats = {k: (0, 0) for k in results}
    for _ in range(runs):
        out = os.path.join(WORK, 'out')
        t0 = time.perf_counter()
        with open(script, 'rb') as i, open(out, 'wb') as o:
            code = subprocess.run([binary], stdin=i, stdout=o,
                                  stderr=subprocess.DEVNULL).returncode
        results['memory, mixed 100k'].append(time.perf_counter() - t0)
        if code not in (0, 1) or final_balances(out, 'text') != open(expect).read():
            sys.exit(f'memory: exit {code} or wrong balances; see {out}')
        uri = fresh_db('bench1')
        out = os.path.join(WORK, 'out')
        t0 = time.perf_counter()
        with open(script, 'rb') as i, open(out, 'wb') as o, open(out + '.err', 'wb') as e:
            code = subprocess.run([binary, '--store', uri], stdin=i, stdout=o, stderr=e,
                                  env=env).returncode
        wall = time.perf_counter() - t0
        if code not in (0, 1) or final_balances(out, 'text') != open(expect).read():
            sys.exit(f'one shell: exit {code} or wrong balances; see {out}')
        errs = open(out + '.err').read()
        results['one shell, mixed 100k'].append(wall)
        stats['one shell, mixed 100k'] = (conflicts_of(errs),
                                          errs.count('another writer changed'))

        uri = fresh_db('bench4')
        t0 = time.perf_counter()
        procs = [subprocess.Popen([binary, '--json', '--store', uri], stdin=open(p, 'rb'),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
                 for p in parts]
        outs = [p.communicate() for p in procs]
        wall = time.perf_counter() - t0
        if any(p.returncode not in (0, 1) for p in procs):
            sys.exit(f'four shells: exit codes {[p.returncode for p in procs]}')
        results['four shells, 4 x 25k'].append(wall)
        conflicts = sum(conflicts_of(e.decode()) for _, e in outs)
        errors = sum(o.count(b'"error":"conflict"') for o, _ in outs)
        stats['four shells, 4 x 25k'] = (conflicts, errors)
        # the shared sheet after a last refresh must be the replay
        subprocess.run([binary, '--store', uri], input=b'refresh\n', env=os.environ,
                       capture_output=True, check=True)
        bad = psql('bench4', "SELECT count(*) FROM (SELECT stream, sum(CASE type WHEN "
                   "'AccountCredited' THEN amount ELSE -amount END) AS b FROM events "
                   "GROUP BY stream) r FULL JOIN balances ON account = stream "
                   "WHERE b IS DISTINCT FROM balance")
        if bad.strip() != '0':
            sys.exit('four shells: the kept sheet differs from a replay of the events')
    floor = pg_floor('bench1')
    for name, walls in results.items():
        wall = statistics.median(walls)
        n = part_lines if name.startswith('four') else lines
        c, e = stats[name]
        print(f'{name:<28}{wall:>8.2f}{n / wall:>10,.0f}{wall / n * 1e6:>8.1f}{c:>11,}{e:>17,}')
    rate = {k: (part_lines if k.startswith('four') else lines) / statistics.median(w)
            for k, w in results.items()}
    print(f'one shell / memory store: {rate["memory, mixed 100k"] / rate["one shell, mixed 100k"]:.1f}x '
          f'the time; four shells together / one shell: '
          f'{rate["four shells, 4 x 25k"] / rate["one shell, mixed 100k"]:.2f}x the rate (goal >= 1)')
    one_wall = statistics.median(results['one shell, mixed 100k'])
    print(f'{"":<10}{"floor":<18}{floor:>8.2f}{"":>26}   <- PostgreSQL itself: the one shell\'s '
          f'events into a copy of the table, one statement')
    print(f'one shell / PostgreSQL floor: {one_wall / floor:.2f}')
    one, hot = reopen_figures(binary, None, 200_000, fresh_db('benchhot'))
    print(f'first withdraw after reopening: 200,000-event account {hot * 1000:.1f} ms, '
          f'1-event account {one * 1000:.1f} ms: {hot / one:.2f}x (goal <= 2)')


def conflicts_of(stderr_text):
    """The conflicts a shell counted (SIMPLECQRS_STATS)."""
    for line in stderr_text.splitlines():
        if line.startswith('simplecqrs: ') and 'conflict' in line:
            return int(line.split()[3])
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--quick', action='store_true')
    ap.add_argument('--runs', type=int, default=3)
    ap.add_argument('--floor')
    ap.add_argument('--binary')
    ap.add_argument('--store', choices=['memory', 'sqlite', 'postgresql'], default='memory')
    a = ap.parse_args()

    binary = a.binary or build()
    if a.store == 'sqlite':
        return bench_sqlite(binary, a.runs)
    if a.store == 'postgresql':
        return bench_pg(binary, a.runs)
    floor_c = a.floor or os.path.join(ROOT, '..', 'shared', 'bench', 'floor.c')
    floor = None
    if os.path.exists(floor_c):
        floor = os.path.join(WORK, 'floor')
        os.makedirs(WORK, exist_ok=True)
        sh('cc', '-O2', '-o', floor, floor_c)
    big = 1_000_000 if a.quick else 10_000_000

    # the memory a run needs before it stores anything
    empty = os.path.join(WORK, 'empty.cqrs')
    open(empty, 'w').close()
    base_kib = run([binary], empty, os.path.join(WORK, 'out'))[1]

    print(f'simplecqrs benchmark: {os.cpu_count()} cores, '
          f'{time.strftime("%Y-%m-%d")}, {a.runs} runs each, medians')
    print(f'{"workload":<26}{"program":<12}{"wall s":>8}{"cmds/s":>12}{"ns/cmd":>8}'
          f'{"peak MiB":>10}{"x floor":>9}')
    results = {}
    for kind, count in (('mixed', big), ('hot', 100_000), ('hot', 1_000_000),
                        ('refresh-heavy', 1_000_000)):
        script, expect, lines = workload(kind, count)
        progs = {}
        if floor:
            progs['floor'] = ([floor], 'floor')
        progs['text'] = ([binary], 'text')
        if kind == 'mixed':
            progs['json'] = ([binary, '--json'], 'json')
        m = measure(progs, script, expect, a.runs)
        label = f'{kind} {count:,}'
        for name, (wall, rss) in m.items():
            ratio = f'{wall / m["floor"][0]:.2f}' if floor else '-'
            print(f'{label:<26}{name:<12}{wall:>8.3f}{lines / wall:>12,.0f}'
                  f'{wall / lines * 1e9:>8.0f}{rss / 1024:>10.1f}{ratio:>9}')
        results[(kind, count)] = (m, lines, script)

    print()
    m, lines, script = results[('mixed', big)]
    text = m['text'][0]
    print(f'JSON / text, mixed {big:,}: {m["json"][0] / text:.2f} (goal <= 1.3)')
    if floor:
        print(f'text / floor, mixed {big:,}: {text / m["floor"][0]:.2f} (goal <= 2)')
        rh = results[('refresh-heavy', 1_000_000)][0]
        print(f'text / floor, refresh-heavy 1,000,000: '
              f'{rh["text"][0] / rh["floor"][0]:.2f} (goal <= 2)')
    h1, h2 = results[('hot', 100_000)][0], results[('hot', 1_000_000)][0]
    print(f'hot 1,000,000 / hot 100,000: {h2["text"][0] / h1["text"][0]:.2f} '
          f'(goal <= 11: linear)')
    # bytes per event: the store's growth over an empty run, per accepted event
    status = subprocess.run([binary, '--json'], input=open(script, 'rb').read()
                            .replace(b'balances\n', b'status\n'),
                            capture_output=True).stdout.rstrip(b'\n').rsplit(b'\n', 1)[-1]
    head = json.loads(status)['head']
    per_event = (m['text'][1] - base_kib) * 1024 / head
    print(f'peak memory, mixed {big:,}: {m["text"][1] / 1024:.1f} MiB for {head:,} events '
          f'= {per_event:.1f} bytes per event over an empty run '
          f'({base_kib / 1024:.1f} MiB) (goal <= 48)')
    if floor:
        f_per = (m['floor'][1] - base_kib) * 1024 / head
        print(f'  (the floor: {m["floor"][1] / 1024:.1f} MiB, {f_per:.1f} bytes per event)')


if __name__ == '__main__':
    main()
