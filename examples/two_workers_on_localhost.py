"""Explain a folder with two workers on this machine (tf.distribute.MultiWorkerMirroredStrategy).

    python examples/two_workers_on_localhost.py FOLDER OUT [--model shapes_gap] [--method gradcam]

The script starts two worker processes. Each gets a ``TF_CONFIG`` that names both workers
(two ports on localhost) and its own index, builds the strategy, and calls
``camutils.explain_dataset`` with it: the workers split the run's shards between them
(shard k goes to worker k mod 2), each writes its own shards into OUT, and whichever finishes
the last shard joins the tables into OUT/index.csv. On several machines, run the worker part
(``--worker I --workers HOST:PORT,HOST:PORT``) on each, with OUT on a shared file system.

At the end the script prints, as JSON, which shards each worker wrote and how many images
the run covers.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys


def free_ports(count: int) -> list[int]:
    """Ports on localhost that are free now (the workers bind them a moment later)."""
    sockets = []
    for _ in range(count):
        s = socket.socket()
        s.bind(("localhost", 0))
        sockets.append(s)
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def worker(args) -> int:
    """One worker: its TF_CONFIG, the strategy, and the same explain_dataset call as the other."""
    addresses = args.workers.split(",")
    os.environ["TF_CONFIG"] = json.dumps({"cluster": {"worker": addresses},
                                          "task": {"type": "worker", "index": args.worker}})
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    import camutils

    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    model = camutils.load_model(args.model)
    run = camutils.explain_dataset(model, args.folder, args.method, out=args.out,
                                   batch_size=args.batch_size, shard_size=args.shard_size,
                                   strategy=strategy, progress=False)
    print(json.dumps({"worker": run.worker, "workers": run.workers,
                      "written_shards": run.written_shards, "explained": run.explained,
                      "unreadable": [ident for ident, _ in run.unreadable],
                      "complete": run.complete}), flush=True)
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder")
    parser.add_argument("out")
    parser.add_argument("--model", default="shapes_gap")
    parser.add_argument("--method", default="gradcam")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--shard-size", type=int, default=64)
    parser.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--workers", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args(argv)
    if args.worker is not None:
        return worker(args)

    addresses = ",".join(f"localhost:{port}" for port in free_ports(2))
    common = [args.folder, args.out, "--model", args.model, "--method", args.method,
              "--batch-size", str(args.batch_size), "--shard-size", str(args.shard_size),
              "--workers", addresses]
    processes = [subprocess.Popen([sys.executable, __file__, *common, "--worker", str(i)],
                                  stdout=subprocess.PIPE, text=True) for i in range(2)]
    reports, status = [], 0
    for process in processes:
        try:
            output, _ = process.communicate(timeout=args.timeout)
        except subprocess.TimeoutExpired:
            for other in processes:
                other.kill()
            print(f"the workers did not finish within {args.timeout:.0f} s", file=sys.stderr)
            return 1
        status = status or process.returncode
        lines = [line for line in output.splitlines() if line.startswith("{")]
        if lines:
            reports.append(json.loads(lines[-1]))
    print(json.dumps({"workers": reports}, indent=1))
    return status


if __name__ == "__main__":
    sys.exit(main())
