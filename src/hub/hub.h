// --model-name: resolve ORG/NAME through the Hugging Face cache, downloading
// what a run needs from the hub when it is missing.
//
// The cache is laid out exactly as Python's huggingface_hub lays it out, so
// either side reuses the other's downloads:
//   <cache>/models--ORG--NAME/refs/<revision>          commit sha
//   <cache>/models--ORG--NAME/blobs/<etag>             file contents
//   <cache>/models--ORG--NAME/snapshots/<commit>/<f>   relative symlink to ../../blobs/<etag>
//   <cache>/.locks/models--ORG--NAME/<etag>.lock       flock while a blob is written
// A blob is written as <etag>.incomplete (only the body of a 200/206 answer,
// never more than the announced size), resumed with a Range request after an
// interruption, and renamed only when its size and hash (SHA-256 for LFS
// files, the git blob id for the others) match what the hub announced.
#pragma once

#include <string>
#include <vector>

#include "core/status.h"

namespace llm {

struct HubOptions {
  std::string endpoint = "https://huggingface.co";  // HF_ENDPOINT
  std::string token;                                // HF_TOKEN, else HF_HOME/token
  std::string cache_dir;                            // HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub
  bool offline = false;                             // HF_HUB_OFFLINE=1 or --offline
  int max_attempts = 5;                             // per request
  double backoff_s = 0.5;                           // doubled after each failed attempt
  long timeout_s = 60;                              // no bytes for this long = timeout
  bool progress = false;                            // progress bar on stderr
};

HubOptions HubOptionsFromEnvironment();

// Returns the snapshot directory of repo_id at revision, downloading the files
// a benchmark needs (config, generation config, tokenizer files, safetensors
// shards and index) when they are not cached.
Result<std::string> ResolveHubModel(const std::string& repo_id, const std::string& revision, const HubOptions& options);

// Which of a repository's files a run needs (exposed for tests).
std::vector<std::string> FilesToDownload(const std::vector<std::string>& repo_files);

// Hex SHA-256 of a file's contents (OpenSSL).
Result<std::string> Sha256OfFile(const std::string& path);
// Git blob id of a file: hex SHA-1 of "blob <size>\0" + contents, the id the
// hub gives files not stored in LFS (config.json, tokenizer files...).
Result<std::string> GitBlobIdOfFile(const std::string& path);

// One file of a revision as the hub lists it.
struct HubFile {
  std::string name;
  std::string etag;    // blob name: LFS sha256, else git blob id
  int64_t size = -1;
  std::string sha256;  // LFS files only
};
struct HubRevision {
  std::string commit;  // 40 hex digits
  std::vector<HubFile> files;
};
// Parses the hub's answer to /api/models/ORG/NAME/revision/REV?blobs=true
// (`source` names it in messages). Never throws, whatever the bytes.
Result<HubRevision> ParseRevisionAnswer(const std::string& body, const std::string& source);

// A full commit id: 40 lowercase hex digits.
bool IsCommitHash(const std::string& s);
// --model-name / --revision checks: no path segments that leave the cache
// (".", "..", empty), no control characters; the message shows the value escaped.
Status CheckRepoId(const std::string& repo_id);
Status CheckRevision(const std::string& revision);

}  // namespace llm
