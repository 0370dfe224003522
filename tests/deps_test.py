#!/usr/bin/env python3
"""No module of the library calls back up: the link-level module graph.

usage: deps_test.py [-v] [--nm NM] LIBRARY.a [--program ARCHIVE_OR_OBJECT...]

LIBRARY.a is libsimplecqrs.a as meson built it (tests/meson.build passes
its path). `nm` over its members gives each module's (a .c file's stem)
defined global symbols and the ones it uses undefined; module A -> module B
when A uses a symbol B defines. The test fails on every cycle in that graph
(Tarjan's strongly connected components, then each loop inside one), naming
the modules and the symbols that make each edge:

    cycle: cmd -> parse -> cmd (cmd.c calls parse_line; parse.c calls cmd_find_word)

--program names the executable's own objects (main.c, shell.c: an archive
meson makes of them, or the .o files). The library sits below the program,
so no library module may use a symbol that only they define.

-v also prints the module graph, one edge a line with its symbols.
Prints 'deps: N modules, E edges, C cycles'; exits 1 on a cycle or an
upward reference, 2 when nm cannot be run.
"""
import os
import re
import subprocess
import sys

# nm -P -A: "archive[member]: name type value size" or "file: name type ..."
LINE_RE = re.compile(r'^(?P<file>.*?)(?:\[(?P<member>[^\]]*)\])?: (?P<name>\S+) (?P<type>\S)')
CODE_TYPES = set('TtWwIi')
SHOWN = 4	# symbols named per edge in a failure; -v names them all
LIMIT = 50	# cycles named per loop of modules


def module_of(obj):
    """'build/src/libsimplecqrs.a.p/store_pg.c.o' -> 'store_pg'. Meson names
    an object after its source with the folders joined by '_' when the source
    is not beside the target (src/main.c -> src_main.c.o): that src_ goes."""
    stem = os.path.basename(obj)
    if stem.endswith('.o'):
        stem = stem[:-2]
    stem = re.sub(r'\.(c|cc|cpp|S|s)$', '', stem)
    return stem[4:] if stem.startswith('src_') else stem


def source_of(obj):
    stem = os.path.basename(obj)
    stem = stem[:-2] if stem.endswith('.o') else stem
    return stem[4:] if stem.startswith('src_') else stem


class Objects:
    """Each module's defined and undefined global symbols."""

    def __init__(self):
        self.defines = {}	# symbol -> {module}
        self.kind = {}		# symbol -> 'calls' (code) or 'uses' (data)
        self.uses = {}		# module -> {symbol}
        self.source = {}	# module -> file name for messages (store.c)

    def read(self, nm, paths):
        p = subprocess.run([nm, '-P', '-A', '--no-sort', *paths],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True)
        if p.returncode != 0:
            sys.stderr.write(p.stderr)
            raise SystemExit(f'deps: {nm} failed on {" ".join(paths)} ({p.returncode})')
        seen = set()
        for line in p.stdout.splitlines():
            m = LINE_RE.match(line)
            if not m:
                continue
            obj = m['member'] or m['file']
            mod = module_of(obj)
            seen.add(mod)
            self.source.setdefault(mod, source_of(obj))
            self.uses.setdefault(mod, set())
            name, t = m['name'], m['type']
            if t == 'U':
                self.uses[mod].add(name)
            elif t.isupper() or t in 'vw':	# global (or weak) definitions
                self.defines.setdefault(name, set()).add(mod)
                self.kind[name] = 'calls' if t in CODE_TYPES else 'uses'
        return seen

    def graph(self, modules):
        """{a: {b: [symbols a uses that b defines]}} over modules."""
        edges = {m: {} for m in modules}
        for a in modules:
            for sym in self.uses.get(a, ()):
                for b in self.defines.get(sym, ()):
                    if b != a and b in edges:
                        edges[a].setdefault(b, []).append(sym)
        for a in edges:
            for b in edges[a]:
                edges[a][b].sort()
        return edges


