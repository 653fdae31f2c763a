"""Result records: what a scenario measured, with the parameters and provenance needed to trust and redo it.

A :class:`Result` holds

- ``scenario``: the scenario's name (``"variance"``, ``"saddle"``, ...);
- ``params``: every parameter of the run (after defaults were filled in), including ``seed`` and ``backend``;
- ``summary``: the headline numbers (JSON-able scalars, lists, nested dicts);
- ``arrays``: named NumPy arrays (per-layer variances, escape times, trajectories);
- ``tables``: named tidy tables, each a list of rows (dicts of scalars), one observation per row;
- ``provenance``: package version, git commit, numba/numpy/python versions, platform, Numba threads, backend,
  seed, wall time and a UTC timestamp; filled in automatically when not given.

``result.save(folder)`` writes ``result.json`` (scenario, params, summary, provenance and the layout of the
arrays and tables), ``arrays.npz`` and one CSV per table (``<table>.csv``: a header line, no index column, read
directly by ``pandas.read_csv``). :func:`load` reads a folder back into a :class:`Result` equal to the saved one.
Every file is written atomically (a temporary file in the same folder, then :func:`os.replace`), and
``result.json`` is written last: an interrupted save never leaves a truncated file, and a folder with a
``result.json`` is complete.

``result.json`` also records, for every data file, its size and SHA-256 (``files``), each array's shape and
dtype and each table's row count; :func:`load` checks them all and raises :class:`ResultFileError` (a
ValueError) naming the file and what is wrong for every kind of damage: a missing, truncated, changed or
unreadable file, a missing key, a row too short or too long, a cell that does not parse. A folder without
``result.json`` raises :class:`MissingResultError` (also a FileNotFoundError). :meth:`Result.save` into a folder
that holds an older result first removes that result's files and any temporary file a killed save left there.

``params`` and ``summary`` are kept in their JSON form from the start (NumPy scalars become Python numbers,
tuples become lists), so that what a scenario returns is exactly what :func:`load` gives back.

Wall time: wrap the work in :class:`Timer` and store it, ``result.wall_time = timer.seconds``.
"""

from __future__ import annotations

import csv
import datetime
import functools
import hashlib
import io
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

#: Version of the on-disk layout written by :meth:`Result.save`.
FORMAT_VERSION = 2

RESULT_FILE = "result.json"
ARRAYS_FILE = "arrays.npz"

#: Versions :func:`load` reads: 1 (no checksums: shapes and dtypes are checked) and 2 (every file checked).
READABLE_VERSIONS = (1, 2)


class ResultFileError(ValueError):
    """A saved result that cannot be trusted: a file missing, unreadable, truncated or changed since it was saved.

    The message names the file and what is wrong. Raised by :func:`load` for every kind of damage.
    """


class MissingResultError(ResultFileError, FileNotFoundError):
    """The folder holds no ``result.json`` (no saved result, or a save that never finished)."""


# ----------------------------------------------------------------------------------------------------------
# Atomic writes


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically: a temporary file in the same folder, flushed, then renamed.

    Parameters
    ----------
    path : str or path-like
        The destination; its folder must exist.
    data : bytes
        The file's whole content.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    path = Path(path)
    with atomic_open(path) as handle:
        handle.write(data)
    return path


def _current_umask():
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


#: Permissions of the files written (mkstemp makes them private; a saved result is an ordinary file).
FILE_MODE = 0o666 & ~_current_umask()


