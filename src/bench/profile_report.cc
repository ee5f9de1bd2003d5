#include "bench/profile_report.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>

#include "bench/report.h"
#include "core/memory_ledger.h"

namespace llm {

namespace {

bool IsPhase(Op op) { return op == Op::kPrefill || op == Op::kDecodeStep; }
// Containers group children; their self time is glue between children.
bool IsContainer(Op op) {
  return IsPhase(op) || op == Op::kLayer || op == Op::kAttention || op == Op::kFeedForward || op == Op::kSdpa;
}

struct Node {
  const ProfileEvent* e;
  double child_ms = 0;
  int phase = -1;  // 0 prefill, 1 decode
};

// GPU activity by phase (a kernel belongs to the step of its launching
// scope) and by operator; copies and sets by kind.
void SummarizeGpu(const Profiler& profiler, ProfileSummary* s) {
  std::map<std::string, std::map<std::string, GpuOpStats>> ops, copies;
  std::map<std::string, GpuPhaseStats> phases;
  for (const GpuActivity& a : profiler.gpu_activities()) {
    const std::string phase = a.step < 0 ? "prefill" : "decode";
    GpuPhaseStats& ph = phases[phase];
    ph.phase = phase;
    const double ms = (a.end_ns - a.begin_ns) * 1e-6;
    ph.busy_ms += ms;
    const bool kernel = a.kind == GpuActivity::kKernel;
    if (kernel && a.in_graph) ++ph.graph_kernels;
    const std::string key = !kernel ? a.name : a.op == Op::kCount ? "(no scope)"
                                             : GetOpInfo(a.op).path[0] ? GetOpInfo(a.op).path : "layer";
    GpuOpStats& st = (kernel ? ops : copies)[phase][key];
    st.name = key;
    ++st.calls;
    st.gpu_ms += ms;
    st.bytes += a.bytes;
    if (kernel && st.kernels.find(a.name) == std::string::npos) st.kernels += (st.kernels.empty() ? "" : ", ") + a.name;
  }
  for (auto& [name, ph] : phases) {
    for (auto& [k, st] : ops[name]) ph.ops.push_back(st);
    for (auto& [k, st] : copies[name]) ph.copies.push_back(st);
    std::sort(ph.ops.begin(), ph.ops.end(), [](const GpuOpStats& a, const GpuOpStats& b) { return a.gpu_ms > b.gpu_ms; });
    s->gpu_phases.push_back(ph);
  }
  std::sort(s->gpu_phases.begin(), s->gpu_phases.end(),
            [](const GpuPhaseStats& a, const GpuPhaseStats& b) { return a.phase > b.phase; });  // prefill first
}

}  // namespace

ProfileSummary SummarizeProfile(const Profiler& profiler) {
  ProfileSummary s;
  s.dropped = profiler.dropped();
  std::vector<const ProfileEvent*> main;
  for (int w = 0; w < profiler.num_threads(); ++w) s.events += profiler.events(w).size();
  for (const ProfileEvent& e : profiler.events(0)) main.push_back(&e);
  std::sort(main.begin(), main.end(), [](const ProfileEvent* a, const ProfileEvent* b) {
    return a->begin_ns != b->begin_ns ? a->begin_ns < b->begin_ns : a->end_ns > b->end_ns;
  });
  std::vector<Node> nodes;
  nodes.reserve(main.size());
  std::vector<size_t> stack;
  for (const ProfileEvent* e : main) {
    while (!stack.empty() && nodes[stack.back()].e->end_ns <= e->begin_ns) stack.pop_back();
    Node n{e};
    if (!stack.empty()) {
      Node& parent = nodes[stack.back()];
      parent.child_ms += (e->end_ns - e->begin_ns) * 1e-6;
      n.phase = parent.phase;
    }
    if (e->op == Op::kPrefill) n.phase = 0;
    if (e->op == Op::kDecodeStep) n.phase = 1;
    nodes.push_back(n);
    stack.push_back(nodes.size() - 1);
  }
  PhaseStats phases[2];
  phases[0].phase = "prefill";
  phases[1].phase = "decode";
  std::map<std::string, OpStats> by_op[2], by_cat[2], by_layer[2];
  for (const Node& n : nodes) {
    if (n.phase < 0) continue;
    PhaseStats& ph = phases[n.phase];
    const ProfileEvent& e = *n.e;
    const double dur = (e.end_ns - e.begin_ns) * 1e-6;
    const double self = std::max(0.0, dur - n.child_ms);
    if (IsPhase(e.op)) {
      ph.wall_ms += dur;
      ph.steps++;
    }
    if (!IsPhase(e.op)) ph.self_sum_ms += self;
    if (IsPhase(e.op)) continue;
    const OpInfo& info = GetOpInfo(e.op);
    const std::string name = info.per_layer ? (info.path[0] ? info.path : "layer (glue)") : info.path;
    // A container's work is done by its children; count it once, there.
    const double flops = IsContainer(e.op) ? 0 : e.cost.flops;
    const double bytes = IsContainer(e.op) ? 0 : e.cost.bytes;
    for (auto* table : {&by_op[n.phase], &by_cat[n.phase]}) {
      OpStats& st = (*table)[table == &by_op[n.phase] ? name : std::string(info.category)];
      st.name = table == &by_op[n.phase] ? name : std::string(info.category);
      st.category = info.category;
      st.calls++;
      st.total_ms += dur;
      st.self_ms += self;
      st.flops += flops;
      st.unit_flops[static_cast<int>(e.cost.unit)] += flops;
      st.bytes += bytes;
    }
    if (e.layer >= 0) {
      OpStats& st = by_layer[n.phase]["layers." + std::to_string(e.layer)];
      st.name = "layers." + std::to_string(e.layer);
      st.category = "Layer";
      st.self_ms += self;
      st.flops += flops;
      st.unit_flops[static_cast<int>(e.cost.unit)] += flops;
      st.bytes += bytes;
      if (e.op == Op::kLayer) {
        st.calls++;
        st.total_ms += dur;
      }
    }
  }
  for (int p = 0; p < 2; ++p) {
    if (phases[p].steps == 0) continue;
    auto flatten = [](std::map<std::string, OpStats>& m, bool sort_by_self) {
      std::vector<OpStats> v;
      for (auto& [k, st] : m) v.push_back(st);
      if (sort_by_self) std::sort(v.begin(), v.end(), [](const OpStats& a, const OpStats& b) { return a.self_ms > b.self_ms; });
      return v;
    };
    phases[p].ops = flatten(by_op[p], true);
    phases[p].categories = flatten(by_cat[p], true);
    std::vector<OpStats> layers = flatten(by_layer[p], false);
    std::sort(layers.begin(), layers.end(), [](const OpStats& a, const OpStats& b) {
      return std::stoi(a.name.substr(7)) < std::stoi(b.name.substr(7));
    });
    phases[p].layers = layers;
    s.phases.push_back(phases[p]);
  }
  SummarizeGpu(profiler, &s);
  s.notes = profiler.notes();
  return s;
}

namespace {

struct Verdict {
  std::string bound;   // "memory" | "compute" | "overhead"
  double fraction = 0; // of the roof that matters
  double fraction_beside = 0;  // memory-bound: of the bandwidth read beside the run (--roof-probe; 0 without)
  std::string unit;    // the compute roof's unit ("FMA", "AMX-BF16") or "BW"
  std::string text;
};

// The unit most of an operator's FLOPs ran on, and the time its FLOPs would
// take at the measured peaks of the units they ran on (an operator split
// across units, e.g. prefill on AMX and decode on FMA in one category row,
// gets a roof between the two).
ComputeUnit MainUnit(const OpStats& st) {
  int best = 0;
  for (int u = 1; u < static_cast<int>(ComputeUnit::kCount); ++u) {
    if (st.unit_flops[u] > st.unit_flops[best]) best = u;
  }
  return static_cast<ComputeUnit>(best);
}
double ComputeRoofGflops(const OpStats& st, const Calibration& cal) {
  double seconds = 0;
  for (int u = 0; u < static_cast<int>(ComputeUnit::kCount); ++u) {
    const double peak = PeakGflops(cal, static_cast<ComputeUnit>(u));
    seconds += st.unit_flops[u] / ((peak > 0 ? peak : cal.fma_gflops) * 1e9);
  }
  return seconds > 0 ? st.flops / seconds / 1e9 : cal.fma_gflops;
}

// Roofline: an operator whose FLOPs per byte are below the machine balance
// (peak FLOP/s of the unit it ran on / bandwidth) is limited by memory, above
// it by arithmetic. Far from either roof with short calls, it is overhead:
// launch, sync, glue.
Verdict Judge(const OpStats& st, const Calibration& cal) {
  Verdict v;
  const double peak = ComputeRoofGflops(st, cal);
  const std::string unit_name = ComputeUnitName(MainUnit(st));
  const double balance = peak / cal.read_gbps;
  const double intensity = st.bytes > 0 ? st.flops / st.bytes : 1e9;
  const double avg_us = st.calls ? st.self_ms * 1e3 / st.calls : 0;
  if (intensity < balance) {
    v.bound = "memory";
    v.unit = "BW";
    v.fraction = st.gbytes_per_s() / cal.read_gbps;
  } else {
    v.bound = "compute";
    v.unit = unit_name;
    v.fraction = st.gflops_per_s() / peak;
  }
  if (v.fraction < 0.25 && avg_us < 50) v.bound = "overhead";
  if (v.bound == "memory") {
    v.text = fmt::format("memory-bound at {:.0f}% of measured bandwidth ({:.1f} of {:.1f} GB/s)", 100 * v.fraction,
                         st.gbytes_per_s(), cal.read_gbps);
    if (const double beside = cal.ReadBesideRunGbps(); beside > 0) {
      v.fraction_beside = st.gbytes_per_s() / beside;
      v.text += fmt::format("; {:.0f}% of the {:.1f} GB/s read beside this run", 100 * v.fraction_beside, beside);
    }
  } else if (v.bound == "compute") {
    v.text = fmt::format("compute-bound at {:.0f}% of measured {} peak ({:.1f} of {:.1f} GFLOP/s)", 100 * v.fraction,
                         unit_name, st.gflops_per_s(), peak);
  } else {
    v.text = fmt::format("overhead-bound: {:.1f} us per call reaches {:.0f}% of its roof", avg_us, 100 * v.fraction);
  }
  return v;
}

std::string NextStep(const OpStats& st, const Verdict& v, const std::string& phase) {
  const std::string& n = st.name;
  // gate_up_silu: gate and up in one GEMM with silu * up as its epilogue.
  const bool proj = n.find("_proj") != std::string::npos || n == "lm_head" || n.find("gate_up_silu") != std::string::npos;
  if (proj && v.bound == "memory" && phase == "prefill") {
    return "each weight byte serves only this prompt's rows: longer prompt chunks (or batched prompts) raise the "
           "FLOPs per byte until the matrix unit, not memory, is the limit";
  }
  if (proj && v.bound == "memory") {
    // Against the bandwidth read beside the run where there is one: on a shared
    // machine the best bandwidth ever seen may not have been there to take.
    if ((v.fraction_beside > 0 ? v.fraction_beside : v.fraction) >= 0.85) {
      return "at the bandwidth roof: only fewer bytes help (lower-precision or quantized weights)";
    }
    const bool fused = n.find("qkv_proj") != std::string::npos;  // already one region ("qkv_proj" holds "v_proj")
    if (!fused && (n.find("q_proj") != std::string::npos || n.find("k_proj") != std::string::npos ||
                   n.find("v_proj") != std::string::npos)) {
      return "fuse q/k/v into one GEMV (one pass over the activations, one parallel region) and keep more rows in flight";
    }
    if (n.find("gate_proj") != std::string::npos || n.find("up_proj") != std::string::npos) {
      return "fuse gate/up into one GEMV and apply silu*up in its epilogue";
    }
    return "better GEMV: more rows and accumulators in flight, prefetching, NUMA-aware row split";
  }
  if (proj && v.bound == "compute") {
    return phase == "prefill" ? "better GEMM: larger register tile, cache blocking, pack weights once per block"
                              : "batch more sequences so each weight byte feeds more FLOPs";
  }
  if (n.find("sdpa.fused") != std::string::npos) {
    // Already fused: no score round trip to remove. Far below its roof, the
    // time is in the short tile products and the vector work between them.
    const bool on_fma = st.unit_flops[static_cast<int>(ComputeUnit::kFma)] >= st.flops;
    if (v.fraction >= 0.5) return "a float16/bfloat16 KV cache halves the K/V bytes it reads";
    return on_fma ? "far below its roof: Q·Kᵀ is only head_dim deep, the softmax between the products is vector "
                    "work, and Vᵀ is rebuilt from the cache per call; a transposed V cache, and the products on a "
                    "matrix unit (a bfloat16 model's attention runs on AMX tiles)"
                  : "far below its roof: the tile products are short (Q·Kᵀ only head_dim deep) and the softmax "
                    "between them runs on the vector units; larger query blocks per K/V panel, and a bfloat16 KV "
                    "cache (no bf16 copies of K and V per call)";
  }
  if (n.find("sdpa") != std::string::npos) {
    return "attention reads the whole KV cache: a float16/bfloat16 KV cache halves its bytes; fusing scores, softmax "
           "and weighted sum (flash-decoding) avoids the score round trip";
  }
  if (n.find("kv_write") != std::string::npos) return "write K/V straight from the projections into the cache layout (remove the copy)";
  if (n.find("norm") != std::string::npos || n.find("residual") != std::string::npos || n.find("silu") != std::string::npos ||
      n.find("rope") != std::string::npos) {
    return "fuse into the neighbouring projection (norm before, residual/activation after): fewer passes and parallel regions";
  }
  if (n == "sampling") return "greedy sampling is one pass over the logits; fuse the argmax into lm_head if it matters";
  if (v.bound == "overhead") return "too short to reach a roof: fuse with neighbours or reduce thread hand-offs";
  return "reduce copies or fuse with neighbours";
}

}  // namespace

namespace {

// The CUDA part of the stats: GPU time per operator, copies, and how much of
// each phase's wall time the GPU was busy (the rest is launch and host time).
std::string FormatGpuStats(const ProfileSummary& s) {
  std::string out;
  for (const std::string& n : s.notes) out += "\n" + n;
  if (!s.notes.empty()) out += "\n";
  for (const GpuPhaseStats& g : s.gpu_phases) {
    double wall = 0;
    for (const PhaseStats& ph : s.phases) {
      if (ph.phase == g.phase) wall = ph.wall_ms;
    }
    out += fmt::format("\nCUDA {} (CUPTI): GPU busy {:.3f} ms of {:.3f} ms wall ({:.1f}%; the rest is launch overhead "
                       "and host time), {} kernels from CUDA graphs\n",
                       g.phase, g.busy_ms, wall, wall > 0 ? 100 * g.busy_ms / wall : 0, g.graph_kernels);
    out += fmt::format("{:<34}{:>9}{:>12}{:>8}{:>10}  {}\n", "Name", "Kernels", "CUDA ms", "CUDA %", "Avg us", "Kernel names");
    for (const GpuOpStats& st : g.ops) {
      out += fmt::format("{:<34}{:>9}{:>12.3f}{:>7.1f}%{:>10.2f}  {}\n", st.name, st.calls, st.gpu_ms,
                         g.busy_ms > 0 ? 100 * st.gpu_ms / g.busy_ms : 0, st.calls ? st.gpu_ms * 1e3 / st.calls : 0,
                         st.kernels);
    }
    for (const GpuOpStats& st : g.copies) {
      out += fmt::format("{:<34}{:>9}{:>12.3f}  {} bytes\n", st.name, st.calls, st.gpu_ms, st.bytes);
    }
  }
  return out;
}

}  // namespace

std::string FormatProfileStats(const ProfileSummary& s, const Calibration& cal, const std::string& header) {
  std::string out = header;
  out += fmt::format("Machine (calibrated, {}): read bandwidth {:.1f} GB/s, float32 FMA peak {:.1f} GFLOP/s, {}{} threads\n",
                     cal.source, cal.read_gbps, cal.fma_gflops,
                     (cal.amx_bf16_gflops > 0 ? fmt::format("AMX-BF16 peak {:.1f} GFLOP/s, ", cal.amx_bf16_gflops)
                                              : std::string()) +
                         (cal.bf16_dot_gflops > 0 ? fmt::format("AVX512-BF16 peak {:.1f} GFLOP/s, ", cal.bf16_dot_gflops)
                                                  : std::string()) +
                         (cal.int8_vnni_gops > 0 ? fmt::format("VNNI-INT8 peak {:.1f} GOP/s, ", cal.int8_vnni_gops)
                                                 : std::string()),
                     cal.threads);
  if (cal.ReadBesideRunGbps() > 0) {
    out += fmt::format("Read bandwidth beside this run (--roof-probe): {:.1f} GB/s before, {:.1f} after; memory-bound "
                       "verdicts give their share of the higher too\n",
                       cal.read_before_run_gbps, cal.read_after_run_gbps);
  }
  out += fmt::format("Recorded {} events ({} dropped).\n", s.events, s.dropped);
  for (const PhaseStats& ph : s.phases) {
    out += fmt::format("\n{0:=<120}\n{1} ({2} {3}, wall {4:.3f} ms; operator self times sum to {5:.1f}% of it)\n{0:=<120}\n",
                       "", ph.phase == "prefill" ? "PREFILL" : "DECODE", ph.steps,
                       ph.phase == "prefill" ? "prompt pass(es)" : "steps", ph.wall_ms,
                       ph.wall_ms > 0 ? 100 * ph.self_sum_ms / ph.wall_ms : 0);
    out += fmt::format("{:<34}{:>7}{:>11}{:>8}{:>11}{:>10}{:>10}{:>10}{:>9}{:>9}  {}\n", "Name", "Calls", "Self ms",
                       "Self %", "Total ms", "Avg us", "GFLOP", "GFLOP/s", "GB", "GB/s", "% of roof");
    for (const OpStats& st : ph.ops) {
      const Verdict v = Judge(st, cal);
      out += fmt::format("{:<34}{:>7}{:>11.3f}{:>7.1f}%{:>11.3f}{:>10.1f}{:>10.3f}{:>10.1f}{:>9.3f}{:>9.1f}  {:.0f}% {}\n",
                         st.name, st.calls, st.self_ms, ph.wall_ms > 0 ? 100 * st.self_ms / ph.wall_ms : 0, st.total_ms,
                         st.calls ? st.self_ms * 1e3 / st.calls : 0, st.flops / 1e9, st.gflops_per_s(), st.bytes / 1e9,
                         st.gbytes_per_s(), 100 * v.fraction, v.unit);
    }
    out += fmt::format("\nBy category ({}):\n", ph.phase);
    for (const OpStats& st : ph.categories) {
      out += fmt::format("  {:<16}{:>11.3f} ms {:>6.1f}%\n", st.name, st.self_ms,
                         ph.wall_ms > 0 ? 100 * st.self_ms / ph.wall_ms : 0);
    }
    out += fmt::format("\nPer layer ({}): self ms\n", ph.phase);
    for (const OpStats& st : ph.layers) out += fmt::format("  {:<12}{:>11.3f} ms\n", st.name, st.self_ms);
  }
  out += FormatGpuStats(s);
  out += "\nMemory (bytes, current / peak):\n";
  const MemoryLedger& ledger = MemoryLedger::Get();
  for (MemCategory c : {MemCategory::kWeights, MemCategory::kKvCache, MemCategory::kActivations, MemCategory::kOther}) {
    out += fmt::format("  {:<12}{:>16} / {:>16}\n", MemCategoryName(c), ledger.current(c), ledger.peak(c));
  }
  out += "\nBottlenecks (operators costing the most, all phases):\n";
  std::vector<std::pair<std::string, OpStats>> all;
  for (const PhaseStats& ph : s.phases) {
    for (const OpStats& st : ph.ops) {
      if (st.name != "layer (glue)") all.emplace_back(ph.phase, st);
    }
  }
  std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.second.self_ms > b.second.self_ms; });
  for (size_t i = 0; i < std::min<size_t>(5, all.size()); ++i) {
    const auto& [phase, st] = all[i];
    const Verdict v = Judge(st, cal);
    out += fmt::format("  {}. [{}] {} ({:.3f} ms self): {}.\n     Next: {}.\n", i + 1, phase, st.name, st.self_ms, v.text,
                       NextStep(st, v, phase));
  }
  return out;
}

