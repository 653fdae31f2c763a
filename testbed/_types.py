"""Type aliases shared by the public signatures (annotations only; nothing here runs in a kernel)."""

from __future__ import annotations

from typing import Literal

#: Where an API call runs: ``"auto"`` picks ``"cuda"`` when a GPU (or the simulator) is available.
Backend = Literal["cpu", "cuda", "auto"]

#: The library whose form of an optimizer's formula (eps placement, defaults) is followed.
Convention = Literal["torch", "optax", "keras", "lecture"]

#: What an optimizer's step does with non-finite gradients: raise NonFiniteError, or skip the step.
NonfinitePolicy = Literal["raise", "skip"]
