#!/usr/bin/env python3
"""Writes tests/fixtures/gguf/ with the `gguf` Python package's GGUFWriter, so
that tests/io/gguf_test.cc checks the C++ reader against the reference writer:

  all_types.gguf  every metadata value type (scalars, arrays of each, an array
                  of arrays), general.alignment 64, tensors F32 / F16 / BF16 /
                  Q8_0 / Q4_K with known contents
  qwen2.gguf      the same minimal file with general.architecture "qwen2"

Usage: python3 tools/make_gguf_fixtures.py [OUTDIR]
"""
import os
import sys

import numpy as np
import gguf
from gguf import GGUFValueType as V, GGMLQuantizationType as T

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "gguf")


def all_types(path):
    w = gguf.GGUFWriter(path, "llama")
    w.add_custom_alignment(64)
    w.add_uint8("t.u8", 200)
    w.add_int8("t.i8", -100)
    w.add_uint16("t.u16", 60000)
    w.add_int16("t.i16", -30000)
    w.add_uint32("t.u32", 4000000000)
    w.add_int32("t.i32", -2000000000)
    w.add_float32("t.f32", 0.15625)
    w.add_bool("t.bool", True)
    w.add_string("t.str", "héllo")
    w.add_uint64("t.u64", 18000000000000000000)
    w.add_int64("t.i64", -9000000000000000000)
    w.add_float64("t.f64", 1e300)
    w.add_key_value("t.arr_u8", [1, 2, 255], V.ARRAY, V.UINT8)
    w.add_key_value("t.arr_i16", [-1, 2, -32768], V.ARRAY, V.INT16)
    w.add_key_value("t.arr_f32", [0.5, -2.0, 3.25], V.ARRAY, V.FLOAT32)
    w.add_key_value("t.arr_f64", [1e-300], V.ARRAY, V.FLOAT64)
    w.add_key_value("t.arr_bool", [True, False, True], V.ARRAY, V.BOOL)
    w.add_array("t.arr_str", ["a", "", "▁the"])
    w.add_array("t.arr_nested", [[1, 2], [3], ["x", "yz"]])
    w.add_uint32("llama.block_count", 2)
    w.add_float32("llama.rope.freq_base", 10000.0)
    f32 = np.arange(15, dtype=np.float32).reshape(3, 5) - 7.5  # ggml dims [5, 3]
    w.add_tensor("t_f32", f32)
    w.add_tensor("t_f16", np.array([1.0, -2.0, 65504.0, 6e-8], dtype=np.float16))
    bf16 = gguf.quants.quantize(np.array([1.0, -3.5, 1e-20, 7.0], dtype=np.float32), T.BF16)
    w.add_tensor("t_bf16", bf16, raw_dtype=T.BF16)
    q8_in = (np.arange(128, dtype=np.float32).reshape(2, 64) - 60) / 7
    w.add_tensor("t_q8_0", gguf.quants.quantize(q8_in, T.Q8_0), raw_dtype=T.Q8_0)
    rng = np.random.default_rng(3)
    q4k = rng.integers(0, 256, size=(1, 144), dtype=np.uint8)
    q4k[0, 0:2] = np.array([0x2E66], "<u2").view(np.uint8)
    q4k[0, 2:4] = np.array([0x2A66], "<u2").view(np.uint8)
    w.add_tensor("t_q4_k", q4k, raw_dtype=T.Q4_K)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    # The expected values, for the test: float32 dequantization of each tensor.
    deq = {"t_f32": f32, "t_q8_0": gguf.quants.dequantize(gguf.quants.quantize(q8_in, T.Q8_0), T.Q8_0),
           "t_q4_k": gguf.quants.dequantize(q4k, T.Q4_K)}
    return deq


def other_arch(path):
    w = gguf.GGUFWriter(path, "qwen2")
    w.add_tensor("x", np.zeros(4, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main():
    os.makedirs(OUT, exist_ok=True)
    deq = all_types(os.path.join(OUT, "all_types.gguf"))
    with open(os.path.join(OUT, "all_types.expected.f32"), "wb") as f:
        for name in ["t_f32", "t_q8_0", "t_q4_k"]:
            f.write(np.asarray(deq[name], dtype="<f4").tobytes())
    other_arch(os.path.join(OUT, "qwen2.gguf"))


if __name__ == "__main__":
    main()
