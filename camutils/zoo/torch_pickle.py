"""Read a PyTorch state dict (a ``.pth`` file) into numpy arrays, without torch, safely.

    from camutils.zoo.torch_pickle import load_state_dict
    weights = load_state_dict(path, sha256="5793...")   # {"_conv_stem.weight": ndarray, ...}

A ``.pth`` file is a Python pickle, and unpickling runs whatever code the file names: a
crafted file can call ``os.system``. This reader never hands the file to `pickle`: it walks
the pickle's operations itself (decoded by `pickletools`) and builds only plain data (dicts,
lists, tuples, strings, numbers) and the few callables a state dict needs (an
``OrderedDict``, torch's tensor-rebuild functions and its storage types), each replaced by a
numpy stand-in; anything else raises `UnsafePickleError`. An optional sha256 pins the exact
file.

Both of torch's formats are read:

- the legacy format (torch < 1.6): five pickles in a row (a magic number, the protocol
  version, system info, the object with its storages as persistent ids, the storage keys),
  then each storage's raw little-endian bytes, each preceded by its element count (int64);
- the zip format (torch >= 1.6): ``<name>/data.pkl`` and one ``<name>/data/<key>`` entry
  per storage.

Untrusted files: the work and memory are bounded by what the returned tensors need, and a
file that asks for more is refused with `TorchFileError` before anything large is allocated.

- Each pickle may use at most `MAX_PICKLE_BYTES` bytes and `MAX_PICKLE_OPS` operations. Every
  operation does a bounded amount of work (nothing is traversed, hashed or copied in full:
  dict keys must be strings or numbers), so shared, self-containing or deeply nested lists
  cost what their operations cost, and are then dropped like any non-tensor entry.
- A tensor may have at most `MAX_NDIM` dimensions; sizes, strides, offsets and element
  counts are non-negative integers below 2**63 and a tensor lies inside its storage.
- A storage is read only as far as the returned tensors reach into it, and never past the
  size its pickle declares: a zip entry or legacy record that holds a different number of
  bytes is refused before it is read (and a zip entry is inflated in bounded chunks).
- The arrays returned hold at most `MAX_EXPANSION` times the tensor bytes read from the file
  (plus 1 MiB): a zero or overlapping stride, or many tensors over one storage, cannot
  expand a small file into a large copy. Tied weights (a few tensors over one storage) fit.
- A zip archive's central directory may take at most `MAX_ZIP_DIRECTORY_BYTES`.

The limits are module attributes: raise them
(``camutils.zoo.torch_pickle.MAX_PICKLE_OPS = ...``) for a large file you trust.
"""

from __future__ import annotations

import collections
import hashlib
import io
import math
import os
import pickle
import pickletools
import zipfile
from pathlib import Path

import numpy as np

__all__ = ["load_state_dict", "sha256_of", "UnsafePickleError", "TorchFileError"]

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

# Limits for untrusted files (see the module docstring). A state dict of a few hundred
# tensors (EfficientNet-Lite0: 296) takes about 40 kB and 11,000 operations of pickle.
MAX_PICKLE_BYTES = 32 * 2**20
MAX_PICKLE_OPS = 1_000_000
MAX_NDIM = 32
MAX_EXPANSION = 4
MAX_ZIP_DIRECTORY_BYTES = 8 * 2**20

_EXPANSION_SLACK = 2**20  # bytes a file may expand by in any case (small broadcast buffers)
_MAX_INT = 2**63 - 1  # no size, stride, offset or element count of a real tensor is larger
_MAX_LINE = 4096  # the longest text line a pickle operation may read (GLOBAL names, numbers)
_MAX_KEY = 256  # the longest storage key or location string
_CHUNK = 2**20  # zip entries are inflated in chunks of this many bytes

# torch storage type name -> numpy dtype of its elements (little-endian).
STORAGE_DTYPES = {
    "DoubleStorage": "<f8", "FloatStorage": "<f4", "HalfStorage": "<f2",
    "LongStorage": "<i8", "IntStorage": "<i4", "ShortStorage": "<i2",
    "CharStorage": "i1", "ByteStorage": "u1", "BoolStorage": "?",
}


class UnsafePickleError(pickle.UnpicklingError):
    """The file asks to call something a state dict does not need: it is refused, unrun."""


