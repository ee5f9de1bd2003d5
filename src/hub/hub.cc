#include "hub/hub.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <functional>
#include <thread>

#include "core/mapped_file.h"
#include "io/safetensors.h"

namespace llm {

namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// --- HTTP through libcurl -----------------------------------------------------

struct Http {
  long status = 0;
  CURLcode code = CURLE_OK;
  std::string body;     // for small responses; for a file download, the start of an error answer
  std::string error;    // curl's message
  bool write_failed = false;
  int write_errno = 0;
  bool oversize = false;  // the body went past the announced size (aborted)
};

constexpr size_t kMaxErrorBody = 4096;

// Where a response body goes. For a file download only the body of a 200 or
// 206 answer reaches the file (an error page never does), never past `limit`
// bytes in all.
struct Sink {
  std::string* body = nullptr;
  FILE* file = nullptr;
  Http* http = nullptr;
  CURL* curl = nullptr;
  int64_t offset = 0;        // bytes already in the file (the Range asked for)
  int64_t limit = -1;        // most bytes the file may hold; -1 = no limit
  int64_t written = 0;       // bytes of this response written
  bool started = false;      // the first body byte of the final response was seen
};

size_t WriteCallback(char* data, size_t size, size_t n, void* user) {
  Sink* sink = static_cast<Sink*>(user);
  const size_t bytes = size * n;
  if (sink->file != nullptr) {
    long status = 0;
    curl_easy_getinfo(sink->curl, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200 && status != 206) {
      // An error answer (500, 403, ...): kept for the message, never written.
      if (sink->body->size() < kMaxErrorBody) sink->body->append(data, std::min(bytes, kMaxErrorBody - sink->body->size()));
      return bytes;
    }
    if (!sink->started) {
      sink->started = true;
      if (status == 200 && sink->offset > 0) {
        // The server ignored the Range header and sends everything: start over.
        std::fflush(sink->file);
        if (::ftruncate(::fileno(sink->file), 0) != 0) {
          sink->http->write_failed = true;
          sink->http->write_errno = errno;
          return 0;
        }
        sink->offset = 0;
      }
    }
    if (sink->limit >= 0 && sink->offset + sink->written + static_cast<int64_t>(bytes) > sink->limit) {
      sink->http->oversize = true;
      return 0;  // aborts the transfer with CURLE_WRITE_ERROR
    }
    if (std::fwrite(data, 1, bytes, sink->file) != bytes) {
      sink->http->write_failed = true;
      sink->http->write_errno = errno;
      return 0;  // aborts the transfer with CURLE_WRITE_ERROR
    }
    sink->written += static_cast<int64_t>(bytes);
    return bytes;
  }
  if (sink->body->size() + bytes > (64u << 20)) {
    sink->http->oversize = true;  // no API answer is this large
    return 0;
  }
  sink->body->append(data, bytes);
  return bytes;
}

struct Progress {
  std::string file;
  int64_t offset = 0;
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point last;
};

int ProgressCallback(void* user, curl_off_t total, curl_off_t now, curl_off_t, curl_off_t) {
  Progress* p = static_cast<Progress*>(user);
  const auto t = std::chrono::steady_clock::now();
  if (t - p->last < std::chrono::milliseconds(200)) return 0;
  p->last = t;
  const double s = std::chrono::duration<double>(t - p->start).count();
  const double rate = s > 0 ? now / s : 0;
  const double done = static_cast<double>(p->offset + now), all = static_cast<double>(p->offset + total);
  std::fprintf(stderr, "\r%s  %.1f/%.1f MB  %.1f MB/s  ETA %.0fs   ", p->file.c_str(), done / 1e6, all / 1e6,
               rate / 1e6, rate > 0 ? (all - done) / rate : 0.0);
  return 0;
}

// GET url; a file download appends to `file` (which holds range_from bytes)
// and never lets it grow past `limit` bytes (-1: no limit).
Http Request(const std::string& url, const HubOptions& o, FILE* file, int64_t range_from, Progress* progress,
             int64_t limit = -1) {
  static std::once_flag init;
  std::call_once(init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  Http h;
  CURL* c = curl_easy_init();
  Sink sink;
  sink.body = &h.body;
  sink.file = file;
  sink.http = &h;
  sink.curl = c;
  sink.offset = range_from;
  sink.limit = limit;
  char err[CURL_ERROR_SIZE] = {0};
  curl_slist* headers = nullptr;
  // The token goes only to the endpoint's host: libcurl drops a custom
  // Authorization header when a redirect leaves the host (CDN downloads).
  if (!o.token.empty()) headers = curl_slist_append(headers, ("Authorization: Bearer " + o.token).c_str());
  headers = curl_slist_append(headers, "User-Agent: llama-speedbench/1 (libcurl)");
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, WriteCallback);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, err);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, o.timeout_s);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);  // < 1 byte/s for timeout_s seconds = stalled
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, o.timeout_s);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  if (range_from > 0) curl_easy_setopt(c, CURLOPT_RESUME_FROM_LARGE, static_cast<curl_off_t>(range_from));
  if (progress != nullptr) {
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, ProgressCallback);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, progress);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  }
  h.code = curl_easy_perform(c);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &h.status);
  h.error = err[0] ? err : curl_easy_strerror(h.code);
  curl_slist_free_all(headers);
  curl_easy_cleanup(c);
  return h;
}

