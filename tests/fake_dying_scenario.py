"""A tiny scenario whose points can kill their own process or take long, for the sweep fault tests.

The point whose ``value`` equals ``die_at`` ends the process running it with SIGKILL (as the OOM killer or
``kill -9`` would);
``sleep=S`` makes the point take S seconds. With ``FAKE_DYING_PID_DIR`` set, each call first writes a file named
by its process id there, so a test can find the worker processes.
"""

import os
import signal
import time
from pathlib import Path

from testbed.results import Result
from testbed.scenarios import common

DEFAULTS = dict(value=1, die_at=0, sleep=0.0, seed=0, backend="cpu")
QUICK = {}


def run(*, quick=False, progress=True, **params):
    p = common.merge_params(DEFAULTS, QUICK, quick, params)
    folder = os.environ.get("FAKE_DYING_PID_DIR")
    if folder:
        (Path(folder) / str(os.getpid())).write_text(str(p["value"]))
    if p["value"] == p["die_at"]:
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(p["sleep"])
    return Result("fake_dying_scenario", p, dict(value=p["value"]))
