"""Read a PyTorch state dict (a ``.pth`` file) into numpy arrays, without torch, safely.

    from camutils.torch_pickle import load_state_dict
    weights = load_state_dict(path, sha256="5793...")   # {"_conv_stem.weight": ndarray, ...}

A ``.pth`` file is a Python pickle, and unpickling runs whatever code the file names: a
crafted file can call ``os.system``. This reader unpickles with an allow-list of the few
callables a state dict needs (an ``OrderedDict``, torch's tensor-rebuild functions and its
storage types), each replaced by a numpy stand-in; anything else raises `UnsafePickleError`.
An optional sha256 pins the exact file.

Both of torch's formats are read:

- the legacy format (torch < 1.6): five pickles in a row (a magic number, the protocol
  version, system info, the object with its storages as persistent ids, the storage keys),
  then each storage's raw little-endian bytes, each preceded by its element count (int64);
- the zip format (torch >= 1.6): ``<name>/data.pkl`` and one ``<name>/data/<key>`` entry
  per storage.
"""

from __future__ import annotations

import collections
import hashlib
import io
import pickle
import zipfile
from pathlib import Path

import numpy as np

__all__ = ["load_state_dict", "sha256_of", "UnsafePickleError", "TorchFileError"]

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

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


class _Sealed:
    """A stand-in that a pickle may create but not modify (the BUILD opcode is refused)."""

    def __setstate__(self, state):
        raise UnsafePickleError(
            f"The file tries to set the state of a {type(self).__name__.strip('_')}, which a "
            "PyTorch state dict never does; it was refused."
        )


class _Storage(_Sealed):
    """A torch storage stand-in: a dtype and, once its bytes are read, a flat numpy array."""

    def __init__(self, key: str, dtype: str, numel: int):
        self.key, self.dtype, self.numel = key, np.dtype(dtype), int(numel)
        self.array: np.ndarray | None = None


class _StorageType(_Sealed):
    """What ``torch.FloatStorage`` (etc.) unpickles to: only a dtype."""

    def __init__(self, name: str):
        self.name, self.dtype = name, STORAGE_DTYPES[name]


class _Tensor(_Sealed):
    """A tensor whose storage may not be read yet: storage, offset, shape and strides."""

    def __init__(self, storage, offset, size, stride):
        if not isinstance(storage, _Storage):
            raise TorchFileError("A tensor in the file does not point at a storage.")
        self.storage, self.offset = storage, int(offset)
        self.size, self.stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)

    def to_numpy(self) -> np.ndarray:
        flat = self.storage.array
        if flat is None:
            raise TorchFileError(f"The storage {self.storage.key!r} has no data in the file.")
        if (len(self.size) != len(self.stride) or self.offset < 0
                or min(self.size, default=0) < 0 or min(self.stride, default=0) < 0):
            raise TorchFileError(f"A tensor has an invalid layout (size {self.size}, "
                                 f"stride {self.stride}, offset {self.offset}).")
        if 0 in self.size:
            return np.zeros(self.size, flat.dtype)
        last = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride))
        if last >= flat.size:  # never let as_strided read outside the storage
            raise TorchFileError(
                f"A tensor of shape {self.size} reaches element {last} of the storage "
                f"{self.storage.key!r}, which has only {flat.size}: the file is damaged."
            )
        view = np.lib.stride_tricks.as_strided(
            flat[self.offset:], shape=self.size,
            strides=[s * flat.itemsize for s in self.stride], writeable=False,
        )
        return np.array(view, dtype=flat.dtype.newbyteorder("="), order="C")


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None):
    return _Tensor(storage, storage_offset, size, stride)


def _rebuild_tensor(storage, storage_offset, size, stride):
    return _Tensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None):
    return data


class _Function(_Sealed):
    """An allow-listed callable, sealed so that a pickle cannot change it."""

    def __init__(self, function):
        self._function = function

    def __call__(self, *args, **kwargs):
        return self._function(*args, **kwargs)