bool Retryable(const Http& h) {
  if (h.write_failed || h.oversize) return false;
  switch (h.code) {
    case CURLE_OK: return h.status >= 500 || h.status == 429;
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_SSL_CONNECT_ERROR:
      return true;
    default: return false;
  }
}

// One line naming what failed and why, for a request that will not be retried.
Status Explain(const Http& h, const std::string& what, const std::string& url, const std::string& repo_id) {
  if (h.write_failed) {
    return IoError(what + ": cannot write to the cache (" + std::strerror(h.write_errno) +
                   "); free disk space or set HF_HUB_CACHE to a writable place");
  }
  if (h.oversize) return DataLoss(what + ": " + url + " sent more bytes than announced (stopped)");
  if (h.code == CURLE_COULDNT_RESOLVE_HOST) {
    return IoError(what + ": DNS failure resolving the host of " + url +
                   " (no network? set HF_HUB_OFFLINE=1 to use the cache only)");
  }
  if (h.code != CURLE_OK) return IoError(what + ": " + url + ": " + h.error + " (no network, or the hub is unreachable)");
  if (h.status == 401 || h.status == 403) {
    return InvalidArgument(what + ": " + url + " answered " + std::to_string(h.status) +
                           ": the model is gated or private; accept its licence on the model's page (https://huggingface.co/" +
                           repo_id + ") and log in (HF_TOKEN=... or huggingface-cli login)");
  }
  if (h.status == 404) return NotFound(what + ": " + url + " answered 404: no such repository, revision or file");
  return IoError(what + ": " + url + " answered HTTP " + std::to_string(h.status));
}

// Runs `attempt` until it succeeds, fails for good, or runs out of attempts,
// sleeping backoff_s * 2^i in between.
template <class F>
Http WithRetries(const HubOptions& o, F attempt) {
  Http h;
  double wait = o.backoff_s;
  for (int i = 0; i < o.max_attempts; ++i) {
    h = attempt();
    if (h.code == CURLE_OK && h.status >= 200 && h.status < 300) return h;
    if (!Retryable(h) || i + 1 == o.max_attempts) return h;
    std::this_thread::sleep_for(std::chrono::duration<double>(wait));
    wait *= 2;
  }
  return h;
}

using RepoFile = HubFile;

bool IsHex(const std::string& s, size_t n) {
  if (s.size() != n) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// The value as it can be shown on one line: control characters and bytes
// past ASCII as \xNN.
std::string Printable(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c < 0x20 || c >= 0x7f) {
      char b[8];
      std::snprintf(b, sizeof(b), "\\x%02x", c);
      out += b;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

bool HasControlChars(const std::string& s) {
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) return true;
  }
  return false;
}

