// Memory injection in the store (README "Memory injection"): the types of
// Store::RegisterInjectionModel, GetInjectionModel and Recall.
//
// An encoder namespace registers one injection model (encoder/
// injection_model.h). From then on each chunk carries an injection record,
// computed once when the chunk is written and committed in the same
// WriteBatch (removed and replaced with it): its xRAG vector (the model's
// Project of the chunk's embedding), its memory tokens (Compress of its
// text) as PQ codes of the model's codebooks, and, when registered with
// `exact`, the memory tokens in fp32. Records carry a tag of the model's
// weights hash; a record of another model is FAILED_PRECONDITION at Recall,
// one that does not decode DATA_LOSS (db/injection_records.h).
#ifndef MNEMO_DB_INJECTION_H_
#define MNEMO_DB_INJECTION_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "encoder/injection_config.h"

namespace mnemo::db {

// A namespace's registered injection model.
struct InjectionInfo {
  std::string name;  // config.json "name"
  encoder::InjectionLineage lineage;
  uint32_t encoder_dim = 0;
  uint32_t decoder_dim = 0;
  uint32_t memory_tokens = 0;
  uint32_t pq_m = 0;
  uint32_t pq_nbits = 0;
  bool exact = false;       // exact memory tokens are stored beside the codes
  uint64_t chunks = 0;      // chunks holding a record
  // Payload bytes per chunk of each part of a record.
  uint64_t xrag_bytes_per_chunk = 0;
  uint64_t memory_code_bytes_per_chunk = 0;
  uint64_t memory_exact_bytes_per_chunk = 0;
  int64_t registered_unix_ms = 0;
  // RegisterInjectionModel: chunks whose records this call computed.
  uint64_t backfilled_chunks = 0;
};

enum class RecallMode {
  kXrag,    // one row per hit: the chunk's projected embedding
  kMemory,  // memory_tokens rows per hit, conditioned on the query
};

// Rerank of the dense top `candidates` by the model's RerankScore on each
// candidate's conditioned memory; the best `keep` are returned.
struct RecallRerank {
  uint32_t candidates = 0;  // 0 = 4 * keep, at most limits.max_k; else keep..max_k
  uint32_t keep = 0;        // 0 = RecallOptions::k
};

struct RecallOptions {
  // Exactly one: a text (embedded by the namespace's encoder; non-blank) or
  // an embedding of that encoder (its dim, finite, non-zero; normalised).
  std::string query_text;
  std::vector<float> query_vector;
  int k = 4;  // 1..limits.max_k
  RecallMode mode = RecallMode::kMemory;
  std::optional<RecallRerank> rerank;
  // kMemory: the exact memory tokens instead of the decoded codes
  // (FAILED_PRECONDITION unless the model was registered with exact).
  bool exact = false;
  // The caller's decoder: checked against the model's lineage when set
  // (FAILED_PRECONDITION naming the differing field).
  std::optional<std::string> decoder_fingerprint;  // ModelFingerprint::Canonical()
  std::string decoder_weights_sha256;              // "" = not checked
};

struct RecallHit {
  std::string chunk_id;
  std::string document_id;
  std::string text;
  float score = 0;  // dense score
  std::optional<float> rerank_score;
  uint32_t m = 0;    // rows of `tokens`
  uint32_t dim = 0;  // the decoder's dim
  std::vector<float> tokens;  // [m, dim] row-major
};

struct RecallResult {
  std::vector<RecallHit> hits;  // best first (by rerank_score when reranked)
  encoder::InjectionLineage lineage;
};

// An injection model directory's files, name -> contents.
using InjectionFiles = std::map<std::string, std::string>;

}  // namespace mnemo::db

#endif  // MNEMO_DB_INJECTION_H_
