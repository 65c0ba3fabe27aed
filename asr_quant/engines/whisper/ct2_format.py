"""Reading CTranslate2's model.bin (its own binary layout) into numpy arrays."""
from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np

from ..base import EngineError

# ctranslate2 DataType enum order (include/ctranslate2/types.h)
_CT2_DTYPES = (np.float32, np.int8, np.int16, np.int32, np.float16, "bfloat16")



def read_ct2(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, str], str, int]:
    """Parse a CTranslate2 model.bin: (variables, aliases, spec name, revision).

    Layout (little-endian): u32 binary version, str spec name, u32 revision,
    u32 count, then per variable: str name, u8 rank, u32 dims, u8 dtype id,
    u32 byte count, bytes; then u32 alias count and (alias, target) strings.
    A str is u16 length (NUL included), bytes, NUL."""
    data = memoryview(Path(path).read_bytes())
    off = 0

    def unpack(fmt: str):
        nonlocal off
        vals = struct.unpack_from("<" + fmt, data, off)
        off += struct.calcsize("<" + fmt)
        return vals[0] if len(vals) == 1 else vals

    def string() -> str:
        nonlocal off
        n = unpack("H")
        s = bytes(data[off:off + n - 1]).decode("utf-8")
        off += n
        return s

    try:
        version = unpack("I")
        if version < 5 or version > 6:
            raise EngineError(f"CTranslate2 binary version {version} is not supported (5 or 6 are)")
        spec = string()
        revision = unpack("I")
        variables: dict[str, np.ndarray] = {}
        for _ in range(unpack("I")):
            name = string()
            rank = unpack("B")
            shape = tuple(unpack("I") for _ in range(rank))
            type_id = unpack("B")
            nbytes = unpack("I")
            raw = data[off:off + nbytes]
            off += nbytes
            dtype = _CT2_DTYPES[type_id]
            if dtype == "bfloat16":
                arr = (np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)
            else:
                arr = np.frombuffer(raw, dtype=dtype)
            variables[name] = arr.reshape(shape)
        aliases = {}
        for _ in range(unpack("I")):
            alias = string()
            aliases[alias] = string()
    except (struct.error, IndexError, UnicodeDecodeError) as exc:
        raise EngineError(f"{path} is not a readable CTranslate2 model ({exc})") from None
    return variables, aliases, spec, revision


def _float(variables: dict[str, np.ndarray], name: str) -> np.ndarray:
    """A weight as float32, de-quantizing CT2 int8 (w = q / scale per row)."""
    w = variables[name]
    if w.dtype == np.int8:
        scale = variables[name + "_scale"].astype(np.float32)
        return w.astype(np.float32) / scale.reshape(-1, *([1] * (w.ndim - 1)))
    if w.dtype in (np.int16, np.int32):
        raise EngineError(f"CTranslate2 {w.dtype} weights are not supported; use a float16, float32 or int8 model")
    return w.astype(np.float32)
