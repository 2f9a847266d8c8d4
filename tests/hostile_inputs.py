"""Hostile and broken inputs, built byte by byte: PyTorch weights files and image files.

Used by the unit tests (tests/test_torch_pickle.py, tests/test_images.py) and by the resource
test (tests/test_hostile_resources.py), which runs every case of `CASES` in one subprocess per
group and bounds each case's time and peak memory. ``python tests/hostile_inputs.py torch``
(or ``images``) prints each case's outcome, time and peak memory as JSON lines.

Pickles are assembled from raw operations (`Pickle`), so that a file can hold what no Python
object could be pickled from without first exhausting the machine that builds it (a dict keyed
by a tuple nested 64 levels deep, each level twice: hashing it takes 2**64 steps). Zip archives
(`raw_zip`) and image headers are written by hand too, so that their headers can lie.

This module imports only the standard library and numpy.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import struct
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass
from typing import Callable

import numpy as np

# ---------------------------------------------------------------------------- pickles


class Pickle:
    """A protocol-2 pickle written one operation at a time."""

    def __init__(self):
        self.parts = [pickle.PROTO + b"\x02"]
        self.memo = 0

    def op(self, *parts: bytes) -> "Pickle":
        self.parts.extend(parts)
        return self

    def put(self) -> int:
        """Memoize the top of the stack; returns its memo index."""
        self.parts.append(pickle.LONG_BINPUT + struct.pack("<I", self.memo))
        self.memo += 1
        return self.memo - 1

    def get(self, index: int) -> "Pickle":
        return self.op(pickle.LONG_BINGET + struct.pack("<I", index))

    def str(self, text: str) -> "Pickle":
        data = text.encode()
        return self.op(pickle.BINUNICODE + struct.pack("<I", len(data)) + data)

    def int(self, value: int) -> "Pickle":
        if -2**31 <= value < 2**31:
            return self.op(pickle.BININT + struct.pack("<i", value))
        data = pickle.encode_long(value)
        return self.op(pickle.LONG1 + bytes([len(data)]) + data)

    def glob(self, module: str, name: str) -> "Pickle":
        return self.op(pickle.GLOBAL + f"{module}\n{name}\n".encode())

    def ints(self, values) -> "Pickle":
        self.op(pickle.MARK)
        for v in values:
            self.int(v)
        return self.op(pickle.TUPLE)

    def tensor(self, key: str = "0", numel: int = 4, offset: int = 0, size=(4,), stride=(1,),
               storage_type: str = "FloatStorage") -> "Pickle":
        """``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())``,
        its storage a persistent id ``("storage", type, key, "cpu", numel)``."""
        self.glob("torch._utils", "_rebuild_tensor_v2").op(pickle.MARK, pickle.MARK)
        self.str("storage").glob("torch", storage_type).str(key).str("cpu").int(numel)
        self.op(pickle.TUPLE, pickle.BINPERSID)
        self.int(offset).ints(size).ints(stride).op(pickle.NEWFALSE)
        self.glob("collections", "OrderedDict").op(pickle.EMPTY_TUPLE, pickle.REDUCE)
        return self.op(pickle.TUPLE, pickle.REDUCE)

    def bytes(self) -> bytes:
        return b"".join(self.parts) + pickle.STOP


def state_dict(**values: Callable[[Pickle], object]) -> bytes:
    """A pickled dict ``{"weight": a 4-float tensor on storage "0", **values}``; each value is
    a function that writes one object on the `Pickle`."""
    p = Pickle().op(pickle.EMPTY_DICT).str("weight").tensor().op(pickle.SETITEM)
    for name, write in values.items():
        p.str(name)
        write(p)
        p.op(pickle.SETITEM)
    return p.bytes()


FOUR_FLOATS = np.arange(4, dtype="<f4").tobytes()


def legacy_file(main: bytes, storages: dict[str, bytes] | None = None,
                numels: dict[str, int] | None = None) -> bytes:
    """torch's legacy format around a main pickle (default storages: ``{"0": four floats}``);
    ``numels`` overrides the element count written before a storage's bytes (default: its
    bytes / 4, as float32)."""
    storages = {"0": FOUR_FLOATS} if storages is None else storages
    out = io.BytesIO()
    for header in (0x1950A86A20F9469CFC6C, 1001,
                   {"protocol_version": 1001, "little_endian": True,
                    "type_sizes": {"short": 2, "int": 4, "long": 4}}):
        pickle.dump(header, out, protocol=2)
    out.write(main)
    pickle.dump(list(storages), out, protocol=2)
    for key, data in storages.items():
        out.write(struct.pack("<q", (numels or {}).get(key, len(data) // 4)))
        out.write(data)
    return out.getvalue()


@dataclass
class ZipEntry:
    name: str
    data: bytes  # as stored (compressed when ``method`` is 8, deflate)
    method: int = 0
    crc: int | None = None  # of the uncompressed bytes (default: of ``data``)
    size: int | None = None  # the uncompressed size the headers declare (default: len(data))


def raw_zip(entries: list[ZipEntry]) -> bytes:
    """A zip archive written by hand, so that its headers can say anything."""
    out, directory = io.BytesIO(), io.BytesIO()
    for e in entries:
        name = e.name.encode()
        crc = zlib.crc32(e.data) if e.crc is None else e.crc
        size = len(e.data) if e.size is None else e.size
        offset = out.tell()
        out.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, e.method, 0, 0, crc,
                              len(e.data), size, len(name), 0) + name + e.data)
        directory.write(struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, e.method, 0,
                                    0, crc, len(e.data), size, len(name), 0, 0, 0, 0, 0, offset)
                        + name)
    start = out.tell()
    out.write(directory.getvalue())
    count = min(len(entries), 0xFFFF)
    out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count,
                          len(directory.getvalue()), start, 0))
    return out.getvalue()


def zip_file(main: bytes, storages: dict[str, bytes] | None = None,
             extra: list[ZipEntry] = ()) -> bytes:
    """torch's zip format: ``archive/data.pkl``, ``archive/byteorder`` and one
    ``archive/data/<key>`` entry per storage (default: ``{"0": four floats}``)."""
    storages = {"0": FOUR_FLOATS} if storages is None else storages
    return raw_zip([ZipEntry("archive/data.pkl", main), ZipEntry("archive/byteorder", b"little")]
                   + [ZipEntry(f"archive/data/{k}", v) for k, v in storages.items()]
                   + list(extra))


def zeros_deflated(nbytes: int) -> bytes:
    """A raw deflate stream of ``nbytes`` zero bytes (a multiple of 1 MiB), made without ever
    holding them: one fully flushed block of 1 MiB, repeated, then an empty final block."""
    mib = 2**20
    block = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk = block.compress(bytes(mib)) + block.flush(zlib.Z_FULL_FLUSH)
    return chunk * (nbytes // mib) + zlib.compressobj(9, zlib.DEFLATED, -15).flush()


def crc_of_zeros(nbytes: int) -> int:
    crc, mib = 0, bytes(2**20)
    for _ in range(nbytes // len(mib)):
        crc = zlib.crc32(mib, crc)
    return crc


# ---------------------------------------------------------------------------- weights files


def _doubled(p: Pickle, first: bytes, level: Callable[[Pickle, int], object],
             depth: int = 64) -> None:
    """Push ``first``, then ``depth`` times an object built by ``level(p, index)`` from two
    references to the one before (memo ``index``); only the last stays on the stack."""
    p.op(first)
    index = p.put()
    for _ in range(depth):
        p.op(pickle.POP)
        level(p, index)
        index = p.put()


def billion_laughs_lists() -> bytes:
    """Beside a real tensor: a list of two references to a list of two references ... 64 levels
    deep, 2**64 paths through a few hundred bytes."""
    def laughs(p: Pickle):
        _doubled(p, pickle.EMPTY_LIST,
                 lambda p, i: p.op(pickle.EMPTY_LIST, pickle.MARK).get(i).get(i).op(pickle.APPENDS))
    return zip_file(state_dict(laughs=laughs))


def _nested_tuple(p: Pickle) -> None:
    _doubled(p, pickle.EMPTY_TUPLE, lambda p, i: p.get(i).get(i).op(pickle.TUPLE2))


def billion_laughs_key() -> bytes:
    """A dict keyed by a tuple of two references to a tuple of two references ... 64 deep:
    hashing the key (which the unpickler does, in C) takes 2**64 steps."""
    def keyed(p: Pickle):
        p.op(pickle.EMPTY_DICT)
        _nested_tuple(p)
        p.op(pickle.NONE, pickle.SETITEM)
    return zip_file(state_dict(keyed=keyed))


def billion_laughs_set() -> bytes:
    """The same nested tuple, put in a frozenset (protocol 4's FROZENSET hashes it too)."""
    def frozen(p: Pickle):
        p.op(pickle.MARK)
        _nested_tuple(p)
        p.op(pickle.FROZENSET)
    return zip_file(state_dict(frozen=frozen))


def self_containing_list() -> bytes:
    """A list that contains itself."""
    def loop(p: Pickle):
        p.op(pickle.EMPTY_LIST)
        index = p.put()
        p.get(index).op(pickle.APPEND)
    return zip_file(state_dict(loop=loop))


def deeply_nested_lists(depth: int = 200_000) -> bytes:
    """``[[[[...]]]]``, ``depth`` lists deep."""
    def deep(p: Pickle):
        p.op(pickle.EMPTY_LIST * depth, pickle.APPEND * (depth - 1))
    return zip_file(state_dict(deep=deep))


def zero_stride_expansion() -> bytes:
    """A tensor of 10**8 elements, all of them the one element of its storage (stride 0):
    400 MB of array from 4 bytes of file."""
    p = Pickle().op(pickle.EMPTY_DICT).str("weight").tensor("0", 1, 0, (10**8,), (0,))
    return zip_file(p.op(pickle.SETITEM).bytes(), {"0": FOUR_FLOATS[:4]})


def many_views_of_one_storage(views: int = 400, numel: int = 2**18) -> bytes:
    """``views`` tensors, each a full view of one 1 MiB storage: 400 MiB of arrays."""
    p = Pickle().op(pickle.EMPTY_DICT)
    for i in range(views):
        p.str(f"w{i}").tensor("0", numel, 0, (numel,), (1,)).op(pickle.SETITEM)
    return zip_file(p.bytes(), {"0": bytes(4 * numel)})


def absurd_shape() -> bytes:
    """A tensor of shape (2**31, 2**31), strides (0, 0), on a storage of one element."""
    p = Pickle().op(pickle.EMPTY_DICT).str("weight").tensor("0", 1, 0, (2**31, 2**31), (0, 0))
    return zip_file(p.op(pickle.SETITEM).bytes(), {"0": FOUR_FLOATS[:4]})


def overflowing_size() -> bytes:
    """A tensor of size 2**70 (no C integer holds it)."""
    p = Pickle().op(pickle.EMPTY_DICT).str("weight").tensor("0", 1, 0, (2**70,), (0,))
    return zip_file(p.op(pickle.SETITEM).bytes(), {"0": FOUR_FLOATS[:4]})


def negative_stride() -> bytes:
    p = Pickle().op(pickle.EMPTY_DICT).str("weight").tensor("0", 4, 3, (4,), (-1,))
    return zip_file(p.op(pickle.SETITEM).bytes())


def negative_storage_size() -> bytes:
    p = Pickle().op(pickle.EMPTY_DICT).str("weight").tensor("0", -4, 0, (0,), (1,))
    return zip_file(p.op(pickle.SETITEM).bytes())


def zip_entry_inflates_beyond_its_tensor(nbytes: int = 512 * 2**20) -> bytes:
    """The storage of a 4-float tensor declares 16 bytes; its zip entry (honest headers)
    inflates to 512 MiB from about 0.5 MB."""
    entry = ZipEntry("archive/data/0", zeros_deflated(nbytes), method=8,
                     crc=crc_of_zeros(nbytes), size=nbytes)
    return zip_file(state_dict(), {}, [entry])


def zip_entry_header_understates(nbytes: int = 512 * 2**20) -> bytes:
    """The storage's entry says (twice) that it holds 16 bytes, and its CRC is that of 16 zero
    bytes, but its deflate stream goes on to 512 MiB."""
    entry = ZipEntry("archive/data/0", zeros_deflated(nbytes), method=8,
                     crc=zlib.crc32(bytes(16)), size=16)
    return zip_file(state_dict(), {}, [entry])


def zip_entry_shorter_than_declared() -> bytes:
    """The storage declares 4 floats; its entry holds 2."""
    return zip_file(state_dict(), {"0": FOUR_FLOATS[:8]})


def zip_pickle_inflates(nbytes: int = 512 * 2**20) -> bytes:
    """``data.pkl`` itself is a deflate bomb: 512 MiB from about 0.5 MB."""
    entry = ZipEntry("archive/data.pkl", zeros_deflated(nbytes), method=8,
                     crc=crc_of_zeros(nbytes), size=nbytes)
    return raw_zip([entry, ZipEntry("archive/data/0", FOUR_FLOATS)])


def zip_many_entries(count: int = 150_000) -> bytes:
    """A valid state dict in an archive with ``count`` more (empty) entries: its directory
    alone takes about 9 MB, and each entry becomes a Python object when it is parsed."""
    return zip_file(state_dict(), extra=[ZipEntry(f"archive/x/{i}", b"") for i in range(count)])


def legacy_huge_storage() -> bytes:
    """A legacy file whose storage declares 2**62 elements, in its pickle and in its data
    header; the file holds four."""
    main = Pickle().op(pickle.EMPTY_DICT).str("weight").tensor("0", 2**62).op(pickle.SETITEM)
    return legacy_file(main.bytes(), numels={"0": 2**62})


def huge_string() -> bytes:
    """A pickle string that declares 2**40 bytes (the file holds a few)."""
    p = Pickle().op(pickle.EMPTY_DICT).str("weight").tensor().op(pickle.SETITEM)
    p.str("name").op(b"\x8d" + struct.pack("<Q", 2**40) + b"abc")  # BINUNICODE8
    return zip_file(p.op(pickle.SETITEM).bytes())


def many_records(count: int = 2_000_000) -> bytes:
    """Beside a real tensor: a list of ``count`` empty dicts (4 MB of pickle, about 200 MB of
    Python objects)."""
    def records(p: Pickle):
        p.op(pickle.EMPTY_LIST, (pickle.EMPTY_DICT + pickle.APPEND) * count)
    return zip_file(state_dict(records=records))


def storage_declared_twice() -> bytes:
    """One storage key declared with 4 and with 2**40 elements."""
    p = Pickle().op(pickle.EMPTY_DICT).str("a").tensor("0", 4).op(pickle.SETITEM)
    p.str("b").tensor("0", 2**40, 0, (2**38,), (1,)).op(pickle.SETITEM)
    return zip_file(p.bytes())


# ---------------------------------------------------------------------------- images


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header(width: int, height: int, idat: bytes = b"\x78\x9c\x03\x00\x00\x00\x00\x01",
               color_type: int = 2, bit_depth: int = 8) -> bytes:
    """A PNG whose header declares ``width x height`` (8-bit RGB by default), with ``idat``
    (by default a tiny zlib stream, far too short for the image) as its only data."""
    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", idat)
            + _chunk(b"IEND", b""))


