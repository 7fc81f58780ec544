"""Reader and writer for the IDX format of MNIST and Fashion-MNIST (raw or gzip-compressed).

Format (http://yann.lecun.com/exdb/mnist/, "FILE FORMATS"): a 4-byte magic number
``0x00 0x00 <type> <ndim>``, then ``ndim`` big-endian uint32 sizes, then the data in C order,
big-endian. Every check failure raises DatasetError naming the file and what is wrong.
"""
from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

from fastcnn.data._base import DatasetError

__all__ = ["read_idx", "write_idx", "IDX_TYPES"]

# type code -> big-endian dtype
IDX_TYPES = {
    0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8"),
}
_CODES = {dt.newbyteorder("="): code for code, dt in IDX_TYPES.items()}


def read_bytes(path) -> bytes:
    """The file's content, gunzipped when it starts with the gzip magic bytes 1f 8b."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except IsADirectoryError:
        raise DatasetError(f"{path}: is a directory, expected a file") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:  # BadGzipFile is an OSError
            raise DatasetError(f"{path}: corrupted or truncated gzip data ({e})") from None
    return raw


def read_idx(path, *, expect_ndim=None, expect_dtype=None) -> np.ndarray:
    """Read one IDX file into a native-endian ndarray.

    ``expect_ndim`` / ``expect_dtype`` (e.g. 3 and ``np.uint8`` for MNIST images) turn a
    well-formed file of the wrong kind into a DatasetError that names both magic numbers.
    """
    path = Path(path)
    data = read_bytes(path)
    if len(data) < 4:
        raise DatasetError(f"{path}: only {len(data)} bytes, too short for an IDX header "
                           "(truncated or empty file)")
    magic = int.from_bytes(data[:4], "big")
    code, ndim = data[2], data[3]
    if data[0] != 0 or data[1] != 0 or code not in IDX_TYPES or ndim == 0:
        raise DatasetError(f"{path}: bad magic number 0x{magic:08X}, not an IDX file "
                           "(MNIST images start with 0x00000803, labels with 0x00000801)")
    dtype = IDX_TYPES[code]
    if expect_ndim is not None or expect_dtype is not None:
        want_nd = ndim if expect_ndim is None else expect_ndim
        want_code = code if expect_dtype is None else _CODES[np.dtype(expect_dtype)]
        if (ndim, code) != (want_nd, want_code):
            want = (want_code << 8) | want_nd
            raise DatasetError(f"{path}: magic number 0x{magic:08X} ({ndim}-d {dtype.name}) "
                               f"but 0x{want:08X} ({want_nd}-d "
                               f"{IDX_TYPES[want_code].name}) was expected here")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DatasetError(f"{path}: truncated inside the header ({len(data)} of {header} bytes)")
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    shape_s = "x".join(map(str, shape))
    if len(data) < expected:
        raise DatasetError(f"{path}: truncated: the header promises {shape_s} {dtype.name} "
                           f"values ({expected} bytes) but the data has {len(data)} bytes")
    if len(data) > expected:
        raise DatasetError(f"{path}: {len(data) - expected} unexpected bytes after the "
                           f"{shape_s} {dtype.name} values: corrupted file")
    arr = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return arr.astype(dtype.newbyteorder("="))  # native order, writable copy


def write_idx(path, array, *, compress=None) -> None:
    """Write ``array`` as an IDX file (gzip-compressed when ``compress`` or path ends ``.gz``)."""
    path = Path(path)
    arr = np.asarray(array)
    key = arr.dtype.newbyteorder("=")
    if key not in _CODES:
        raise TypeError(f"write_idx: dtype {arr.dtype} has no IDX type code "
                        f"(use one of {[d.name for d in IDX_TYPES.values()]})")
    if arr.ndim == 0 or arr.ndim > 255:
        raise ValueError(f"write_idx: array must have 1..255 dims, got {arr.ndim}")
    head = bytes([0, 0, _CODES[key], arr.ndim]) + b"".join(
        int(n).to_bytes(4, "big") for n in arr.shape)
    payload = head + np.ascontiguousarray(arr, dtype=IDX_TYPES[_CODES[key]]).tobytes()
    if compress or (compress is None and path.suffix == ".gz"):
        payload = gzip.compress(payload, mtime=0)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(payload)
    os.replace(tmp, path)
