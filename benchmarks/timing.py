"""Interleaved timing: every candidate measured beside the baseline it is compared with.

The machine the course runs on is small and often shared, so its speed drifts from second
to second. A ratio of two timings taken minutes apart measures that drift as much as the
code. Here each round runs the baseline and the candidates in turn::

    baseline, c1, c2, baseline, c3, c4, baseline, ...      (the order rotates each round)

so that every candidate sits next to a baseline run. Two figures are kept for a candidate:

* ``ratio``: the median over the rounds of ``candidate / the baseline run it touched``.
  This is the figure the budgets are judged on. On a shared machine the speed does not
  drift smoothly, it jumps: with another process on the second core, a forward pass of
  EfficientNet-Lite0 at batch 32 takes 0.9 s instead of 0.55 s, for seconds at a time.
  Neighbouring runs nearly always see the same state, so their ratio is clean, and the
  median drops the rounds where the state changed between the two.
* ``ratio_of_medians``: ``median(candidate) / median(its baseline runs)``. Robust to
  single slow runs, but with a few rounds on a machine that jumps between two speeds it
  depends on how many of each side's runs fell in the fast state (0.87 x for a method that
  cannot run faster than the forward pass it contains was seen). Reported beside the
  paired ratio, not judged.

Every callable is called once before the rounds (tracing, compilation and caches), and
that first call is timed separately (unless the block says it is warm already). Rounds go
on until ``max_rounds``, or until at least ``min_rounds`` have run and ``budget_s`` seconds
have passed, so a slow machine runs fewer rounds instead of running for ever.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

__all__ = ["Block", "Timings", "run_block", "median"]


def median(values) -> float:
    """The median of ``values`` (NaN when there are none)."""
    values = [v for v in values if v == v]
    return float(np.median(values)) if values else float("nan")


@dataclass
class Timings:
    """The seconds of one callable: its first call and each round's call.

    Attributes:
        first: seconds of the first call (tracing and compilation included).
        samples: seconds of each later call, one per round.
        baseline: for a candidate, the seconds of the baseline call next to it in each
            round (same length as ``samples``); empty for the baseline itself.
    """

    first: float
    samples: list[float] = field(default_factory=list)
    baseline: list[float] = field(default_factory=list)
    elapsed: float = float("nan")  # for the baseline: seconds the whole block took

    @property
    def seconds(self) -> float:
        """The median seconds per call."""
        return median(self.samples)

    @property
    def ratio(self) -> float:
        """The median over rounds of ``sample / paired baseline``: the candidate against
        the baseline run it touched, which drifts in machine speed cannot split."""
        if not self.baseline:
            return float("nan")
        return median([s / b for s, b in zip(self.samples, self.baseline)])

    @property
    def ratio_of_medians(self) -> float:
        """``median(samples) / median(baseline)``."""
        return self.seconds / median(self.baseline) if self.baseline else float("nan")

    def as_dict(self) -> dict:
        return {
            "first_s": self.first, "median_s": self.seconds, "ratio": self.ratio,
            "ratio_of_medians": self.ratio_of_medians,
            "samples_s": list(self.samples), "baseline_s": list(self.baseline),
        }


@dataclass
class Block:
    """A baseline and the candidates measured against it, interleaved.

    Attributes:
        name: what is measured (for progress and reports).
        baseline: the reference callable (e.g. one plain forward pass).
        candidates: name -> callable.
        min_rounds, max_rounds: bounds on the number of rounds.
        budget_s: after ``min_rounds``, no new round starts once this many seconds have
            passed since the first round began.
        per_baseline: how many candidates share one baseline run (1: ``b c b c``, 2:
            ``b c c b c c``); each candidate is paired with the baseline run next to it.
        warmup: call everything once before the rounds (and report it as the first call).
            Without it, the callables must already be traced (e.g. by a block at another
            batch size: camutils' functions have batch-agnostic signatures).
        limits: candidate -> the most rounds it takes part in (the first ones): for a
            candidate so slow that one or two runs settle the comparison.
    """

    name: str
    baseline: Callable[[], object]
    candidates: dict[str, Callable[[], object]]
    min_rounds: int = 3
    max_rounds: int = 7
    budget_s: float = 60.0
    per_baseline: int = 2
    warmup: bool = True
    limits: dict[str, int] = field(default_factory=dict)


def _timed(function: Callable[[], object]) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def run_block(block: Block, progress: bool = True) -> tuple[Timings, dict[str, Timings]]:
    """Run ``block``; return the baseline's `Timings` and each candidate's.

    Raises:
        ValueError: the bounds make no sense (``min_rounds`` < 1 or > ``max_rounds``).
    """
    from tqdm.auto import tqdm

    if block.min_rounds < 1 or block.max_rounds < block.min_rounds or block.per_baseline < 1:
        raise ValueError(
            f"Block {block.name!r}: need 1 <= min_rounds <= max_rounds and per_baseline >= 1, "
            f"got min_rounds={block.min_rounds}, max_rounds={block.max_rounds}, "
            f"per_baseline={block.per_baseline}."
        )
    names = list(block.candidates)
    block_start = time.perf_counter()
    if block.warmup:
        base = Timings(first=_timed(block.baseline))
        results = {name: Timings(first=_timed(block.candidates[name])) for name in names}
    else:
        base = Timings(first=float("nan"))
        results = {name: Timings(first=float("nan")) for name in names}
    start = time.perf_counter()
    bar = tqdm(total=block.max_rounds, desc=block.name, unit="round", leave=False,
               disable=not progress)
    with bar:
        for round_index in range(block.max_rounds):
            if round_index >= block.min_rounds and time.perf_counter() - start > block.budget_s:
                break
            shift = round_index % max(1, len(names))
            order = [n for n in names[shift:] + names[:shift]
                     if round_index < block.limits.get(n, block.max_rounds)]
            waiting: list[str] = []  # candidates run since the last baseline run
            before = _timed(block.baseline)
            base.samples.append(before)
            for position, name in enumerate(order):
                results[name].samples.append(_timed(block.candidates[name]))
                waiting.append(name)
                if len(waiting) == block.per_baseline or position == len(order) - 1:
                    after = _timed(block.baseline) if len(waiting) > 1 or \
                        position < len(order) - 1 else None
                    if after is not None:
                        base.samples.append(after)
                    # The first candidate of a group follows `before`; the others precede
                    # `after` (each pairs with the baseline run it touches).
                    for index, waiting_name in enumerate(waiting):
                        pair = before if index == 0 or after is None else after
                        results[waiting_name].baseline.append(pair)
                    waiting = []
                    before = after if after is not None else before
            bar.update(1)
    base.elapsed = time.perf_counter() - block_start
    return base, results
