#include "model/llama_model.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>

#include "model/model_loader.h"
#include "model/sampler.h"

namespace llm {

namespace {

// base ** (2i / dim) in float32, as torch computes `base ** (arange(0, dim, 2).float() / dim)`.
float RopePower(double base, int i, int dim) {
  const float exponent = static_cast<float>(2 * i) / static_cast<float>(dim);
  return static_cast<float>(std::pow(static_cast<double>(static_cast<float>(base)), exponent));
}

// transformers' get_mscale of _compute_yarn_parameters.
double YarnMscale(double scale, double mscale) { return scale <= 1 ? 1.0 : 0.1 * mscale * std::log(scale) + 1.0; }

}  // namespace

bool RopeDependsOnSequenceLength(const LlamaConfig& c) {
  return c.rope_scaling == RopeScaling::kDynamic || c.rope_scaling == RopeScaling::kLongRope;
}

float RopeAttentionScaling(const LlamaConfig& c) {
  if (c.rope_scaling == RopeScaling::kYarn) {
    if (c.rope_attention_factor >= 0) return static_cast<float>(c.rope_attention_factor);
    if (c.rope_mscale != 0 && c.rope_mscale_all_dim != 0) {
      return static_cast<float>(YarnMscale(c.rope_factor, c.rope_mscale) / YarnMscale(c.rope_factor, c.rope_mscale_all_dim));
    }
    return static_cast<float>(YarnMscale(c.rope_factor, 1));
  }
  if (c.rope_scaling == RopeScaling::kLongRope) {
    if (c.rope_attention_factor >= 0) return static_cast<float>(c.rope_attention_factor);
    if (c.rope_factor <= 1) return 1.0f;
    return static_cast<float>(std::sqrt(1 + std::log(c.rope_factor) / std::log(c.rope_original_max_position)));
  }
  return 1.0f;
}

std::vector<float> RopeInverseFrequencies(const LlamaConfig& c, int64_t seq_len) {
  const int dim = c.head_dim;
  const int half = dim / 2;
  std::vector<float> inv(half);
  // HF default: 1.0 / (base ** (arange(0, dim, 2).float() / dim)), in float32.
  for (int i = 0; i < half; ++i) inv[i] = 1.0f / RopePower(c.rope_theta, i, dim);
  switch (c.rope_scaling) {
    case RopeScaling::kNone:
      break;
    case RopeScaling::kLinear:
      for (float& f : inv) f = static_cast<float>(f / c.rope_factor);
      break;
    case RopeScaling::kLlama3: {
      // HF _compute_llama3_parameters: long wavelengths are divided by `factor`,
      // short ones kept, and the band between blended smoothly.
      const double old_len = c.rope_original_max_position;
      const double low_wavelen = old_len / c.rope_low_freq_factor;
      const double high_wavelen = old_len / c.rope_high_freq_factor;
      for (float& f : inv) {
        const double wavelen = 2 * M_PI / f;
        if (wavelen > low_wavelen) {
          f = static_cast<float>(f / c.rope_factor);
        } else if (wavelen >= high_wavelen) {
          const double smooth = (old_len / wavelen - c.rope_low_freq_factor) /
                                (c.rope_high_freq_factor - c.rope_low_freq_factor);
          f = static_cast<float>((1 - smooth) * f / c.rope_factor + smooth * f);
        }
      }
      break;
    }
    case RopeScaling::kDynamic: {
      // HF _compute_dynamic_ntk_parameters with the sequence length of the
      // forward pass (dynamic_rope_update): beyond max_position_embeddings the
      // base grows; the arithmetic is float32 because seq_len is a tensor there.
      if (seq_len <= c.max_position_embeddings) break;
      const float factor = static_cast<float>(c.rope_factor);
      const float ratio = factor * static_cast<float>(seq_len) / static_cast<float>(c.max_position_embeddings) -
                          static_cast<float>(c.rope_factor - 1);
      const float power = static_cast<float>(std::pow(static_cast<double>(ratio),
                                                      static_cast<double>(static_cast<float>(double(dim) / (dim - 2)))));
      const float base = static_cast<float>(c.rope_theta) * power;
      for (int i = 0; i < half; ++i) inv[i] = 1.0f / RopePower(base, i, dim);
      break;
    }
    case RopeScaling::kYarn: {
      // HF _compute_yarn_parameters: interpolated (divided by factor) below the
      // correction range, extrapolated (unchanged) above it, a linear ramp between.
      const double base = c.rope_theta;
      auto correction_dim = [&](double rotations) {
        return dim * std::log(c.rope_original_max_position / (rotations * 2 * M_PI)) / (2 * std::log(base));
      };
      double low = correction_dim(c.rope_beta_fast), high = correction_dim(c.rope_beta_slow);
      if (c.rope_truncate) {
        low = std::floor(low);
        high = std::ceil(high);
      }
      low = std::max(low, 0.0);
      high = std::min(high, static_cast<double>(dim - 1));
      if (low == high) high += 0.001;  // HF: prevent singularity
      const float factor = static_cast<float>(c.rope_factor);
      for (int i = 0; i < half; ++i) {
        const float pos = RopePower(base, i, dim);
        const float extrapolation = 1.0f / pos;
        const float interpolation = 1.0f / (factor * pos);
        const float ramp = std::clamp((static_cast<float>(i) - static_cast<float>(low)) / static_cast<float>(high - low),
                                      0.0f, 1.0f);
        const float extrapolation_factor = 1.0f - ramp;
        inv[i] = interpolation * (1.0f - extrapolation_factor) + extrapolation * extrapolation_factor;
      }
      break;
    }
    case RopeScaling::kLongRope: {
      // HF _compute_longrope_parameters: long_factor once the sequence is longer
      // than original_max_position_embeddings, short_factor before.
      const std::vector<double>& ext =
          seq_len > c.rope_original_max_position ? c.rope_long_factor : c.rope_short_factor;
      for (int i = 0; i < half; ++i) inv[i] = 1.0f / (static_cast<float>(ext[i]) * RopePower(c.rope_theta, i, dim));
      break;
    }
  }
  return inv;
}

std::vector<size_t> LlamaModel::PlannedBufferBytes(const LlamaConfig& config, const ModelOptions& options) {
  const size_t T = static_cast<size_t>(options.max_batch_tokens > 0 ? options.max_batch_tokens : options.max_seq_len);
  const size_t S = static_cast<size_t>(options.max_seq_len);
  const size_t B = static_cast<size_t>(std::max(1, options.max_sequences));
  const size_t f = sizeof(float), half = config.head_dim / 2;
  const size_t h = config.hidden_size, q = config.q_dim(), kv = config.kv_dim(), inter = config.intermediate_size;
  // Order: kv_cache, rope_cos, rope_sin, x, xnorm, q, k, v, attn, proj, gate, up, logits.
  return {B * config.num_hidden_layers * 2 * kv * S * f,
          S * half * f, S * half * f, T * h * f, T * h * f, T * q * f, T * kv * f, T * kv * f, T * q * f, T * h * f,
          T * inter * f, T * inter * f, (options.all_logits ? T : B) * config.vocab_size * f};
}

size_t LlamaModel::PlannedHostBytes(const LlamaConfig& config, const ModelOptions& options) {
  size_t total = 0;
  for (size_t b : PlannedBufferBytes(config, options)) total += b;
  return total;
}

Result<std::unique_ptr<LlamaModel>> LlamaModel::Create(const LlamaConfig& config, ModelWeights weights,
                                                       KernelBackend* backend, const ModelOptions& options) {
  if (options.max_seq_len <= 0) return InvalidArgument("--max-seq-len must be positive");
  if (options.max_sequences < 1) return InvalidArgument("the batch needs at least one sequence");
  std::unique_ptr<LlamaModel> m(new LlamaModel());
  m->config_ = config;
  m->weights_ = std::move(weights);
  m->backend_ = backend;
  m->options_ = options;
  if (m->options_.max_batch_tokens <= 0) m->options_.max_batch_tokens = options.max_seq_len;
  // A decode step of the whole batch is one chunk.
  m->options_.max_batch_tokens = std::max(m->options_.max_batch_tokens, options.max_sequences);
  m->positions_.assign(options.max_sequences, 0);
  m->kv_cache_.set_category(MemCategory::kKvCache);
  AlignedBuffer* buffers[] = {&m->kv_cache_, &m->rope_cos_, &m->rope_sin_, &m->x_, &m->xnorm_, &m->q_,   &m->k_,
                              &m->v_,        &m->attn_,     &m->proj_,     &m->gate_, &m->up_, &m->logits_};
  const std::vector<size_t> sizes = PlannedBufferBytes(config, m->options_);
  bool ok = true;
  for (size_t i = 0; i < sizes.size(); ++i) {
    if (i > 0) buffers[i]->set_category(MemCategory::kActivations);
    ok = ok && buffers[i]->Allocate(sizes[i]);
  }
  if (!ok) {
    return IoError("out of memory allocating the KV cache and activations for --max-seq-len " +
                   std::to_string(options.max_seq_len) + " (try a smaller --max-seq-len)");
  }
  std::memset(m->kv_cache_.data(), 0, m->kv_cache_.size());
  BuildRopeTables(config, options.max_seq_len, m->rope_cos_.as<float>(), m->rope_sin_.as<float>());
  // The backend's own copies of the weights (the CPU's repacked quantized
  // matrices) only where they fit beside everything else; the row-major
  // kernels serve the model otherwise.
  size_t prepared_bytes = 0;
  for (const Tensor* t : m->Matrices()) prepared_bytes += backend->PrepareWeightsBytes(t->view());
  if (prepared_bytes > 0 && prepared_bytes < AvailableMemoryBytes() / 10 * 9) {
    const auto start = std::chrono::steady_clock::now();
    backend->ReserveWeights(prepared_bytes);
    for (const Tensor* t : m->Matrices()) backend->PrepareWeights(t->view());
    m->prepared_weights_ = true;
    m->prepare_weights_s_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  return m;
}

LlamaModel::~LlamaModel() {
  if (backend_ == nullptr || !prepared_weights_) return;
  for (const Tensor* t : Matrices()) backend_->ReleaseWeights(t->view());
}

std::vector<const Tensor*> LlamaModel::Matrices() const {
  std::vector<const Tensor*> out;
  for (const LayerWeights& l : weights_.layers) {
    for (const Tensor* t : {&l.q_proj, &l.k_proj, &l.v_proj, &l.o_proj, &l.gate_proj, &l.up_proj, &l.down_proj}) {
      out.push_back(t);
    }
  }
  out.push_back(&weights_.lm_head);
  return out;
}

Result<std::unique_ptr<LlamaModel>> LlamaModel::CreateOnDevice(const LlamaConfig& config, ModelWeights weights,
                                                               std::unique_ptr<DeviceEngine> engine,
                                                               const ModelOptions& options) {
  if (options.max_seq_len <= 0) return InvalidArgument("--max-seq-len must be positive");
  if (RopeDependsOnSequenceLength(config)) {
    return Unimplemented(std::string(RopeScalingName(config.rope_scaling)) +
                         " rope scaling is not implemented on the GPU (its frequencies change with the sequence "
                         "length); use --device cpu");
  }
  std::unique_ptr<LlamaModel> m(new LlamaModel());
  m->config_ = config;
  m->weights_ = std::move(weights);
  m->device_ = std::move(engine);
  m->options_ = options;
  if (options.max_sequences != 1) {
    return Unimplemented("batched generation (--batch-size above 1) runs on the CPU for now; use --device cpu");
  }
  m->positions_.assign(1, 0);
  if (m->options_.max_batch_tokens <= 0) m->options_.max_batch_tokens = options.max_seq_len;
  const size_t rows = options.all_logits ? m->options_.max_batch_tokens : 1;
  m->logits_.set_category(MemCategory::kActivations);
  if (!m->logits_.Allocate(rows * config.vocab_size * sizeof(float))) return IoError("out of memory for the logits");
  return m;
}

void BuildRopeRows(const LlamaConfig& c, int64_t seq_len, int first, int count, float* cos_t, float* sin_t) {
  const std::vector<float> inv = RopeInverseFrequencies(c, seq_len);
  const float scale = RopeAttentionScaling(c);  // HF: cos = emb.cos() * attention_scaling
  const int half = c.head_dim / 2;
  for (int p = first; p < first + count; ++p) {
    for (int i = 0; i < half; ++i) {
      // HF multiplies position by inv_freq in float32, then takes cos/sin.
      const float angle = static_cast<float>(p) * inv[i];
      const size_t at = static_cast<size_t>(p) * half + i;
      cos_t[at] = static_cast<float>(std::cos(static_cast<double>(angle))) * scale;
      sin_t[at] = static_cast<float>(std::sin(static_cast<double>(angle))) * scale;
    }
  }
}

void BuildRopeTables(const LlamaConfig& c, int positions, float* cos_t, float* sin_t) {
  BuildRopeRows(c, 0, 0, positions, cos_t, sin_t);
}

KvCacheView LlamaModel::LayerCache(int seq, int layer) const {
  const size_t per_tensor = static_cast<size_t>(config_.kv_dim()) * options_.max_seq_len;
  const size_t layer_index = static_cast<size_t>(seq) * config_.num_hidden_layers + layer;
  float* base = const_cast<float*>(kv_cache_.as<float>()) + layer_index * 2 * per_tensor;
  return KvCacheView{base, base + per_tensor, config_.num_key_value_heads, options_.max_seq_len, config_.head_dim};
}

size_t LlamaModel::KvCacheBytesFor(int positions) const {
  // float32 on both the CPU and the CUDA engine.
  return static_cast<size_t>(config_.num_hidden_layers) * 2 * config_.kv_dim() * positions * sizeof(float);
}

size_t LlamaModel::kv_cache_used_bytes() const {
  size_t total = 0;
  for (int p : positions_) total += KvCacheBytesFor(p);
  return total;
}

size_t LlamaModel::scratch_bytes() const {
  if (device_) return device_->memory().workspace + logits_.size();
  size_t total = rope_cos_.size() + rope_sin_.size();
  for (const AlignedBuffer* b : {&x_, &xnorm_, &q_, &k_, &v_, &attn_, &proj_, &gate_, &up_, &logits_}) total += b->size();
  return total;
}

void LlamaModel::set_profiler(Profiler* profiler) {
  profiler_ = profiler;
  if (device_) device_->set_profiler(profiler);
}

const float* LlamaModel::HostLogits(int rows) const {
  if (device_ && host_logits_stale_) {
    // A failed copy leaves NaNs, which no caller mistakes for logits.
    float* l = const_cast<float*>(logits_.as<float>());
    if (!device_->CopyLogits(l, rows).ok()) std::fill(l, l + static_cast<size_t>(rows) * config_.vocab_size, NAN);
    host_logits_stale_ = false;
  }
  return logits_.as<float>();
}

const float* LlamaModel::last_logits() const {
  const float* l = HostLogits(options_.all_logits ? last_n_ : 1);
  return options_.all_logits ? l + static_cast<size_t>(last_n_ - 1) * config_.vocab_size : l;
}

const float* LlamaModel::all_logits() const { return HostLogits(last_n_); }

const float* LlamaModel::batch_logits(int i) const {
  if (i == 0) return last_logits();
  return HostLogits(1) + static_cast<size_t>(i) * config_.vocab_size;  // several entries: the CPU only
}

Result<int32_t> LlamaModel::GreedyToken(int i) const {
  if (device_ && !options_.all_logits && i == 0) return device_->GreedyToken();
  return ArgMax(batch_logits(i), config_.vocab_size);
}

Status LlamaModel::CopySequence(int from, int to) {
  if (from < 0 || to < 0 || from >= options_.max_sequences || to >= options_.max_sequences || device_) {
    return InvalidArgument("CopySequence " + std::to_string(from) + " -> " + std::to_string(to) + " outside the batch");
  }
  for (int l = 0; l < config_.num_hidden_layers; ++l) backend_->KvCopy(LayerCache(from, l), LayerCache(to, l), positions_[from]);
  positions_[to] = positions_[from];
  return OkStatus();
}

Status LlamaModel::Forward(const int32_t* tokens, int n) { return ForwardBatch({SequenceTokens{0, tokens, n}}); }

Status LlamaModel::ForwardBatch(const std::vector<SequenceTokens>& batch) {
  if (batch.empty()) return InvalidArgument("Forward needs at least one token");
  std::vector<bool> seen(options_.max_sequences, false);
  for (const SequenceTokens& s : batch) {
    if (s.seq < 0 || s.seq >= options_.max_sequences || seen[s.seq]) {
      return InvalidArgument("batch entry for sequence " + std::to_string(s.seq) + " is outside the batch of " +
                             std::to_string(options_.max_sequences) + " or repeated");
    }
    seen[s.seq] = true;
    if (s.n <= 0) return InvalidArgument("Forward needs at least one token");
    const int position = positions_[s.seq];
    if (position + s.n > options_.max_seq_len) {
      return InvalidArgument("sequence of " + std::to_string(position + s.n) + " tokens exceeds --max-seq-len " +
                             std::to_string(options_.max_seq_len) + " (raise --max-seq-len or shorten the prompt)");
    }
    for (int i = 0; i < s.n; ++i) {
      if (s.tokens[i] < 0 || s.tokens[i] >= config_.vocab_size) {
        return InvalidArgument("token id " + std::to_string(s.tokens[i]) + " is outside the vocabulary of " +
                               std::to_string(config_.vocab_size));
      }
    }
  }
  if (options_.all_logits && (batch.size() > 1 || batch[0].n > options_.max_batch_tokens)) {
    return InvalidArgument("all_logits needs the whole input of one sequence in one chunk");
  }
  if (device_) {
    if (batch.size() != 1 || batch[0].seq != 0) return Unimplemented("batched forward passes run on the CPU for now");
    const SequenceTokens& s = batch[0];
    for (int done = 0; done < s.n;) {
      const int chunk = std::min(s.n - done, options_.max_batch_tokens);
      LLM_RETURN_IF_ERROR(device_->Forward(s.tokens + done, chunk, positions_[0], options_.all_logits));
      positions_[0] += chunk;
      host_logits_stale_ = true;
      done += chunk;
    }
    last_n_ = s.n;
    return OkStatus();
  }
  // Pack the entries into chunks of at most max_batch_tokens rows; an entry
  // longer than the room left is split, and only its last piece keeps logits.
  std::vector<ChunkPiece> pieces;
  int rows = 0;
  for (size_t i = 0; i < batch.size(); ++i) {
    for (int done = 0; done < batch[i].n;) {
      const int take = std::min(batch[i].n - done, options_.max_batch_tokens - rows);
      const bool last = done + take == batch[i].n;
      pieces.push_back(ChunkPiece{batch[i].seq, batch[i].tokens + done, take, last ? static_cast<int>(i) : -1});
      rows += take;
      done += take;
      if (rows == options_.max_batch_tokens) {
        LLM_RETURN_IF_ERROR(ForwardChunk(pieces, rows));
        pieces.clear();
        rows = 0;
      }
    }
  }
  if (rows > 0) LLM_RETURN_IF_ERROR(ForwardChunk(pieces, rows));
  last_n_ = batch.size() == 1 ? batch[0].n : 1;
  return OkStatus();
}

Status LlamaModel::ForwardChunk(const std::vector<ChunkPiece>& pieces, int T) {
  const LlamaConfig& c = config_;
  const int64_t H = c.hidden_size, Q = c.q_dim(), KV = c.kv_dim(), F = c.intermediate_size;
  KernelBackend& k = *backend_;
  Profiler* prof = profiler_;
  const size_t wb = DTypeSize(weights_.norm.dtype);  // norms stay float in quantized models
  float* x = x_.as<float>();
  float* xn = xnorm_.as<float>();
  float* q = q_.as<float>();
  float* kk = k_.as<float>();
  float* vv = v_.as<float>();
  float* attn = attn_.as<float>();
  float* proj = proj_.as<float>();
  float* gate = gate_.as<float>();
  float* up = up_.as<float>();
  // Piece p holds rows first_row[p] .. first_row[p] + n - 1 of the chunk.
  std::vector<int> first_row(pieces.size());
  row_tokens_.resize(T);
  for (size_t p = 0, row = 0; p < pieces.size(); row += pieces[p].n, ++p) {
    first_row[p] = static_cast<int>(row);
    std::copy_n(pieces[p].tokens, pieces[p].n, row_tokens_.begin() + row);
  }
  // A projection y[rows, w.rows] = x[rows, w.cols] W^T (+ b); its work follows
  // from the weight's shape and dtype.
  const auto bytes_per_weight = [](const Tensor& w) {
    return static_cast<double>(DTypeRowBytes(w.dtype, w.cols)) / static_cast<double>(w.cols);
  };
  const auto matrix = [&](const Tensor& w) {
    MatView view = w.view();
    view.bf16_compute = weights_.dtype == DType::kBF16;
    return view;
  };
  const auto bias_of = [](const Tensor& b) { return b.empty() ? nullptr : b.f32(); };
  auto linear = [&](Op op, int layer, const Tensor& w, const Tensor& b, const float* in, int64_t rows, float* out) {
    const MatView view = matrix(w);
    LLM_PROFILE(prof, op, layer, OnUnit(MatMulCost(rows, w.rows, w.cols, bytes_per_weight(w)), k.MatMulUnit(rows, view)));
    k.MatMul(in, rows, view, bias_of(b), out);
  };
  // Each scope below is one line: op, layer, and the work it must do.
  {
    const int64_t row_bytes = static_cast<int64_t>(DTypeRowBytes(weights_.embed_tokens.dtype, H));
    LLM_PROFILE(prof, Op::kEmbedding, -1, OpCost{0, T * (row_bytes + 4 * H), T, static_cast<int32_t>(H), 0});
    k.Embedding(weights_.embed_tokens.view(), row_tokens_.data(), T, x);
  }
  if (observer_) observer_(0, x, T);
  // dynamic / longrope: HF recomputes the frequencies for each forward pass
  // from its sequence length; cached keys keep the rotation they got. Each
  // sequence's rows are rebuilt just before its RoPE reads them.
  const bool rope_per_pass = RopeDependsOnSequenceLength(c);
  std::vector<AttentionArgs> attention(pieces.size());  // refilled per layer: no allocation per layer
  float* cos_table = rope_cos_.as<float>();
  float* sin_table = rope_sin_.as<float>();
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    const LayerWeights& w = weights_.layers[l];
    LLM_PROFILE(prof, Op::kLayer, l);
    // Attention block: x = x + o_proj(attn(rope(q), rope(k), v))
    {
      LLM_PROFILE(prof, Op::kAttentionNorm, l, RmsNormCost(T, H, wb));
      k.RmsNorm(x, w.input_layernorm.view(), c.rms_norm_eps, T, xn);
    }
    {
      LLM_PROFILE(prof, Op::kAttention, l);
      const MatView qkv_views[3] = {matrix(w.q_proj), matrix(w.k_proj), matrix(w.v_proj)};
      if (k.FusesSameX(T, qkv_views[0])) {
        LLM_PROFILE(prof, Op::kQkvProj, l,
                    OnUnit(MatMulCost(T, Q + 2 * KV, H, bytes_per_weight(w.q_proj)), k.MatMulUnit(T, qkv_views[0])));
        const float* biases[3] = {bias_of(w.q_bias), bias_of(w.k_bias), bias_of(w.v_bias)};
        float* outs[3] = {q, kk, vv};
        k.MatMulSameX(xn, T, qkv_views, biases, outs, 3);
      } else {
        linear(Op::kQProj, l, w.q_proj, w.q_bias, xn, T, q);
        linear(Op::kKProj, l, w.k_proj, w.k_bias, xn, T, kk);
        linear(Op::kVProj, l, w.v_proj, w.v_bias, xn, T, vv);
      }
      {
        // 3 FLOPs per element (two multiplies, one add); reads and writes q, k and the tables.
        LLM_PROFILE(prof, Op::kRope, l, ElementwiseCost(T * (Q + KV), 3, 3));
        for (size_t p = 0; p < pieces.size(); ++p) {
          const int pos = positions_[pieces[p].seq], n = pieces[p].n, row = first_row[p];
          if (rope_per_pass) BuildRopeRows(c, static_cast<int64_t>(pos) + n, pos, n, cos_table, sin_table);
          k.Rope(q + row * Q, n, c.num_attention_heads, c.head_dim, pos, cos_table, sin_table);
          k.Rope(kk + row * KV, n, c.num_key_value_heads, c.head_dim, pos, cos_table, sin_table);
        }
      }
      {
        LLM_PROFILE(prof, Op::kKvWrite, l, ElementwiseCost(2 * T * KV, 0, 2));
        for (size_t p = 0; p < pieces.size(); ++p) {
          k.KvWrite(kk + first_row[p] * KV, vv + first_row[p] * KV, pieces[p].n, LayerCache(pieces[p].seq, l),
                    positions_[pieces[p].seq]);
        }
      }
      // Each sequence attends to its own cache.
      OpCost sdpa_cost;
      for (size_t p = 0; p < pieces.size(); ++p) {
        AttentionArgs& args = attention[p];
        args.q = q + first_row[p] * Q;
        args.cache = LayerCache(pieces[p].seq, l);
        args.num_tokens = pieces[p].n;
        args.start_pos = positions_[pieces[p].seq];
        args.num_heads = c.num_attention_heads;
        args.scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
        args.out = attn + first_row[p] * Q;
        args.layer = l;
        args.bf16_inputs = weights_.dtype == DType::kBF16;
        const OpCost one = SdpaCost(args).total;
        sdpa_cost.flops += one.flops;
        sdpa_cost.bytes += one.bytes;
        sdpa_cost.m += one.m;
        sdpa_cost.n = one.n;
        sdpa_cost.k = std::max(sdpa_cost.k, one.k);
      }
      {
        LLM_PROFILE(prof, Op::kSdpa, l, OnUnit(sdpa_cost, k.AttentionUnit(attention[0])));
        for (const AttentionArgs& args : attention) k.Attention(args);
      }
      linear(Op::kOProj, l, w.o_proj, w.o_bias, attn, T, proj);
    }
    {
      LLM_PROFILE(prof, Op::kAttentionResidual, l, ElementwiseCost(T * H, 1, 3));
      k.Add(x, proj, T * H);
    }
    // MLP block: x = x + down_proj(silu(gate_proj(x)) * up_proj(x))
    {
      LLM_PROFILE(prof, Op::kFfnNorm, l, RmsNormCost(T, H, wb));
      k.RmsNorm(x, w.post_attention_layernorm.view(), c.rms_norm_eps, T, xn);
    }
    {
      LLM_PROFILE(prof, Op::kFeedForward, l);
      const MatView gate_view = matrix(w.gate_proj);
      if (k.FusesGateUpSilu(T, gate_view)) {
        OpCost cost = MatMulCost(T, 2 * F, H, bytes_per_weight(w.gate_proj));
        cost.flops += 5 * T * F;
        cost.bytes -= 4 * T * F;  // writes silu(g) * u only
        LLM_PROFILE(prof, Op::kGateUpSilu, l, OnUnit(cost, k.MatMulUnit(T, gate_view)));
        k.GateUpSilu(xn, T, gate_view, matrix(w.up_proj), bias_of(w.gate_bias), bias_of(w.up_bias), gate);
      } else {
        linear(Op::kGateProj, l, w.gate_proj, w.gate_bias, xn, T, gate);
        linear(Op::kUpProj, l, w.up_proj, w.up_bias, xn, T, up);
        // silu(g) * u = g / (1 + exp(-g)) * u: counted as 5 FLOPs (exp as one).
        LLM_PROFILE(prof, Op::kSiluMul, l, ElementwiseCost(T * F, 5, 3));
        k.SiluMul(gate, up, T * F, gate);
      }
      linear(Op::kDownProj, l, w.down_proj, w.down_bias, gate, T, proj);
    }
    {
      LLM_PROFILE(prof, Op::kFfnResidual, l, ElementwiseCost(T * H, 1, 3));
      k.Add(x, proj, T * H);
    }
    if (observer_) observer_(l + 1, x, T);
  }
  for (const ChunkPiece& p : pieces) positions_[p.seq] += p.n;
  // Final norm and lm_head: every row when all logits are kept, else the last
  // row of each piece that ends its batch entry (entries of one chunk end in
  // order, so their logits rows are consecutive).
  int first_logits_row = -1, rows = 0;
  if (options_.all_logits) {
    first_logits_row = 0;
    rows = T;
    LLM_PROFILE(prof, Op::kNorm, -1, RmsNormCost(rows, H, wb));
    k.RmsNorm(x, weights_.norm.view(), c.rms_norm_eps, rows, xn);
  } else {
    LLM_PROFILE(prof, Op::kNorm, -1, RmsNormCost(std::count_if(pieces.begin(), pieces.end(),
                                                               [](const ChunkPiece& p) { return p.logits_row >= 0; }),
                                                 H, wb));
    for (size_t p = 0; p < pieces.size(); ++p) {
      if (pieces[p].logits_row < 0) continue;
      if (first_logits_row < 0) first_logits_row = pieces[p].logits_row;
      const int last_row = first_row[p] + pieces[p].n - 1;
      k.RmsNorm(x + last_row * H, weights_.norm.view(), c.rms_norm_eps, 1, xn + rows * H);
      ++rows;
    }
  }
  if (rows == 0) return OkStatus();  // every entry continues in the next chunk
  if (observer_) observer_(c.num_hidden_layers + 1, xn, rows);
  linear(Op::kLmHead, -1, weights_.lm_head, Tensor{}, xn, rows,
         logits_.as<float>() + static_cast<size_t>(first_logits_row) * c.vocab_size);
  return OkStatus();
}

}  // namespace llm
