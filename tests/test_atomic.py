"""camutils.atomic: files that are whole or absent, and the one JSON writer (the dataset's
manifest, the audit's summary and the benchmarks' results files)."""

import json
from pathlib import Path

import numpy as np
import pytest

from camutils.atomic import atomic_write_json, atomic_writer, is_temporary


def test_json_holds_numpy_values_and_paths_as_plain_values(tmp_path):
    data = {"n": np.int64(3), "x": np.float32(0.5), "a": np.arange(3, dtype=np.uint8),
            "where": Path("maps") / "shard.npz", "nested": [{"m": np.int32(-1)}]}
    path = atomic_write_json(tmp_path / "results" / "r.json", data)
    text = path.read_text(encoding="utf-8")
    assert text.endswith("}\n") and not text.endswith("\n\n")
    assert json.loads(text) == {"n": 3, "x": 0.5, "a": [0, 1, 2],
                                "where": str(Path("maps") / "shard.npz"), "nested": [{"m": -1}]}
    assert [p.name for p in path.parent.iterdir()] == ["r.json"]


def test_a_value_json_cannot_hold_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "r.json"
    atomic_write_json(path, {"old": 1})
    with pytest.raises(TypeError, match="Cannot write object as JSON"):
        atomic_write_json(path, {"new": object()})
    assert json.loads(path.read_text(encoding="utf-8")) == {"old": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_a_failed_write_leaves_the_target_untouched(tmp_path):
    path = tmp_path / "data.bin"
    path.write_bytes(b"whole")
    with pytest.raises(RuntimeError):
        with atomic_writer(path, "wb") as handle:
            handle.write(b"half")
            assert is_temporary(handle.name)
            raise RuntimeError("killed")
    assert path.read_bytes() == b"whole"
    assert [p.name for p in tmp_path.iterdir()] == ["data.bin"]