class atomic_open:
    """``with atomic_open(path) as f: f.write(...)`` (binary): the file appears whole at ``path`` or not at all.

    The temporary file lives in the destination folder (so :func:`os.replace` is a rename on one file system)
    and is removed if the block raises, KeyboardInterrupt included.

    Parameters
    ----------
    path : str or path-like
        The destination; its folder must exist.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def __enter__(self):
        folder = self.path.parent
        fd, self._temporary = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=folder)
        self._handle = os.fdopen(fd, "wb")
        try:
            os.chmod(self._temporary, FILE_MODE)
        except OSError:  # a file system without permissions: keep what mkstemp gave
            pass
        return self._handle

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                self._handle.flush()
                os.fsync(self._handle.fileno())
            self._handle.close()
            if exc_type is None:
                os.replace(self._temporary, self.path)
        finally:
            if os.path.exists(self._temporary):
                os.unlink(self._temporary)
        return False


# ----------------------------------------------------------------------------------------------------------
# JSON conversion


def to_jsonable(value: Any) -> Any:
    """``value`` with NumPy scalars and arrays turned into Python numbers and lists, tuples into lists.

    Dict keys become strings. Non-finite floats stay floats (written as ``NaN``/``Infinity``, which Python's
    ``json`` and pandas read back). Anything else that JSON cannot hold raises TypeError naming its type.

    Parameters
    ----------
    value : object
        A scalar, array, list, tuple or dict (nested freely).

    Returns
    -------
    object
        The same value made of dicts with str keys, lists, str, int, float, bool and None.

    Raises
    ------
    TypeError
        If ``value`` holds something JSON cannot hold (the message names its type).
    """
    if isinstance(value, dict):
        return {str(key): to_jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(item) for item in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    if isinstance(value, (str, type(None))):
        return value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (np.dtype, type)) and _is_numpy_type(value):
        return np.dtype(value).name
    raise TypeError(f"cannot store a value of type {type(value).__name__} in a result: {value!r}")


def _is_numpy_type(value):
    try:
        np.dtype(value)
    except TypeError:
        return False
    return True


def _same(a, b):
    """Equality for JSON-like values and arrays in which NaN equals NaN."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        return a.shape == b.shape and a.dtype == b.dtype and bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[key], b[key]) for key in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


# ----------------------------------------------------------------------------------------------------------
# Provenance


