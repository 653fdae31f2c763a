"""Run a scenario over a grid of parameters, in parallel, saving each point as it completes.

    python -m testbed.sweep SCENARIO --grid KEY=V1,V2,... [--grid ...] [--set KEY=VALUE ...] [--quick]
                            [--workers N] [--threads-per-worker T] [--out DIR] [--resume | --overwrite]
                            [--scheduler ADDRESS | --local-cluster] [--no-progress]

Example: ``python -m testbed.sweep saddle --grid lr=0.01,0.03,0.1 --grid noise=0,0.01 --workers 2``.

- The grid is the Cartesian product of the ``--grid`` options (in the order given); ``--set`` fixes a parameter
  for every point. Keys are the scenario's parameters (its ``DEFAULTS``); values are read with the type of the
  default (``true``/``false`` for booleans; list parameters take items joined by ``+``, e.g.
  ``--grid inits=he+lecun,glorot``).
- Each point is saved, as soon as it completes, to ``DIR/KEY=VALUE__KEY=VALUE/`` (a
  :class:`testbed.results.Result` folder, written into a hidden temporary folder and renamed into place, so a
  point folder is complete or absent). ``DIR`` defaults to ``results/sweep-SCENARIO``; ``DIR/summary.csv`` has
  one row per point (its grid values and its summary scalars) and ``DIR/sweep.json`` records the sweep.
- Points run in worker processes (``concurrent.futures.ProcessPoolExecutor``, spawn start method;
  ``--workers 1`` runs them in this process). Each worker gets ``--threads-per-worker`` Numba threads (default:
  the CPU count divided by the number of workers), so the workers do not fight over the cores.
- Ctrl-C stops the sweep (exit status 130) and keeps every finished point; ``--resume`` then skips the points
  already saved (with the same parameters) and runs the rest. Without ``--resume`` or ``--overwrite`` an
  output folder that already holds points is refused, so no finished work is lost by accident.
- Dask (optional extra: ``pip install 'testbed[dask]'``): ``--scheduler tcp://HOST:8786`` sends the points to
  a running Dask cluster, ``--local-cluster`` starts a local one with ``--workers`` worker processes. Workers
  return the results to this process, which saves them, so the workers need no shared file system.

Bad input (unknown scenario or parameter, a malformed ``--grid``, an output folder that cannot be written, a
scenario that rejects a value) is one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import re
import shutil
import sys
import tempfile
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path

from .results import RESULT_FILE, _normalise_table, _table_csv, atomic_write_bytes, load, to_jsonable
from .scenarios import common
from .validation import closest

#: Suffix of the hidden folders a point is written into before it is renamed into place.
PARTIAL_SUFFIX = ".partial"

SUMMARY_FILE = "summary.csv"
SWEEP_FILE = "sweep.json"


# ----------------------------------------------------------------------------------------------------------
# Grid


def parse_value(key, text, default):
    """``text`` read with the type of the parameter's ``default`` (ValueError naming ``key`` when it fails)."""
    text = text.strip()
    try:
        if isinstance(default, bool):
            lowered = text.lower()
            if lowered in ("true", "1", "yes"):
                return True
            if lowered in ("false", "0", "no"):
                return False
            raise ValueError
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float):
            return float(text)
        if isinstance(default, (list, tuple)):
            item_default = default[0] if len(default) else ""
            return [parse_value(key, item, item_default) for item in text.split("+") if item.strip()]
        if isinstance(default, str):
            return text
    except ValueError:
        kind = "true/false" if isinstance(default, bool) else type(default).__name__
        raise ValueError(f"{key}: cannot read {text!r} as {kind}") from None
    for convert in (int, float):  # no default to go by: the narrowest number, else text
        try:
            return convert(text)
        except ValueError:
            pass
    return {"true": True, "false": False, "none": None}.get(text.lower(), text)


