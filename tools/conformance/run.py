#!/usr/bin/env python3
"""Conformance runner: CPython's test_asyncio suite against any event loop.

    python tools/conformance/run.py [--loop MODULE:FACTORY] [--modules a,b]
        [--timeout S] [--test-timeout S] [--jobs N] [--check]
        [--update-expected] [--markdown] [--json FILE] [-v]
    python tools/conformance/run.py --compare asyncio,uvloop,eloop --markdown

--loop takes MODULE:FACTORY (module imported, factory looked up with getattr,
dotted attributes allowed, called with no arguments) or one of the aliases
asyncio (asyncio:SelectorEventLoop), uvloop (uvloop:new_event_loop),
eloop (eloop:new_event_loop, the default).

Each test module runs in its own child process (_child.py) that injects the
target loop (see README.md).  The child streams per-test events, so a hung
test is identified by name, killed (after a faulthandler dump) and the
module resumes after it; a crash (segfault) is handled the same way.
"""

import argparse
import concurrent.futures
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
CHILD = HERE / '_child.py'

MODULES = [
    'events', 'streams', 'server', 'sock_lowlevel', 'sendfile',
    'buffered_proto', 'subprocess', 'ssl', 'context', 'pep492', 'runners',
    'taskgroups', 'timeouts', 'waitfor', 'locks', 'queues', 'tasks',
    'futures', 'threads', 'unix_events', 'protocols', 'transports',
]

NOT_APPLICABLE = {
    'base_events': 'BaseEventLoop internals with mocked selectors/sockets',
    'selector_events': 'BaseSelectorEventLoop/_SelectorTransport internals',
    'proactor_events': 'Windows proactor loop internals',
    'sslproto': 'asyncio.sslproto.SSLProtocol internals',
    'windows_events': 'Windows only',
    'windows_utils': 'Windows only',
}

# Rough relative cost, used to start the long modules first with --jobs.
WEIGHT = {'tasks': 15, 'subprocess': 12, 'ssl': 9, 'events': 7,
          'taskgroups': 6, 'sock_lowlevel': 2, 'sendfile': 2, 'futures': 1,
          'waitfor': 1, 'streams': 1}

ALIASES = {
    'asyncio': 'asyncio:SelectorEventLoop',
    'uvloop': 'uvloop:new_event_loop',
    'eloop': 'eloop:new_event_loop',
}

BAD = ('fail', 'error', 'xpass', 'hung', 'crash')
MAX_RESTARTS = 100
SHUTDOWN_GRACE = 30.0


def normalize_spec(spec):
    spec = ALIASES.get(spec, spec)
    if ':' not in spec:
        raise SystemExit(f'error: --loop must be MODULE:FACTORY or one of '
                         f'{", ".join(ALIASES)}; got {spec!r}')
    return spec


def loop_name(spec):
    for alias, full in ALIASES.items():
        if spec == full:
            return alias
    return re.sub(r'[^A-Za-z0-9_]+', '_', spec.split(':', 1)[0].split('.')[0])


def module_id(mod):
    return f'test.test_asyncio.test_{mod}'


# --------------------------------------------------------------------------
# Running one module


class _EventReader:
    def __init__(self, path):
        self.path = path
        self.pos = 0
        self.buf = ''

    def read(self):
        try:
            with open(self.path, encoding='utf-8') as f:
                f.seek(self.pos)
                data = f.read()
                self.pos = f.tell()
        except FileNotFoundError:
            return []
        self.buf += data
        *lines, self.buf = self.buf.split('\n')
        out = []
        for line in lines:
            if line.strip():
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
        return out


def _log_tail(log_path, marker=None, max_lines=60):
    try:
        with open(log_path, 'rb') as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - 256 * 1024))
            text = f.read().decode('utf-8', 'replace')
    except OSError:
        return ''
    if marker:
        i = text.rfind(marker)
        if i >= 0:
            text = text[i:]
    lines = text.splitlines()
    if len(lines) > max_lines:
        lines = ['...'] + lines[-max_lines:]
    return '\n'.join(lines)


def _kill(proc, dump=True):
    """Dump all thread stacks (faulthandler on SIGUSR1), then SIGKILL the
    child's process group (the child and whatever its tests spawned)."""
    if dump and hasattr(signal, 'SIGUSR1'):
        try:
            os.kill(proc.pid, signal.SIGUSR1)
            time.sleep(1.0)
        except OSError:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        try:
            proc.kill()
        except OSError:
            pass
    proc.wait()


