"""A safetensors file written one tensor at a time, for the bench's random checkpoints that are bigger than
the memory it is made in (safetensors' own save_file holds every tensor and the whole file at once).
Used by make_flux.py and make_zimage.py."""
import json
import math
import os
import struct

SIZES = {"F32": 4, "F16": 2, "BF16": 2, "I64": 8, "F8_E4M3": 1}
CODES = {"float32": "F32", "float16": "F16", "bfloat16": "BF16", "int64": "I64", "float8_e4m3fn": "F8_E4M3"}


def code(tensor) -> str:
    """The safetensors dtype code of a torch tensor."""
    return CODES[str(tensor.dtype).replace("torch.", "")]


def raw(tensor) -> bytes:
    """A tensor's bytes; numpy has neither float8 nor bfloat16, so those go through a uint8 view."""
    t = tensor.contiguous()
    if code(t) in ("F8_E4M3", "BF16"):
        t = t.view(-1).view(__import__("torch").uint8)
    return t.numpy().tobytes()


def write(out, entries):
    """entries: (key, dtype code, shape, chunks) in file order; chunks() yields the tensor's bytes in
    order, in pieces of any size.  Written to out + '.part', then renamed over `out`."""
    header, off = {}, 0
    for key, dtype, shape, _ in entries:
        n = math.prod(shape) * SIZES[dtype]
        header[key] = {"dtype": dtype, "shape": list(shape), "data_offsets": [off, off + n]}
        off += n
    header["__metadata__"] = {"format": "pt"}
    hb = json.dumps(header, separators=(",", ":")).encode()
    hb += b" " * ((8 - len(hb) % 8) % 8)  # the data starts 8-byte aligned
    with open(out + ".part", "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for key, _, _, chunks in entries:
            start, end = header[key]["data_offsets"]
            written = 0
            for piece in chunks():
                f.write(piece)
                written += len(piece)
            assert written == end - start, f"{key}: {written} bytes written, {end - start} declared"
    os.replace(out + ".part", out)
    return header