def parse_assignments(specs, defaults, *, option, many):
    """``["key=v1,v2", ...]`` -> ``{key: [v1, v2]}`` (or ``{key: v}`` when not ``many``), checked against defaults."""
    parsed = {}
    for spec in specs or []:
        key, sep, values = spec.partition("=")
        key = key.strip()
        if not sep or not key or not values.strip():
            raise ValueError(f"{option} expects KEY=VALUE{',VALUE...' if many else ''}, got {spec!r}")
        if key not in defaults:
            raise ValueError(
                f"unknown parameter {key!r} in {option}{closest(key, defaults)}; valid parameters: "
                f"{', '.join(sorted(defaults))}"
            )
        if key in parsed:
            raise ValueError(f"parameter {key!r} given twice in {option}")
        if many:
            parsed[key] = [parse_value(key, item, defaults[key]) for item in values.split(",") if item.strip()]
        else:
            parsed[key] = parse_value(key, values, defaults[key])
    return parsed


def grid_points(grid):
    """The Cartesian product of ``grid`` (``{key: [values]}``) as a list of dicts, first key slowest."""
    keys = list(grid)
    return [dict(zip(keys, values)) for values in itertools.product(*(grid[key] for key in keys))]


def _format_for_name(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "+".join(_format_for_name(item) for item in value)
    return str(value)


def point_name(point):
    """The folder name of a grid point: ``key=value__key=value`` (unsafe characters replaced by ``_``)."""
    if not point:
        return "point"
    text = "__".join(f"{key}={_format_for_name(value)}" for key, value in point.items())
    return re.sub(r"[^A-Za-z0-9._+=-]", "_", text)


# ----------------------------------------------------------------------------------------------------------
# Running one point (in a worker)


#: In a worker process: the queue on which it tells the coordinator which point it starts (pid, point name).
_started_points = None


def _init_worker(threads, started=None):
    global _started_points
    # Before numba is imported in the worker: the size of its thread pool.
    if threads:
        os.environ["NUMBA_NUM_THREADS"] = str(threads)
    import signal

    # Ctrl-C reaches the whole process group; the coordinating process handles it and stops the workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _started_points = started
    _exit_with_the_coordinator()


def _exit_with_the_coordinator():
    """End this worker as soon as the process that started it dies (kill -9 included): a daemon thread waits on
    the parent's sentinel, so no worker is left blocked on a pipe to a coordinator that is gone."""
    import multiprocessing
    import threading
    from multiprocessing.connection import wait as wait_for

    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch():
        wait_for([parent.sentinel])
        os._exit(EXIT_ORPHANED)

    threading.Thread(target=watch, name="testbed-sweep-parent-watch", daemon=True).start()


#: Exit status of a worker whose coordinator died.
EXIT_ORPHANED = 3


def _run_pool_point(point_folder_name, scenario, params, quick, threads):
    """:func:`run_point` in a pool worker, after telling the coordinator which point this process runs."""
    if _started_points is not None:
        _started_points.put((os.getpid(), point_folder_name))
    return run_point(scenario, params, quick, threads)


def run_point(scenario, params, quick, threads=None):
    """Run one point of a sweep and return its Result (runs in a worker process or a Dask worker)."""
    module = common.load_scenario(scenario)
    if threads and "numba" in sys.modules:
        import numba

        numba.set_num_threads(max(1, min(int(threads), numba.config.NUMBA_NUM_THREADS)))
    return module.run(quick=quick, progress=False, **params)


# ----------------------------------------------------------------------------------------------------------
# Saving


def save_point(result, out, name):
    """Save ``result`` to ``out/name`` atomically: into a hidden temporary folder, then renamed into place."""
    out = Path(out)
    final = out / name
    partial = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=PARTIAL_SUFFIX, dir=out))
    try:
        result.save(partial)
        if final.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{name}.old.", suffix=PARTIAL_SUFFIX, dir=out))
            os.replace(final, old / name)
            os.replace(partial, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(partial, final)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return final


def saved_point_matches(folder, point, base):
    """True when ``folder`` holds a complete, undamaged result (every file verified by
    :func:`testbed.results.load`) whose parameters include the point's values and ``base``."""
    try:
        saved = load(folder).params
    except (OSError, ValueError):  # missing or damaged (ResultFileError): the point is run again
        return False
    wanted = to_jsonable({**base, **point})
    return all(key in saved and _equal(saved[key], value) for key, value in wanted.items())


def _read_record(path):
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _equal(a, b):
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def _summary_row(point, result):
    row = {key: _format_for_name(value) if isinstance(value, (list, tuple)) else value for key, value in point.items()}
    row["point"] = point_name(point)
    for key, value in result.summary.items():
        if isinstance(value, (bool, int, float, str)) or value is None:
            row.setdefault(key, value)
    if result.wall_time is not None:
        row.setdefault("wall_time_s", result.wall_time)
    return row


def write_summary(out, points):
    """Write ``out/summary.csv``: one row per saved point (grid values, then summary scalars)."""
    rows = []
    for point in points:
        folder = Path(out) / point_name(point)
        if (folder / RESULT_FILE).is_file():
            try:
                rows.append(_summary_row(point, load(folder)))
            except ValueError:  # a damaged point (ResultFileError): not summarised; --resume recomputes it
                continue
    if rows:
        columns, kinds, rows = _normalise_table("summary", rows)
        atomic_write_bytes(Path(out) / SUMMARY_FILE, _table_csv(columns, kinds, rows))
    return len(rows)


# ----------------------------------------------------------------------------------------------------------
# The sweep


class SweepError(ValueError):
    """Bad input to a sweep (the message is the one-line error of the command line)."""


def run_sweep(
    scenario,
    grid,
    *,
    base=None,
    quick=False,
    out=None,
    workers=1,
    threads_per_worker=None,
    resume=False,
    overwrite=False,
    client=None,
    progress=True,
    log=common.progress_write,
):
    """Run ``scenario`` at every point of ``grid`` and save each point to ``out/NAME`` as it completes.

    ``grid`` maps parameter names to lists of values, ``base`` fixes other parameters. ``workers`` worker
    processes (1: this process), or the Dask ``client`` when given. Returns a dict with the lists of point
    names ``done`` (run now) and ``skipped`` (already saved, with ``resume``). KeyboardInterrupt propagates after
    the running points are stopped; every point saved before it stays.
    """
    module = common.load_scenario(scenario)
    name = common.scenario_name(module)
    defaults = module.DEFAULTS
    base = dict(base or {})
    for key in list(grid) + list(base):
        if key not in defaults:
            raise SweepError(f"unknown parameter {key!r}{closest(key, defaults)}; valid: {', '.join(sorted(defaults))}")
    for key, values in grid.items():
        if not isinstance(values, (list, tuple)) or not values:
            raise SweepError(f"grid values of {key!r} must be a non-empty list, got {values!r}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise SweepError(f"workers must be a positive integer, got {workers!r}")
    if threads_per_worker is None:
        threads_per_worker = max(1, (os.cpu_count() or 1) // workers)
    out = common.check_writable(out if out is not None else Path("results") / f"sweep-{name}", create=False)

    points = grid_points(grid)
    names = [point_name(point) for point in points]
    if len(set(names)) != len(names):
        repeated = sorted({n for n in names if names.count(n) > 1})
        raise SweepError(
            f"the grid gives point {repeated[0]!r} twice (a value repeated, or two values that print alike)"
        )
    check_points(module, points, names, base, quick)
    common.check_writable(out)  # bad input created nothing; now the folder is made
    for stale in out.glob(f".*{PARTIAL_SUFFIX}"):  # left by a sweep that was killed mid-save
        shutil.rmtree(stale, ignore_errors=True)

    existing = [n for n in names if (out / n / RESULT_FILE).is_file()]
    if existing and not (resume or overwrite):
        raise SweepError(
            f"{out} already holds {len(existing)} saved point(s) of this grid; pass --resume to keep them "
            f"or --overwrite to recompute them"
        )
    previous = _read_record(out / SWEEP_FILE)
    same_sweep = previous is None or (previous.get("scenario") == module.__name__ and previous.get("quick") == quick)
    skipped = set()
    if resume and same_sweep:
        skipped = {n for n, p in zip(names, points) if saved_point_matches(out / n, p, base)}
    todo = [(n, p) for n, p in zip(names, points) if n not in skipped]
    record = dict(
        scenario=module.__name__, grid=to_jsonable(grid), base=to_jsonable(base), quick=bool(quick), points=names
    )
    atomic_write_bytes(out / SWEEP_FILE, (json.dumps(record, indent=2) + "\n").encode("utf-8"))
    if skipped:
        log(f"resuming: {len(skipped)} of {len(points)} points already saved in {out}")

    done = []
    failed = {}
    bar = common.progress(total=len(todo), desc=f"sweep {name}", enabled=progress, unit="point")

    def finish(point_folder_name, point, result):
        save_point(result, out, point_folder_name)
        done.append(point_folder_name)
        bar.update(1)

    try:
        if client is not None:
            _run_dask(client, module.__name__, todo, base, quick, threads_per_worker, finish)
        elif workers == 1:
            for point_folder_name, point in todo:
                bar.set_postfix_str(point_folder_name, refresh=False)
                try:
                    result = run_point(module.__name__, {**base, **point}, quick)
                except ValueError as error:
                    raise _point_error(point_folder_name, error) from None
                finish(point_folder_name, point, result)
        else:
            _run_processes(module.__name__, todo, base, quick, workers, threads_per_worker, finish, failed)
    finally:
        bar.close()
        write_summary(out, points)
    for point_folder_name, reason in sorted(failed.items()):
        log(f"point {point_folder_name} failed: {reason}; not saved (rerun with --resume to run it again)")
    return dict(done=done, skipped=sorted(skipped), out=out, points=names, failed=dict(sorted(failed.items())))


def check_points(module, points, names, base, quick):
    """Validate every point with the scenario's ``validate`` (when it has one) before the first runs: a bad
    grid value is a :class:`SweepError` naming its point, with nothing computed."""
    validate = getattr(module, "validate", None)
    if validate is None:
        return
    quick_overrides = getattr(module, "QUICK", {})
    for point_folder_name, point in zip(names, points):
        try:
            validate(common.merge_params(module.DEFAULTS, quick_overrides, quick, {**base, **point}))
        except ValueError as error:
            raise _point_error(point_folder_name, error) from None


def _point_error(point_folder_name, error):
    return SweepError(f"point {point_folder_name}: {error}")


def _describe_exit(exitcode):
    if exitcode is not None and exitcode < 0:
        import signal

        try:
            return f"killed by signal {-exitcode} ({signal.Signals(-exitcode).name})"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exited with status {exitcode}"


def _run_processes(module_name, todo, base, quick, workers, threads, finish, failed):
    """Run ``todo`` on a pool of ``workers`` processes. A worker that dies (kill -9, the OOM killer) breaks the
    pool: its point is recorded in ``failed`` (name -> reason) and the points not finished run on a new pool."""
    remaining = list(todo)
    while remaining:
        remaining = _run_pool(module_name, remaining, base, quick, workers, threads, finish, failed)


def _run_pool(module_name, todo, base, quick, workers, threads, finish, failed):
    import multiprocessing
    from concurrent.futures.process import BrokenProcessPool

    context = multiprocessing.get_context("spawn")
    started = context.SimpleQueue()
    executor = ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=_init_worker, initargs=(threads, started)
    )
    clean = False
    finished = set()
    try:
        futures = {}
        for point_folder_name, point in todo:
            try:
                future = executor.submit(
                    _run_pool_point, point_folder_name, module_name, {**base, **point}, quick, threads
                )
            except (BrokenProcessPool, OSError):
                # A worker died while the next one was being started: the pool broke under the submissions (the
                # start fails on its closed queue). The points not submitted go to the next pool.
                if not futures:
                    raise
                break
            futures[future] = (point_folder_name, point)
        processes = dict(getattr(executor, "_processes", None) or {})  # pid -> Process, all spawned by now
        pending = set(futures)
        while pending:
            completed, pending = wait(pending, return_when=FIRST_COMPLETED)
            # the points that finished first: a broken pool below must not lose a result already here
            for future in sorted(completed, key=lambda f: f.exception() is not None):
                point_folder_name, point = futures[future]
                try:
                    result = future.result()
                except ValueError as error:
                    raise _point_error(point_folder_name, error) from None
                except BrokenProcessPool:
                    # The pool's own thread reaps its workers: wait for it before reading their exit codes.
                    executor.shutdown(wait=True)
                    lost = _points_of_dead_workers(processes, started, finished)
                    if not lost:  # a worker died outside any point: running again would only repeat it
                        reasons = sorted(
                            {_describe_exit(p.exitcode) for p in processes.values() if p.exitcode not in (None, 0)}
                        )
                        raise SweepError(
                            f"a worker process died ({', '.join(reasons) or 'unknown cause'}) "
                            "outside any point; the finished points are saved"
                        ) from None
                    failed.update(lost)
                    clean = True  # every worker has gone; nothing left to stop
                    return [(n, p) for n, p in todo if n not in finished and n not in lost]
                finish(point_folder_name, point, result)
                finished.add(point_folder_name)
        clean = True
        return [(n, p) for n, p in todo if n not in finished]  # those a broken submission left out
    finally:
        if clean:
            executor.shutdown(wait=True)
        else:  # interrupted or failed: stop the running points now, keep what was saved
            processes = list((getattr(executor, "_processes", None) or {}).values())
            executor.shutdown(wait=False, cancel_futures=True)
            for process in processes:
                process.terminate()
            for process in processes:
                process.join(timeout=5)


def _points_of_dead_workers(processes, started, finished):
    """{point name: reason} for the points that the dead workers among ``processes`` were running (each worker
    put (pid, point) on ``started`` as it began a point; its last one is what it was running).

    Call it after the broken pool is shut down: the pool's thread has then reaped every worker and recorded its
    exit code. Reaping them here as well would race that thread: the ``waitpid`` that loses fails, and the
    process's exit code reads None while the other thread has not yet stored it, so the worker killed first
    would be missed and a worker the pool stopped with SIGTERM blamed instead.
    """
    running = {}
    while not started.empty():
        pid, point_folder_name = started.get()
        running[pid] = point_folder_name
    import signal

    dead = {pid: p.exitcode for pid, p in processes.items() if p.exitcode not in (None, 0)}
    # the pool stops the workers still alive with SIGTERM once one has died: theirs are no failures of their own
    first = {pid: code for pid, code in dead.items() if code != -signal.SIGTERM} or dead
    return {
        running[pid]: f"its worker process died ({_describe_exit(code)})"
        for pid, code in first.items()
        if pid in running and running[pid] not in finished
    }


def _run_dask(client, module_name, todo, base, quick, threads, finish):
    from dask.distributed import as_completed

    futures = {}
    for point_folder_name, point in todo:
        future = client.submit(
            run_point,
            module_name,
            {**base, **point},
            quick,
            threads,
            pure=False,
            key=f"testbed-sweep-{point_folder_name}-{os.getpid()}-{id(todo)}",
        )
        futures[future] = (point_folder_name, point)
    try:
        for future in as_completed(list(futures)):
            point_folder_name, point = futures[future]
            try:
                result = future.result()
            except ValueError as error:
                raise _point_error(point_folder_name, error) from None
            finish(point_folder_name, point, result)
    except BaseException:
        client.cancel(list(futures))
        raise


# ----------------------------------------------------------------------------------------------------------
# Command line


def build_parser():
    parser = common._Parser(
        prog="python -m testbed.sweep",
        description=(__doc__ or "").strip(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("scenario", help="scenario name (testbed/scenarios/NAME.py) or a module path")
    parser.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2", help="values of one parameter")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="fix a parameter")
    parser.add_argument("--quick", action="store_true", help="the scenario's quick settings at every point")
    parser.add_argument("--workers", type=int, default=1, help="parallel worker processes (default 1: in process)")
    parser.add_argument("--threads-per-worker", type=int, default=None, help="Numba threads per worker")
    parser.add_argument("--out", default=None, metavar="DIR", help="output folder (default results/sweep-NAME)")
    again = parser.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true", help="skip the points already saved in DIR")
    again.add_argument("--overwrite", action="store_true", help="recompute points already saved in DIR")
    dask = parser.add_mutually_exclusive_group()
    dask.add_argument("--scheduler", default=None, metavar="ADDRESS", help="address of a Dask scheduler")
    dask.add_argument("--local-cluster", action="store_true", help="run on a local Dask cluster of --workers")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def _dask_client(args):
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise SweepError("Dask is not installed; install the extra: pip install 'testbed[dask]'") from None
    try:
        if args.scheduler:
            return Client(args.scheduler, timeout="10s")
        cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None)
        return Client(cluster)
    except (OSError, TimeoutError) as error:
        raise SweepError(f"cannot connect to the Dask scheduler {args.scheduler!r}: {error}") from None


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    client = None
    try:
        if args.threads_per_worker is not None and args.threads_per_worker < 1:
            raise SweepError(f"--threads-per-worker must be a positive integer, got {args.threads_per_worker}")
        if not args.grid:
            raise SweepError("give at least one --grid KEY=V1,V2,...")
        module = common.load_scenario(args.scenario)
        grid = parse_assignments(args.grid, module.DEFAULTS, option="--grid", many=True)
        base = parse_assignments(args.set, module.DEFAULTS, option="--set", many=False)
        overlap = sorted(set(grid) & set(base))
        if overlap:
            raise SweepError(f"parameter {overlap[0]!r} is both in --grid and in --set")
        if args.scheduler or args.local_cluster:
            client = _dask_client(args)
        report = run_sweep(
            args.scenario,
            grid,
            base=base,
            quick=args.quick,
            out=args.out,
            workers=args.workers,
            threads_per_worker=args.threads_per_worker,
            resume=args.resume,
            overwrite=args.overwrite,
            client=client,
            progress=not args.no_progress,
        )
    except ValueError as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return common.EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(
            f"{parser.prog}: interrupted; finished points are saved, rerun with --resume to continue", file=sys.stderr
        )
        return common.EXIT_INTERRUPTED
    except OSError as error:
        print(
            f"{parser.prog}: error: {error.strerror or error}: {getattr(error, 'filename', '') or ''}", file=sys.stderr
        )
        return common.EXIT_BAD_INPUT
    finally:
        if client is not None:
            cluster = getattr(client, "cluster", None)
            client.close()
            if cluster is not None:
                cluster.close()
    print(
        f"ran {len(report['done'])} point(s), skipped {len(report['skipped'])}; results in {report['out']}/ "
        f"(summary: {report['out'] / SUMMARY_FILE})"
    )
    if report["failed"]:
        print(
            f"{parser.prog}: {len(report['failed'])} point(s) failed: "
            + "; ".join(f"{name}: {reason}" for name, reason in report["failed"].items()),
            file=sys.stderr,
        )
        return EXIT_POINTS_FAILED
    return 0


#: Exit status of a sweep that ran to its end with some points failed (their workers died).
EXIT_POINTS_FAILED = 1


if __name__ == "__main__":
    raise SystemExit(main())