def _reap_group(proc):
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        pass


def _rc_text(rc):
    if rc is not None and rc < 0:
        try:
            return f'killed by {signal.Signals(-rc).name}'
        except ValueError:
            return f'killed by signal {-rc}'
    return f'exit code {rc}'


def run_module(spec, mod, cfg, logdir, only=None, tag=None):
    t_start = time.monotonic()
    deadline = t_start + cfg.timeout
    modname = module_id(mod)
    records = {}          # id -> {'outcome', 'kind', 'dur', 'tb'}
    plan = None
    info = {'deduped': 0, 'loop_type': None}
    notes = []
    tag = tag or mod
    log_path = logdir / f'{mod}.log'
    workdir = tempfile.mkdtemp(prefix=f'conformance-{mod}-')
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(
        [str(REPO)] + [p for p in [env.get('PYTHONPATH')] if p])
    env.pop('PYTHONASYNCIODEBUG', None)
    attempt = 0
    restarts = 0

    with open(log_path, 'ab') as logf:
        while True:
            attempt += 1
            ev_path = logdir / f'{tag}.events.{attempt}.jsonl'
            skip_path = logdir / f'{tag}.skip.{attempt}.txt'
            skip_path.write_text(''.join(i + '\n' for i in records))
            cmd = [sys.executable, str(CHILD), '--loop', spec,
                   '--module', mod, '--events', str(ev_path),
                   '--skip-file', str(skip_path)]
            if only is not None:
                only_path = logdir / f'{tag}.only.txt'
                only_path.write_text(''.join(i + '\n' for i in only))
                cmd += ['--only-file', str(only_path)]
            if cfg.all_variants:
                cmd.append('--all-variants')
            for k in cfg.k or ():
                cmd += ['-k', k]
            logf.write(f'\n##### attempt {attempt}: {" ".join(cmd)}\n'
                       .encode())
            logf.flush()
            proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, cwd=workdir,
                                    env=env, start_new_session=True)
            reader = _EventReader(ev_path)
            cur = None
            cur_t0 = 0.0
            cur_loop = False
            done_t = None
            killed = None

            def handle(evs):
                nonlocal cur, cur_t0, cur_loop, done_t, plan
                for e in evs:
                    ev = e.get('ev')
                    if ev == 'plan':
                        if plan is None:
                            plan = e['ids']
                        info['deduped'] = e.get('deduped', 0)
                        info['loop_type'] = e.get('loop_type')
                    elif ev == 'start':
                        cur, cur_t0, cur_loop = e['id'], time.monotonic(), False
                    elif ev == 'loop':
                        cur_loop = True
                    elif ev == 'end':
                        records[e['id']] = {
                            'outcome': e['outcome'], 'kind': e['kind'],
                            'dur': e.get('dur', 0.0), 'tb': e.get('tb', '')}
                        if e['id'] == cur:
                            cur = None
                    elif ev == 'done':
                        done_t = time.monotonic()

            while True:
                handle(reader.read())
                rc = proc.poll()
                if rc is not None:
                    handle(reader.read())
                    break
                now = time.monotonic()
                if cur is not None and now - cur_t0 > cfg.test_timeout:
                    killed = f'test timeout ({cfg.test_timeout:g}s)'
                elif now > deadline:
                    killed = f'module timeout ({cfg.timeout:g}s)'
                elif done_t is not None and now - done_t > SHUTDOWN_GRACE:
                    killed = 'child did not exit after the last test'
                if killed:
                    _kill(proc)
                    rc = proc.returncode
                    handle(reader.read())
                    break
                time.sleep(0.05)
            _reap_group(proc)

            restart = False
            if killed:
                if cur is not None:
                    tail = _log_tail(log_path, f'=== START {cur}')
                    records[cur] = {
                        'outcome': 'hung', 'kind': 'target' if cur_loop else
                        'none', 'dur': round(time.monotonic() - cur_t0, 1),
                        'tb': f'{killed}; faulthandler dump:\n{tail}'}
                    restart = not killed.startswith('module timeout')
                else:
                    where = '<shutdown>' if done_t else '<between-tests>'
                    records[f'{modname}.{where}'] = {
                        'outcome': 'hung', 'kind': 'fixture', 'dur': 0.0,
                        'tb': f'{killed}:\n{_log_tail(log_path)}'}
                if killed.startswith('module timeout'):
                    notes.append(f'module timeout after {cfg.timeout:g}s')
            elif done_t is None:
                tail = _log_tail(log_path, f'=== START {cur}' if cur else
                                 f'##### attempt {attempt}')
                if cur is not None:
                    records[cur] = {
                        'outcome': 'crash', 'kind': 'target' if cur_loop else
                        'none', 'dur': round(time.monotonic() - cur_t0, 1),
                        'tb': f'child died ({_rc_text(rc)}):\n{tail}'}
                    restart = True
                else:
                    records[f'{modname}.<child>'] = {
                        'outcome': 'crash', 'kind': 'fixture', 'dur': 0.0,
                        'tb': f'child died outside a test ({_rc_text(rc)}):'
                              f'\n{tail}'}
            elif rc != 0:
                records[f'{modname}.<shutdown>'] = {
                    'outcome': 'crash', 'kind': 'fixture', 'dur': 0.0,
                    'tb': f'child failed at exit ({_rc_text(rc)}):\n'
                          f'{_log_tail(log_path)}'}

            if restart and time.monotonic() < deadline \
                    and attempt < MAX_RESTARTS and plan is not None \
                    and any(i not in records for i in plan):
                restarts += 1
                continue
            break

    shutil.rmtree(workdir, ignore_errors=True)
    if restarts:
        notes.append(f'child restarted {restarts}x after hung/crashed tests')
    for i in plan or ():
        if i not in records:
            records[i] = {'outcome': 'notrun', 'kind': 'none', 'dur': 0.0,
                          'tb': ''}
    notrun = sum(1 for r in records.values() if r['outcome'] == 'notrun')
    if notrun:
        notes.append(f'{notrun} tests not run')
    if info['deduped']:
        notes.append(f'{info["deduped"]} duplicate selector-variant tests '
                     f'not run')
    return {'module': mod, 'tests': records, 'notes': notes,
            'wall': round(time.monotonic() - t_start, 2),
            'loop_type': info['loop_type'], 'log': str(log_path)}


