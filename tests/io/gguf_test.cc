// The GGUF reader on a file written by the `gguf` Python package (every
// metadata type, nested arrays, general.alignment, float and quantized
// tensors; tools/make_gguf_fixtures.py) and on hand-made truncated, lying and
// absurd files: each failure is one line naming the problem, never a crash;
// and a GGUF converted from an HF fixture model (tools/hf_to_gguf.py, llama.cpp's
// q/k row permutation) un-permutes back to its safetensors tensors exactly.
#include "io/gguf.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>

#include "core/dtype.h"
#include "io/safetensors.h"
#include "test_util.h"

namespace llm {
namespace {

std::string FixturePath(const std::string& name) { return testing::FixturesDir() + "/gguf/" + name; }

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

Result<GgufHeader> ParseBytes(const std::string& b) {
  return ParseGguf(reinterpret_cast<const uint8_t*>(b.data()), b.size(), "x.gguf");
}

// Builds GGUF bytes field by field, so that each test can lie in one place.
class Builder {
 public:
  Builder& U32(uint32_t v) { return Raw(&v, 4); }
  Builder& U64(uint64_t v) { return Raw(&v, 8); }
  Builder& Str(const std::string& s) { U64(s.size()); out_ += s; return *this; }
  Builder& Raw(const void* p, size_t n) { out_.append(static_cast<const char*>(p), n); return *this; }
  Builder& Header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
    out_ += "GGUF";
    return U32(version).U64(n_tensors).U64(n_kv);
  }
  Builder& KvString(const std::string& k, const std::string& v) { return Str(k).U32(8).Str(v); }
  Builder& KvU32(const std::string& k, uint32_t v) { return Str(k).U32(4).U32(v); }
  Builder& Tensor(const std::string& name, std::vector<uint64_t> dims, uint32_t type, uint64_t offset) {
    Str(name).U32(static_cast<uint32_t>(dims.size()));
    for (uint64_t d : dims) U64(d);
    return U32(type).U64(offset);
  }
  Builder& PadTo(size_t alignment) {
    while (out_.size() % alignment) out_ += '\0';
    return *this;
  }
  Builder& Zeros(size_t n) { out_.append(n, '\0'); return *this; }
  std::string bytes() const { return out_; }

