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
import struct
import sys
import types
import zipfile
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from camutils.zoo import torch_pickle
from camutils.zoo.torch_pickle import TorchFileError, UnsafePickleError, load_state_dict

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


# ------------------------------------------------------------------ hostile files (issue 14)
# The files are assembled by hostile_inputs.py; test_hostile_resources.py runs the largest
# ones (billion laughs, 512 MiB zip bombs, 400 MB expansions) in a subprocess and bounds
# their time and memory. These are their small, in-process counterparts.

import hostile_inputs as hostile  # noqa: E402
from hostile_inputs import Pickle  # noqa: E402


def _load_bytes(tmp_path, data: bytes):
    return load_state_dict(write(tmp_path, data))


@pytest.mark.parametrize("build", [hostile.self_containing_list,
                                   lambda: hostile.deeply_nested_lists(50_000)],
                         ids=["self-containing list", "50,000 nested lists"])
def test_lists_beside_the_tensors_cost_only_their_operations(tmp_path, build):
    """Non-tensor entries are dropped without being walked (no recursion, no copy)."""
    loaded = _load_bytes(tmp_path, build())
    assert list(loaded) == ["weight"]
    np.testing.assert_array_equal(loaded["weight"], np.arange(4, dtype=np.float32))


@pytest.mark.parametrize("key", [
    lambda p: p.op(pickle.EMPTY_TUPLE),
    lambda p: p.op(pickle.EMPTY_LIST),
    lambda p: p.int(1).int(2).op(pickle.TUPLE2),
], ids=["empty tuple", "list", "pair"])
def test_a_dict_key_that_is_not_a_string_or_a_number_is_refused(tmp_path, key):
    """Hashing a nested key can take 2**64 steps (see hostile_inputs.billion_laughs_key)."""
    def keyed(p):
        p.op(pickle.EMPTY_DICT)
        key(p)
        p.op(pickle.NONE, pickle.SETITEM)
    with pytest.raises(TorchFileError, match="dict key of type"):
        _load_bytes(tmp_path, hostile.zip_file(hostile.state_dict(keyed=keyed)))


@pytest.mark.parametrize("operations, name", [
    (pickle.EMPTY_SET, "EMPTY_SET"),
    (pickle.MARK + pickle.NONE + pickle.FROZENSET, "FROZENSET"),
    (pickle.MARK + b"cbuiltins\nobject\n" + pickle.OBJ, "OBJ|builtins.object"),
    (b"ibuiltins\nobject\n", "INST"),
    (pickle.EXT1 + b"\x01", "EXT1"),
    (pickle.LONG4 + struct.pack("<i", 300) + bytes(300), "LONG4"),
    (pickle.PERSID + b"storage\n", "PERSID"),
])
def test_operations_a_state_dict_never_needs_are_refused(tmp_path, operations, name):
    payload = pickle.PROTO + b"\x02" + pickle.EMPTY_DICT + pickle.BINUNICODE + b"\x01\x00\x00\x00x" \
        + operations + pickle.SETITEM + pickle.STOP
    with pytest.raises(UnsafePickleError, match=name):
        _load_bytes(tmp_path, hostile.zip_file(payload))


def _one_tensor(numel, offset, size, stride, data=None, fmt=hostile.zip_file):
    p = Pickle().op(pickle.EMPTY_DICT).str("w").tensor("0", numel, offset, size, stride)
    data = np.arange(numel, dtype="<f4").tobytes() if data is None else data
    return fmt(p.op(pickle.SETITEM).bytes(), {"0": data})


@pytest.mark.parametrize("size, stride, expected", [
    ((10**6,), (0,), "4,000,000 bytes"),  # one element, repeated: 4 MB from 4 bytes
    ((2**31, 2**31), (0, 0), "18,446,744,073,709,551,616 bytes"),  # numpy: "array is too big"
    ((3000, 3000), (1, 1), "36,000,000 bytes"),  # overlapping rows
])
def test_a_tensor_that_expands_its_storage_is_refused(tmp_path, size, stride, expected):
    reach = 1 + sum((n - 1) * s for n, s in zip(size, stride))
    with pytest.raises(TorchFileError, match=f"(?s){expected}.*MAX_EXPANSION"):
        _load_bytes(tmp_path, _one_tensor(reach, 0, size, stride))