def retry_failures(spec, mod, res, cfg, logdir, expected):
    """Re-run, in a fresh child, the tests that failed/errored and are not
    in the expected-failures file.  A test that passes on a retry counts as
    passed but is reported as flaky.  Hung/crashed tests are not retried."""
    tests = res['tests']
    for n in range(1, cfg.retries + 1):
        ids = [i for i, r in tests.items()
               if r['outcome'] in ('fail', 'error', 'xpass')
               and r['kind'] != 'fixture' and i not in expected]
        if not ids:
            return
        again = run_module(spec, mod, cfg, logdir, only=ids,
                           tag=f'{mod}.retry{n}')
        for i in ids:
            r2 = again['tests'].get(i)
            if r2 and r2['outcome'] in ('pass', 'xfail'):
                r2['flaky'] = True
                r2['first_outcome'] = tests[i]['outcome']
                r2['tb'] = (f'passed on retry {n}; first run '
                            f'{tests[i]["outcome"]}:\n{tests[i]["tb"]}')
                tests[i] = r2
        res['wall'] = round(res['wall'] + again['wall'], 2)


# --------------------------------------------------------------------------
# Summaries


def summarise(res):
    c = dict(ran=0, passed=0, failed=0, errors=0, skipped=0, hung=0, mock=0,
             mock_bad=0, crashed=0, notrun=0)
    for r in res['tests'].values():
        o, k = r['outcome'], r['kind']
        if o == 'skip':
            c['skipped'] += 1
            continue
        if o == 'notrun':
            c['notrun'] += 1
            continue
        if k in ('testloop', 'stdlib', 'none'):
            c['mock'] += 1
            if o in BAD:
                c['mock_bad'] += 1
            continue
        c['ran'] += 1          # target loop (or fixture/child-level error)
        if o in ('pass', 'xfail'):
            c['passed'] += 1
        elif o in ('fail', 'xpass'):
            c['failed'] += 1
        elif o == 'error':
            c['errors'] += 1
        elif o == 'crash':
            c['errors'] += 1
            c['crashed'] += 1
        elif o == 'hung':
            c['hung'] += 1
    return c


def pct(c):
    return f'{100.0 * c["passed"] / c["ran"]:.1f}' if c['ran'] else '-'


def bad_ids(run):
    out = {}
    for res in run['modules'].values():
        for tid, r in res['tests'].items():
            if r['outcome'] in BAD:
                out[tid] = r
    return out