 private:
  std::string out_;
};

// A valid file: architecture llama, one F32 tensor of 4 x 2 (32 bytes).
std::string Minimal() {
  return Builder().Header(1, 1).KvString("general.architecture", "llama").Tensor("w", {4, 2}, 0, 0).PadTo(32)
      .Zeros(32).bytes();
}

void ExpectError(const std::string& bytes, const std::string& needle, const std::string& what) {
  auto r = ParseBytes(bytes);
  ASSERT_FALSE(r.ok()) << what << ": accepted";
  const std::string& m = r.status().message();
  EXPECT_NE(m.find(needle), std::string::npos) << what << ": message '" << m << "' lacks '" << needle << "'";
  EXPECT_EQ(m.find('\n'), std::string::npos) << what << ": not one line: " << m;
  EXPECT_EQ(m.rfind("x.gguf", 0), 0u) << what << ": does not name the file: " << m;
}

TEST(Gguf, ReadsEveryValueTypeWrittenByTheGgufPackage) {
  auto f = GgufFile::Open(FixturePath("all_types.gguf"));
  ASSERT_TRUE(f.ok()) << f.status().message();
  const GgufHeader& h = f.value()->header();
  EXPECT_EQ(h.version, 3u);
  EXPECT_EQ(h.alignment, 64u);
  EXPECT_EQ(h.data_offset % 64, 0u);
  EXPECT_EQ(h.GetString("general.architecture").value(), "llama");
  EXPECT_EQ(h.GetUint("t.u8").value(), 200u);
  EXPECT_EQ(h.Find("t.i8")->i, -100);
  EXPECT_EQ(h.GetUint("t.u16").value(), 60000u);
  EXPECT_EQ(h.Find("t.i16")->i, -30000);
  EXPECT_EQ(h.GetUint("t.u32").value(), 4000000000u);
  EXPECT_EQ(h.Find("t.i32")->i, -2000000000);
  EXPECT_EQ(h.GetFloat("t.f32").value(), 0.15625);
  EXPECT_EQ(h.Find("t.bool")->type, GgufValueType::kBool);
  EXPECT_EQ(h.Find("t.bool")->u, 1u);
  EXPECT_EQ(h.GetString("t.str").value(), "h\xc3\xa9llo");
  EXPECT_EQ(h.GetUint("t.u64").value(), 18000000000000000000ull);
  EXPECT_EQ(h.Find("t.i64")->i, -9000000000000000000ll);
  EXPECT_EQ(h.GetFloat("t.f64").value(), 1e300);
  EXPECT_EQ(h.GetUint("llama.block_count").value(), 2u);
  EXPECT_EQ(h.GetFloat("llama.rope.freq_base").value(), 10000.0);
  EXPECT_FALSE(h.GetUint("t.i8").ok());   // negative
  EXPECT_FALSE(h.GetString("t.u8").ok());  // wrong type
  EXPECT_EQ(h.GetUint("absent").status().code(), StatusCode::kNotFound);

  const GgufValue* a = h.Find("t.arr_u8");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->elem_type, GgufValueType::kUint8);
  ASSERT_EQ(a->count, 3u);
  EXPECT_EQ(a->ArrayInt(2), 255);
  a = h.Find("t.arr_i16");
  ASSERT_EQ(a->count, 3u);
  EXPECT_EQ(a->ArrayInt(0), -1);
  EXPECT_EQ(a->ArrayInt(2), -32768);
  a = h.Find("t.arr_f32");
  EXPECT_EQ(a->ArrayFloat(1), -2.0);
  EXPECT_EQ(a->ArrayFloat(2), 3.25);
  EXPECT_EQ(h.Find("t.arr_f64")->ArrayFloat(0), 1e-300);
  a = h.Find("t.arr_bool");
  ASSERT_EQ(a->count, 3u);
  EXPECT_EQ(a->ArrayInt(0), 1);
  EXPECT_EQ(a->ArrayInt(1), 0);
  a = h.Find("t.arr_str");
  ASSERT_EQ(a->strings.size(), 3u);
  EXPECT_EQ(a->strings[0], "a");
  EXPECT_EQ(a->strings[1], "");
  EXPECT_EQ(a->strings[2], "\xe2\x96\x81the");
  a = h.Find("t.arr_nested");
  ASSERT_EQ(a->elem_type, GgufValueType::kArray);
  ASSERT_EQ(a->items.size(), 3u);
  EXPECT_EQ(a->items[0].count, 2u);
  EXPECT_EQ(a->items[0].ArrayInt(1), 2);
  EXPECT_EQ(a->items[1].ArrayInt(0), 3);
  ASSERT_EQ(a->items[2].strings.size(), 2u);
  EXPECT_EQ(a->items[2].strings[1], "yz");

  ASSERT_EQ(h.tensors.size(), 5u);
  const GgufTensorInfo* t = h.FindTensor("t_f32");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->dims, (std::vector<uint64_t>{5, 3}));
  EXPECT_EQ(t->nbytes, 60u);
  EXPECT_EQ(h.FindTensor("t_q8_0")->dims, (std::vector<uint64_t>{64, 2}));
  EXPECT_EQ(h.FindTensor("t_q8_0")->nbytes, 4u * 34u);  // 128 elements, 4 blocks
  EXPECT_EQ(h.FindTensor("t_q4_k")->type, GgmlType::kQ4_K);
  for (const GgufTensorInfo& ti : h.tensors) EXPECT_EQ(ti.offset % 64, 0u) << ti.name;

  // Contents: dequantized as gguf.quants.dequantize did when writing.
  const std::string expected_bytes = ReadAll(FixturePath("all_types.expected.f32"));
  ASSERT_EQ(expected_bytes.size(), (15 + 128 + 256) * 4u);
  const float* expected = reinterpret_cast<const float*>(expected_bytes.data());
  for (const char* name : {"t_f32", "t_q8_0", "t_q4_k"}) {
    const GgufTensorInfo* ti = h.FindTensor(name);
    std::vector<float> got(ti->num_elements);
    DequantizeRow(ti->type, f.value()->TensorData(*ti), got.data(), got.size());
    for (size_t i = 0; i < got.size(); ++i) {
      ASSERT_EQ(FloatBits(got[i]), FloatBits(expected[i])) << name << " element " << i;
    }
    expected += got.size();
  }
  const GgufTensorInfo* f16 = h.FindTensor("t_f16");
  float v[4];
  DequantizeRow(f16->type, f.value()->TensorData(*f16), v, 4);
  EXPECT_EQ(v[2], 65504.0f);
  const GgufTensorInfo* bf16 = h.FindTensor("t_bf16");
  DequantizeRow(bf16->type, f.value()->TensorData(*bf16), v, 4);
  EXPECT_EQ(v[1], -3.5f);
}

