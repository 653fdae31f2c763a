"""Type aliases shared by the public signatures (annotations only; nothing here runs in a kernel)."""

from __future__ import annotations

from typing import Literal

#: Where an API call runs: ``"auto"`` picks ``"cuda"`` when a GPU (or the simulator) is available.
Backend = Literal["cpu", "cuda", "auto"]