COLS = ['module', 'ran on loop', 'passed', 'failed', 'errors', 'skipped',
        'hung', 'mock-loop tests', 'pass %']


def table_rows(run):
    rows = []
    tot = None
    for mod in run['order']:
        c = summarise(run['modules'][mod])
        tot = dict(c) if tot is None else {k: tot[k] + c[k] for k in tot}
        rows.append(_row(mod, c))
    if tot is not None:
        rows.append(_row('**total**' if run.get('md') else 'TOTAL', tot))
    return rows


def _row(name, c):
    mock = str(c['mock'])
    if c['mock_bad']:
        mock += f' ({c["mock_bad"]} failing)'
    err = str(c['errors'])
    if c['crashed']:
        err += f' ({c["crashed"]} crashed)'
    hung = str(c['hung'])
    if c['notrun']:
        hung += f' (+{c["notrun"]} not run)'
    return [name, str(c['ran']), str(c['passed']), str(c['failed']), err,
            str(c['skipped']), hung, mock, pct(c)]


def render(headers, rows, markdown):
    if markdown:
        out = ['| ' + ' | '.join(headers) + ' |',
               '|' + '|'.join(['---'] + ['---:'] * (len(headers) - 1)) + '|']
        out += ['| ' + ' | '.join(r) + ' |' for r in rows]
        return '\n'.join(out)
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(headers)]
    fmt = lambda r: '  '.join(  # noqa: E731
        (v.ljust(w) if i == 0 else v.rjust(w))
        for i, (v, w) in enumerate(zip(r, widths)))
    out = [fmt(headers), '  '.join('-' * w for w in widths)]
    body = [fmt(r) for r in rows]
    if len(body) > 1:
        body.insert(-1, '  '.join('-' * w for w in widths))
    return '\n'.join(out + body)


def print_run(run, args):
    md = args.markdown
    run['md'] = md
    rows = table_rows(run)
    title = (f'{run["name"]} ({run["spec"]} -> {run["loop_type"]}), '
             f'Python {sys.version.split()[0]}, '
             f'wall {run["wall"]:.0f}s, --jobs {args.jobs}')
    print(f'### {title}' if md else title)
    print()
    print(render(COLS, rows, md))
    print()
    print_footnotes(run, md)


def print_footnotes(run, md, show_notes=True):
    bullet = '- ' if md else '  '
    print(('' if md else '') + 'Not applicable (stdlib internals, not run): ' +
          ', '.join(f'{m}' for m in NOT_APPLICABLE))
    notes = [(m, n) for m in run['order'] for n in run['modules'][m]['notes']
             if 'duplicate selector-variant' not in n]
    ded = sum(int(n.split()[0]) for m in run['order']
              for n in run['modules'][m]['notes']
              if 'duplicate selector-variant' in n)
    if ded:
        print(f'{bullet}{ded} tests of the Poll/Select selector variants were '
              f'not run (identical once the loop is injected; '
              f'--all-variants runs them).')
    for m, n in notes if show_notes else ():
        print(f'{bullet}{m}: {n}')
    if show_notes:
        print()


def print_problems(run, verbose):
    flaky = sorted(i for res in run['modules'].values()
                   for i, r in res['tests'].items() if r.get('flaky'))
    if flaky:
        print(f'Flaky tests ({run["name"]}; failed, then passed on retry):')
        for i in flaky:
            print(f'  {i}')
        print()
    bad = bad_ids(run)
    severe = {i: r for i, r in bad.items() if r['outcome'] in ('hung', 'crash')}
    if severe:
        print(f'Hung / crashed tests ({run["name"]}):')
        for tid, r in sorted(severe.items()):
            print(f'  {r["outcome"].upper():5} {tid}')
            if verbose:
                for line in r['tb'].splitlines()[-25:]:
                    print(f'        {line}')
        print()
    if verbose:
        rest = {i: r for i, r in bad.items() if i not in severe}
        if rest:
            print(f'Failing tests ({run["name"]}):')
            for tid, r in sorted(rest.items()):
                last = [ln for ln in r['tb'].splitlines() if ln.strip()]
                last = last[-1].strip()[:150] if last else ''
                print(f'  {r["outcome"].upper():5} {tid}\n        {last}')
            print()