TEST(Gguf, RefusesOtherArchitecturesByName) {
  auto f = GgufFile::Open(FixturePath("qwen2.gguf"));
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(f.status().message().find("architecture 'qwen2' is not supported (supported: llama)"),
            std::string::npos) << f.status().message();
  // Parsing alone accepts it: the refusal is the architecture check.
  const std::string b = ReadAll(FixturePath("qwen2.gguf"));
  EXPECT_TRUE(ParseBytes(b).ok());
  const std::string no_arch = Builder().Header(0, 0).bytes();
  auto h = ParseBytes(no_arch);
  ASSERT_TRUE(h.ok());
  EXPECT_NE(CheckGgufArchitecture(h.value(), "x.gguf").message().find("no general.architecture"), std::string::npos);
}

TEST(Gguf, MinimalFileParses) {
  auto r = ParseBytes(Minimal());
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->tensors[0].offset, r->data_offset);
  EXPECT_EQ(r->data_offset % 32, 0u);
  EXPECT_TRUE(CheckGgufArchitecture(r.value(), "x").ok());
}

TEST(Gguf, EveryTruncationOfARealFileIsAnError) {
  const std::string full = ReadAll(FixturePath("all_types.gguf"));
  auto ok = ParseBytes(full);
  ASSERT_TRUE(ok.ok()) << ok.status().message();
  size_t data_end = 0;
  for (const GgufTensorInfo& t : ok->tensors) data_end = std::max(data_end, t.offset + t.nbytes);
  ASSERT_GT(data_end, 1000u);
  for (size_t n = 0; n < data_end; ++n) {
    auto r = ParseBytes(full.substr(0, n));
    ASSERT_FALSE(r.ok()) << "prefix of " << n << " bytes accepted";
    ASSERT_EQ(r.status().code(), StatusCode::kDataLoss) << n << ": " << r.status().message();
    ASSERT_EQ(r.status().message().find('\n'), std::string::npos);
  }
}

