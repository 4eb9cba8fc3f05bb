// mnemo C++ client SDK.
//
// A Client holds one gRPC channel to a mnemod. Every call returns
// absl::Status / absl::StatusOr with the server's canonical code and message.
// Calls carry a deadline (ClientOptions::default_timeout, or the per-call
// CallOptions). Idempotent calls (everything but UpsertStream) are retried
// on UNAVAILABLE with exponential backoff; upserts are idempotent by id.
//
// Thread safety: a Client may be used from many threads at once.
#ifndef MNEMO_CLIENT_CLIENT_H_
#define MNEMO_CLIENT_CLIENT_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace mnemo {

struct ClientOptions {
  // Deadline of each call (default 30 s).
  std::chrono::milliseconds default_timeout{30000};
  // Attempts for idempotent calls on UNAVAILABLE (default 4, 1 = no retry).
  int max_attempts = 4;
  // First backoff; doubles per attempt (default 50 ms).
  std::chrono::milliseconds initial_backoff{50};
  // Largest message the client sends or accepts (default 256 MiB).
  int max_message_bytes = 256 << 20;
  // Wait this long in Connect for the channel to become ready (0 = don't).
  std::chrono::milliseconds connect_timeout{5000};
};

struct CallOptions {
  std::optional<std::chrono::milliseconds> timeout;
};

enum class Metric { kInnerProduct, kL2, kCosine };

struct NamespaceConfig {
  std::string name;
  uint32_t dim = 0;
  Metric metric = Metric::kInnerProduct;
  std::string index_factory = "Flat";
  uint64_t train_threshold = 0;
  std::string description;
  // Built-in encoder embedding text on the server ("" = none, "use-lite").
  // With an encoder, dim may be 0 (taken from the encoder).
  std::string encoder;
  uint32_t chunk_max_tokens = 0;                // 0 = 128
  std::optional<uint32_t> chunk_overlap_tokens;  // unset = 16
  // Keep token vectors for SearchMode::kLateInteraction (unset = on for
  // encoder namespaces); residual bits 1, 2 or 4 (0 = 2); tokens staged before
  // the codec is trained (0 = 32768). See NamespaceConfig in mnemo.proto.
  std::optional<bool> late_interaction;
  uint32_t late_interaction_nbits = 0;
  uint64_t late_interaction_train_tokens = 0;
};

struct NamespaceInfo {
  NamespaceConfig config;
  uint64_t chunk_count = 0;
  uint64_t document_count = 0;
  bool index_trained = false;
  std::string index_description;
  int64_t created_unix_ms = 0;
  uint64_t approximate_bytes = 0;
  uint64_t late_interaction_tokens = 0;  // token vectors held
  bool late_interaction_trained = false;
  std::string late_interaction_description;
};

struct Document {
  std::string id;
  std::string text;
  std::string metadata_json;
};

struct Chunk {
  std::string id;
  std::string document_id;
  std::string text;
  std::string metadata_json;
  std::vector<float> vector;  // may be empty in an encoder namespace
  // Byte range in the document's text of a chunk the server cut from it.
  uint64_t source_begin = 0;
  uint64_t source_end = 0;
};

struct UpsertResult {
  uint64_t documents_written = 0;
  uint64_t chunks_written = 0;
};

struct DeleteResult {
  uint64_t chunks_deleted = 0;
  uint64_t documents_deleted = 0;
};

struct GetResult {
  std::vector<Chunk> chunks;
  std::vector<Document> documents;
  std::vector<std::string> missing_ids;
};

// kLateInteraction: MaxSim over the chunks' token vectors (text queries in
// namespaces with late_interaction).
enum class SearchMode { kDense, kBm25, kHybridRrf, kHybridWeighted, kLateInteraction };