// Hex digest of prefix + the file's contents.
Result<std::string> DigestOfFile(const std::string& path, const EVP_MD* md_type, const std::string& prefix) {
  LLM_ASSIGN_OR_RETURN(const int fd, OpenInputFile(path));
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, md_type, nullptr);
  EVP_DigestUpdate(ctx, prefix.data(), prefix.size());
  std::vector<char> buf(1 << 20);
  for (;;) {
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      EVP_MD_CTX_free(ctx);
      return IoError(path + ": read failed: " + std::strerror(err));
    }
    EVP_DigestUpdate(ctx, buf.data(), static_cast<size_t>(n));
  }
  ::close(fd);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx, md, &len);
  EVP_MD_CTX_free(ctx);
  std::string hex;
  char b[3];
  for (unsigned int i = 0; i < len; ++i) {
    std::snprintf(b, sizeof(b), "%02x", md[i]);
    hex += b;
  }
  return hex;
}

// Holds an flock for the lifetime of the object (as huggingface_hub's FileLock).
class FileLock {
 public:
  explicit FileLock(const std::string& path) {
    fd_ = ::open(path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
    if (fd_ >= 0) ::flock(fd_, LOCK_EX);
  }
  ~FileLock() {
    if (fd_ >= 0) {
      ::flock(fd_, LOCK_UN);
      ::close(fd_);
    }
  }
  bool ok() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

Status DownloadBlob(const std::string& url, const RepoFile& f, const std::string& blob, const HubOptions& o,
                    const std::string& repo_id) {
  const std::string partial = blob + ".incomplete";
  Status last = OkStatus();
  double wait = o.backoff_s;
  for (int verify_attempt = 0; verify_attempt < o.max_attempts; ++verify_attempt) {
    Progress progress;
    progress.file = f.name;
    Http h = WithRetries(o, [&] {
      int64_t have = std::max<int64_t>(0, FileSize(partial));
      if (!IsRegularFile(partial) || (f.size >= 0 && have > f.size)) {  // not a file, or longer than announced
        std::remove(partial.c_str());
        have = 0;
      }
      FILE* out = std::fopen(partial.c_str(), have > 0 ? "ab" : "wb");
      if (out == nullptr) {
        Http e;
        e.write_failed = true;
        e.write_errno = errno;
        return e;
      }
      progress.offset = have;
      Http r = Request(url, o, out, have, o.progress ? &progress : nullptr, f.size);
      if (std::fclose(out) != 0 && !r.write_failed) {
        r.write_failed = true;
        r.write_errno = errno;
      }
      // Only a 200/206 body is ever in the file; after any other answer (an
      // error that is retried or ends the run) nothing is kept to resume from.
      const bool http_error = r.status != 0 && r.status != 200 && r.status != 206;
      if (http_error || r.oversize || r.code == CURLE_RANGE_ERROR) std::remove(partial.c_str());
      return r;
    });
    if (o.progress) std::fprintf(stderr, "\r%*s\r", 80, "");
    if (!(h.code == CURLE_OK && h.status >= 200 && h.status < 300) && !h.oversize) {
      return Explain(h, f.name, url, repo_id);  // a dropped connection keeps what arrived, to resume from
    }
    // Verify before the file can enter the cache.
    const int64_t got = FileSize(partial);
    if (h.oversize) {
      last = Explain(h, f.name, url, repo_id);
    } else if (f.size >= 0 && got != f.size) {
      last = DataLoss(f.name + ": downloaded " + std::to_string(got) + " bytes, the hub announced " +
                      std::to_string(f.size) + " (" + url + ")");
    } else if (!f.sha256.empty()) {
      LLM_ASSIGN_OR_RETURN(std::string sha, Sha256OfFile(partial));
      if (sha != f.sha256) {
        last = DataLoss(f.name + ": SHA-256 " + sha + " does not match the hub's " + f.sha256 + " (" + url + ")");
      }
    } else {
      LLM_ASSIGN_OR_RETURN(std::string blob_id, GitBlobIdOfFile(partial));
      if (blob_id != f.etag) {
        last = DataLoss(f.name + ": git blob id " + blob_id + " does not match the hub's " + f.etag + " (" + url + ")");
      }
    }
    if (last.ok()) {
      if (std::rename(partial.c_str(), blob.c_str()) != 0) {
        return IoError(blob + ": cannot move the verified download into place: " + std::strerror(errno));
      }
      return OkStatus();
    }
    std::remove(partial.c_str());  // a corrupt file never enters the cache
    if (verify_attempt + 1 < o.max_attempts) {
      std::this_thread::sleep_for(std::chrono::duration<double>(wait));
      wait *= 2;
      last = OkStatus();
    }
  }
  return last;
}

// A cached snapshot is usable when it has config.json and all its weights
// (an interrupted download by another tool can leave only some files).
bool SnapshotComplete(const std::string& dir) {
  if (!IsRegularFile(dir + "/config.json")) return false;
  const std::string index = dir + "/model.safetensors.index.json";
  if (!PathExists(index)) return PathExists(dir + "/model.safetensors");
  auto shards = ReadSafetensorsIndex(index);
  if (!shards.ok()) return false;
  for (const std::string& f : shards.value()) {
    if (!PathExists(dir + "/" + f)) return false;
  }
  return true;
}

}  // namespace

HubOptions HubOptionsFromEnvironment() {
  HubOptions o;
  if (!Env("HF_ENDPOINT").empty()) o.endpoint = Trim(Env("HF_ENDPOINT"));
  while (!o.endpoint.empty() && o.endpoint.back() == '/') o.endpoint.pop_back();
  const std::string home = Env("HOME");
  const std::string hf_home = !Env("HF_HOME").empty() ? Env("HF_HOME") : home + "/.cache/huggingface";
  o.cache_dir = !Env("HF_HUB_CACHE").empty() ? Env("HF_HUB_CACHE") : hf_home + "/hub";
  o.token = Env("HF_TOKEN");
  if (o.token.empty()) {
    auto t = ReadTextFile(hf_home + "/token");  // written by `huggingface-cli login`
    if (t.ok()) o.token = Trim(t.value());
  }
  const std::string off = Env("HF_HUB_OFFLINE");
  o.offline = off == "1" || off == "true" || off == "TRUE" || off == "yes";
  if (!Env("HF_HUB_DOWNLOAD_TIMEOUT").empty()) o.timeout_s = std::max(1L, std::atol(Env("HF_HUB_DOWNLOAD_TIMEOUT").c_str()));
  o.progress = ::isatty(STDERR_FILENO);
  return o;
}

std::vector<std::string> FilesToDownload(const std::vector<std::string>& files) {
  static const char* kWanted[] = {"config.json", "generation_config.json", "tokenizer.json", "tokenizer.model",
                                  "tokenizer_config.json", "special_tokens_map.json", "model.safetensors.index.json"};
  std::vector<std::string> out;
  for (const std::string& f : files) {
    if (f.find('/') != std::string::npos) continue;  // sub-folders (original/, onnx/...) are not needed
    bool want = EndsWith(f, ".safetensors");
    for (const char* w : kWanted) want = want || f == w;
    if (want) out.push_back(f);
  }
  return out;
}

Result<std::string> Sha256OfFile(const std::string& path) { return DigestOfFile(path, EVP_sha256(), ""); }

Result<std::string> GitBlobIdOfFile(const std::string& path) {
  const int64_t size = FileSize(path);
  if (size < 0) return NotFound(path + ": file not found");
  return DigestOfFile(path, EVP_sha1(), "blob " + std::to_string(size) + std::string(1, '\0'));
}

bool IsCommitHash(const std::string& s) { return IsHex(s, 40); }

Status CheckRepoId(const std::string& repo_id) {
  const size_t slash = repo_id.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == repo_id.size() || HasControlChars(repo_id) ||
      repo_id.find("..") != std::string::npos || repo_id.find('/', slash + 1) != std::string::npos ||
      repo_id.find('\\') != std::string::npos || repo_id[0] == '.' || repo_id[slash + 1] == '.') {
    return InvalidArgument("--model-name '" + Printable(repo_id) + "' must look like ORG/NAME");
  }
  return OkStatus();
}