def print_compare(runs, args):
    md = args.markdown
    headers = ['module'] + [h for r in runs for h in
                            (f'{r["name"]} passed/ran', f'{r["name"]} F/E/H')]
    order = runs[0]['order']
    rows = []
    totals = [None] * len(runs)
    for mod in order + ['__total__']:
        cells, feh = [], []
        for i, run in enumerate(runs):
            if mod == '__total__':
                c = totals[i]
            else:
                c = summarise(run['modules'][mod])
                totals[i] = dict(c) if totals[i] is None else \
                    {k: totals[i][k] + c[k] for k in c}
            cells.append(f'{c["passed"]}/{c["ran"]} ({pct(c)}%)')
            feh.append(f'{c["failed"]}/{c["errors"]}/{c["hung"]}')
        name = mod if mod != '__total__' else ('**total**' if md else 'TOTAL')
        rows.append([name] + [v for pair in zip(cells, feh) for v in pair])
    print(('### ' if md else '') + 'Conformance comparison (test_asyncio, '
          f'Python {sys.version.split()[0]})')
    print()
    print(render(headers, rows, md))
    print()
    for run in runs:
        c = totals[runs.index(run)]
        print(f'{"- " if md else "  "}{run["name"]}: {run["spec"]} -> '
              f'{run["loop_type"]}; {c["mock"]} mock-loop/no-loop tests '
              f'({c["mock_bad"]} failing), {c["skipped"]} skipped, wall '
              f'{run["wall"]:.0f}s')
    print()
    print_footnotes(runs[0], md, show_notes=False)
    for run in runs:
        for m in run['order']:
            for n in run['modules'][m]['notes']:
                if 'duplicate selector-variant' not in n:
                    print(f'{"- " if md else "  "}{run["name"]}/{m}: {n}')
    print()


# --------------------------------------------------------------------------
# Expected failures


def expected_path(args, name):
    """--expected, else expected_failures_<loop>-<X.Y>.txt for this
    interpreter where one exists (test_asyncio differs between versions),
    else expected_failures_<loop>.txt."""
    if args.expected:
        return Path(args.expected)
    ver = '%d.%d' % sys.version_info[:2]
    versioned = HERE / f'expected_failures_{name}-{ver}.txt'
    if versioned.exists():
        return versioned
    return HERE / f'expected_failures_{name}.txt'


def load_expected(path):
    entries = {}
    if not path.exists():
        return entries
    for line in path.read_text(encoding='utf-8').splitlines():
        s = line.strip()
        if not s or s.startswith('#'):
            continue
        tid, _, reason = s.partition('#')
        entries[tid.strip()] = reason.strip()
    return entries


def check(run, path):
    expected = load_expected(path)
    bad = bad_ids(run)
    ran_mods = {module_id(m) for m in run['order']}
    all_ids = {}
    for res in run['modules'].values():
        all_ids.update(res['tests'])

    def in_run(tid):
        return any(tid == m or tid.startswith(m + '.') for m in ran_mods)

    unexpected = sorted(i for i in bad if i not in expected)
    stale = sorted(i for i in expected if i in all_ids and
                   all_ids[i]['outcome'] in ('pass', 'xfail') and
                   not expected[i].upper().startswith('FLAKY'))
    unknown = sorted(i for i in expected if in_run(i) and i not in all_ids)
    print(f'Check {run["name"]} against {_rel(path)} '
          f'({len(expected)} entries):')
    if unexpected:
        print(f'  UNEXPECTED failures (not listed): {len(unexpected)}')
        for i in unexpected:
            print(f'    {bad[i]["outcome"]:6} {i}')
    if stale:
        print(f'  STALE entries (listed, now pass): {len(stale)}')
        for i in stale:
            print(f'    {i}  # {expected[i]}')
    if unknown:
        print(f'  note: {len(unknown)} listed tests were not run '
              f'(unknown id, filtered or deduplicated):')
        for i in unknown:
            print(f'    {i}')
    ok = not unexpected and not stale
    print('  => OK' if ok else '  => FAILED  (fix, or run with '
          '--update-expected and give reasons)')
    print()
    return ok


_NOT_IMPL = re.compile(r'NotImplementedError: (.+?)(?:\\n|\n|$)')


def _derived_reason(result):
    """A reason for a new entry that the failure itself states: a loop
    method that raises NotImplementedError with a message (as eloop's
    not-yet-delivered methods do) names what is missing."""
    m = _NOT_IMPL.search(json.dumps(result))
    if not m:
        return None
    msg = m.group(1).strip().split('; see the README')[0]
    return 'NotImplementedError: ' + msg[:160]