class TorchFileError(ValueError):
    """The file is not a readable PyTorch state dict (damaged, truncated or another format)."""


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _int_or_refuse(value, what: str) -> int:
    """A non-negative int below 2**63 (never bool, float or a string), or a TorchFileError."""
    if type(value) is not int or not 0 <= value <= _MAX_INT:
        shown = value if type(value) is int and abs(value) < 10**30 else f"a {type(value).__name__}"
        raise TorchFileError(f"The file declares an invalid {what} ({shown}): it must be a "
                             "whole number from 0 to 2**63 - 1; the file is damaged or crafted.")
    return value


def _short_str(value, what: str) -> str:
    if type(value) is not str or len(value) > _MAX_KEY:
        raise TorchFileError(f"A storage in the file has an invalid {what}: it must be a short "
                             "string; the file is damaged or crafted.")
    return value


class _Sealed:
    """A stand-in that a pickle may create but not modify (the BUILD operation is refused)."""

    def __setstate__(self, state):
        raise UnsafePickleError(
            f"The file tries to set the state of a {type(self).__name__.strip('_')}, which a "
            "PyTorch state dict never does; it was refused."
        )


class _Storage(_Sealed):
    """A torch storage stand-in: a dtype, a declared element count and, once read, a flat array
    of its first ``need`` elements (as far as the returned tensors reach)."""

    def __init__(self, key: str, dtype: str, numel: int):
        self.key, self.dtype, self.numel = key, np.dtype(dtype), numel
        self.need = 0  # elements the returned tensors reach
        self.array: np.ndarray | None = None


class _StorageType(_Sealed):
    """What ``torch.FloatStorage`` (etc.) unpickles to: only a dtype."""

    def __init__(self, name: str):
        self.name, self.dtype = name, STORAGE_DTYPES[name]


class _Tensor(_Sealed):
    """A tensor whose storage may not be read yet: storage, offset, shape and strides, checked
    when the pickle builds it (so a bad layout is refused before any data is read)."""

    def __init__(self, storage, offset, size, stride):
        if not isinstance(storage, _Storage):
            raise TorchFileError("A tensor in the file does not point at a storage.")
        for name, value in (("size", size), ("stride", stride)):
            if type(value) not in (tuple, list) or len(value) > MAX_NDIM:
                raise TorchFileError(
                    f"A tensor in the file has an invalid {name}: it must be a tuple of at most "
                    f"{MAX_NDIM} whole numbers; the file is damaged or crafted.")
        self.storage = storage
        self.offset = _int_or_refuse(offset, "storage offset")
        self.size = tuple(_int_or_refuse(n, "size") for n in size)
        self.stride = tuple(_int_or_refuse(s, "stride") for s in stride)
        if len(self.size) != len(self.stride):
            raise TorchFileError(f"A tensor has an invalid layout (size {self.size}, "
                                 f"stride {self.stride}, offset {self.offset}).")
        self.numel = math.prod(self.size)
        # elements of the storage the tensor reaches (0 for an empty tensor)
        self.reach = (self.offset + 1 + sum((n - 1) * s for n, s in zip(self.size, self.stride))
                      if self.numel else 0)
        if self.reach > storage.numel:
            raise TorchFileError(
                f"A tensor of shape {self.size} reaches element {self.reach - 1} of the storage "
                f"{storage.key!r}, which has only {storage.numel}: the file is damaged."
            )

    @property
    def nbytes(self) -> int:
        return self.numel * self.storage.dtype.itemsize

    def to_numpy(self) -> np.ndarray:
        dtype = self.storage.dtype.newbyteorder("=")
        if self.numel == 0:
            try:
                return np.zeros(self.size, dtype)
            except ValueError:  # numpy's "array is too big", from the dimensions besides the 0
                raise TorchFileError(f"A tensor has an invalid size {self.size}: no array of that "
                                     "shape fits in memory, even an empty one.") from None
        flat = self.storage.array
        if flat is None:
            raise TorchFileError(f"The storage {self.storage.key!r} has no data in the file.")
        view = np.lib.stride_tricks.as_strided(  # (a dimension of size 1 never moves: its
            flat[self.offset:], shape=self.size,  # stride, which may be huge, is irrelevant)
            strides=[s * flat.itemsize if n > 1 else 0 for n, s in zip(self.size, self.stride)],
            writeable=False,
        )
        return np.array(view, dtype=dtype, order="C")


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None):
    return _Tensor(storage, storage_offset, size, stride)


def _rebuild_tensor(storage, storage_offset, size, stride):
    return _Tensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None):
    return data