TEST(Gguf, CorruptFilesGetOneClearLine) {
  const uint64_t huge = uint64_t{1} << 62;
  Builder arch;
  arch.KvString("general.architecture", "llama");
  const std::string a = arch.bytes();
  ExpectError("", "truncated GGUF file: the magic", "empty");
  ExpectError("GGML\x03\0\0\0", "not a GGUF file", "bad magic");
  ExpectError(Builder().Header(0, 0, 1).bytes(), "GGUF version 1 is not supported (supported: 2, 3", "v1");
  ExpectError(Builder().Header(0, 0, 0x03000000).bytes(), "big-endian", "big-endian");
  ExpectError(Builder().Header(huge, 0).bytes(), "tensor count of 4611686018427387904", "absurd tensor count");
  ExpectError(Builder().Header(0, huge).bytes(), "metadata count of", "absurd kv count");
  ExpectError(Builder().Header(0, 1).U64(huge).Zeros(20).bytes(), "metadata key 0 of 4611686018427387904 bytes",
              "absurd key length");
  ExpectError(Builder().Header(0, 1).Str("k").U32(8).U64(huge).Zeros(8).bytes(), "metadata 'k' string of",
              "absurd string length");
  ExpectError(Builder().Header(0, 1).Str("k").U32(13).U32(0).bytes(), "unknown value type 13 (known: uint8,",
              "unknown value type");
  ExpectError(Builder().Header(0, 1).Str("k").U32(9).U32(99).U64(1).Zeros(8).bytes(),
              "array of unknown value type 99", "unknown array element type");
  ExpectError(Builder().Header(0, 1).Str("k").U32(9).U32(4).U64(huge).Zeros(16).bytes(),
              "array of 4611686018427387904 uint32 elements", "absurd array count");
  ExpectError(Builder().Header(0, 1).Str("k").U32(9).U32(8).U64(2).Str("a").U64(50).bytes(), "element 1 of 50 bytes",
              "truncated string array");
  {
    Builder deep;
    deep.Header(0, 1).Str("k").U32(9);
    for (int i = 0; i < 20; ++i) deep.U32(9).U64(1);
    ExpectError(deep.Zeros(16).bytes(), "nests arrays deeper than 8", "deep arrays");
  }
  ExpectError(Builder().Header(0, 2).KvU32("k", 1).KvU32("k", 2).bytes(), "'k' appears twice", "duplicate key");
  ExpectError(Builder().Header(0, 1).Str("").U32(4).U32(1).bytes(), "metadata key 0 is empty", "empty key");
  ExpectError(Builder().Header(0, 1).KvU32("general.alignment", 48).bytes(), "general.alignment 48 is not a power",
              "alignment 48");
  ExpectError(Builder().Header(0, 1).KvU32("general.alignment", 0).bytes(), "general.alignment 0", "alignment 0");
  ExpectError(Builder().Header(0, 1).KvString("general.alignment", "x").bytes(), "not an integer",
              "string alignment");

  auto with_tensor = [&](const std::string& name, std::vector<uint64_t> dims, uint32_t type, uint64_t off,
                         size_t data) {
    return Builder().Header(1, 1).Raw(a.data(), a.size()).Tensor(name, dims, type, off).PadTo(32).Zeros(data).bytes();
  };
  ExpectError(with_tensor("w", {32}, 16, 0, 64), "tensor 'w' has ggml type IQ2_XXS (16), which is not supported "
              "(supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K)", "IQ2_XXS");
  ExpectError(with_tensor("w", {32}, 77, 0, 64), "ggml type unknown (77)", "type 77");
  ExpectError(with_tensor("w", {8}, 0, 32, 32), "needs bytes [32, 64) of the data section, which holds 32",
              "lying offset");
  ExpectError(with_tensor("w", {8}, 0, 0, 16), "needs bytes [0, 32) of the data section, which holds 16",
              "truncated data");
  ExpectError(with_tensor("w", {8}, 0, uint64_t{1} << 63, 32), "data offset 9223372036854775808 beyond",
              "offset beyond file");
  ExpectError(with_tensor("w", {4}, 0, 8, 64), "data offset 8, not a multiple of the alignment 32", "misaligned");
  ExpectError(with_tensor("w", {1u << 31, 1u << 31, 1u << 31}, 0, 0, 32), "element count overflows", "overflow");
  ExpectError(with_tensor("w", {1u << 30, 1u << 20}, 0, 0, 32), "more than the whole file", "absurd tensor");
  ExpectError(with_tensor("w", {1, 1, 1, 1, 1}, 0, 0, 32), "has 5 dimensions (at most 4)", "5 dims");
  ExpectError(with_tensor("w", {48}, 8, 0, 64), "rows of 48 elements, not a multiple of its block size 32",
              "partial block");
  ExpectError(with_tensor("", {4}, 0, 0, 32), "tensor info 0 has an empty name", "empty name");
  ExpectError(with_tensor(std::string(300, 'n'), {4}, 0, 0, 32), "tensor info 0 name is 300 bytes long",
              "long name");
  ExpectError(with_tensor("bad\nname", {1u << 30, 1u << 20}, 0, 0, 32), "tensor 'bad\\x0aname'", "escaped name");
  ExpectError(Builder().Header(2, 0).Tensor("w", {8}, 0, 0).Tensor("w", {8}, 0, 32).PadTo(32).Zeros(64).bytes(),
              "tensor 'w' appears twice", "duplicate tensor");
  ExpectError(Builder().Header(2, 0).Tensor("a", {16}, 0, 0).Tensor("b", {8}, 0, 32).PadTo(32).Zeros(96).bytes(),
              "tensors 'a' and 'b' overlap", "overlap");
  // Found by the fuzzer: an empty tensor in a file that ends before the data section's padding.
  ExpectError(Builder().Header(1, 0).Tensor("z", {0}, 0, 0).bytes(), "tensor data would start at byte 64, past its end",
              "data section past the end");
  // The same two tensors without overlap parse.
  EXPECT_TRUE(
      ParseBytes(Builder().Header(2, 0).Tensor("a", {8}, 0, 0).Tensor("b", {8}, 0, 32).PadTo(32).Zeros(64).bytes())
          .ok());
}

