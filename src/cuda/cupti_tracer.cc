#include "cuda/cupti_tracer.h"

#include <cupti.h>
#include <cxxabi.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>

#if defined(LLM_HAVE_NVTX)
#include <nvtx3/nvToolsExt.h>
#endif

namespace llm::cuda {

namespace {

constexpr size_t kBufferBytes = 8u << 20;
constexpr CUpti_ExternalCorrelationKind kOurKind = CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0;

// One CUPTI record, copied out of its buffer (CUPTI frees the names' storage
// with the context, so names are copied too).
struct RawRecord {
  GpuActivity::Kind kind;
  std::string name;
  uint64_t start, end, bytes;
  uint32_t stream, correlation;
  bool in_graph;
};

// CUPTI delivers buffers on its own thread, through free functions.
std::mutex g_mu;
std::vector<RawRecord> g_records;
std::map<uint32_t, uint64_t> g_scope_of;  // CUPTI correlation id -> our scope id

// A scope id packs (step, layer, op); 0 is never used.
uint64_t EncodeScope(Op op, int layer, int step) {
  return (static_cast<uint64_t>(step + 2) << 40) | (static_cast<uint64_t>(layer + 1) << 8) |
         static_cast<uint64_t>(op);
}
void DecodeScope(uint64_t id, GpuActivity* a) {
  a->op = static_cast<Op>(id & 0xff);
  a->layer = static_cast<int16_t>(static_cast<int>((id >> 8) & 0xffffffff) - 1);
  a->step = static_cast<int32_t>(static_cast<int64_t>(id >> 40) - 2);
}

// "void llm::cuda::(anonymous namespace)::GemvKernel<__half>(__half const*, ...)" -> "GemvKernel<__half>".
std::string ShortKernelName(const char* mangled) {
  if (mangled == nullptr) return "kernel";
  int status = 0;
  char* d = abi::__cxa_demangle(mangled, nullptr, nullptr, &status);
  std::string name = status == 0 && d ? d : mangled;
  std::free(d);
  if (const size_t paren = name.find('('); paren != std::string::npos) name.resize(paren);
  if (name.rfind("void ", 0) == 0) name = name.substr(5);
  // Drop namespaces before the kernel's own name (the last "::" outside template brackets).
  int depth = 0;
  size_t cut = 0;
  for (size_t i = 0; i + 1 < name.size(); ++i) {
    if (name[i] == '<') ++depth;
    if (name[i] == '>') --depth;
    if (depth == 0 && name[i] == ':' && name[i + 1] == ':') cut = i + 2;
  }
  return name.substr(cut);
}

const char* CopyKindName(uint8_t kind) {
  switch (kind) {
    case CUPTI_ACTIVITY_MEMCPY_KIND_HTOD: return "memcpy HtoD";
    case CUPTI_ACTIVITY_MEMCPY_KIND_DTOH: return "memcpy DtoH";
    case CUPTI_ACTIVITY_MEMCPY_KIND_DTOD: return "memcpy DtoD";
    case CUPTI_ACTIVITY_MEMCPY_KIND_HTOH: return "memcpy HtoH";
    case CUPTI_ACTIVITY_MEMCPY_KIND_PTOP: return "memcpy PtoP";
    default: return "memcpy";
  }
}

void CUPTIAPI BufferRequested(uint8_t** buffer, size_t* size, size_t* max_records) {
  *buffer = static_cast<uint8_t*>(std::aligned_alloc(8, kBufferBytes));
  *size = *buffer ? kBufferBytes : 0;
  *max_records = 0;
}

void CUPTIAPI BufferCompleted(CUcontext, uint32_t, uint8_t* buffer, size_t, size_t valid_size) {
  std::lock_guard<std::mutex> lock(g_mu);
  CUpti_Activity* record = nullptr;
  while (cuptiActivityGetNextRecord(buffer, valid_size, &record) == CUPTI_SUCCESS) {
    switch (record->kind) {
      case CUPTI_ACTIVITY_KIND_KERNEL:
      case CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL: {
        const auto* k = reinterpret_cast<const CUpti_ActivityKernel10*>(record);
        g_records.push_back({GpuActivity::kKernel, ShortKernelName(k->name), k->start, k->end, 0, k->streamId,
                             k->correlationId, k->graphId != 0});
        break;
      }
      case CUPTI_ACTIVITY_KIND_MEMCPY: {
        const auto* m = reinterpret_cast<const CUpti_ActivityMemcpy6*>(record);
        g_records.push_back({GpuActivity::kMemcpy, CopyKindName(m->copyKind), m->start, m->end, m->bytes,
                             m->streamId, m->correlationId, m->graphId != 0});
        break;
      }
      case CUPTI_ACTIVITY_KIND_MEMSET: {
        const auto* m = reinterpret_cast<const CUpti_ActivityMemset4*>(record);
        g_records.push_back({GpuActivity::kMemset, "memset", m->start, m->end, m->bytes, m->streamId,
                             m->correlationId, m->graphId != 0});
        break;
      }
      case CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION: {
        const auto* e = reinterpret_cast<const CUpti_ActivityExternalCorrelation*>(record);
        if (e->externalKind == kOurKind) g_scope_of[e->correlationId] = e->externalId;
        break;
      }
      default:
        break;
    }
  }
  std::free(buffer);
}

const CUpti_ActivityKind kKinds[] = {CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL, CUPTI_ACTIVITY_KIND_MEMCPY,
                                     CUPTI_ACTIVITY_KIND_MEMSET, CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION};

Status CuptiError(const char* what, CUptiResult r) {
  const char* text = "unknown error";
  cuptiGetResultString(r, &text);
  return Internal(std::string("CUPTI: ") + what + ": " + text);
}

}  // namespace

Result<std::unique_ptr<CuptiTracer>> CuptiTracer::Start() {
  static const CUptiResult registered = cuptiActivityRegisterCallbacks(BufferRequested, BufferCompleted);  // once
  if (registered != CUPTI_SUCCESS) return CuptiError("registering activity buffers", registered);
  for (CUpti_ActivityKind kind : kKinds) {
    if (CUptiResult r = cuptiActivityEnable(kind); r != CUPTI_SUCCESS) return CuptiError("enabling activity", r);
  }
  std::unique_ptr<CuptiTracer> t(new CuptiTracer());
  uint64_t gpu_now = 0;
  cuptiGetTimestamp(&gpu_now);
  t->host_minus_gpu_ns_ = NowNs() - static_cast<int64_t>(gpu_now);
  return t;
}

CuptiTracer::~CuptiTracer() {
  for (CUpti_ActivityKind kind : kKinds) cuptiActivityDisable(kind);
  cuptiActivityFlushAll(1);
  std::lock_guard<std::mutex> lock(g_mu);
  g_records.clear();
  g_scope_of.clear();
}

void CuptiTracer::OnBegin(Op op, int layer, int step) {
  cuptiActivityPushExternalCorrelationId(kOurKind, EncodeScope(op, layer, step));
#if defined(LLM_HAVE_NVTX)
  nvtxRangePushA(OpName(op, layer, step).c_str());
#endif
}

void CuptiTracer::OnEnd() {
  uint64_t last = 0;
  cuptiActivityPopExternalCorrelationId(kOurKind, &last);
#if defined(LLM_HAVE_NVTX)
  nvtxRangePop();
#endif
}

std::vector<GpuActivity> CuptiTracer::Flush(const std::vector<std::pair<Op, int>>& graph_ops) {
  cuptiActivityFlushAll(1);
  std::vector<RawRecord> records;
  std::map<uint32_t, uint64_t> scope_of;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    records.swap(g_records);
    scope_of.swap(g_scope_of);
  }
  std::sort(records.begin(), records.end(), [](const RawRecord& a, const RawRecord& b) { return a.start < b.start; });
  // Kernels of one graph replay share its launch's correlation id and run in
  // capture order (the decode graph is a chain): the i-th is graph_ops[i].
  std::map<uint32_t, size_t> next_in_graph;
  std::vector<GpuActivity> out;
  out.reserve(records.size());
  for (const RawRecord& r : records) {
    GpuActivity a;
    a.kind = r.kind;
    a.name = r.name;
    a.begin_ns = static_cast<int64_t>(r.start) + host_minus_gpu_ns_;
    a.end_ns = static_cast<int64_t>(r.end) + host_minus_gpu_ns_;
    a.bytes = static_cast<int64_t>(r.bytes);
    a.stream = r.stream;
    a.in_graph = r.in_graph;
    if (auto it = scope_of.find(r.correlation); it != scope_of.end()) DecodeScope(it->second, &a);
    if (r.in_graph && r.kind == GpuActivity::kKernel) {
      const size_t i = next_in_graph[r.correlation]++;
      if (i < graph_ops.size()) {
        a.op = graph_ops[i].first;
        a.layer = static_cast<int16_t>(graph_ops[i].second);
      }
    }
    out.push_back(std::move(a));
  }
  return out;
}

}  // namespace llm::cuda