def test_many_tensors_over_one_storage_are_refused_but_tied_weights_load(tmp_path):
    def views(count, numel=2**14):
        p = Pickle().op(pickle.EMPTY_DICT)
        for i in range(count):
            p.str(f"w{i}").tensor("0", numel, 0, (numel,), (1,)).op(pickle.SETITEM)
        return hostile.zip_file(p.bytes(), {"0": np.ones(numel, "<f4").tobytes()})

    with pytest.raises(TorchFileError, match="MAX_EXPANSION"):
        _load_bytes(tmp_path, views(200))  # 13 MB of arrays from 64 kB
    tied = _load_bytes(tmp_path, views(3))  # e.g. an embedding shared by encoder, decoder, head
    assert len(tied) == 3 and all(v.shape == (2**14,) for v in tied.values())
    tied["w0"][0] = 5  # each is its own writeable copy
    assert tied["w1"][0] == 1


def test_a_small_broadcast_buffer_fits_the_slack(tmp_path):
    loaded = _load_bytes(tmp_path, _one_tensor(1, 0, (1000,), (0,), np.float32(7).tobytes()))
    np.testing.assert_array_equal(loaded["w"], np.full(1000, 7, np.float32))


@pytest.mark.parametrize("numel, offset, size, stride, message", [
    (1, 0, (2**70,), (0,), r"invalid size \(1180591620717411303424\)"),
    (4, 3, (4,), (-1,), r"invalid stride \(-1\)"),
    (4, -1, (1,), (1,), r"invalid storage offset \(-1\)"),
    (-4, 0, (0,), (1,), r"invalid storage size \(-4\)"),
    (4, 0, (-2,), (1,), r"invalid size \(-2\)"),
    (4, 0, tuple([1] * 33), tuple([1] * 33), "at most 32"),
    (4, 0, (2, 2), (1,), "invalid layout"),
])
def test_invalid_numbers_in_a_tensor_are_refused(tmp_path, numel, offset, size, stride, message):
    with pytest.raises(TorchFileError, match=message):
        _load_bytes(tmp_path, _one_tensor(numel, offset, size, stride, data=bytes(16)))


@pytest.mark.parametrize("number", [pickle.BINFLOAT + struct.pack(">d", 4.0),
                                    pickle.BINUNICODE + b"\x01\x00\x00\x004", pickle.NEWTRUE],
                         ids=["float", "string", "bool"])
def test_a_size_that_is_not_a_whole_number_is_refused(tmp_path, number):
    p = Pickle().op(pickle.EMPTY_DICT).str("w")
    p.glob("torch._utils", "_rebuild_tensor_v2").op(pickle.MARK, pickle.MARK)
    p.str("storage").glob("torch", "FloatStorage").str("0").str("cpu").int(4)
    p.op(pickle.TUPLE, pickle.BINPERSID).int(0)
    p.op(pickle.MARK, number, pickle.TUPLE).ints((1,))  # size (number,), stride (1,)
    p.op(pickle.TUPLE, pickle.REDUCE, pickle.SETITEM)
    with pytest.raises(TorchFileError, match="invalid size"):
        _load_bytes(tmp_path, hostile.zip_file(p.bytes()))


@pytest.mark.parametrize("nbytes", [64 * 2**20])
def test_a_zip_entry_larger_than_its_storage_is_not_inflated(tmp_path, nbytes):
    with pytest.raises(TorchFileError, match=f"holds {nbytes:,} bytes, but its pickle declares 16"):
        _load_bytes(tmp_path, hostile.zip_entry_inflates_beyond_its_tensor(nbytes))


def test_a_zip_entry_whose_headers_understate_it_is_read_only_as_far_as_they_say(tmp_path):
    loaded = _load_bytes(tmp_path, hostile.zip_entry_header_understates(64 * 2**20))
    np.testing.assert_array_equal(loaded["weight"], np.zeros(4, np.float32))


