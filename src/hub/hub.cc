#include "hub/hub.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

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
  std::string body;     // for small responses
  std::string error;    // curl's message
  bool write_failed = false;
  int write_errno = 0;
};

struct Sink {
  std::string* body = nullptr;
  FILE* file = nullptr;
  Http* http = nullptr;
  long status_seen = 0;
};

size_t WriteCallback(char* data, size_t size, size_t n, void* user) {
  Sink* sink = static_cast<Sink*>(user);
  const size_t bytes = size * n;
  if (sink->file != nullptr) {
    if (std::fwrite(data, 1, bytes, sink->file) != bytes) {
      sink->http->write_failed = true;
      sink->http->write_errno = errno;
      return 0;  // aborts the transfer with CURLE_WRITE_ERROR
    }
    return bytes;
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

Http Request(const std::string& url, const HubOptions& o, FILE* file, int64_t range_from, Progress* progress) {
  static std::once_flag init;
  std::call_once(init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  Http h;
  CURL* c = curl_easy_init();
  Sink sink{&h.body, file, &h};
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
  if (h.write_failed) return false;
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

struct RepoFile {
  std::string name;
  std::string etag;    // blob name: LFS sha256, else git blob id
  int64_t size = -1;
  std::string sha256;  // LFS files only
};

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
      if (f.size >= 0 && have > f.size) have = 0;  // longer than announced: start over
      FILE* out = std::fopen(partial.c_str(), have > 0 ? "ab" : "wb");
      if (out == nullptr) {
        Http e;
        e.write_failed = true;
        e.write_errno = errno;
        return e;
      }
      progress.offset = have;
      Http r = Request(url, o, out, have, o.progress ? &progress : nullptr);
      std::fclose(out);
      if (r.code == CURLE_OK && r.status == 200 && have > 0) {
        // The server ignored the Range header and sent everything: keep only that.
        r.code = CURLE_PARTIAL_FILE;
        ::truncate(partial.c_str(), 0);
      }
      if (r.code == CURLE_RANGE_ERROR || r.status == 416) ::truncate(partial.c_str(), 0);
      return r;
    });
    if (o.progress) std::fprintf(stderr, "\r%*s\r", 80, "");
    if (!(h.code == CURLE_OK && h.status >= 200 && h.status < 300)) return Explain(h, f.name, url, repo_id);
    // Verify before the file can enter the cache.
    const int64_t got = FileSize(partial);
    if (f.size >= 0 && got != f.size) {
      last = DataLoss(f.name + ": downloaded " + std::to_string(got) + " bytes, the hub announced " +
                      std::to_string(f.size) + " (" + url + ")");
    } else if (!f.sha256.empty()) {
      LLM_ASSIGN_OR_RETURN(std::string sha, Sha256OfFile(partial));
      if (sha != f.sha256) {
        last = DataLoss(f.name + ": SHA-256 " + sha + " does not match the hub's " + f.sha256 + " (" + url + ")");
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

Result<std::string> Sha256OfFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return IoError(path + ": cannot read");
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), buf.size());
    EVP_DigestUpdate(ctx, buf.data(), static_cast<size_t>(in.gcount()));
  }
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

Result<std::string> ResolveHubModel(const std::string& repo_id, const std::string& revision, const HubOptions& o) {
  const size_t slash = repo_id.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 == repo_id.size() ||
      repo_id.find("..") != std::string::npos || repo_id.find('/', slash + 1) != std::string::npos) {
    return InvalidArgument("--model-name '" + repo_id + "' must look like ORG/NAME");
  }
  const std::string folder = "models--" + repo_id.substr(0, slash) + "--" + repo_id.substr(slash + 1);
  const std::string repo_dir = o.cache_dir + "/" + folder;
  // 1. The cache: refs/<revision> (or a commit) with a snapshot holding config.json.
  std::string commit = revision;
  if (auto ref = ReadTextFile(repo_dir + "/refs/" + revision); ref.ok()) commit = Trim(ref.value());
  const std::string cached = repo_dir + "/snapshots/" + commit;
  if (SnapshotComplete(cached)) return cached;
  if (o.offline) {
    return NotFound(repo_id + " (revision " + revision + ") is not in the Hugging Face cache at " + o.cache_dir +
                    " and HF_HUB_OFFLINE is set; download it once with network, or give --model-path");
  }
  // 2. The hub: file list and commit of the revision.
  const std::string api = o.endpoint + "/api/models/" + repo_id + "/revision/" + revision + "?blobs=true";
  Http h = WithRetries(o, [&] {
    Http r = Request(api, o, nullptr, 0, nullptr);
    return r;
  });
  if (!(h.code == CURLE_OK && h.status >= 200 && h.status < 300)) return Explain(h, repo_id + " file list", api, repo_id);
  auto j = nlohmann::json::parse(h.body, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("sha") || !j["sha"].is_string() || !j.contains("siblings") ||
      !j["siblings"].is_array()) {
    return DataLoss(api + ": the hub's answer is not a model description (no 'sha' and 'siblings')");
  }
  commit = j["sha"].get<std::string>();
  if (commit.empty() || commit.find('/') != std::string::npos || commit.find("..") != std::string::npos) {
    return DataLoss(api + ": bad commit id '" + commit + "'");
  }
  std::vector<std::string> names;
  std::vector<RepoFile> files;
  for (const auto& s : j["siblings"]) {
    if (!s.is_object() || !s.contains("rfilename") || !s["rfilename"].is_string()) continue;
    RepoFile f;
    f.name = s["rfilename"].get<std::string>();
    if (s.contains("size") && s["size"].is_number_integer()) f.size = s["size"].get<int64_t>();
    if (s.contains("blobId") && s["blobId"].is_string()) f.etag = s["blobId"].get<std::string>();
    if (s.contains("lfs") && s["lfs"].is_object()) {
      f.sha256 = s["lfs"].value("sha256", "");
      if (s["lfs"].contains("size") && s["lfs"]["size"].is_number_integer()) f.size = s["lfs"]["size"].get<int64_t>();
      if (!f.sha256.empty()) f.etag = f.sha256;
    }
    names.push_back(f.name);
    files.push_back(f);
  }
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
    if (f.etag.empty() || f.etag.find('/') != std::string::npos || f.etag.find("..") != std::string::npos) {
      return DataLoss(api + ": no usable blob id for " + f.name);
    }
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
    LLM_RETURN_IF_ERROR(MakeDirectories(repo_dir + "/refs"));
    const std::string ref_path = repo_dir + "/refs/" + revision;
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