def _ordered_dict():
    # Only the empty call: torch pickles an OrderedDict as OrderedDict() and then its items,
    # and an argument (an iterable) could make one call do unbounded work.
    return collections.OrderedDict()


class _Function(_Sealed):
    """An allow-listed callable, sealed so that a pickle cannot change it."""

    def __init__(self, function):
        self._function = function

    def __call__(self, *args, **kwargs):
        return self._function(*args, **kwargs)


# (module, name) -> the stand-in a pickle gets for it. Nothing else is callable.
_ALLOWED = {
    ("collections", "OrderedDict"): _Function(_ordered_dict),
    ("torch._utils", "_rebuild_tensor_v2"): _Function(_rebuild_tensor_v2),
    ("torch._utils", "_rebuild_tensor"): _Function(_rebuild_tensor),
    ("torch._utils", "_rebuild_parameter"): _Function(_rebuild_parameter),
    **{("torch", name): _StorageType(name) for name in STORAGE_DTYPES},
}


def _find_class(module, name):
    try:
        return _ALLOWED[(module, name)]
    except (KeyError, TypeError):
        raise UnsafePickleError(
            f"The file asks to load {str(module)[:_MAX_KEY]}.{str(name)[:_MAX_KEY]}, which a "
            "PyTorch state dict never needs; it was refused without running it. Only load "
            "weights from a source you trust, as a plain state dict "
            "(torch.save(model.state_dict(), path))."
        ) from None


class _PickleReader:
    """A file seen through a budget: at most ``MAX_PICKLE_BYTES`` for one pickle, no read past
    the end of the file and no text line longer than ``_MAX_LINE``, each checked before the
    bytes are read (a pickle's string may declare a length of 2**64)."""

    def __init__(self, file, end: int):
        self.file, self.end, self.left = file, end, MAX_PICKLE_BYTES

    def _take(self, n: int) -> None:
        if n > self.left:
            raise TorchFileError(
                f"The file's pickle needs more than {MAX_PICKLE_BYTES:,} bytes (a string or list "
                "far larger than a state dict's): refused as a possible resource attack. For a "
                "file you trust, raise camutils.zoo.torch_pickle.MAX_PICKLE_BYTES.")
        if n > self.end - self.file.tell():
            raise TorchFileError("The file is truncated inside a pickle.")
        self.left -= n

    def read(self, n: int = -1) -> bytes:
        if n < 0:
            raise TorchFileError("The file's pickle is not readable.")  # never asked by pickletools
        self._take(n)
        return self.file.read(n)

    def readline(self) -> bytes:
        line = self.file.readline(_MAX_LINE + 1)
        if len(line) > _MAX_LINE:
            raise TorchFileError(f"The file's pickle has a text line of more than {_MAX_LINE} "
                                 "bytes, which a state dict never has.")
        self.left -= len(line)
        if self.left < 0:
            self._take(1)  # raises: the budget is spent
        return line

    def tell(self) -> int:
        return self.file.tell()


# Keys a pickled dict may have: hashing them costs at most their (bounded) length.
_KEY_TYPES = (str, bytes, int, float, bool, type(None))
# Operations that push a constant, and those that push their argument (a number or a string).
_CONSTANTS = {"NONE": None, "NEWTRUE": True, "NEWFALSE": False}
_ARG_VALUES = {
    "INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "FLOAT", "BINFLOAT",
    "STRING", "BINSTRING", "SHORT_BINSTRING", "UNICODE", "SHORT_BINUNICODE", "BINUNICODE",
    "BINUNICODE8", "BINBYTES", "SHORT_BINBYTES", "BINBYTES8",
}


def _check_key(key) -> None:
    if type(key) not in _KEY_TYPES:
        raise TorchFileError(
            f"The file's pickle has a dict key of type {type(key).__name__}; a state dict's keys "
            "are strings or numbers (a nested key can take forever to hash): refused.")