Status CheckRevision(const std::string& revision) {
  auto bad = [&](const std::string& why) {
    return InvalidArgument("--revision '" + Printable(revision) + "' " + why +
                           " (a branch or tag name, or a 40-hex commit id)");
  };
  if (revision.empty()) return bad("is empty");
  if (revision.size() > 255) return bad("is too long");
  if (HasControlChars(revision)) return bad("contains control characters");
  if (revision.find('\\') != std::string::npos) return bad("contains a backslash");
  // Segments as a path in refs/ and snapshots/: none may leave the directory.
  for (size_t a = 0;;) {
    const size_t b = revision.find('/', a);
    const std::string seg = revision.substr(a, b == std::string::npos ? std::string::npos : b - a);
    if (seg.empty() || seg == "." || seg == "..") return bad("has an empty, '.' or '..' path segment");
    if (b == std::string::npos) break;
    a = b + 1;
  }
  return OkStatus();
}

Result<HubRevision> ParseRevisionAnswer(const std::string& body, const std::string& source) {
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("sha") || !j["sha"].is_string() || !j.contains("siblings") ||
      !j["siblings"].is_array()) {
    return DataLoss(source + ": the hub's answer is not a model description (no 'sha' and 'siblings')");
  }
  HubRevision r;
  r.commit = j["sha"].get<std::string>();
  if (!IsCommitHash(r.commit)) return DataLoss(source + ": bad commit id '" + Printable(r.commit) + "'");
  for (const auto& s : j["siblings"]) {
    if (!s.is_object() || !s.contains("rfilename") || !s["rfilename"].is_string()) continue;
    HubFile f;
    f.name = s["rfilename"].get<std::string>();
    if (s.contains("size") && s["size"].is_number_integer()) f.size = s["size"].get<int64_t>();
    if (s.contains("blobId") && s["blobId"].is_string()) f.etag = s["blobId"].get<std::string>();
    if (s.contains("lfs") && s["lfs"].is_object()) {
      const auto& lfs = s["lfs"];
      if (lfs.contains("sha256") && lfs["sha256"].is_string()) f.sha256 = lfs["sha256"].get<std::string>();
      if (lfs.contains("size") && lfs["size"].is_number_integer()) f.size = lfs["size"].get<int64_t>();
      if (!f.sha256.empty()) f.etag = f.sha256;
    }
    if (f.size < 0) f.size = -1;
    r.files.push_back(f);
  }
  return r;
}