@functools.lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The commit of the repository the package lives in (``+dirty`` when it has changes), or None."""
    folder = Path(__file__).resolve().parent
    try:
        top = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"], cwd=folder, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        if Path(top).resolve() != folder.parent:
            return None  # an installed copy inside some other repository: that commit is not ours
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{commit}+dirty" if dirty else commit or None


def package_version() -> str:
    """The testbed's version: ``testbed.__version__``, read from the installed distribution's metadata."""
    import testbed

    return testbed.__version__


def _numba_threads():
    try:
        import numba

        return int(numba.get_num_threads())
    except Exception:  # numba missing or its threading layer unavailable: report it as unknown
        return None


def make_provenance(params: dict | None = None, wall_time: float | None = None) -> dict:
    """What produced a result: versions, commit, platform, threads, backend, seed, wall time, timestamp.

    Parameters
    ----------
    params : dict or None
        The run's parameters; their ``backend`` and ``seed`` are copied.
    wall_time : float or None
        Seconds the run took, if known.

    Returns
    -------
    dict
        The provenance record (JSON-able), timestamped now in UTC.
    """
    params = params or {}
    try:
        import numba

        numba_version = numba.__version__
    except ImportError:
        numba_version = None
    return {
        "testbed_version": package_version(),
        "git_commit": git_commit(),
        "numba_version": numba_version,
        "numpy_version": np.__version__,
        "python_version": platform.python_version(),
        "platform": platform.platform(),
        "numba_threads": _numba_threads(),
        "backend": to_jsonable(params.get("backend")),
        "seed": to_jsonable(params.get("seed")),
        "wall_time_s": None if wall_time is None else float(wall_time),
        "timestamp_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(sys.argv) if sys.argv and sys.argv[0] else None,
    }


class Timer:
    """Wall-clock timer: ``with Timer() as timer: ...`` then ``timer.seconds`` (also readable while running)."""

    def __init__(self) -> None:
        self._start = None
        self._stop = None

    def __enter__(self) -> Timer:
        self._start = time.perf_counter()
        self._stop = None
        return self

    def __exit__(self, *exc):
        self._stop = time.perf_counter()
        return False

    @property
    def seconds(self) -> float:
        """Seconds since the block began, up to its end once it has ended (0.0 before it begins)."""
        if self._start is None:
            return 0.0
        end = self._stop if self._stop is not None else time.perf_counter()
        return end - self._start


# ----------------------------------------------------------------------------------------------------------
# Tables


def _column_kind(values):
    kinds = set()
    for value in values:
        if value is None:
            continue
        if isinstance(value, (bool, np.bool_)):
            kinds.add("bool")
        elif isinstance(value, (int, np.integer)):
            kinds.add("int")
        elif isinstance(value, (float, np.floating)):
            kinds.add("float")
        elif isinstance(value, str):
            kinds.add("str")
        else:
            raise TypeError(f"table cells must be numbers, strings, booleans or None, got {type(value).__name__}")
    if not kinds:
        return "float"
    if len(kinds) == 1:
        return kinds.pop()
    if kinds <= {"int", "float"}:
        return "float"
    return "str"


def _format_cell(value, kind):
    if value is None:
        return ""
    if kind == "float":
        return repr(float(value))  # shortest text that reads back to the same float ('nan', 'inf' too)
    if kind == "int":
        return str(int(value))
    if kind == "bool":
        return "True" if value else "False"
    return str(value)


def _parse_cell(text, kind):
    if text == "":
        return None
    if kind == "float":
        return float(text)
    if kind == "int":
        return int(text)
    if kind == "bool":
        return text == "True"
    return text


def _normalise_table(name, rows):
    if not isinstance(rows, (list, tuple)) or not all(isinstance(row, dict) for row in rows):
        raise TypeError(f"table {name!r} must be a list of dicts (one per row)")
    columns = []
    for row in rows:
        for key in row:
            if str(key) not in columns:
                columns.append(str(key))
    kinds = {column: _column_kind([row.get(column) for row in rows]) for column in columns}
    normalised = []
    for row in rows:
        clean = {}
        for column in columns:
            value = row.get(column)
            if value is not None:
                kind = kinds[column]
                value = {"float": float, "int": int, "bool": bool, "str": str}[kind](
                    to_jsonable(value) if kind != "str" else value
                )
            clean[column] = value
        normalised.append(clean)
    return columns, kinds, normalised


def _table_csv(columns, kinds, rows):
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_format_cell(row[column], kinds[column]) for column in columns])
    return text.getvalue().encode("utf-8")


# ----------------------------------------------------------------------------------------------------------
# The record


def _check_name(kind, name):
    if not isinstance(name, str) or not name or not all(c.isalnum() or c in "_-" for c in name):
        raise ValueError(f"{kind} names must be non-empty and use only letters, digits, '_' and '-', got {name!r}")
    return name


@dataclass(eq=False)
class Result:
    """One scenario run: parameters, summary, arrays, tidy tables and provenance (see the module docstring)."""

    scenario: str
    params: dict
    summary: dict
    arrays: dict = field(default_factory=dict)
    tables: dict = field(default_factory=dict)
    provenance: dict | None = None

    def __post_init__(self):
        _check_name("scenario", self.scenario)
        self.params = to_jsonable(dict(self.params))
        self.summary = to_jsonable(dict(self.summary))
        arrays = {}
        for name, array in dict(self.arrays).items():
            _check_name("array", name)
            array = np.asarray(array)
            if array.dtype == object:
                raise TypeError(f"array {name!r} has dtype object; store numbers (or put it in a table)")
            arrays[name] = array
        self.arrays = arrays
        tables = {}
        for name, rows in dict(self.tables).items():
            _check_name("table", name)
            tables[name] = _normalise_table(name, rows)[2]
        self.tables = tables
        if self.provenance is None:
            self.provenance = make_provenance(self.params)
        else:
            self.provenance = to_jsonable(dict(self.provenance))

    # -- wall time ------------------------------------------------------------------------------------------

    @property
    def wall_time(self) -> float | None:
        """Seconds the run took (``provenance['wall_time_s']``), or None when it was not recorded."""
        return self.provenance.get("wall_time_s")

    @wall_time.setter
    def wall_time(self, seconds: float | None) -> None:
        self.provenance["wall_time_s"] = None if seconds is None else float(seconds)

    # -- equality -------------------------------------------------------------------------------------------

    def __eq__(self, other):
        if not isinstance(other, Result):
            return NotImplemented
        return (
            self.scenario == other.scenario
            and _same(self.params, other.params)
            and _same(self.summary, other.summary)
            and _same(self.provenance, other.provenance)
            and self.arrays.keys() == other.arrays.keys()
            and all(_same(self.arrays[name], other.arrays[name]) for name in self.arrays)
            and _same(self.tables, other.tables)
        )

    def __repr__(self):
        arrays = ", ".join(f"{name}{tuple(a.shape)}" for name, a in self.arrays.items())
        tables = ", ".join(f"{name}[{len(rows)} rows]" for name, rows in self.tables.items())
        return f"Result(scenario={self.scenario!r}, params={self.params!r}, arrays=[{arrays}], tables=[{tables}])"

    # -- saving ---------------------------------------------------------------------------------------------

    def save(self, folder: str | os.PathLike[str]) -> Path:
        """Write the result to ``folder`` (created if needed); returns the folder as a Path.

        Files: ``arrays.npz`` (when there are arrays), ``<table>.csv`` per table, then ``result.json``. Each is
        written atomically; ``result.json`` last, so its presence means the folder is complete.

        Parameters
        ----------
        folder : str or path-like
            Where to write; an older result there is replaced (its files that this one does not write are
            removed once this one is saved, and temporary files of killed saves at once).

        Returns
        -------
        pathlib.Path
            ``folder``.

        Raises
        ------
        OSError
            If the folder cannot be created or written.
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        # An older result.json would describe files this save is about to replace: drop it first, so that an
        # interrupted save leaves a folder that reads as incomplete, never a mix of two runs. The older run's
        # data files that this run does not write go once it is saved; temporary files of killed saves go now.
        previous = saved_files(folder)
        (folder / RESULT_FILE).unlink(missing_ok=True)
        for stale in folder.glob(".*.tmp"):
            stale.unlink(missing_ok=True)
        layout_tables = {}
        files = {}

        def write(file_name, data):
            atomic_write_bytes(folder / file_name, data)
            files[file_name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}

        for name, rows in self.tables.items():
            columns, kinds, rows = _normalise_table(name, rows)
            write(f"{name}.csv", _table_csv(columns, kinds, rows))
            layout_tables[name] = {
                "file": f"{name}.csv",
                "columns": columns,
                "kinds": [kinds[c] for c in columns],
                "rows": len(rows),
            }
        if self.arrays:
            buffer = io.BytesIO()
            np.savez(buffer, **self.arrays)
            write(ARRAYS_FILE, buffer.getvalue())
        document = {
            "format_version": FORMAT_VERSION,
            "scenario": self.scenario,
            "params": self.params,
            "summary": self.summary,
            "provenance": self.provenance,
            "arrays": {name: {"shape": list(a.shape), "dtype": a.dtype.str} for name, a in self.arrays.items()},
            "tables": layout_tables,
            "files": files,
        }
        text = json.dumps(document, indent=2, allow_nan=True) + "\n"
        atomic_write_bytes(folder / RESULT_FILE, text.encode("utf-8"))
        for name in previous - set(files):
            (folder / name).unlink(missing_ok=True)
        return folder


