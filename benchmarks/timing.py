"""Interleaved timing: every candidate measured beside the baseline it is compared with.

The machine the course runs on is small and often shared, so its speed changes from
second to second. A ratio of two timings taken minutes apart measures that as much as the
code. Here each round runs the baseline and the candidates in turn::

    baseline, c1, baseline, c2, baseline, c3, ...      (the order rotates each round)

so that every candidate sits next to a baseline run, and each run records two clocks:

* wall time (``time.perf_counter``): what a user waits for;
* CPU time of the process, all threads (``time.process_time``): the work done. When other
  processes take the CPU, wall time stretches and CPU time does not: in one measured case
  a forward pass of EfficientNet-Lite0 at batch 32 took between 1.4 s and 3.1 s of wall
  time in four rounds, and 0.99 s to 1.01 s of CPU time.

Three figures are kept for a candidate against its baseline:

* ``cpu_ratio``: the median over rounds of ``candidate CPU / the CPU of the baseline run it
  touched``, the figure budgets are judged on: stable under load. (It weighs serial work,
  such as Python between TensorFlow calls, less than wall time does on an idle machine,
  since the baseline runs on all cores: the wall ratio is kept beside it to show that.)
* ``ratio``: the same with wall times. Neighbouring runs usually see the same machine
  state, and the median drops the rounds where it changed between them.
* ``ratio_of_medians``: ``median(candidate wall) / median(baseline wall)``, which depends
  on how many runs of each side happened to be slowed down.

Every callable is called once before the rounds (tracing, compilation and caches) unless
the block says it is warm already; that first call is timed separately. Rounds go on until
``max_rounds``, or until at least ``min_rounds`` have run and ``budget_s`` seconds have
passed, so a slow machine runs fewer rounds instead of running for ever.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

__all__ = ["Block", "Timings", "run_block", "median", "timed"]


def median(values) -> float:
    """The median of ``values`` (NaN when there are none)."""
    values = [v for v in values if v == v]
    return float(np.median(values)) if values else float("nan")


def timed(function: Callable[[], object]) -> tuple[float, float]:
    """Call ``function()``; return its ``(wall seconds, process CPU seconds)``."""
    wall, cpu = time.perf_counter(), time.process_time()
    function()
    return time.perf_counter() - wall, time.process_time() - cpu


def _paired(samples: list[float], baseline: list[float]) -> float:
    pairs = [s / b for s, b in zip(samples, baseline) if b > 0]
    return median(pairs) if pairs else float("nan")


@dataclass
class Timings:
    """The seconds of one callable: its first call and each round's call.

    Attributes:
        first: wall seconds of the first call (tracing and compilation included; NaN when
            the block was warm already).
        samples, cpu: wall and CPU seconds of each later call, one per round.
        baseline, baseline_cpu: for a candidate, the wall and CPU seconds of the baseline
            run next to it in each round (same length as ``samples``); empty for the
            baseline itself.
        elapsed: for the baseline: wall seconds the whole block took.
    """

    first: float
    samples: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    baseline: list[float] = field(default_factory=list)
    baseline_cpu: list[float] = field(default_factory=list)
    elapsed: float = float("nan")

    @property
    def seconds(self) -> float:
        """The median wall seconds per call."""
        return median(self.samples)

    @property
    def cpu_seconds(self) -> float:
        """The median CPU seconds per call."""
        return median(self.cpu)

    @property
    def ratio(self) -> float:
        """Median over rounds of wall time over the neighbouring baseline run's."""
        return _paired(self.samples, self.baseline)

    @property
    def cpu_ratio(self) -> float:
        """Median over rounds of CPU time over the neighbouring baseline run's."""
        return _paired(self.cpu, self.baseline_cpu)

    @property
    def ratio_of_medians(self) -> float:
        """``median(samples) / median(baseline)`` (wall)."""
        return self.seconds / median(self.baseline) if self.baseline else float("nan")

    def add(self, run: tuple[float, float], pair: tuple[float, float] | None = None) -> None:
        """Record one round's ``(wall, cpu)``, and the baseline run it is paired with."""
        self.samples.append(run[0])
        self.cpu.append(run[1])
        if pair is not None:
            self.baseline.append(pair[0])
            self.baseline_cpu.append(pair[1])

    def as_dict(self) -> dict:
        return {
            "first_s": self.first, "median_s": self.seconds, "cpu_median_s": self.cpu_seconds,
            "ratio": self.ratio, "cpu_ratio": self.cpu_ratio,
            "ratio_of_medians": self.ratio_of_medians,
            "samples_s": list(self.samples), "cpu_s": list(self.cpu),
            "baseline_s": list(self.baseline), "baseline_cpu_s": list(self.baseline_cpu),
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
            ``b c c b c c``); each candidate is paired with the baseline run it touches.
        warmup: call everything once before the rounds (and report it as the first call).
            Without it, the callables must be warm already (camutils' functions are traced
            once for every batch size).
        limits: candidate -> the most rounds it takes part in (the first ones): for a
            candidate so slow that one or two runs settle the comparison.
    """

    name: str
    baseline: Callable[[], object]
    candidates: dict[str, Callable[[], object]]
    min_rounds: int = 3
    max_rounds: int = 7
    budget_s: float = 60.0
    per_baseline: int = 1
    warmup: bool = True
    limits: dict[str, int] = field(default_factory=dict)


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
        base = Timings(first=timed(block.baseline)[0])
        results = {name: Timings(first=timed(block.candidates[name])[0]) for name in names}
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
            waiting: list[tuple[str, tuple[float, float]]] = []  # run since the last baseline
            before = timed(block.baseline)
            base.add(before)
            for position, name in enumerate(order):
                waiting.append((name, timed(block.candidates[name])))
                last = position == len(order) - 1
                if len(waiting) == block.per_baseline or last:
                    after = timed(block.baseline) if len(waiting) > 1 or not last else None
                    if after is not None:
                        base.add(after)
                    # The first candidate of a group follows `before`; the others precede
                    # `after` (each pairs with the baseline run it touches).
                    for index, (waiting_name, run) in enumerate(waiting):
                        pair = before if index == 0 or after is None else after
                        results[waiting_name].add(run, pair)
                    waiting = []
                    before = after if after is not None else before
            bar.update(1)
    base.elapsed = time.perf_counter() - block_start
    return base, results
