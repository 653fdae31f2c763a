"""Regenerate the paper figures from the presets in ``scenarios/*.toml``.

    python -m testbed.figures [--quick] [--only NAME[,NAME...]] [--out DIR] [--presets DIR] [--list]

Each preset ``scenarios/NAME.toml`` describes one figure::

    scenario = "variance"              # the module testbed.scenarios.variance
    figure = "variance_depth"          # which of the scenario's figures (a key of its FIGURES)
    description = "One sentence: what the figure shows."   # optional, for the gallery

    [params]                           # the scenario's parameters (keys of its DEFAULTS)
    depth = 50

    [quick]                            # optional: overrides for --quick, on top of the scenario's own QUICK
    depth = 10

and becomes ``DIR/NAME.png`` (150 dpi, for the README) and ``DIR/NAME.pdf`` (vector). ``NAME`` is the figure's
name: a preset is named after the figure it draws (``tests/test_figures.py`` checks it). ``DIR`` defaults to
``figures/`` (``results/figures-quick/`` with ``--quick``, so a quick run never overwrites the full-size
figures). Presets with the same scenario and parameters share one run.

Every selected preset is checked before anything runs: an unknown key (in the preset or in its parameters), a
missing or malformed file, an unknown scenario, or an output folder that cannot be written is one line on
stderr and exit status 2. Figures are written atomically, so an error or Ctrl-C (exit status 130) never
damages a figure already there.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .results import atomic_open
from .scenarios import common
from .validation import closest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

#: Keys allowed at the top level of a preset.
PRESET_KEYS = ("scenario", "figure", "description", "params", "quick")

#: The folder of the presets in the repository.
DEFAULT_PRESETS = Path(__file__).resolve().parent.parent / "scenarios"


class PresetError(ValueError):
    """A preset file that cannot be used (the message names the file)."""


@dataclass
class Preset:
    """One figure: which scenario runs with which parameters, and which of its figures is kept."""

    name: str
    path: Path
    scenario: str
    figure: str
    description: str = ""
    params: dict = field(default_factory=dict)
    quick: dict = field(default_factory=dict)

    def run_params(self, quick):
        """The parameters passed to the scenario's ``run`` (the preset's quick overrides when ``quick``)."""
        merged = dict(self.params)
        if quick:
            merged.update(self.quick)
        return merged


def read_preset(path) -> Preset:
    """Parse and check one preset file (the scenario module is imported to check parameter names)."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise PresetError(f"{path}: preset file not found") from None
    except OSError as error:
        raise PresetError(f"{path}: cannot read preset: {error.strerror or error}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise PresetError(f"{path}: malformed TOML: {error}") from None
    for key in data:
        if key not in PRESET_KEYS:
            raise PresetError(
                f"{path}: unknown key {key!r}{closest(key, PRESET_KEYS)}; valid keys: {', '.join(PRESET_KEYS)}"
            )
    for key in ("scenario", "figure"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise PresetError(f"{path}: {key!r} must be given as a non-empty string")
    for key in ("params", "quick"):
        if not isinstance(data.get(key, {}), dict):
            raise PresetError(f"{path}: {key!r} must be a table ([{key}])")
    if not isinstance(data.get("description", ""), str):
        raise PresetError(f"{path}: 'description' must be a string")
    try:
        module = common.load_scenario(data["scenario"])
    except ValueError as error:
        raise PresetError(f"{path}: {error}") from None
    valid = getattr(module, "DEFAULTS", {})
    for section in ("params", "quick"):
        for key in data.get(section, {}):
            if key not in valid:
                raise PresetError(
                    f"{path}: unknown key {key!r} in [{section}]{closest(key, valid)}; "
                    f"parameters of scenario {data['scenario']!r}: {', '.join(sorted(valid))}"
                )
    known = getattr(module, "FIGURES", None)
    if known is not None and data["figure"] not in known:
        raise PresetError(
            f"{path}: scenario {data['scenario']!r} has no figure {data['figure']!r}{closest(data['figure'], known)}; "
            f"its figures: {', '.join(known)}"
        )
    return Preset(
        name=path.stem,
        path=path,
        scenario=data["scenario"],
        figure=data["figure"],
        description=data.get("description", ""),
        params=dict(data.get("params", {})),
        quick=dict(data.get("quick", {})),
    )


def find_presets(folder=DEFAULT_PRESETS, only=None):
    """The presets of ``folder`` (all, or the names in ``only``), parsed and checked, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise PresetError(f"{folder}: preset folder not found")
    available = {path.stem: path for path in sorted(folder.glob("*.toml"))}
    if only:
        for name in only:
            if name not in available:
                raise PresetError(
                    f"unknown preset {name!r}{closest(name, available)}; presets in {folder}: "
                    f"{', '.join(available) or '(none)'}"
                )
        names = [name for name in available if name in set(only)]
    else:
        names = list(available)
    if not names:
        raise PresetError(f"{folder}: no presets (*.toml) found")
    return [read_preset(available[name]) for name in names]


def _run_key(preset, quick):
    import json

    return preset.scenario, json.dumps(preset.run_params(quick), sort_keys=True, default=str)


def make_figures(presets, out, *, quick=False, progress=True, log=common.progress_write):
    """Run the presets and write ``out/NAME.png`` and ``out/NAME.pdf`` for each; returns the written paths.

    Presets sharing a scenario and parameters share one run, which draws only the figures they name. A figure
    the run does not draw (its part of the scenario did not run with these parameters) raises
    :class:`PresetError` naming the preset file and the figures that were drawn.
    """
    out = common.check_writable(out)
    groups = {}
    for preset in presets:
        groups.setdefault(_run_key(preset, quick), []).append(preset)
    written = []
    bar = common.progress(total=len(presets), desc="figures", enabled=progress, unit="fig")
    try:
        for group in groups.values():
            first = group[0]
            module = common.load_scenario(first.scenario)
            bar.set_postfix_str(first.scenario, refresh=True)
            try:
                result = module.run(quick=quick, progress=False, **first.run_params(quick))
            except ValueError as error:
                raise PresetError(f"{first.path}: {error}") from None
            scratch = Path(tempfile.mkdtemp(prefix=".figures-", dir=out))
            try:
                made = common.plot(module, result, scratch, names=[preset.figure for preset in group])
                by_name = {}
                for path in made:
                    by_name.setdefault(Path(path).stem, []).append(Path(path))
                for preset in group:
                    sources = {p.suffix: p for p in by_name.get(preset.figure, [])}
                    if ".png" not in sources or ".pdf" not in sources:
                        raise PresetError(
                            f"{preset.path}: scenario {preset.scenario!r} made no figure {preset.figure!r} "
                            f"(it made: {', '.join(sorted(by_name)) or 'none'})"
                        )
                    for suffix in (".png", ".pdf"):
                        target = out / f"{preset.name}{suffix}"
                        with atomic_open(target) as handle, open(sources[suffix], "rb") as source:
                            shutil.copyfileobj(source, handle)
                        written.append(target)
                    log(f"wrote {out / preset.name}.png and .pdf  ({preset.scenario}: {preset.figure})")
                    bar.update(1)
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
    finally:
        bar.close()
    return written


def build_parser():
    parser = common._Parser(
        prog="python -m testbed.figures",
        description=(__doc__ or "").strip(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="small, fast runs (default out: results/figures-quick)")
    parser.add_argument(
        "--only",
        type=common.comma_list(str),
        default=None,
        metavar="NAME[,NAME...]",
        help="only these presets (file stems of scenarios/*.toml)",
    )
    parser.add_argument("--out", default=None, metavar="DIR", help="output folder (default: figures)")
    parser.add_argument("--presets", default=str(DEFAULT_PRESETS), metavar="DIR", help="folder of the presets")
    parser.add_argument("--list", action="store_true", help="list the presets with their descriptions and exit")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    out = Path(args.out) if args.out is not None else Path("results/figures-quick" if args.quick else "figures")
    try:
        presets = find_presets(args.presets, args.only)
        if args.list:
            for preset in presets:
                print(f"{preset.name}: {preset.scenario}/{preset.figure}. {preset.description}".rstrip())
            return 0
        make_figures(presets, out, quick=args.quick, progress=not args.no_progress)
    except ValueError as error:  # PresetError, bad parameters, unwritable folder
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return common.EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted; figures already written are complete", file=sys.stderr)
        return common.EXIT_INTERRUPTED
    except OSError as error:
        print(f"{parser.prog}: error: cannot write to {out}: {error.strerror or error}", file=sys.stderr)
        return common.EXIT_BAD_INPUT
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