class _Machine:
    """The pickle machine, restricted: its stack, marks and memo, and one small method per
    kind of operation (values, the memo, containers, calls, control); `_unpickle` runs it."""

    def __init__(self, storages: dict[str, _Storage] | None):
        self.stack: list = []
        self.marks: list[int] = []
        self.memo: dict = {}
        self.storages = storages

    def pop_mark(self) -> list:
        if not self.marks:
            raise TorchFileError("The file's pickle is damaged (an operation without its mark).")
        start = self.marks.pop()
        items = self.stack[start:]
        del self.stack[start:]
        return items

    def container(self, kinds):
        target = self.stack[-1]
        if type(target) not in kinds:
            raise TorchFileError(f"The file's pickle adds items to a {type(target).__name__}.")
        return target

    def value(self, name: str, arg) -> None:
        """Push a number, a string, a constant or an empty container."""
        if name in _ARG_VALUES:
            self.stack.append(arg)
        elif name in _CONSTANTS:
            self.stack.append(_CONSTANTS[name])
        else:
            self.stack.append({"EMPTY_LIST": list, "EMPTY_DICT": dict,
                               "EMPTY_TUPLE": tuple}[name]())

    def remember(self, name: str, arg) -> None:
        """The memo (PUT, MEMOIZE, GET) and the marks."""
        if name in ("BINPUT", "LONG_BINPUT", "PUT"):
            self.memo[arg] = self.stack[-1]
        elif name == "MEMOIZE":
            self.memo[len(self.memo)] = self.stack[-1]
        elif name in ("BINGET", "LONG_BINGET", "GET"):
            self.stack.append(self.memo[arg])
        else:  # MARK
            self.marks.append(len(self.stack))

    def collect(self, name: str, arg) -> None:
        """Build a tuple, list or dict, or add items to one."""
        stack = self.stack
        if name in ("TUPLE1", "TUPLE2", "TUPLE3"):
            n = int(name[-1])
            if len(stack) < n:
                raise IndexError("stack underflow")
            items = tuple(stack[-n:])
            del stack[-n:]
            stack.append(items)
        elif name == "TUPLE":
            stack.append(tuple(self.pop_mark()))
        elif name == "LIST":
            stack.append(self.pop_mark())
        elif name == "DICT":
            items = self.pop_mark()
            if len(items) % 2:
                raise TorchFileError("The file's pickle is damaged (a key without a value).")
            for key in items[::2]:
                _check_key(key)
            stack.append(dict(zip(items[::2], items[1::2])))
        elif name == "APPEND":
            value = stack.pop()
            self.container((list,)).append(value)
        elif name == "APPENDS":
            items = self.pop_mark()
            self.container((list,)).extend(items)
        elif name == "SETITEM":
            value, key = stack.pop(), stack.pop()
            _check_key(key)
            self.container((dict, collections.OrderedDict))[key] = value
        else:  # SETITEMS
            items = self.pop_mark()
            target = self.container((dict, collections.OrderedDict))
            if len(items) % 2:
                raise TorchFileError("The file's pickle is damaged (a key without a value).")
            for key, value in zip(items[::2], items[1::2]):
                _check_key(key)
                target[key] = value

    def call(self, name: str, arg) -> None:
        """Name a global (only the allowed ones), call it, set an object's state, or load a
        storage by its persistent id."""
        stack = self.stack
        if name == "GLOBAL":
            module, _, attribute = arg.partition(" ")
            stack.append(_find_class(module, attribute))
        elif name == "STACK_GLOBAL":
            attribute, module = stack.pop(), stack.pop()
            if type(module) is not str or type(attribute) is not str:
                raise TorchFileError("The file's pickle names a global that is not a string.")
            stack.append(_find_class(module, attribute))
        elif name == "REDUCE":
            args, function = stack.pop(), stack.pop()
            if not isinstance(function, _Function):
                raise TorchFileError(f"The file's pickle calls a {type(function).__name__}.")
            if type(args) is not tuple:
                raise TorchFileError("The file's pickle calls a function with arguments "
                                     "that are not a tuple.")
            stack.append(function(*args))
        elif name == "BUILD":
            state = stack.pop()
            target = stack[-1]
            if isinstance(target, _Sealed):
                target.__setstate__(state)  # raises UnsafePickleError
            elif type(target) is not collections.OrderedDict:
                raise TorchFileError(
                    f"The file's pickle sets the state of a {type(target).__name__}.")
            # An OrderedDict's state holds its attributes (a state dict's ``_metadata``),
            # which this reader drops with every other non-tensor.
        else:  # BINPERSID
            stack.append(_persistent_load(stack.pop(), self.storages))

    def control(self, name: str, arg) -> None:
        """The stack's housekeeping and the protocol's framing."""
        if name == "POP":
            self.stack.pop()
        elif name == "POP_MARK":
            self.pop_mark()
        elif name == "DUP":
            self.stack.append(self.stack[-1])
        elif name == "PROTO" and arg > 5:
            raise TorchFileError(f"The file uses pickle protocol {arg}, newer than any "
                                 "this reader knows (at most 5).")
        # FRAME (and PROTO up to 5): nothing to do


