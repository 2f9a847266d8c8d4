"""The torch-free, allow-listed reader of PyTorch state dicts.

The files are written here, in both of torch's formats, by a small writer that stands in for
``torch.save``: a fake ``torch`` module is put in ``sys.modules`` only while pickling, so
that the pickles name ``torch._utils._rebuild_tensor_v2`` and ``torch.FloatStorage`` exactly
as real files do.
"""

import collections
import hashlib
import io
import os
import pickle
import sys
import types
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from camutils import torch_pickle
from camutils.torch_pickle import TorchFileError, UnsafePickleError, load_state_dict

DTYPE_STORAGE = {np.dtype("float32"): "FloatStorage", np.dtype("float64"): "DoubleStorage",
                 np.dtype("int64"): "LongStorage", np.dtype("uint8"): "ByteStorage",
                 np.dtype("float16"): "HalfStorage"}


class Storage:
    def __init__(self, key, flat):
        self.key, self.flat = key, np.ascontiguousarray(flat).ravel()


class Tensor:
    """What a torch tensor pickles as: a rebuild call on a storage, offset, size and stride."""

    def __init__(self, storage, offset, size, stride):
        self.args = (storage, offset, tuple(size), tuple(stride))

    def __reduce__(self):
        return (sys.modules["torch._utils"]._rebuild_tensor_v2,
                (*self.args, False, collections.OrderedDict()))