struct SearchRequest {
  std::string ns;
  // Text queries (encoder namespaces) instead of vectors: one hit list per
  // text. Leave dim/queries empty when set.
  std::vector<std::string> text_queries;
  SearchMode mode = SearchMode::kDense;
  float dense_weight = 0;  // kHybridWeighted; both 0 = 0.5 each
  float bm25_weight = 0;
  uint32_t rrf_k = 0;      // kHybridRrf; 0 = 60
  bool highlight = false;  // fill Hit::snippet
  uint32_t dim = 0;
  std::vector<float> queries;  // n * dim, row-major
  int k = 10;
  // Filter in the JSON syntax {"field": value, "f2": {"in": [...]},
  // "f3": {"gte": 1, "lt": 9}}; empty = none. Parsed by the client:
  // INVALID_ARGUMENT locally when malformed.
  std::string filter_json;
  bool include_payload = false;
  bool include_vectors = false;
  uint32_t hnsw_ef_search = 0;
  uint32_t ivf_nprobe = 0;
  float refine_factor = 0;
  uint32_t late_nprobe = 0;          // kLateInteraction; 0 = index default
  uint32_t late_max_candidates = 0;  // kLateInteraction; 0 = index default
};

struct Hit {
  std::string id;
  float score = 0;
  std::optional<Chunk> chunk;
  std::string snippet;  // best passage, query terms marked [[term]]
};

struct StatsResult {
  std::vector<NamespaceInfo> namespaces;
  uint64_t total_approximate_bytes = 0;
  std::string data_dir;
  std::string version;
};

// Streams upserts: each Write is one atomic batch on the server.
class UpsertWriter {
 public:
  virtual ~UpsertWriter() = default;
  virtual absl::Status Write(const std::vector<Document>& documents,
                             const std::vector<Chunk>& chunks) = 0;
  // Closes the stream and returns the totals (or the first error).
  virtual absl::StatusOr<UpsertResult> Finish() = 0;
};

class Client {
 public:
  // target: "host:port". Fails with UNAVAILABLE when connect_timeout > 0 and
  // the server is not reachable in time.
  static absl::StatusOr<std::unique_ptr<Client>> Connect(
      const std::string& target, const ClientOptions& options = {});
  virtual ~Client() = default;

  virtual absl::StatusOr<NamespaceInfo> CreateNamespace(const NamespaceConfig& config,
                                                        const CallOptions& = {}) = 0;
  virtual absl::StatusOr<NamespaceInfo> GetNamespace(const std::string& name,
                                                     const CallOptions& = {}) = 0;
  virtual absl::StatusOr<std::vector<NamespaceInfo>> ListNamespaces(const CallOptions& = {}) = 0;
  virtual absl::Status DropNamespace(const std::string& name, const CallOptions& = {}) = 0;

  virtual absl::StatusOr<UpsertResult> Upsert(const std::string& ns,
                                              const std::vector<Document>& documents,
                                              const std::vector<Chunk>& chunks,
                                              const CallOptions& = {}) = 0;
  virtual absl::StatusOr<std::unique_ptr<UpsertWriter>> UpsertStream(
      const std::string& ns, const CallOptions& = {}) = 0;
  virtual absl::StatusOr<GetResult> Get(const std::string& ns,
                                        const std::vector<std::string>& chunk_ids,
                                        const std::vector<std::string>& document_ids,
                                        bool include_vectors, const CallOptions& = {}) = 0;
  virtual absl::StatusOr<DeleteResult> Delete(const std::string& ns,
                                              const std::vector<std::string>& chunk_ids,
                                              const std::vector<std::string>& document_ids,
                                              const CallOptions& = {}) = 0;
  // One hit list per query, best first.
  virtual absl::StatusOr<std::vector<std::vector<Hit>>> Search(const SearchRequest& request,
                                                               const CallOptions& = {}) = 0;
  virtual absl::StatusOr<StatsResult> Stats(const std::string& ns, const CallOptions& = {}) = 0;
  virtual absl::StatusOr<uint64_t> Checkpoint(const std::string& target_dir,
                                              const CallOptions& = {}) = 0;
  virtual absl::Status Compact(const std::string& ns, const CallOptions& = {}) = 0;
  // gRPC health check of the server ("" = overall).
  virtual absl::Status HealthCheck(const CallOptions& = {}) = 0;
};

}  // namespace mnemo

#endif  // MNEMO_CLIENT_CLIENT_H_