# (module, name) -> the stand-in the unpickler returns for it. Nothing else is callable.
_ALLOWED = {
    ("collections", "OrderedDict"): _Function(collections.OrderedDict),
    ("torch._utils", "_rebuild_tensor_v2"): _Function(_rebuild_tensor_v2),
    ("torch._utils", "_rebuild_tensor"): _Function(_rebuild_tensor),
    ("torch._utils", "_rebuild_parameter"): _Function(_rebuild_parameter),
    **{("torch", name): _StorageType(name) for name in STORAGE_DTYPES},
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickles only plain data and the allow-listed callables; storages by persistent id."""

    def __init__(self, file, storages: dict[str, _Storage] | None = None):
        super().__init__(file)
        self._storages = storages

    def find_class(self, module, name):
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"The file asks to load {module}.{name}, which a PyTorch state dict never needs; "
                "it was refused without running it. Only load weights from a source you trust, "
                "as a plain state dict (torch.save(model.state_dict(), path))."
            ) from None

    def persistent_load(self, pid):
        if self._storages is None:
            raise UnsafePickleError("Unexpected persistent id in a header pickle.")
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise UnsafePickleError(
                f"The file refers to an object of kind {pid[0] if isinstance(pid, tuple) and pid else pid!r}; "
                "only tensor storages are allowed in a state dict."
            )
        storage_type, key, _location, numel = pid[1:5]
        if not isinstance(storage_type, _StorageType):
            raise UnsafePickleError(f"Unknown storage type {storage_type!r}.")
        key = str(key)
        if key not in self._storages:
            self._storages[key] = _Storage(key, storage_type.dtype, numel)
        return self._storages[key]


def _load_pickle(file, storages=None):
    try:
        return _RestrictedUnpickler(file, storages).load()
    except UnsafePickleError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            IndexError, KeyError) as error:
        raise TorchFileError(f"The file is not a readable PyTorch pickle ({error}).") from error


def _materialise(obj):
    """Replace every tensor stand-in in ``obj`` (dicts, lists, tuples) by a numpy array."""
    if isinstance(obj, _Tensor):
        return obj.to_numpy()
    if isinstance(obj, dict):
        out = collections.OrderedDict((k, _materialise(v)) for k, v in obj.items())
        return out
    if isinstance(obj, (list, tuple)):
        return type(obj)(_materialise(v) for v in obj)
    return obj


def _read_legacy(data: bytes):
    f = io.BytesIO(data)
    magic = _load_pickle(f)
    if magic != LEGACY_MAGIC:
        raise TorchFileError("The file is neither a zip archive nor a legacy PyTorch pickle "
                             "(wrong magic number).")
    protocol = _load_pickle(f)
    if protocol != LEGACY_PROTOCOL:
        raise TorchFileError(f"Unsupported legacy PyTorch protocol version {protocol!r}.")
    sys_info = _load_pickle(f)
    if not (isinstance(sys_info, dict) and sys_info.get("little_endian", True)):
        raise TorchFileError("The file was written on a big-endian machine; re-save it on a "
                             "little-endian one.")
    storages: dict[str, _Storage] = {}
    result = _load_pickle(f, storages)
    keys = _load_pickle(f)
    if not isinstance(keys, list):
        raise TorchFileError("The file's list of storage keys is missing or damaged.")
    for key in keys:
        storage = storages.get(str(key))
        if storage is None:
            raise TorchFileError(f"The file has data for an unknown storage {key!r}.")
        header = f.read(8)
        if len(header) != 8:
            raise TorchFileError(f"The file is truncated before the storage {key!r}.")
        numel = int.from_bytes(header, "little", signed=True)
        nbytes = numel * storage.dtype.itemsize
        raw = f.read(nbytes)
        if numel < 0 or len(raw) != nbytes:
            raise TorchFileError(f"The file is truncated inside the storage {key!r}.")
        storage.array = np.frombuffer(raw, storage.dtype)
    return result


def _read_zip(data: bytes):
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        pickles = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pickles) != 1:
            raise TorchFileError("The zip archive is not a PyTorch file (no single */data.pkl).")
        root = pickles[0].rsplit("/", 1)[0]
        byteorder = f"{root}/byteorder"
        if byteorder in archive.namelist() and archive.read(byteorder).strip() != b"little":
            raise TorchFileError("The file was written on a big-endian machine; re-save it on a "
                                 "little-endian one.")
        storages: dict[str, _Storage] = {}
        result = _load_pickle(io.BytesIO(archive.read(pickles[0])), storages)
        for key, storage in storages.items():
            try:
                raw = archive.read(f"{root}/data/{key}")
            except KeyError:
                raise TorchFileError(f"The archive has no data for the storage {key!r}.") from None
            storage.array = np.frombuffer(raw[: len(raw) - len(raw) % storage.dtype.itemsize],
                                          storage.dtype)
    return result


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
        UnsafePickleError: the pickle names a callable outside the allow-list.
        TorchFileError: the file is damaged or not a state dict.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No PyTorch weights file at {str(path)!r}.")
    data = path.read_bytes()
    if sha256 is not None:
        actual = sha256_of(data)
        if actual != sha256.lower():
            raise ValueError(
                f"The weights file {path.name!r} is not the expected one: its sha256 is "
                f"{actual}, expected {sha256.lower()}. It may be damaged or replaced; reinstall "
                "the package that ships it."
            )
    result = _read_zip(data) if zipfile.is_zipfile(io.BytesIO(data)) else _read_legacy(data)
    if isinstance(result, dict) and "state_dict" in result and isinstance(result["state_dict"], dict):
        result = result["state_dict"]  # a checkpoint that wraps the state dict
    if not isinstance(result, dict):
        raise TorchFileError(f"The file holds a {type(result).__name__}, not a state dict.")
    arrays = _materialise(result)
    return collections.OrderedDict(
        (str(k), v) for k, v in arrays.items() if isinstance(v, np.ndarray)
    )
