"""The saddle scenario simulates each configuration once: the sweeps' points at the comparison's own lr, noise
and dimension are the comparison's runs, not new runs of the same configuration with another seed. Run as a
program, a bad argument fails before the figure worker starts."""

import types

from testbed import montecarlo
from testbed.scenarios import _figure_worker, common, saddle

#: A tiny run whose sweeps meet the comparison (lr 0.01, noise 0.01, d = 10) at one point each.
TINY = dict(
    optimizers=["gd_perturbed", "sgd", "adam"],
    trials=40,
    max_steps=3000,
    sweep_lr=[0.01, 0.02],
    sweep_noise=[0.01, 0.1],
    sweep_dim=[2, 10],
)


def test_a_configuration_shared_by_the_comparison_and_a_sweep_is_simulated_once(monkeypatch):
    simulated = []
    escape_times = montecarlo.escape_times

    def counted(landscape, optimizer, **options):
        key = (
            type(optimizer).__name__,
            str(sorted(vars(optimizer).items())),
            options["noise"],
            landscape.dim,
            str(options["start"]),
        )
        simulated.append(key)
        return escape_times(landscape, optimizer, **options)

    monkeypatch.setattr(montecarlo, "escape_times", counted)
    result = saddle.run(progress=False, **TINY)
    assert len(simulated) == len(set(simulated)), "a configuration was simulated twice"
    # comparison 3 + lr sweep 2 x 3 + noise sweep 2 x 2 + dim sweep 2 x 2 + contour 3, less the shared points:
    # sgd at lr 0.01 (lr sweep), sgd and adam at noise 0.01, gd_perturbed and sgd at d = 10
    assert len(simulated) == 3 + 6 + 4 + 4 + 3 - 5
    median = {row["optimizer"]: row["median"] for row in result.tables["ecdf"]}
    shared = [
        row
        for row in result.tables["sweeps"]
        if (row["kind"], row["x"]) in (("lr", 0.01), ("noise", 0.01), ("dim", 10))
        and not row["series"].endswith("_fixed")
    ]
    assert len(shared) == 5
    for row in shared:
        assert row["median"] == median[row["series"]], row


def _as_program(module):
    """``module`` as ``python -m`` runs it: a module named __main__ holding the scenario's namespace."""
    program = types.ModuleType("__main__")
    program.__dict__.update({key: value for key, value in vars(module).items() if not key.startswith("__")})
    program.__file__ = module.__file__
    return program


class _NoWorker:
    def stop(self, interrupt=True):
        pass


def test_a_bad_argument_fails_before_the_figure_worker_starts(monkeypatch, capsys, tmp_path):
    started = []
    monkeypatch.setattr(_figure_worker, "available", lambda: True)
    monkeypatch.setattr(_figure_worker, "FigureWorker", lambda module: started.append(module) or _NoWorker())
    program = _as_program(saddle)
    assert common.main(program, ["--trials", "-3", "--out", str(tmp_path)]) == common.EXIT_BAD_INPUT
    assert "error: trials must be a positive integer, got -3" in capsys.readouterr().err
    assert started == []
    # good arguments: the worker starts, then the run (here one that fails at once)

    def fails(**params):
        raise ValueError("the run failed")

    program.run = fails
    assert common.main(program, ["--trials", "3", "--out", str(tmp_path)]) == common.EXIT_BAD_INPUT
    assert "error: the run failed" in capsys.readouterr().err
    assert started == [program]
