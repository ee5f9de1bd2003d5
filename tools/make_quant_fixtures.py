#!/usr/bin/env python3
"""Writes tests/fixtures/quant/: small blocks of every ggml type this engine
reads, with the `gguf` Python package's numpy results, for tests/io/quant_test.cc.

  <TYPE>.bin           dequantization: random blocks (scales forced to extreme,
                       zero, subnormal and ordinary float16 values) and
                       gguf.quants.dequantize of them
  quantize_<TYPE>.bin  Q8_0 and Q4_0: float32 inputs (random, zeros, ties,
                       huge, subnormal scales), gguf.quants.quantize of them,
                       and the dequantization of that

Binary layout, little-endian: b"LSQF", u32 version 1, u32 ggml type, u32 kind
(0 dequantize, 1 quantize), u32 n (elements), u32 nbytes (block bytes), then
for kind 0: blocks[nbytes], float32 out[n]; for kind 1: float32 in[n],
blocks[nbytes], float32 out[n].

Usage: python3 tools/make_quant_fixtures.py [OUTDIR]   (deterministic: seed 16)
"""
import json
import os
import struct
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from gguf.constants import GGML_QUANT_SIZES

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "quant")
rng = np.random.default_rng(16)

# float16 bit patterns for the scales: extreme, zero, subnormal, ordinary.
SPECIAL_F16 = [0x7BFF, 0xFBFF, 0x0001, 0x03FF, 0x8001, 0x0000, 0x8000, 0x0400, 0x3C00, 0x2E66]
# Byte offsets of the float16 scale fields of each block type.
SCALE_FIELDS = {
    T.Q4_0: [0], T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2], T.Q8_0: [0],
    T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208],
}
BLOCKS = {T.Q4_0: 16, T.Q4_1: 16, T.Q5_0: 16, T.Q5_1: 16, T.Q8_0: 16, T.Q4_K: 5, T.Q5_K: 5, T.Q6_K: 5}


def header(qtype, kind, n, nbytes):
    return b"LSQF" + struct.pack("<5I", 1, int(qtype), kind, n, nbytes)


def random_f16_scale():
    v = np.float16(rng.normal(0, 0.02))
    return int(np.array([v]).view(np.uint16)[0])


def dequant_blocks(qtype):
    block_size, type_size = GGML_QUANT_SIZES[qtype]
    nb = BLOCKS[qtype]
    raw = rng.integers(0, 256, size=(nb, type_size), dtype=np.uint8)
    for b in range(nb):
        for k, off in enumerate(SCALE_FIELDS[qtype]):
            idx = (b * len(SCALE_FIELDS[qtype]) + k)
            bits = SPECIAL_F16[idx % len(SPECIAL_F16)] if b % 2 == 0 else random_f16_scale()
            raw[b, off:off + 2] = np.array([bits], dtype="<u2").view(np.uint8)
    if qtype == T.Q4_K or qtype == T.Q5_K:
        raw[0, 4:16] = 0xFF  # every 6-bit scale and min at its maximum
    return raw


def float_values(qtype, n):
    if qtype == T.F32:
        v = np.concatenate([rng.normal(0, 1, n - 8).astype(np.float32),
                            np.array([0.0, -0.0, 1e-45, -1e-40, 3.4e38, -3.4e38, np.inf, -np.inf], np.float32)])
        return v.view(np.uint8)
    if qtype == T.F16:
        bits = rng.integers(0, 0x10000, n, dtype=np.uint32).astype(np.uint16)
        bits[(bits & 0x7C00) == 0x7C00] &= 0xFC00  # NaN -> inf; keep inf
        bits[:len(SPECIAL_F16)] = SPECIAL_F16
        return bits.astype("<u2").view(np.uint8)
    # BF16
    bits = rng.integers(0, 0x10000, n, dtype=np.uint32).astype(np.uint16)
    nan = ((bits & 0x7F80) == 0x7F80) & ((bits & 0x7F) != 0)
    bits[nan] &= 0xFF80
    bits[:4] = [0x0001, 0x8000, 0x7F7F, 0x0080]
    return bits.astype("<u2").view(np.uint8)


def write(name, data):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)


def quant_inputs():
    blocks = [
        rng.normal(0, 1, 32),
        rng.uniform(-1, 1, 32) * 0.01,
        np.zeros(32),
        np.concatenate([[127.0], rng.choice([-3.5, -2.5, -0.5, 0.5, 1.5, 2.5, 126.5], 31)]),  # Q8_0 ties
        np.concatenate([[-8.0], rng.choice([-7.5, -0.5, 0.5, 1.5, 6.5, 7.5], 31)]),          # Q4_0 ties
        np.concatenate([[3.0, -3.0], rng.uniform(-3, 3, 30)]),                              # first of equal |max|
        np.concatenate([[-3.0, 3.0], rng.uniform(-3, 3, 30)]),
        rng.normal(0, 1, 32) * 1e30,           # scale beyond float16: inf
        rng.normal(0, 1, 32) * 5e5,            # large but finite scale
        rng.normal(0, 1, 32) * 1e-6,           # scale subnormal in float16
        rng.normal(0, 1, 32) * 1e-12,          # scale flushes to zero in float16
        np.concatenate([[5e-37], rng.uniform(-5e-37, 5e-37, 31)]),  # float32-subnormal d, finite 1/d
        np.concatenate([[1.0], np.zeros(31)]),
        rng.standard_cauchy(32),
    ]
    return np.concatenate(blocks).astype(np.float32)


def main():
    os.makedirs(OUT, exist_ok=True)
    manifest = {"gguf_package": getattr(gguf, "__version__", None), "numpy": np.__version__, "files": []}
    try:
        from importlib.metadata import version
        manifest["gguf_package"] = version("gguf")
    except Exception:
        pass
    for qtype in [T.F32, T.F16, T.BF16]:
        n = 64
        raw = float_values(qtype, n)
        out = gguf.quants.dequantize(raw.copy(), qtype).astype(np.float32).reshape(-1)
        write(qtype.name + ".bin", header(qtype, 0, n, raw.size) + raw.tobytes() + out.astype("<f4").tobytes())
        manifest["files"].append(qtype.name + ".bin")
    for qtype in SCALE_FIELDS:
        raw = dequant_blocks(qtype)
        with np.errstate(all="ignore"):
            out = gguf.quants.dequantize(raw.reshape(-1).copy(), qtype).astype(np.float32).reshape(-1)
        n = out.size
        write(qtype.name + ".bin", header(qtype, 0, n, raw.size) + raw.tobytes() + out.astype("<f4").tobytes())
        manifest["files"].append(qtype.name + ".bin")
    x = quant_inputs()
    for qtype in [T.Q8_0, T.Q4_0]:
        with np.errstate(all="ignore"):
            q = gguf.quants.quantize(x.reshape(1, -1), qtype).reshape(-1)
            out = gguf.quants.dequantize(q.copy(), qtype).astype(np.float32).reshape(-1)
        write("quantize_" + qtype.name + ".bin", header(qtype, 1, x.size, q.size) + x.astype("<f4").tobytes() +
              q.tobytes() + out.astype("<f4").tobytes())
        manifest["files"].append("quantize_" + qtype.name + ".bin")
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