#: each operation a state dict needs -> the step of `_Machine` that runs it
_STEPS = {
    **dict.fromkeys(_ARG_VALUES | set(_CONSTANTS) | {"EMPTY_LIST", "EMPTY_DICT", "EMPTY_TUPLE"},
                    _Machine.value),
    **dict.fromkeys(("BINPUT", "LONG_BINPUT", "PUT", "MEMOIZE", "BINGET", "LONG_BINGET", "GET",
                     "MARK"), _Machine.remember),
    **dict.fromkeys(("TUPLE1", "TUPLE2", "TUPLE3", "TUPLE", "LIST", "DICT", "APPEND", "APPENDS",
                     "SETITEM", "SETITEMS"), _Machine.collect),
    **dict.fromkeys(("GLOBAL", "STACK_GLOBAL", "REDUCE", "BUILD", "BINPERSID"), _Machine.call),
    **dict.fromkeys(("POP", "POP_MARK", "DUP", "PROTO", "FRAME"), _Machine.control),
}


def _unpickle(file, end: int, storages: dict[str, _Storage] | None = None):
    """Build one pickle's object from ``file``, operation by operation (see the module
    docstring); ``storages`` collects the persistent ids (None: none are allowed)."""
    reader = _PickleReader(file, end)
    machine = _Machine(storages)
    try:
        for ops, (opcode, arg, _) in enumerate(pickletools.genops(reader), start=1):
            if ops > MAX_PICKLE_OPS:
                raise TorchFileError(
                    f"The file's pickle has more than {MAX_PICKLE_OPS:,} operations, far more "
                    "than a state dict needs: refused as a possible resource attack. For a file "
                    "you trust, raise camutils.zoo.torch_pickle.MAX_PICKLE_OPS.")
            if opcode.name == "STOP":
                return machine.stack.pop()
            step = _STEPS.get(opcode.name)
            if step is None:
                raise UnsafePickleError(
                    f"The file's pickle uses the operation {opcode.name}, which a PyTorch state "
                    "dict never needs; it was refused without running it.")
            step(machine, opcode.name, arg)
    except (TorchFileError, UnsafePickleError):
        raise
    except (ValueError, TypeError, IndexError, KeyError, AttributeError, EOFError,
            UnicodeDecodeError, OverflowError, MemoryError, RecursionError) as error:
        raise TorchFileError(f"The file is not a readable PyTorch pickle ({error}).") from None
    raise TorchFileError("The file is not a readable PyTorch pickle (it ends before STOP).")


def _persistent_load(pid, storages: dict[str, _Storage] | None) -> _Storage:
    if storages is None:
        raise UnsafePickleError("Unexpected persistent id in a header pickle.")
    if not (type(pid) is tuple and len(pid) in (5, 6) and pid[0] == "storage"):
        kind = pid[0] if type(pid) is tuple and pid and type(pid[0]) is str else type(pid).__name__
        raise UnsafePickleError(
            f"The file refers to an object of kind {kind[:_MAX_KEY]!r}; only tensor storages are "
            "allowed in a state dict."
        )
    storage_type, key, location, numel = pid[1:5]
    if not isinstance(storage_type, _StorageType):
        raise UnsafePickleError(f"Unknown storage type (a {type(storage_type).__name__}).")
    key = _short_str(key, "key")
    _short_str(location, "location")
    numel = _int_or_refuse(numel, "storage size")
    storage = storages.get(key)
    if storage is None:
        storage = storages[key] = _Storage(key, storage_type.dtype, numel)
    elif storage.dtype != np.dtype(storage_type.dtype) or storage.numel != numel:
        raise TorchFileError(f"The storage {key!r} is declared twice, with different types "
                             "or sizes: the file is damaged.")
    return storage