def update_expected(run, path, placeholder):
    old = load_expected(path)
    bad = bad_ids(run)
    all_ids = {}
    for res in run['modules'].values():
        all_ids.update(res['tests'])
    new = {}
    for tid, reason in old.items():
        # keep entries this run says nothing about (module not run, skipped,
        # not run) and FLAKY ones; drop the ones that now pass.
        if tid in bad or tid not in all_ids or \
                reason.upper().startswith('FLAKY') or \
                all_ids[tid]['outcome'] in ('skip', 'notrun'):
            new[tid] = reason
    for tid in bad:
        new.setdefault(tid, _derived_reason(bad[tid]) or placeholder)
    header = [
        f'# Expected test_asyncio failures for {run["name"]} '
        f'({run["spec"]}).',
        '# Format: <test id as unittest prints it>  # <reason>',
        '# A reason starting with FLAKY marks an intermittent failure: it may '
        'pass',
        '# without the entry being reported as stale.',
        '# Maintained with: python tools/conformance/run.py --loop '
        f'{run["name"]} --update-expected   (new entries get "{placeholder}")',
        '# Checked with:    python tools/conformance/run.py --loop '
        f'{run["name"]} --check',
    ]
    body = []
    last_mod = None
    for tid in sorted(new):
        mod = '.'.join(tid.split('.')[:3])
        if mod != last_mod:
            body.append('')
            body.append(f'# {mod}')
            last_mod = mod
        body.append(f'{tid}  # {new[tid]}')
    path.write_text('\n'.join(header + body) + '\n', encoding='utf-8')
    added = sorted(set(new) - set(old))
    removed = sorted(set(old) - set(new))
    print(f'Updated {_rel(path)}: {len(new)} entries '
          f'(+{len(added)} new, -{len(removed)} now passing)')
    print()