std::string ProfileStatsJson(const ProfileSummary& s, const Calibration& cal) {
  auto table = [&](const std::vector<OpStats>& v) {
    nlohmann::json a = nlohmann::json::array();
    for (const OpStats& st : v) {
      const Verdict verdict = Judge(st, cal);
      a.push_back({{"name", st.name}, {"category", st.category}, {"calls", st.calls}, {"self_ms", st.self_ms},
                   {"total_ms", st.total_ms}, {"flops", st.flops}, {"bytes", st.bytes},
                   {"gflops_per_s", st.gflops_per_s()}, {"gbytes_per_s", st.gbytes_per_s()},
                   {"bound", verdict.bound}, {"fraction_of_roof", verdict.fraction}, {"roof", verdict.unit},
                   {"compute_unit", ComputeUnitName(MainUnit(st))}});
      if (verdict.fraction_beside > 0) a.back()["fraction_of_read_beside"] = verdict.fraction_beside;
    }
    return a;
  };
  nlohmann::json j;
  j["calibration"] = {{"read_gbps", cal.read_gbps}, {"fma_gflops", cal.fma_gflops},
                      {"amx_bf16_gflops", cal.amx_bf16_gflops}, {"int8_vnni_gops", cal.int8_vnni_gops},
                      {"bf16_dot_gflops", cal.bf16_dot_gflops}, {"threads", cal.threads},
                      {"source", cal.source}};
  if (cal.ReadBesideRunGbps() > 0) {
    j["calibration"]["read_before_run_gbps"] = cal.read_before_run_gbps;
    j["calibration"]["read_after_run_gbps"] = cal.read_after_run_gbps;
  }
  j["events"] = s.events;
  j["dropped"] = s.dropped;
  for (const PhaseStats& ph : s.phases) {
    j["phases"][ph.phase] = {{"wall_ms", ph.wall_ms}, {"steps", ph.steps}, {"self_sum_ms", ph.self_sum_ms},
                             {"operators", table(ph.ops)}, {"categories", table(ph.categories)},
                             {"layers", table(ph.layers)}};
  }
  for (const GpuPhaseStats& g : s.gpu_phases) {
    nlohmann::json ops = nlohmann::json::array(), copies = nlohmann::json::array();
    for (const GpuOpStats& st : g.ops) {
      ops.push_back({{"name", st.name}, {"kernels", st.calls}, {"gpu_ms", st.gpu_ms}, {"kernel_names", st.kernels}});
    }
    for (const GpuOpStats& st : g.copies) {
      copies.push_back({{"name", st.name}, {"count", st.calls}, {"gpu_ms", st.gpu_ms}, {"bytes", st.bytes}});
    }
    j["gpu"][g.phase] = {{"busy_ms", g.busy_ms}, {"graph_kernels", g.graph_kernels}, {"operators", ops},
                         {"copies", copies}};
  }
  if (!s.notes.empty()) j["notes"] = s.notes;
  return j.dump(2) + "\n";
}