def test_a_zip_entry_smaller_than_its_storage_is_refused(tmp_path):
    with pytest.raises(TorchFileError, match="holds 8 bytes, but its pickle declares 16"):
        _load_bytes(tmp_path, hostile.zip_entry_shorter_than_declared())


def test_a_damaged_deflate_stream_is_the_reader_s_error(tmp_path):
    stream = zlib.compressobj(9, zlib.DEFLATED, -15)
    data = bytearray(stream.compress(hostile.FOUR_FLOATS * 64) + stream.flush())
    data[len(data) // 2:] = bytes(len(data) - len(data) // 2)
    entry = hostile.ZipEntry("archive/data/0", bytes(data), method=8, size=16 * 64)
    p = Pickle().op(pickle.EMPTY_DICT).str("w").tensor("0", 256, 0, (256,), (1,))
    with pytest.raises(TorchFileError, match="damaged"):
        _load_bytes(tmp_path, hostile.zip_file(p.op(pickle.SETITEM).bytes(), {}, [entry]))


def test_a_storage_is_read_only_as_far_as_its_tensors_reach(tmp_path, monkeypatch):
    """A tensor that views the first 2 of 1,000,000 elements: 8 bytes are read, not 4 MB."""
    reads = []
    original = torch_pickle._read_entry
    monkeypatch.setattr(torch_pickle, "_read_entry",
                        lambda archive, info, n: reads.append((info.filename, n)) or original(archive, info, n))
    loaded = _load_bytes(tmp_path, _one_tensor(10**6, 0, (2,), (1,)))
    np.testing.assert_array_equal(loaded["w"], [0, 1])
    assert ("archive/data/0", 8) in reads


def test_a_legacy_storage_larger_than_the_file_is_refused_before_reading(tmp_path):
    with pytest.raises(TorchFileError, match="truncated inside the storage"):
        _load_bytes(tmp_path, hostile.legacy_huge_storage())  # numpy/BytesIO: OverflowError


def test_a_legacy_storage_whose_counts_disagree_is_refused(tmp_path):
    main = Pickle().op(pickle.EMPTY_DICT).str("w").tensor().op(pickle.SETITEM).bytes()
    with pytest.raises(TorchFileError, match="holds 3 elements in the file but its pickle declares 4"):
        _load_bytes(tmp_path, hostile.legacy_file(main, numels={"0": 3}))


def test_a_storage_declared_twice_differently_is_refused(tmp_path):
    with pytest.raises(TorchFileError, match="declared twice"):
        _load_bytes(tmp_path, hostile.storage_declared_twice())


@pytest.mark.parametrize("fmt", [hostile.zip_file, hostile.legacy_file], ids=["zip", "legacy"])
def test_a_string_longer_than_the_file_is_refused_before_it_is_read(tmp_path, fmt):
    p = Pickle().op(pickle.EMPTY_DICT).str("w").tensor().op(pickle.SETITEM)
    p.str("name").op(b"\x8d" + struct.pack("<Q", 2**40) + b"abc")  # BINUNICODE8
    with pytest.raises(TorchFileError, match="33,554,432 bytes"):
        _load_bytes(tmp_path, fmt(p.op(pickle.SETITEM).bytes()))


@pytest.mark.parametrize("limit, value, build, message", [
    ("MAX_PICKLE_OPS", 10, lambda: hostile.zip_file(hostile.state_dict()), "more than 10 operations"),
    ("MAX_PICKLE_BYTES", 50, lambda: hostile.zip_file(hostile.state_dict()), "more than 50"),
    ("MAX_PICKLE_BYTES", 50, lambda: hostile.legacy_file(hostile.state_dict()), "more than 50 bytes"),
    ("MAX_EXPANSION", 1, lambda: hostile.many_views_of_one_storage(3), "more than 1 times"),
    ("MAX_ZIP_DIRECTORY_BYTES", 100, lambda: hostile.zip_file(hostile.state_dict()),
     "directory takes"),
    ("MAX_NDIM", 0, lambda: hostile.zip_file(hostile.state_dict()), "at most 0"),
])
def test_each_limit_is_named_in_its_message_and_can_be_raised(tmp_path, monkeypatch, limit,
                                                               value, build, message):
    default = getattr(torch_pickle, limit)
    data = build()
    names = list(_load_bytes(tmp_path, data))  # within the default
    assert names in (["weight"], ["w0", "w1", "w2"])
    monkeypatch.setattr(torch_pickle, limit, value)
    with pytest.raises(TorchFileError, match=message) as info:
        _load_bytes(tmp_path, data)
    assert limit in str(info.value) or limit == "MAX_NDIM"
    monkeypatch.setattr(torch_pickle, limit, default)
    assert list(_load_bytes(tmp_path, data)) == names


def test_a_zip_pickle_larger_than_the_limit_is_not_inflated(tmp_path):
    with pytest.raises(TorchFileError, match="MAX_PICKLE_BYTES"):
        _load_bytes(tmp_path, hostile.zip_pickle_inflates(64 * 2**20))


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_damage_to_a_file_ends_in_the_reader_s_own_errors(tmp_path, fake_torch, data):
    """Bytes overwritten or cut anywhere: a state dict or TorchFileError / UnsafePickleError,
    never a raw error from pickle, numpy, zipfile or zlib."""
    rng = np.random.default_rng(0)
    sd = collections.OrderedDict(
        a=tensor(rng.normal(size=(3, 4)).astype(np.float32), "0"),
        b=Tensor(Storage("1", np.arange(12, dtype=np.float64)), 2, (2, 3), (1, 2)),
        c=tensor(np.array([1, 2], np.int64), "2"))
    fmt = data.draw(st.sampled_from([legacy_bytes, zip_bytes]))
    original = bytearray(fmt(sd))
    damaged = original[:]
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(original) - 1))
        damaged[at] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        damaged = damaged[:data.draw(st.integers(0, len(damaged)))]
    try:
        loaded = load_state_dict(write(tmp_path, bytes(damaged)))
    except (TorchFileError, UnsafePickleError):
        return
    assert all(isinstance(v, np.ndarray) for v in loaded.values())


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(numel=st.integers(0, 64), offset=st.integers(-2, 70),
       size=st.lists(st.one_of(st.integers(-1, 9), st.integers(2**40, 2**64)), max_size=3),
       stride=st.lists(st.one_of(st.integers(-1, 9), st.integers(2**40, 2**64)), max_size=3))