def _state_dict_tensors(result) -> list[tuple[str, _Tensor]]:
    """The top-level tensors of the state dict (or of a checkpoint's ``state_dict``), and how
    far each storage is needed; the budget of `MAX_EXPANSION` is checked here, before any data
    is read."""
    if isinstance(result, dict) and isinstance(result.get("state_dict"), dict):
        result = result["state_dict"]  # a checkpoint that wraps the state dict
    if not isinstance(result, dict):
        raise TorchFileError(f"The file holds a {type(result).__name__}, not a state dict.")
    tensors = [(str(k), v) for k, v in result.items() if isinstance(v, _Tensor)]
    used: dict[int, _Storage] = {}
    for _, tensor in tensors:
        storage = tensor.storage
        storage.need = max(storage.need, tensor.reach)
        used[id(storage)] = storage
    stored = sum(s.need * s.dtype.itemsize for s in used.values())
    wanted = sum(t.nbytes for _, t in tensors)
    if wanted > MAX_EXPANSION * stored + _EXPANSION_SLACK:
        raise TorchFileError(
            f"The file's tensors would take {wanted:,} bytes as arrays, from {stored:,} bytes of "
            f"tensor data in the file: more than {MAX_EXPANSION} times as much. A tensor with a "
            "zero or overlapping stride, or many tensors over one storage, expands the file; it "
            "was refused as a possible memory bomb. For a file you trust, raise "
            "camutils.zoo.torch_pickle.MAX_EXPANSION."
        )
    return tensors


def _file_end(file) -> int:
    file.seek(0, os.SEEK_END)
    end = file.tell()
    file.seek(0)
    return end


def _read_legacy(file):
    end = _file_end(file)
    magic = _unpickle(file, end)
    if type(magic) is not int or magic != LEGACY_MAGIC:
        raise TorchFileError("The file is neither a zip archive nor a legacy PyTorch pickle "
                             "(wrong magic number).")
    protocol = _unpickle(file, end)
    if type(protocol) is not int or protocol != LEGACY_PROTOCOL:
        raise TorchFileError(f"Unsupported legacy PyTorch protocol version "
                             f"{protocol if type(protocol) is int else type(protocol).__name__!r}.")
    sys_info = _unpickle(file, end)
    if not (isinstance(sys_info, dict) and sys_info.get("little_endian", True)):
        raise TorchFileError("The file was written on a big-endian machine; re-save it on a "
                             "little-endian one.")
    storages: dict[str, _Storage] = {}
    tensors = _state_dict_tensors(_unpickle(file, end, storages))
    keys = _unpickle(file, end)
    if type(keys) is not list or len(keys) > len(storages) or not all(type(k) is str for k in keys):
        raise TorchFileError("The file's list of storage keys is missing or damaged.")
    if len(set(keys)) != len(keys):
        raise TorchFileError("The file's list of storage keys names a storage twice.")
    for key in keys:
        storage = storages.get(key)
        if storage is None:
            raise TorchFileError(f"The file has data for an unknown storage {key[:_MAX_KEY]!r}.")
        header = file.read(8)
        if len(header) != 8:
            raise TorchFileError(f"The file is truncated before the storage {key!r}.")
        numel = int.from_bytes(header, "little", signed=True)
        if numel != storage.numel:
            raise TorchFileError(
                f"The storage {key!r} holds {numel} elements in the file but its pickle declares "
                f"{storage.numel}: the file is damaged.")
        nbytes = numel * storage.dtype.itemsize
        if nbytes > end - file.tell():
            raise TorchFileError(f"The file is truncated inside the storage {key!r}.")
        if storage.need:
            raw = file.read(storage.need * storage.dtype.itemsize)
            storage.array = np.frombuffer(raw, storage.dtype)
            file.seek(nbytes - len(raw), os.SEEK_CUR)
        else:
            file.seek(nbytes, os.SEEK_CUR)
    return tensors


def _read_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo, nbytes: int) -> bytearray:
    """The first ``nbytes`` bytes of a zip entry, inflated in bounded chunks."""
    out = bytearray(nbytes)
    done = 0
    try:
        with archive.open(info) as entry:
            while done < nbytes:
                chunk = entry.read(min(_CHUNK, nbytes - done))
                if not chunk:
                    break
                out[done:done + len(chunk)] = chunk
                done += len(chunk)
    except Exception as error:  # the decompressors' errors (zlib.error, lzma.LZMAError, ...)
        raise TorchFileError(f"The archive's entry {info.filename[:_MAX_KEY]!r} is damaged "
                             f"({type(error).__name__}: {error}).") from None
    if done < nbytes:
        raise TorchFileError(f"The archive's entry {info.filename[:_MAX_KEY]!r} holds fewer "
                             "bytes than its header says: the file is damaged.")
    return out