def png_zero_bomb(side: int = 14000) -> bytes:
    """A valid grayscale PNG of ``side x side`` black pixels: about 190 kB for 14000."""
    compressor = zlib.compressobj(9)
    rows = bytes(side + 1) * 100  # each row: filter byte 0, then the pixels
    data = [compressor.compress(rows) for _ in range(side // 100)]
    data.append(compressor.compress(bytes(side + 1) * (side % 100)) + compressor.flush())
    return png_header(side, side, b"".join(data), color_type=0)


def png_rgba16_zeros(side: int = 3000) -> bytes:
    """A valid 16-bit RGBA PNG of ``side x side`` transparent pixels (8 bytes each): within the
    pixel limit, but converting it as a whole took about 80 bytes per pixel (720 MB here)."""
    compressor = zlib.compressobj(9)
    row = bytes(1 + 8 * side)
    data = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    return png_header(side, side, data, color_type=6, bit_depth=16)


def jpeg_header(width: int, height: int) -> bytes:
    """A real 8 x 8 JPEG (its tables and its scan) whose frame header (SOF0) declares
    ``width x height``: a decompression bomb as a reader of headers sees it. (Pillow before 13
    cannot read the size of a bare SOF0 without tables and scan.)"""
    import cv2
    import numpy as np

    ok, encoded = cv2.imencode(".jpg", np.zeros((8, 8, 3), np.uint8))
    data = bytearray(encoded.tobytes())
    sof = data.index(b"\xff\xc0")  # marker, length (2 bytes), precision (1), height, width
    struct.pack_into(">HH", data, sof + 5, height, width)
    return bytes(data)


def bmp_header(width: int, height: int) -> bytes:
    """A 24-bit BMP header of ``width x height`` with no pixel data."""
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 14 + len(info), 0, 0, 14 + len(info)) + info


def gif_header(width: int, height: int) -> bytes:
    """A GIF whose logical screen and one image are ``width x height``; almost no data."""
    image = b"\x2c" + struct.pack("<HHHHB", 0, 0, width, height, 0) + b"\x02\x02\x44\x01\x00"
    return b"GIF89a" + struct.pack("<HHBBB", width, height, 0, 0, 0) + image + b"\x3b"


def webp_header(width: int, height: int) -> bytes:
    """A lossy WebP whose frame header declares ``width x height`` (each at most 16383),
    followed by a few zero bytes instead of the frame."""
    tag = (1 << 4) | (10 << 5)  # a key frame, version 0, shown, first partition of 10 bytes
    vp8 = (tag.to_bytes(3, "little") + b"\x9d\x01\x2a" + struct.pack("<HH", width, height)
           + bytes(20))
    body = b"WEBP" + b"VP8 " + struct.pack("<I", len(vp8)) + vp8
    return b"RIFF" + struct.pack("<I", len(body)) + body


def tiff_header(width: int, height: int) -> bytes:
    """A little-endian TIFF whose first image is ``width x height`` 8-bit RGB, uncompressed,
    one strip that the file does not hold."""
    tags = [(256, 4, 1, width), (257, 4, 1, height), (258, 3, 1, 8), (259, 3, 1, 1),
            (262, 3, 1, 2), (273, 4, 1, 8), (277, 3, 1, 3), (278, 4, 1, height),
            (279, 4, 1, min(width * height * 3, 2**32 - 1))]
    ifd = struct.pack("<H", len(tags)) + b"".join(struct.pack("<HHII", *t) for t in tags) + b"\0" * 4
    return b"II*\x00" + struct.pack("<I", 8 + 0) + ifd


def jpeg_with_orientation(jpeg: bytes, orientation: int) -> bytes:
    """``jpeg`` with an EXIF segment (APP1) that holds one tag: Orientation = ``orientation``."""
    assert jpeg[:2] == b"\xff\xd8"
    ifd = struct.pack(">H", 1) + struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0) + b"\0" * 4
    tiff = b"MM\x00\x2a" + struct.pack(">I", 8) + ifd
    app1 = b"Exif\x00\x00" + tiff
    return b"\xff\xd8\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + jpeg[2:]