def test_any_tensor_layout_reads_back_or_is_refused_within_budget(tmp_path, numel, offset, size,
                                                                   stride):
    """The reader agrees with numpy where a layout is valid, refuses every other with its own
    error, and never returns more than MAX_EXPANSION times the bytes read (plus 1 MiB)."""
    flat = np.arange(numel, dtype="<f4")
    try:
        got = _load_bytes(tmp_path, _one_tensor(numel, offset, size, stride))["w"]
    except TorchFileError:
        valid = (len(size) == len(stride) and offset >= 0 and min(size + stride, default=0) >= 0
                 and max(size + stride, default=0) < 2**63
                 and (0 in size or offset + 1 + sum((n - 1) * s for n, s in zip(size, stride)) <= numel)
                 and 4 * int(np.prod([n for n in size if n], dtype=object)) < 2**63)  # numpy's bound
        if valid:  # then only the budget may refuse it
            assert 4 * int(np.prod(size, dtype=object)) > 1 << 20
        return
    assert got.nbytes <= torch_pickle.MAX_EXPANSION * flat.nbytes + (1 << 20)
    if 0 in size:
        assert got.shape == tuple(size)
    else:
        expected = np.lib.stride_tricks.as_strided(  # (numpy cannot take a huge stride)
            flat[offset:], tuple(size), [4 * s if n > 1 else 0 for n, s in zip(size, stride)])
        np.testing.assert_array_equal(got, expected)


def test_a_huge_stride_on_a_dimension_of_one_is_harmless(tmp_path):
    """torch keeps any stride for a dimension of size 1; numpy cannot take 2**63 - 1 bytes."""
    loaded = _load_bytes(tmp_path, _one_tensor(4, 1, (1, 2), (2**63 - 1, 1)))
    np.testing.assert_array_equal(loaded["w"], [[1, 2]])
