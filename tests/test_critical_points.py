"""Scenario critical_points (Dauphin et al. 2014): the index of the near-critical points that Newton's method finds
from points along SGD and Adam runs grows with their training loss (Spearman's rho above the scenario's stated
bound), on a tiny configuration; and the scenario's figures are drawn."""

import numpy as np

from testbed.scenarios import common, critical_points

#: The smallest run that still gives several near-critical points: 4 hidden units (214 parameters), 60 rows.
TINY = dict(rows=60, hidden=4, steps=60, snapshots=4, newton_iterations=12, grid=3)


def test_index_grows_with_the_loss_of_critical_points(tmp_path):
    result = critical_points.run(progress=False, **TINY)
    points = [q for q in result.tables["points"] if q["critical"]]
    assert len(points) >= 5
    assert result.summary["spearman_rho"] > critical_points.CLAIM_RHO
    # the claim's two ends: the highest-loss point is a saddle with a larger index than the lowest-loss point
    by_loss = sorted(points, key=lambda q: q["loss"])
    assert by_loss[-1]["index"] > by_loss[0]["index"] and by_loss[-1]["lambda_min"] < 0
    # saddle-free Newton ends lower than SGD on the same budget of steps (Dauphin et al.'s figure 4)
    assert result.summary["final_loss_saddle_free_newton"] < result.summary["final_loss_sgd"]
    assert np.all(np.isfinite(result.arrays["plane_loss"]))
    paths = common.plot(critical_points, result, tmp_path)
    assert {p.stem for p in paths} == set(critical_points.FIGURES)