# ---------------------------------------------------------------------------- the cases


@dataclass(frozen=True)
class Case:
    """One hostile input: how to build it, and what camutils must do with it."""

    name: str
    group: str  # "torch" (camutils.zoo.torch_pickle) or "images" (camutils.images)
    build: Callable[[], bytes] | None  # the file's bytes (None: ``make`` makes the path)
    error: str | None  # the exception's class name; None: it loads
    match: str  # a regular expression the message (or, when it loads, the keys) must match
    suffix: str = ".pth"
    make: Callable[[str], str] | None = None  # makes a special file in a folder; its path

    def path(self, folder: str) -> str:
        if self.make is not None:
            return self.make(folder)
        path = os.path.join(folder, self.name + self.suffix)
        with open(path, "wb") as f:
            f.write(self.build())
        return path


def _fifo(folder: str) -> str:
    path = os.path.join(folder, "photo.jpg")
    os.mkfifo(path)
    return path


_LIMIT = r"(?s)pixels.*MAX_PIXELS"
CASES = [
    Case("billion_laughs_lists", "torch", billion_laughs_lists, None, r"^\['weight'\]$"),
    Case("billion_laughs_key", "torch", billion_laughs_key, "TorchFileError", "key of type tuple"),
    Case("billion_laughs_set", "torch", billion_laughs_set, "UnsafePickleError", "FROZENSET"),
    Case("self_containing_list", "torch", self_containing_list, None, r"^\['weight'\]$"),
    Case("deeply_nested_lists", "torch", deeply_nested_lists, None, r"^\['weight'\]$"),
    Case("zero_stride_expansion", "torch", zero_stride_expansion, "TorchFileError",
         "(?s)400,000,000 bytes.*MAX_EXPANSION"),
    Case("many_views_of_one_storage", "torch", many_views_of_one_storage, "TorchFileError",
         "(?s)419,430,400 bytes.*MAX_EXPANSION"),
    Case("absurd_shape", "torch", absurd_shape, "TorchFileError", "(?s)18,446,744,073,709,551,616 bytes.*MAX_EXPANSION"),
    Case("overflowing_size", "torch", overflowing_size, "TorchFileError", r"invalid size \(1180591620717411303424\)"),
    Case("negative_stride", "torch", negative_stride, "TorchFileError", r"invalid stride \(-1\)"),
    Case("negative_storage_size", "torch", negative_storage_size, "TorchFileError",
         r"invalid storage size \(-4\)"),
    Case("zip_entry_inflates_beyond_its_tensor", "torch", zip_entry_inflates_beyond_its_tensor,
         "TorchFileError", "holds 536,870,912 bytes, but its pickle declares 16"),
    Case("zip_entry_header_understates", "torch", zip_entry_header_understates, None,
         r"^\['weight'\]$"),
    Case("zip_entry_shorter_than_declared", "torch", zip_entry_shorter_than_declared,
         "TorchFileError", "holds 8 bytes, but its pickle declares 16"),
    Case("zip_pickle_inflates", "torch", zip_pickle_inflates, "TorchFileError",
         "(?s)536,870,912 bytes.*MAX_PICKLE_BYTES"),
    Case("zip_many_entries", "torch", zip_many_entries, "TorchFileError",
         "(?s)directory takes.*MAX_ZIP_DIRECTORY_BYTES"),
    Case("legacy_huge_storage", "torch", legacy_huge_storage, "TorchFileError", "truncated"),
    Case("huge_string", "torch", huge_string, "TorchFileError", "(?s)more than 33,554,432 bytes"),
    Case("many_records", "torch", many_records, "TorchFileError",
         "(?s)more than 1,000,000 operations.*MAX_PICKLE_OPS"),
    Case("storage_declared_twice", "torch", storage_declared_twice, "TorchFileError",
         "declared twice"),
    Case("png_zero_bomb_14000", "images", png_zero_bomb, "ValueError", _LIMIT, ".png"),
    Case("png_rgba16_3000_within_the_limit", "images", png_rgba16_zeros, None,
         r"\(3000, 3000, 3\)", ".png"),
    Case("png_header_50000", "images", lambda: png_header(50000, 50000), "ValueError", _LIMIT, ".png"),
    Case("jpeg_header_50000", "images", lambda: jpeg_header(50000, 50000), "ValueError", _LIMIT, ".jpg"),
    Case("bmp_header_30000", "images", lambda: bmp_header(30000, 30000), "ValueError", _LIMIT, ".bmp"),
    Case("gif_header_65535", "images", lambda: gif_header(65535, 65535), "ValueError", _LIMIT, ".gif"),
    Case("webp_header_16383", "images", lambda: webp_header(16383, 16383), "ValueError", _LIMIT, ".webp"),
    Case("tiff_header_100000", "images", lambda: tiff_header(100000, 100000), "ValueError", _LIMIT, ".tif"),
    Case("fifo_named_like_an_image", "images", None, "ValueError", "not a regular file",
         make=_fifo),
    Case("character_device", "images", None, "ValueError", "not a regular file",
         make=lambda folder: "/dev/zero"),  # endless zeros
]