def saved_files(folder: str | os.PathLike[str]) -> set[str]:
    """The data files of the result saved in ``folder``, as its ``result.json`` lists them (plain names in the
    folder only); empty when there is none, or it is too damaged to list them.

    Parameters
    ----------
    folder : str or path-like
        A result's folder.

    Returns
    -------
    set of str
        File names in ``folder`` (``result.json`` itself excluded).
    """
    listed = set()
    try:
        document = json.loads((Path(folder) / RESULT_FILE).read_text(encoding="utf-8"))
        listed.update(str(layout["file"]) for layout in document.get("tables", {}).values())
        listed.update(map(str, document.get("files", {})))
        if document.get("arrays"):
            listed.add(ARRAYS_FILE)
    except (OSError, ValueError, TypeError, AttributeError, KeyError):
        return set()
    return {name for name in listed if name and Path(name).name == name and name != RESULT_FILE}


def _damaged(path, what):
    return ResultFileError(f"{path}: {what}")


def _verify_file(folder, name, expected):
    """Check ``folder/name`` against its size and SHA-256 in result.json; return its bytes."""
    path = folder / name
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise _damaged(path, "missing (listed in result.json)") from None
    except OSError as error:
        raise _damaged(path, f"unreadable ({error.strerror or error})") from None
    if expected is not None:
        if len(data) != expected.get("bytes"):
            raise _damaged(
                path,
                f"{len(data)} bytes, but result.json records {expected.get('bytes')} "
                "(truncated or changed since it was saved)",
            )
        if hashlib.sha256(data).hexdigest() != expected.get("sha256"):
            raise _damaged(path, "its SHA-256 differs from the one result.json records (changed since it was saved)")
    return data


