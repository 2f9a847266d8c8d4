"""The course's benchmark suite: camutils' methods against a forward pass and against peers.

    make bench                         # models: EfficientNet-Lite0 and the shapes network
    python -m benchmarks --course      # also every notebook's time and peak memory
    python -m benchmarks --make-test   # also the wall time of `make test` (minutes)

Each model is measured in its own process (`benchmarks.model_bench`); the results are kept
as JSON in ``benchmarks/results/`` and rendered with the budgets of the course's design
into ``docs/benchmarks.md`` and its plot (`benchmarks.report`). Timing is interleaved and
reported as ratios of medians (`benchmarks.timing`); the baselines are defined in
`benchmarks.references`, the peers in `benchmarks.peers`, the budgets in
`benchmarks.budgets`.
"""