def tarjan(edges):
    """Strongly connected components, each a sorted list, in a stable order."""
    index, low, on, stack, out = {}, {}, set(), [], []
    counter = [0]

    def visit(v):
        # iterative, so that a deep graph cannot hit the recursion limit
        work = [(v, iter(sorted(edges[v])))]
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        while work:
            node, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(edges[w]))))
                    break
                if w in on:
                    low[node] = min(low[node], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on.discard(w)
                        comp.append(w)
                        if w == node:
                            break
                    out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return sorted(out)


def loops(comp, edges, limit=None):
    """The elementary cycles inside one component, each starting from its
    smallest module (so each is found once); at most limit of them."""
    limit = limit or LIMIT
    members = set(comp)
    found = []
    for start in comp:
        path = [start]

        def walk(v):
            for w in sorted(edges[v]):
                if len(found) >= limit:
                    return
                if w not in members or w < start:
                    continue
                if w == start:
                    found.append(path + [start])
                elif w not in path:
                    path.append(w)
                    walk(w)
                    path.pop()
        walk(start)
    return sorted(found, key=lambda c: (len(c), c))


def named(objs, syms, shown=SHOWN):
    words = syms if shown is None else syms[:shown]
    more = '' if shown is None or len(syms) <= shown else f' (+{len(syms) - shown} more)'
    return ', '.join(words) + more


def edge_text(objs, edges, a, b, shown=SHOWN):
    """'cmd.c calls parse_line' (functions), '... uses x' (data), or both."""
    syms = edges[a][b]
    calls = [x for x in syms if objs.kind.get(x) == 'calls']
    data = [x for x in syms if objs.kind.get(x) != 'calls']
    parts = [f'{verb} {named(objs, group, shown)}'
             for verb, group in (('calls', calls), ('uses', data)) if group]
    return f'{objs.source[a]} {" and ".join(parts)}'


def main():
    argv = sys.argv[1:]
    verbose = '-v' in argv
    argv = [a for a in argv if a != '-v']
    nm = 'nm'
    if '--nm' in argv:
        i = argv.index('--nm')
        nm = argv[i + 1]
        del argv[i:i + 2]
    program = []
    if '--program' in argv:
        i = argv.index('--program')
        program = argv[i + 1:]
        del argv[i:]
    if len(argv) != 1 or argv[0].startswith('-'):
        sys.exit(__doc__)
    library = argv[0]
    for path in [library] + program:
        if not os.path.exists(path):
            print(f'deps: {path} does not exist (build it first)')
            return 2

    objs = Objects()
    modules = sorted(objs.read(nm, [library]))
    if not modules:
        print(f'deps: nm found no objects in {library}')
        return 2
    edges = graph = objs.graph(modules)
    nedges = sum(len(graph[a]) for a in graph)
    if verbose:
        print(f'module graph of {library} (a -> b: symbols a uses that b defines)')
        for a in modules:
            for b in sorted(graph[a]):
                print(f'  {a} -> {b}: {named(objs, graph[a][b], None)}')
            if not graph[a]:
                print(f'  {a} (uses no other module)')

    failed = 0
    ncycles = 0
    for comp in tarjan(edges):
        if len(comp) < 2:
            continue
        cycles = loops(comp, edges)
        print(f'FAIL modules in a loop: {", ".join(comp)} ({len(cycles)} '
              f'cycle{"s" if len(cycles) != 1 else ""}'
              f'{", and maybe more" if len(cycles) >= LIMIT else ""})')
        for cyc in cycles:
            ncycles += 1
            why = '; '.join(edge_text(objs, edges, a, b) for a, b in zip(cyc, cyc[1:]))
            print(f'  cycle: {" -> ".join(cyc)} ({why})')
        failed += 1

    if program:
        lib_defined = set(objs.defines)
        prog = Objects()
        prog_modules = sorted(prog.read(nm, program))
        if verbose:
            print(f'the program\'s own modules: {", ".join(prog_modules)}')
        for a in modules:
            up = {}
            for sym in sorted(objs.uses[a]):
                if sym in lib_defined:
                    continue
                for b in sorted(prog.defines.get(sym, ())):
                    up.setdefault(b, []).append(sym)
            for b, syms in sorted(up.items()):
                verb = 'calls' if all(prog.kind.get(x) == 'calls' for x in syms) else 'uses'
                print(f'FAIL the library calls up into the program: {objs.source[a]} '
                      f'{verb} {named(objs, syms)}, defined only in {prog.source[b]} '
                      f'(not in the library)')
                failed += 1

    print(f'deps: {len(modules)} modules, {nedges} edges, {ncycles} cycles'
          + (', the program\'s objects checked' if program else ''))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