def _rel(p):
    try:
        return str(Path(p).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(p)


# --------------------------------------------------------------------------


def preflight(spec):
    code = ('import sys; sys.argv=[""]; '
            'import _child, asyncio; spec, f = _child.resolve_loop_spec(%r); '
            'loop = f(); '
            'loop.run_until_complete(asyncio.sleep(0.01)); loop.close(); '
            'print(type(loop).__module__ + "." + type(loop).__qualname__)'
            % spec)
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(
        [str(HERE), str(REPO)] + [p for p in [env.get('PYTHONPATH')] if p])
    try:
        p = subprocess.run([sys.executable, '-c', code], env=env, cwd=REPO,
                           capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        raise SystemExit(f'error: loop {spec} did not run a trivial '
                         f'coroutine within 60s')
    if p.returncode != 0:
        raise SystemExit(f'error: cannot use loop {spec}:\n{p.stderr.strip()}')
    return p.stdout.strip()


def run_loop(spec, args, modules):
    name = loop_name(spec)
    loop_type = preflight(spec)
    logdir = Path(args.log_dir) / name if args.log_dir else \
        Path(tempfile.mkdtemp(prefix=f'conformance-{name}-'))
    logdir.mkdir(parents=True, exist_ok=True)
    for pat in ('*.log', '*.events.*.jsonl', '*.skip.*.txt', '*.only.txt'):
        for old in logdir.glob(pat):
            old.unlink()
    print(f'[{name}] running {len(modules)} modules on {spec} ({loop_type}), '
          f'--jobs {args.jobs}, logs in {logdir}', file=sys.stderr)
    t0 = time.monotonic()
    results = {}
    lock = threading.Lock()
    order = sorted(modules, key=lambda m: -WEIGHT.get(m, 0))

    expected = load_expected(expected_path(args, name))

    def one(mod):
        res = run_module(spec, mod, args, logdir)
        if args.retries:
            retry_failures(spec, mod, res, args, logdir, expected)
        with lock:
            results[mod] = res
            c = summarise(res)
            print(f'[{name}] {len(results):2}/{len(modules)} {mod:15} '
                  f'{res["wall"]:6.1f}s  ran={c["ran"]} pass={c["passed"]} '
                  f'fail={c["failed"]} err={c["errors"]} hung={c["hung"]} '
                  f'skip={c["skipped"]} mock={c["mock"]}', file=sys.stderr)
        return res

    with concurrent.futures.ThreadPoolExecutor(args.jobs) as ex:
        list(ex.map(one, order))
    return {'name': name, 'spec': spec, 'loop_type': loop_type,
            'order': list(modules), 'modules': results,
            'wall': round(time.monotonic() - t0, 1), 'logdir': str(logdir)}


def to_json(run):
    return {
        'name': run['name'], 'spec': run['spec'],
        'loop_type': run['loop_type'], 'wall': run['wall'],
        'python': sys.version.split()[0], 'logdir': run['logdir'],
        'modules': {m: dict(run['modules'][m],
                            counts=summarise(run['modules'][m]))
                    for m in run['order']},
        'totals': {k: sum(summarise(run['modules'][m])[k]
                          for m in run['order'])
                   for k in summarise({'tests': {}})},
    }


def main(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--loop', default='eloop',
                    help='MODULE:FACTORY or alias asyncio/uvloop/eloop '
                         '(default: eloop = eloop:new_event_loop)')
    ap.add_argument('--compare', metavar='LOOP1,LOOP2,...',
                    help='run several loops and print one combined table')
    ap.add_argument('--modules', help='comma-separated subset, e.g. '
                    'events,streams (default: all %d)' % len(MODULES))
    ap.add_argument('-k', action='append', metavar='SUBSTR',
                    help='only tests whose id contains SUBSTR (repeatable)')
    ap.add_argument('--timeout', type=float, default=300.0,
                    help='wall-clock budget per module in seconds (300)')
    ap.add_argument('--test-timeout', type=float, default=45.0,
                    help='a single test running longer is killed and '
                         'counted as hung; the module then resumes (45)')
    ap.add_argument('--jobs', '-j', type=int, default=2,
                    help='modules run in parallel (2)')
    ap.add_argument('--retries', type=int, default=1,
                    help='re-run unlisted failures this many times in a '
                         'fresh process; pass on retry = flaky (1)')
    ap.add_argument('--all-variants', action='store_true',
                    help='also run the Poll/Select selector-variant classes')
    ap.add_argument('--check', action='store_true',
                    help='exit 1 on unlisted failures or stale entries in '
                         'expected_failures_<loop>.txt')
    ap.add_argument('--update-expected', action='store_true',
                    help='rewrite expected_failures_<loop>.txt from this run')
    ap.add_argument('--reason', default='TODO',
                    help='reason for new entries with --update-expected')
    ap.add_argument('--expected', help='expected-failures file to use '
                    '(default tools/conformance/expected_failures_<loop>.txt)')
    ap.add_argument('--markdown', action='store_true',
                    help='print the table(s) as Markdown')
    ap.add_argument('--json', metavar='FILE', help='write full results')
    ap.add_argument('--log-dir', help='keep child logs here '
                    '(default: a new temp dir)')
    ap.add_argument('-v', '--verbose', action='store_true',
                    help='list every failing test with its last error line '
                         'and dumps of hung tests')
    args = ap.parse_args(argv)

    modules = MODULES
    if args.modules:
        modules = [m.strip().removeprefix('test_')
                   for m in args.modules.split(',') if m.strip()]
        for m in modules:
            if m in NOT_APPLICABLE:
                print(f'warning: {m} tests stdlib internals '
                      f'({NOT_APPLICABLE[m]})', file=sys.stderr)
    specs = [normalize_spec(s.strip()) for s in
             (args.compare.split(',') if args.compare else [args.loop])
             if s.strip()]
    if args.expected and len(specs) > 1 and \
            (args.check or args.update_expected):
        raise SystemExit('error: --expected cannot be used with several loops')

    runs = [run_loop(spec, args, modules) for spec in specs]
    print(file=sys.stderr)

    if args.compare:
        print_compare(runs, args)
        for run in runs:
            print_problems(run, args.verbose)
    else:
        for run in runs:
            print_run(run, args)
            print_problems(run, args.verbose)

    ok = True
    for run in runs:
        path = expected_path(args, run['name'])
        if args.check:         # against the file as it was before updating
            ok = check(run, path) and ok
        if args.update_expected:
            update_expected(run, path, args.reason)

    if args.json:
        data = [to_json(r) for r in runs]
        with open(args.json, 'w', encoding='utf-8') as f:
            json.dump({'runs': data, 'not_applicable': NOT_APPLICABLE}, f,
                      indent=1)
        print(f'wrote {args.json}', file=sys.stderr)
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