TEST(Gguf, ArrayAccessorsSaturateAndBoundCheck) {
  // Found by the fuzzer: a huge float element read with ArrayInt was UB.
  const float vals[4] = {1e30f, NAN, -1e30f, -2.5f};
  // The parsed header points into the bytes: they must outlive it.
  const std::string bytes = Builder().Header(0, 1).Str("k").U32(9).U32(6).U64(4).Raw(vals, 16).bytes();
  auto r = ParseBytes(bytes);
  ASSERT_TRUE(r.ok()) << r.status().message();
  const GgufValue* v = r->Find("k");
  EXPECT_EQ(v->ArrayInt(0), INT64_MAX);
  EXPECT_EQ(v->ArrayInt(1), 0);
  EXPECT_EQ(v->ArrayInt(2), INT64_MIN);
  EXPECT_EQ(v->ArrayInt(3), -2);
  EXPECT_EQ(v->ArrayFloat(3), -2.5);
  EXPECT_EQ(v->ArrayFloat(4), 0.0);  // past the end
}

TEST(Gguf, QuantizedTensorSizesFollowTheBlockLayout) {
  Builder b;
  b.Header(3, 0).Tensor("q4k", {512, 3}, 12, 0).Tensor("q6k", {256}, 14, 896).Tensor("q5_1", {64}, 7, 1120);
  const std::string bytes = b.PadTo(32).Zeros(1120 + 48).bytes();  // outlives the parsed header
  auto r = ParseBytes(bytes);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->FindTensor("q4k")->nbytes, 6u * 144u);
  EXPECT_EQ(r->FindTensor("q4k")->num_elements, 1536u);
  EXPECT_EQ(r->FindTensor("q6k")->nbytes, 210u);
  EXPECT_EQ(r->FindTensor("q5_1")->nbytes, 48u);
}


// The Hugging Face name of a GGUF llama tensor (llama.cpp's TensorNameMap, inverted).
std::string HfName(const std::string& g) {
  if (g == "token_embd.weight") return "model.embed_tokens.weight";
  if (g == "output_norm.weight") return "model.norm.weight";
  if (g == "output.weight") return "lm_head.weight";
  static const std::map<std::string, std::string> kBlock = {
      {"attn_norm", "input_layernorm"},   {"attn_q", "self_attn.q_proj"}, {"attn_k", "self_attn.k_proj"},
      {"attn_v", "self_attn.v_proj"},     {"attn_output", "self_attn.o_proj"},
      {"ffn_norm", "post_attention_layernorm"}, {"ffn_gate", "mlp.gate_proj"}, {"ffn_up", "mlp.up_proj"},
      {"ffn_down", "mlp.down_proj"}};
  if (g.rfind("blk.", 0) != 0) return "";
  const size_t dot1 = g.find('.', 4), dot2 = g.rfind('.');
  if (dot1 == std::string::npos || dot2 <= dot1) return "";
  auto it = kBlock.find(g.substr(dot1 + 1, dot2 - dot1 - 1));
  if (it == kBlock.end()) return "";
  return "model.layers." + g.substr(4, dot1 - 4) + "." + it->second + g.substr(dot2);
}

// Undoes LlamaModel.permute on the rows of q or k: within each of n_head heads
// of hd rows, GGUF row 2b + a holds Hugging Face row a * hd/2 + b.
std::vector<float> UnpermuteRows(const std::vector<float>& w, size_t rows, size_t cols, size_t n_head) {
  std::vector<float> out(w.size());
  const size_t hd = rows / n_head;
  for (size_t h = 0; h < n_head; ++h) {
    for (size_t a = 0; a < 2; ++a) {
      for (size_t b = 0; b < hd / 2; ++b) {
        const float* src = &w[(h * hd + 2 * b + a) * cols];
        std::copy(src, src + cols, &out[(h * hd + a * hd / 2 + b) * cols]);
      }
    }
  }
  return out;
}