def _load(case: Case, path: str) -> list[str]:
    if case.group == "torch":
        from camutils.zoo.torch_pickle import load_state_dict

        return list(load_state_dict(path))
    from camutils.images import load_image

    return [str(load_image(path).shape)]


def _reset_peak() -> bool:
    """Reset the peak resident set size (Linux); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_mib(since_reset: bool) -> tuple[float, str]:
    if since_reset:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024, "VmHWM"
    import resource  # not on Windows; the test is skipped there

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (2**20 if sys.platform == "darwin" else 1024), "ru_maxrss (peak of the process so far)"


def run(group: str, skip: set[str] = frozenset()) -> None:
    """Run the cases of ``group`` in this process, one JSON line each (and one before each)."""
    # imported first, so that no case's time includes the import
    __import__("camutils.zoo.torch_pickle" if group == "torch" else "camutils.images")
    with tempfile.TemporaryDirectory() as folder:
        for case in CASES:
            if case.group != group or case.name in skip:
                continue
            if case.make is _fifo and not hasattr(os, "mkfifo"):
                continue
            if case.name == "character_device" and not os.path.exists("/dev/zero"):
                continue
            path = case.path(folder)
            print(json.dumps({"start": case.name}), flush=True)
            exact = _reset_peak()
            start = time.perf_counter()
            try:
                outcome = {"error": None, "message": repr(_load(case, path))}
            except Exception as error:  # the outcome is what is tested
                outcome = {"error": type(error).__name__, "message": str(error)[:2000]}
            seconds = time.perf_counter() - start
            peak, how = _peak_mib(exact)
            print(json.dumps({"case": case.name, **outcome, "seconds": round(seconds, 3),
                              "peak_mib": round(peak, 1), "peak_by": how}), flush=True)
            if case.build is not None:
                os.remove(path)
        heavy = sorted(m for m in ("tensorflow", "keras", "torch") if m in sys.modules)
        print(json.dumps({"imported": heavy}), flush=True)


if __name__ == "__main__":
    run(sys.argv[1], set(sys.argv[2:]))