def _read_arrays(folder, layout, data):
    path = folder / ARRAYS_FILE
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            arrays = {}
            for name, spec in layout.items():
                if name not in archive.files:
                    raise _damaged(path, f"array {name!r} is missing")
                array = archive[name]
                if list(array.shape) != list(spec["shape"]) or array.dtype.str != spec["dtype"]:
                    raise _damaged(
                        path,
                        f"array {name!r} has shape {list(array.shape)} and dtype {array.dtype.str}, "
                        f"but result.json records {spec['shape']} and {spec['dtype']}",
                    )
                arrays[name] = array
    except ResultFileError:
        raise
    except Exception as error:  # zipfile.BadZipFile, ValueError (pickled data), OSError, EOFError, KeyError ...
        raise _damaged(path, f"not a readable NPZ archive ({type(error).__name__}: {error})") from None
    return arrays


def _read_table(folder, layout, data):
    path = folder / layout["file"]
    try:
        lines = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    except (UnicodeDecodeError, csv.Error) as error:
        raise _damaged(path, f"not a readable CSV file ({error})") from None
    if not lines:
        raise _damaged(path, "empty (no header line)")
    header, body = lines[0], lines[1:]
    if header != layout["columns"]:
        raise _damaged(path, f"columns {header} differ from {layout['columns']}")
    if "rows" in layout and len(body) != layout["rows"]:
        raise _damaged(path, f"{len(body)} rows, but result.json records {layout['rows']}")
    rows = []
    for number, line in enumerate(body, start=2):
        if len(line) != len(header):
            raise _damaged(path, f"line {number} has {len(line)} cells, the header {len(header)}")
        try:
            rows.append({column: _parse_cell(cell, kind) for column, kind, cell in zip(header, layout["kinds"], line)})
        except ValueError as error:
            raise _damaged(path, f"line {number}: {error}") from None
    return rows


def load(folder: str | os.PathLike[str]) -> Result:
    """Read a folder written by :meth:`Result.save` back into a :class:`Result`, verifying every file.

    Raises :class:`MissingResultError` (a FileNotFoundError) when the folder holds no ``result.json`` and
    :class:`ResultFileError` (a ValueError) naming the file and what is wrong when anything is damaged: see the
    module docstring.

    Parameters
    ----------
    folder : str or path-like
        A folder written by :meth:`Result.save`.

    Returns
    -------
    Result
        Equal to the saved one (arrays, tables, summary, params and provenance).

    Raises
    ------
    MissingResultError
        If the folder holds no ``result.json``.
    ResultFileError
        If a file is missing, unreadable, truncated, changed since it was saved, or malformed.
    """
    folder = Path(folder)
    path = folder / RESULT_FILE
    if not path.is_file():
        raise MissingResultError(f"no saved result in {folder} (missing {RESULT_FILE})")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise _damaged(path, f"not a valid result file: {error}") from None
    except OSError as error:
        raise _damaged(path, f"unreadable ({error.strerror or error})") from None
    if not isinstance(document, dict) or document.get("format_version") not in READABLE_VERSIONS:
        raise _damaged(path, f"not a result file of format version {FORMAT_VERSION}")
    try:
        files = document.get("files") if document["format_version"] >= 2 else {}
        if not isinstance(files, dict):
            raise TypeError("'files' is not a mapping")
        checked = document["format_version"] >= 2

        def verified(name):
            if checked and name not in files:
                raise _damaged(path, f"{name} is not listed in 'files'")
            return _verify_file(folder, name, files.get(name) if checked else None)

        arrays = {}
        if document["arrays"]:
            arrays = _read_arrays(folder, document["arrays"], verified(ARRAYS_FILE))
        tables = {}
        for name, layout in document["tables"].items():
            if not isinstance(layout, dict) or Path(str(layout.get("file"))).name != layout.get("file"):
                raise TypeError(f"table {name!r} has no plain file name")
            tables[name] = _read_table(folder, layout, verified(layout["file"]))
        return Result(
            scenario=document["scenario"],
            params=document["params"],
            summary=document["summary"],
            arrays=arrays,
            tables=tables,
            provenance=document["provenance"],
        )
    except ResultFileError:
        raise
    except KeyError as error:
        raise _damaged(path, f"the key {error} is missing") from None
    except (TypeError, ValueError, AttributeError) as error:
        raise _damaged(path, f"not a valid result file: {error}") from None