std::string ChromeTraceJson(const Profiler& profiler, const std::string& process_name) {
  int64_t origin = INT64_MAX, last = 0;
  for (int w = 0; w < profiler.num_threads(); ++w) {
    for (const ProfileEvent& e : profiler.events(w)) {
      origin = std::min(origin, e.begin_ns);
      last = std::max(last, e.end_ns);
    }
  }
  for (const GpuActivity& a : profiler.gpu_activities()) {
    origin = std::min(origin, a.begin_ns);
    last = std::max(last, a.end_ns);
  }
  if (origin == INT64_MAX) origin = last = NowNs();
  auto us = [&](int64_t ns) { return (ns - origin) * 1e-3; };
  // Written by hand (not through a JSON DOM): a 100-step trace has ~10^5 events.
  std::string out = "{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n";
  out += fmt::format("{{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":1,\"tid\":0,\"args\":{{\"name\":\"{}\"}}}}",
                     process_name);
  for (int w = 0; w < profiler.num_threads(); ++w) {
    out += fmt::format(",\n{{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":{},\"args\":{{\"name\":\"{}\"}}}}", w,
                       w == 0 ? std::string("main (worker 0)") : "worker " + std::to_string(w));
    out += fmt::format(",\n{{\"name\":\"thread_sort_index\",\"ph\":\"M\",\"pid\":1,\"tid\":{},\"args\":{{\"sort_index\":{}}}}}", w, w);
  }
  for (int w = 0; w < profiler.num_threads(); ++w) {
    for (const ProfileEvent& e : profiler.events(w)) {
      const double dur = (e.end_ns - e.begin_ns) * 1e-3;
      out += fmt::format(",\n{{\"name\":\"{}\",\"cat\":\"{}\",\"ph\":\"X\",\"pid\":1,\"tid\":{},\"ts\":{:.3f},\"dur\":{:.3f}",
                         OpName(e.op, e.layer, e.step), GetOpInfo(e.op).category, w, us(e.begin_ns), dur);
      out += fmt::format(",\"args\":{{\"step\":{},\"layer\":{}", e.step, e.layer);
      if (!e.worker_span && (e.cost.flops || e.cost.bytes)) {
        out += fmt::format(",\"shape\":\"[{}, {}, {}]\",\"flops\":{},\"bytes\":{},\"GFLOP/s\":{:.3f},\"GB/s\":{:.3f}",
                           e.cost.m, e.cost.n, e.cost.k, e.cost.flops, e.cost.bytes,
                           dur > 0 ? e.cost.flops / (dur * 1e3) : 0, dur > 0 ? e.cost.bytes / (dur * 1e3) : 0);
      }
      if (e.worker_span) out += ",\"worker_share\":true";
      out += "}}";
    }
  }
  // GPU activity: process 2, one track per CUDA stream, below the CPU tracks.
  std::map<uint32_t, bool> streams;
  for (const GpuActivity& a : profiler.gpu_activities()) {
    if (streams.emplace(a.stream, true).second) {
      out += fmt::format(",\n{{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":2,\"tid\":{},\"args\":{{\"name\":\"CUDA stream {}\"}}}}",
                         a.stream, a.stream);
    }
    const std::string op = a.op == Op::kCount ? "" : OpName(a.op, a.layer, a.step);
    // Kernel names come from the driver: escaped as JSON strings.
    out += fmt::format(",\n{{\"name\":{},\"cat\":\"{}\",\"ph\":\"X\",\"pid\":2,\"tid\":{},\"ts\":{:.3f},\"dur\":{:.3f}"
                       ",\"args\":{{\"op\":\"{}\",\"step\":{},\"bytes\":{},\"cuda_graph\":{}}}}}",
                       nlohmann::json(a.name).dump(), a.kind == GpuActivity::kKernel ? "kernel" : "memory", a.stream, us(a.begin_ns),
                       (a.end_ns - a.begin_ns) * 1e-3, op, a.step, a.bytes, a.in_graph ? "true" : "false");
  }
  if (!streams.empty()) {
    out += ",\n{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":2,\"tid\":0,\"args\":{\"name\":\"GPU\"}}";
    out += ",\n{\"name\":\"process_sort_index\",\"ph\":\"M\",\"pid\":2,\"tid\":0,\"args\":{\"sort_index\":2}}";
  }
  // Memory counters: the state at the start of the recording, changes during it,
  // and the KV cache in use after each step.
  const auto timeline = MemoryLedger::Get().timeline();
  int64_t cur[static_cast<size_t>(MemCategory::kCount)] = {};
  auto emit_memory = [&](int64_t t) {
    out += fmt::format(",\n{{\"name\":\"memory (bytes)\",\"ph\":\"C\",\"pid\":1,\"tid\":0,\"ts\":{:.3f},\"args\":{{", us(t));
    for (size_t c = 0; c < static_cast<size_t>(MemCategory::kCount); ++c) {
      out += fmt::format("{}\"{}\":{}", c ? "," : "", MemCategoryName(static_cast<MemCategory>(c)), cur[c]);
    }
    out += "}}";
  };
  bool started = false;
  for (const auto& ch : timeline) {
    if (ch.time_ns > origin && !started) {
      emit_memory(origin);
      started = true;
    }
    cur[static_cast<size_t>(ch.category)] += ch.delta_bytes;
    if (started && ch.time_ns <= last) emit_memory(ch.time_ns);
  }
  if (!started) emit_memory(origin);
  emit_memory(last);
  for (const auto& c : profiler.counters()) {
    if (c.time_ns < origin || c.time_ns > last) continue;
    out += fmt::format(",\n{{\"name\":\"{}\",\"ph\":\"C\",\"pid\":1,\"tid\":0,\"ts\":{:.3f},\"args\":{{\"bytes\":{}}}}}",
                       c.name, us(c.time_ns), c.value);
  }
  out += "\n]}\n";
  return out;
}

Status WriteProfileOutputs(const Profiler& profiler, const Calibration& cal, const std::string& header,
                           OutputFiles* outputs, ProfileSummary* summary) {
  *summary = SummarizeProfile(profiler);
  const std::string trace = ChromeTraceJson(profiler, "llama-speedbench (CPU)");
  summary->trace_bytes = trace.size();
  LLM_RETURN_IF_ERROR(outputs->Add("profiler_trace.json", trace));
  LLM_RETURN_IF_ERROR(outputs->Add(
      "profiler_stats.txt",
      FormatProfileStats(*summary, cal, header + fmt::format("Trace: profiler_trace.json, {:.1f} MB\n", trace.size() / 1e6))));
  return outputs->Add("profiler_stats.json", ProfileStatsJson(*summary, cal));
}

}  // namespace llm