def tensor(array, key):
    """A contiguous tensor on its own storage."""
    a = np.array(array, order="C")  # (ascontiguousarray would make a 0-d array 1-d)
    strides = tuple(s // a.itemsize for s in a.strides)
    return Tensor(Storage(key, a), 0, a.shape, strides)


@pytest.fixture
def fake_torch(monkeypatch):
    """Fake `torch` and `torch._utils` modules, so that pickle can name their globals."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*args):
        raise AssertionError("only pickled, never called")

    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    for name in DTYPE_STORAGE.values():
        setattr(torch, name, type(name, (), {"__module__": "torch"}))
    torch._utils = utils
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)
    return torch


def _pickle_with_storages(obj) -> tuple[bytes, list[Storage]]:
    storages: dict[str, Storage] = {}
    buffer = io.BytesIO()

    class Pickler(pickle.Pickler):
        def persistent_id(self, o):
            if isinstance(o, Storage):
                storages.setdefault(o.key, o)
                storage_type = getattr(sys.modules["torch"], DTYPE_STORAGE[o.flat.dtype])
                return ("storage", storage_type, o.key, "cpu", o.flat.size)
            return None

    Pickler(buffer, protocol=2).dump(obj)
    return buffer.getvalue(), list(storages.values())


def legacy_bytes(obj, payload: bytes | None = None) -> bytes:
    """torch's legacy format; ``payload`` replaces the main pickle when given."""
    main, storages = _pickle_with_storages(obj) if payload is None else (payload, [])
    out = io.BytesIO()
    for header in (torch_pickle.LEGACY_MAGIC, torch_pickle.LEGACY_PROTOCOL,
                   {"protocol_version": 1001, "little_endian": True,
                    "type_sizes": {"short": 2, "int": 4, "long": 4}}):
        pickle.dump(header, out, protocol=2)
    out.write(main)
    pickle.dump([s.key for s in storages], out, protocol=2)
    for s in storages:
        out.write(np.int64(s.flat.size).tobytes())
        out.write(s.flat.astype(s.flat.dtype.newbyteorder("<")).tobytes())
    return out.getvalue()


def zip_bytes(obj, payload: bytes | None = None) -> bytes:
    """torch's zip format (torch >= 1.6)."""
    main, storages = _pickle_with_storages(obj) if payload is None else (payload, [])
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("archive/data.pkl", main)
        archive.writestr("archive/byteorder", "little")
        for s in storages:
            archive.writestr(f"archive/data/{s.key}", s.flat.tobytes())
    return out.getvalue()


def write(tmp_path, data: bytes, name="weights.pth"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.fixture
def state(fake_torch):
    """A state dict with several dtypes, a non-contiguous view, an offset and a shared storage."""
    rng = np.random.default_rng(0)
    conv = rng.normal(size=(4, 3, 2, 2)).astype(np.float32)
    shared = Storage("shared", np.arange(20, dtype=np.float32))
    expected = {
        "conv.weight": conv,
        "fc.weight_t": np.arange(12, dtype=np.float64).reshape(3, 4).T,  # a transposed view
        "bn.num_batches_tracked": np.array(7, dtype=np.int64),
        "mask": np.array([0, 1, 255], dtype=np.uint8),
        "half": np.array([0.5, -2.0], dtype=np.float16),
        "first": np.arange(6, dtype=np.float32).reshape(2, 3),
        "second": np.arange(10, 20, dtype=np.float32).reshape(5, 2),
    }
    sd = collections.OrderedDict([
        ("conv.weight", tensor(conv, "0")),
        ("fc.weight_t", Tensor(Storage("1", np.arange(12, dtype=np.float64)), 0, (4, 3), (1, 4))),
        ("bn.num_batches_tracked", tensor(np.array(7, dtype=np.int64), "2")),
        ("mask", tensor(expected["mask"], "3")),
        ("half", tensor(expected["half"], "4")),
        ("first", Tensor(shared, 0, (2, 3), (3, 1))),
        ("second", Tensor(shared, 10, (5, 2), (2, 1))),
    ])
    return sd, expected


@pytest.mark.parametrize("fmt", [legacy_bytes, zip_bytes], ids=["legacy", "zip"])
def test_round_trip_of_both_formats(tmp_path, state, fmt):
    sd, expected = state
    loaded = load_state_dict(write(tmp_path, fmt(sd)))
    assert list(loaded) == list(expected)
    for key, want in expected.items():
        got = loaded[key]
        assert got.dtype == want.dtype, key
        assert got.shape == want.shape, key
        np.testing.assert_array_equal(got, want, err_msg=key)
        assert got.flags.c_contiguous and got.flags.writeable


def test_metadata_attribute_and_checkpoint_wrapper(tmp_path, state):
    sd, expected = state
    sd._metadata = {"": {"version": 1}}  # what nn.Module.state_dict() attaches
    loaded = load_state_dict(write(tmp_path, legacy_bytes({"epoch": 3, "state_dict": sd})))
    np.testing.assert_array_equal(loaded["conv.weight"], expected["conv.weight"])
    assert "epoch" not in loaded


def test_matching_sha256_is_accepted(tmp_path, state):
    data = legacy_bytes(state[0])
    path = write(tmp_path, data)
    digest = hashlib.sha256(data).hexdigest()
    assert set(load_state_dict(path, sha256=digest.upper())) == set(state[1])


def test_hash_mismatch_is_refused_before_unpickling(tmp_path, state):
    data = legacy_bytes(state[0])
    path = write(tmp_path, data)
    wrong = hashlib.sha256(data + b"x").hexdigest()
    with pytest.raises(ValueError, match="not the expected one") as info:
        load_state_dict(path, sha256=wrong)
    assert hashlib.sha256(data).hexdigest() in str(info.value)
    assert wrong in str(info.value)


class RunsACommand:
    """A classic pickle exploit: unpickling calls os.system."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("fmt", [legacy_bytes, zip_bytes], ids=["legacy", "zip"])
def test_a_pickle_that_calls_os_system_is_refused_unrun(tmp_path, fmt):
    marker = tmp_path / "pwned"
    payload = pickle.dumps(collections.OrderedDict(w=RunsACommand(marker)), protocol=2)
    assert b"system" in payload  # the exploit is really in the file
    with pytest.raises(UnsafePickleError, match=r"(posix|os)\.system"):
        load_state_dict(write(tmp_path, fmt(None, payload=payload)))
    assert not marker.exists()


def test_a_hostile_header_pickle_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    data = pickle.dumps(RunsACommand(marker), protocol=2)
    with pytest.raises(UnsafePickleError):
        load_state_dict(write(tmp_path, data))
    assert not marker.exists()


@pytest.mark.parametrize("module, name", [("builtins", "eval"), ("builtins", "getattr"),
                                          ("torch", "load"), ("numpy", "load"),
                                          ("collections", "defaultdict")])
def test_any_global_outside_the_allow_list_is_refused(tmp_path, module, name):
    payload = f"c{module}\n{name}\n)R.".encode()  # GLOBAL, EMPTY_TUPLE, REDUCE, STOP
    with pytest.raises(UnsafePickleError, match=f"{module}.{name}"):
        load_state_dict(write(tmp_path, legacy_bytes(None, payload=payload)))


def test_an_allowed_stand_in_cannot_be_modified_by_the_pickle(tmp_path):
    # GLOBAL torch.FloatStorage, {"dtype": "O"}, BUILD: would change the reader's own state.
    payload = b"ctorch\nFloatStorage\n}X\x05\x00\x00\x00dtypeX\x01\x00\x00\x00Osb."
    with pytest.raises(UnsafePickleError, match="set the state"):
        load_state_dict(write(tmp_path, legacy_bytes(None, payload=payload)))
    assert torch_pickle._ALLOWED[("torch", "FloatStorage")].dtype == "<f4"


def test_a_view_beyond_its_storage_is_refused(tmp_path, fake_torch):
    sd = {"w": Tensor(Storage("0", np.zeros(4, np.float32)), 2, (3,), (1,))}
    with pytest.raises(TorchFileError, match="reaches element 4"):
        load_state_dict(write(tmp_path, legacy_bytes(sd)))


def test_a_truncated_file_is_refused(tmp_path, state):
    data = legacy_bytes(state[0])
    with pytest.raises(TorchFileError, match="truncated"):
        load_state_dict(write(tmp_path, data[:-10]))


@pytest.mark.parametrize("data", [b"", b"not a pickle at all", pickle.dumps(12345)])
def test_files_that_are_not_torch_files(tmp_path, data):
    with pytest.raises(TorchFileError):
        load_state_dict(write(tmp_path, data))


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing-here.pth"):
        load_state_dict(tmp_path / "nothing-here.pth")


def test_the_efficientnet_lite0_file_reads_without_torch():
    from camutils.zoo.efficientnet import WEIGHTS_SHA256, weights_path

    sd = load_state_dict(weights_path(), sha256=WEIGHTS_SHA256)
    assert len(sd) == 296
    assert sd["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert sd["_fc.weight"].shape == (1000, 1280)
    assert all(v.dtype == np.float32 for k, v in sd.items() if "num_batches" not in k)
    assert all(np.isfinite(v).all() for v in sd.values())
    # BatchNorm running variances are never negative and almost all positive (a few channels
    # are dead in this network): the bytes were read at the right offsets.
    variances = np.concatenate([v for k, v in sd.items() if k.endswith("running_var")])
    assert (variances >= 0).all() and (variances > 0).mean() > 0.98
    assert "torch" not in sys.modules


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=4), data=st.data())
def test_any_permuted_view_with_an_offset_reads_back(tmp_path, fake_torch, shape, data):
    """A tensor that is a permuted (non-contiguous) view at an offset into a larger storage."""
    perm = data.draw(st.permutations(range(len(shape))))
    offset = data.draw(st.integers(0, 5))
    base = np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape) * 0.5
    flat = np.concatenate([np.full(offset, -1, np.float32), base.ravel(), [-2.0]])
    strides = [int(np.prod(shape[i + 1:])) for i in range(len(shape))]
    view = Tensor(Storage("0", flat), offset, [shape[p] for p in perm], [strides[p] for p in perm])
    got = load_state_dict(write(tmp_path, legacy_bytes({"w": view})))["w"]
    np.testing.assert_array_equal(got, np.transpose(base, perm))