// tools/hf_to_gguf.py wrote gqa_odd_bias_f32.gguf from the HF fixture model
// (GQA 6/2 heads, head_dim 12 != hidden/heads, q/k/v/o and MLP biases, float16
// weights stored as float32): every tensor is there, and un-permuting q and k
// (weights and biases) gives back the safetensors tensors bit for bit.
TEST(Gguf, ConvertedHfFixtureUnpermutesToTheSafetensorsTensors) {
  auto g = GgufFile::Open(FixturePath("gqa_odd_bias_f32.gguf"));
  ASSERT_TRUE(g.ok()) << g.status().message();
  auto st = SafetensorsFile::Open(testing::FixtureModel("gqa_odd_bias_f16") + "/model.safetensors");
  ASSERT_TRUE(st.ok()) << st.status().message();
  const GgufHeader& h = g.value()->header();
  const nlohmann::json cfg = nlohmann::json::parse(ReadAll(testing::FixtureModel("gqa_odd_bias_f16") + "/config.json"));
  const uint64_t n_head = h.GetUint("llama.attention.head_count").value();
  const uint64_t n_kv = h.GetUint("llama.attention.head_count_kv").value();
  EXPECT_EQ(n_head, cfg["num_attention_heads"].get<uint64_t>());
  EXPECT_EQ(n_kv, cfg["num_key_value_heads"].get<uint64_t>());
  EXPECT_EQ(h.GetUint("llama.embedding_length").value(), cfg["hidden_size"].get<uint64_t>());
  EXPECT_EQ(h.GetUint("llama.block_count").value(), cfg["num_hidden_layers"].get<uint64_t>());
  EXPECT_EQ(h.GetUint("llama.feed_forward_length").value(), cfg["intermediate_size"].get<uint64_t>());
  EXPECT_EQ(h.GetUint("llama.attention.key_length").value(), cfg["head_dim"].get<uint64_t>());
  EXPECT_EQ(h.GetUint("llama.rope.dimension_count").value(), cfg["head_dim"].get<uint64_t>());
  EXPECT_EQ(static_cast<float>(h.GetFloat("llama.attention.layer_norm_rms_epsilon").value()),
            cfg["rms_norm_eps"].get<float>());
  ASSERT_EQ(h.tensors.size(), st.value()->tensors().size());
  size_t permuted = 0;
  for (const GgufTensorInfo& t : h.tensors) {
    const std::string hf = HfName(t.name);
    ASSERT_TRUE(st.value()->tensors().count(hf)) << t.name << " -> '" << hf << "' not in the safetensors file";
    const SafetensorsEntry& e = st.value()->tensors().at(hf);
    // ggml dims are the reverse of the row-major shape.
    std::vector<uint64_t> rev(e.shape.rbegin(), e.shape.rend());
    ASSERT_EQ(t.dims, rev) << t.name;
    ASSERT_EQ(t.type, GgmlType::kF32) << t.name;
    std::vector<float> want(t.num_elements), got(t.num_elements);
    ConvertFloats(st.value()->TensorData(e), e.dtype, want.data(), DType::kF32, want.size());
    DequantizeRow(t.type, g.value()->TensorData(t), got.data(), got.size());
    const bool is_q = t.name.find(".attn_q.") != std::string::npos;
    const bool is_k = t.name.find(".attn_k.") != std::string::npos;
    if (is_q || is_k) {
      const size_t rows = t.dims.size() == 2 ? t.dims[1] : t.dims[0];
      const size_t cols = t.dims.size() == 2 ? t.dims[0] : 1;
      EXPECT_NE(got, want) << t.name << ": stored unpermuted (the converter permutes q and k rows)";
      got = UnpermuteRows(got, rows, cols, is_q ? n_head : n_kv);
      ++permuted;
    }
    for (size_t i = 0; i < got.size(); ++i) {
      ASSERT_EQ(FloatBits(got[i]), FloatBits(want[i])) << t.name << " element " << i;
    }
  }
  EXPECT_EQ(permuted, 4u * cfg["num_hidden_layers"].get<size_t>());  // q, k weights and biases per layer
}

}  // namespace
}  // namespace llm