Result<std::string> ResolveHubModel(const std::string& repo_id, const std::string& revision, const HubOptions& o) {
  LLM_RETURN_IF_ERROR(CheckRepoId(repo_id));
  LLM_RETURN_IF_ERROR(CheckRevision(revision));
  const size_t slash = repo_id.find('/');
  const std::string folder = "models--" + repo_id.substr(0, slash) + "--" + repo_id.substr(slash + 1);
  const std::string repo_dir = o.cache_dir + "/" + folder;
  // 1. The cache: refs/<revision> (or a commit) with a snapshot holding config.json.
  // What a ref file holds is used as a path: it must be a commit id.
  std::string commit = revision;
  const std::string ref_file = repo_dir + "/refs/" + revision;
  bool bad_ref = false;
  if (auto ref = ReadTextFile(ref_file); ref.ok()) {
    if (IsCommitHash(Trim(ref.value()))) commit = Trim(ref.value());
    else bad_ref = true;
  } else if (ref.status().code() != StatusCode::kNotFound) {
    bad_ref = true;
  }
  if (bad_ref && o.offline) {
    return DataLoss(ref_file + ": not a commit id (40 hex digits); the cache is damaged: delete that file and "
                    "download again with network");
  }
  const std::string cached = repo_dir + "/snapshots/" + commit;
  if (!bad_ref && SnapshotComplete(cached)) return cached;
  if (o.offline) {
    return NotFound(repo_id + " (revision " + revision + ") is not in the Hugging Face cache at " + o.cache_dir +
                    " and HF_HUB_OFFLINE is set; download it once with network, or give --model-path");
  }
  // 2. The hub: file list and commit of the revision.
  char* escaped = curl_easy_escape(nullptr, revision.c_str(), static_cast<int>(revision.size()));
  const std::string api = o.endpoint + "/api/models/" + repo_id + "/revision/" + (escaped ? escaped : "") + "?blobs=true";
  curl_free(escaped);
  Http h = WithRetries(o, [&] {
    Http r = Request(api, o, nullptr, 0, nullptr);
    return r;
  });
  if (!(h.code == CURLE_OK && h.status >= 200 && h.status < 300)) return Explain(h, repo_id + " file list", api, repo_id);
  LLM_ASSIGN_OR_RETURN(HubRevision listing, ParseRevisionAnswer(h.body, api));
  commit = listing.commit;
  std::vector<std::string> names;
  const std::vector<RepoFile>& files = listing.files;
  for (const RepoFile& f : files) names.push_back(f.name);
  const std::vector<std::string> wanted = FilesToDownload(names);
  bool has_weights = false;
  for (const auto& w : wanted) has_weights = has_weights || EndsWith(w, ".safetensors");
  if (!has_weights) {
    return Unimplemented(repo_id + ": the repository has no .safetensors weights (only .bin/.pth/.gguf are not loaded)");
  }
  const std::string snapshot = repo_dir + "/snapshots/" + commit;
  LLM_RETURN_IF_ERROR(MakeDirectories(repo_dir + "/blobs"));
  LLM_RETURN_IF_ERROR(MakeDirectories(snapshot));
  LLM_RETURN_IF_ERROR(MakeDirectories(o.cache_dir + "/.locks/" + folder));
  for (const RepoFile& f : files) {
    if (std::find(wanted.begin(), wanted.end(), f.name) == wanted.end()) continue;
    // The blob id names a file in blobs/ and is what the download is checked
    // against: an LFS SHA-256, else a git blob id (SHA-1); and a size to stop at.
    if (!(f.sha256.empty() ? IsHex(f.etag, 40) : IsHex(f.sha256, 64))) {
      return DataLoss(api + ": no usable blob id for " + f.name + " (expected a git SHA-1 or an LFS SHA-256)");
    }
    if (f.size < 0) return DataLoss(api + ": no size for " + f.name);
    const std::string blob = repo_dir + "/blobs/" + f.etag;
    const std::string link = snapshot + "/" + f.name;
    {
      FileLock lock(o.cache_dir + "/.locks/" + folder + "/" + f.etag + ".lock");
      if (!lock.ok()) return IoError(o.cache_dir + "/.locks: cannot create a lock file (is the cache writable?)");
      if (!PathExists(blob)) {
        const std::string url = o.endpoint + "/" + repo_id + "/resolve/" + commit + "/" + f.name;
        LLM_RETURN_IF_ERROR(DownloadBlob(url, f, blob, o, repo_id));
      }
    }
    // Relative symlink, as huggingface_hub makes it; made under a unique name
    // and renamed over the final one, so concurrent runs never see it missing.
    const std::string tmp_link = link + ".tmp." + std::to_string(::getpid()) + "." +
                                 std::to_string(std::hash<std::thread::id>()(std::this_thread::get_id()));
    std::remove(tmp_link.c_str());
    if (::symlink(("../../blobs/" + f.etag).c_str(), tmp_link.c_str()) != 0 ||
        std::rename(tmp_link.c_str(), link.c_str()) != 0) {
      std::remove(tmp_link.c_str());
      return IoError(link + ": cannot create symlink: " + std::strerror(errno));
    }
  }
  if (revision != commit) {
    const std::string ref_path = repo_dir + "/refs/" + revision;
    LLM_RETURN_IF_ERROR(MakeDirectories(ref_path.substr(0, ref_path.rfind('/'))));
    const std::string tmp = ref_path + ".tmp." + std::to_string(::getpid()) + "." +
                            std::to_string(std::hash<std::thread::id>()(std::this_thread::get_id()));
    {
      std::ofstream ref(tmp, std::ios::trunc);
      ref << commit;
      if (!ref) return IoError(ref_path + ": cannot write");
    }
    if (std::rename(tmp.c_str(), ref_path.c_str()) != 0) return IoError(ref_path + ": cannot write");
  }
  return snapshot;
}

}  // namespace llm