def _read_zip(file):
    end = _file_end(file)
    end_record = getattr(zipfile, "_EndRecData", lambda f: None)(file)
    if end_record and end_record[zipfile._ECD_SIZE] > MAX_ZIP_DIRECTORY_BYTES:
        raise TorchFileError(
            f"The zip archive's directory takes {end_record[zipfile._ECD_SIZE]:,} bytes, more "
            f"than the {MAX_ZIP_DIRECTORY_BYTES:,} a state dict needs (too many entries): "
            "refused as a possible resource attack. For a file you trust, raise "
            "camutils.zoo.torch_pickle.MAX_ZIP_DIRECTORY_BYTES.")
    with zipfile.ZipFile(file) as archive:
        pickles = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pickles) != 1:
            raise TorchFileError("The zip archive is not a PyTorch file (no single */data.pkl).")
        root = pickles[0].rsplit("/", 1)[0]
        try:
            info = archive.getinfo(f"{root}/byteorder")
        except KeyError:
            info = None
        if info is not None and (info.file_size > 16 or
                                 _read_entry(archive, info, info.file_size).strip() != b"little"):
            raise TorchFileError("The file was written on a big-endian machine; re-save it on a "
                                 "little-endian one.")
        info = archive.getinfo(pickles[0])
        if info.file_size > MAX_PICKLE_BYTES:
            raise TorchFileError(
                f"The file's pickle takes {info.file_size:,} bytes, more than "
                f"{MAX_PICKLE_BYTES:,}: refused as a possible resource attack. For a file you "
                "trust, raise camutils.zoo.torch_pickle.MAX_PICKLE_BYTES.")
        data = _read_entry(archive, info, info.file_size)
        storages: dict[str, _Storage] = {}
        tensors = _state_dict_tensors(_unpickle(io.BytesIO(data), len(data), storages))
        for storage in {id(t.storage): t.storage for _, t in tensors}.values():
            if not storage.need:
                continue
            try:
                info = archive.getinfo(f"{root}/data/{storage.key}")
            except KeyError:
                raise TorchFileError(
                    f"The archive has no data for the storage {storage.key!r}.") from None
            nbytes = storage.numel * storage.dtype.itemsize
            if info.file_size != nbytes:
                raise TorchFileError(
                    f"The archive's entry for the storage {storage.key!r} holds "
                    f"{info.file_size:,} bytes, but its pickle declares {nbytes:,}: the file is "
                    "damaged or crafted (it was not read).")
            raw = _read_entry(archive, info, storage.need * storage.dtype.itemsize)
            storage.array = np.frombuffer(raw, storage.dtype)
    return tensors


def load_state_dict(path, sha256: str | None = None) -> "collections.OrderedDict[str, np.ndarray]":
    """Read a PyTorch state dict into ``{name: numpy array}``, without torch.

    Args:
        path: a ``.pth`` / ``.pt`` file in torch's legacy or zip format.
        sha256: the expected hex digest of the file; when given, a different file is refused
            before anything in it is unpickled.

    Returns:
        An ordered dict of parameter name -> numpy array (torch's shapes, e.g. OIHW for
        convolutions, in C order). Non-tensor entries (such as ``_metadata``) are dropped.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file's sha256 is not the expected one.
        UnsafePickleError: the pickle names a callable or an operation outside the allow-list.
        TorchFileError: the file is damaged, not a state dict, or asks for more work or memory
            than its tensors need (see the module docstring for the limits).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No PyTorch weights file at {str(path)!r}.")
    with open(path, "rb") as file:
        if sha256 is not None:
            # The pinned file is read once and checked, and exactly those bytes are parsed.
            data = file.read()
            actual = sha256_of(data)
            if actual != sha256.lower():
                raise ValueError(
                    f"The weights file {path.name!r} is not the expected one: its sha256 is "
                    f"{actual}, expected {sha256.lower()}. It may be damaged or replaced; "
                    "reinstall the package that ships it."
                )
            file = io.BytesIO(data)
        try:
            tensors = _read_zip(file) if zipfile.is_zipfile(file) else _read_legacy(file)
        except TorchFileError:
            raise
        except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError,
                OSError, ValueError) as error:  # zipfile's (a name that is not UTF-8, ...)
            raise TorchFileError(f"The file is not a readable PyTorch file ({error}).") from None
    return collections.OrderedDict((name, tensor.to_numpy()) for name, tensor in tensors)
