// Recall (Store::Recall, db/injection.h): dense retrieval of a query's
// chunks with their injection tokens. The query is embedded by the
// namespace's encoder (or given as such an embedding); the dense top k (or
// rerank candidates) are read with their injection records; MEMORY decodes
// each record's PQ codes (or takes its exact tokens) and conditions them on
// the query embedding, XRAG returns the stored projected vector; a rerank
// scores each candidate's conditioned memory and keeps the best.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "db/injection_records.h"
#include "db/injection_store.h"
#include "db/keys.h"
#include "db/store_impl.h"
#include "db/text.h"
#include "db/validation.h"
#include "mnemo/model_fingerprint.h"

namespace mnemo::db {
namespace {

// FAILED_PRECONDITION naming the first lineage field where the caller's
// decoder differs from the one the model was trained for.
absl::Status CheckCallerLineage(const encoder::InjectionLineage& lineage,
                                const RecallOptions& options) {
  if (options.decoder_fingerprint.has_value() &&
      *options.decoder_fingerprint != lineage.decoder_fingerprint) {
    std::string detail;
    absl::StatusOr<ModelFingerprint> expected = ParseFingerprint(lineage.decoder_fingerprint);
    absl::StatusOr<ModelFingerprint> actual = ParseFingerprint(*options.decoder_fingerprint);
    if (expected.ok() && actual.ok()) {
      if (auto diff = FirstDifference(*expected, *actual)) detail = diff->ToString();
    }
    if (detail.empty()) {
      detail = absl::StrCat("expected ", lineage.decoder_fingerprint, ", got ",
                            *options.decoder_fingerprint);
    }
    return absl::FailedPreconditionError(absl::StrCat(
        "decoder_fingerprint: the namespace's injection model was trained for another decoder (",
        detail, ")"));
  }
  if (!options.decoder_weights_sha256.empty() &&
      options.decoder_weights_sha256 != lineage.decoder_weights_sha256) {
    return absl::FailedPreconditionError(absl::StrCat(
        "decoder_weights_sha256: the namespace's injection model was trained for decoder "
        "weights ",
        lineage.decoder_weights_sha256, ", the caller's are ", options.decoder_weights_sha256));
  }
  return absl::OkStatus();
}

absl::Status ValidateRecall(const RecallOptions& options, const Limits& limits, uint32_t dim,
                            uint32_t* candidates, uint32_t* keep) {
  if (options.k < 1 || static_cast<uint32_t>(options.k) > limits.max_k) {
    return absl::InvalidArgumentError(
        absl::StrCat("k is ", options.k, "; it must be in 1..", limits.max_k));
  }
  const bool has_text = !options.query_text.empty();
  const bool has_vector = !options.query_vector.empty();
  if (has_text == has_vector) {
    return absl::InvalidArgumentError("Recall needs exactly one of a query text and a query vector");
  }
  if (has_text) {
    RETURN_IF_ERROR(ValidateText(options.query_text, "query text", limits));
    if (IsBlank(options.query_text)) {
      return absl::InvalidArgumentError("query text is empty or whitespace-only");
    }
  } else {
    if (options.query_vector.size() != dim) {
      return absl::InvalidArgumentError(absl::StrCat("query vector has ",
                                                     options.query_vector.size(),
                                                     " floats; the encoder's dim is ", dim));
    }
    double norm = 0;
    for (size_t i = 0; i < options.query_vector.size(); ++i) {
      const float v = options.query_vector[i];
      if (!std::isfinite(v)) {
        return absl::InvalidArgumentError(
            absl::StrCat("query vector has a non-finite value at index ", i));
      }
      norm += static_cast<double>(v) * v;
    }
    if (norm == 0) return absl::InvalidArgumentError("query vector is all zeros");
  }
  *keep = static_cast<uint32_t>(options.k);
  *candidates = *keep;
  if (options.rerank.has_value()) {
    if (options.rerank->keep != 0) *keep = options.rerank->keep;
    if (*keep > limits.max_k) {
      return absl::InvalidArgumentError(
          absl::StrCat("rerank keep is ", *keep, "; it must be in 1..", limits.max_k));
    }
    *candidates = options.rerank->candidates != 0
                      ? options.rerank->candidates
                      : std::min<uint32_t>(4 * *keep, limits.max_k);
    if (*candidates < *keep || *candidates > limits.max_k) {
      return absl::InvalidArgumentError(absl::StrCat("rerank candidates is ", *candidates,
                                                     "; it must be in ", *keep, "..",
                                                     limits.max_k, " (at least keep)"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<RecallResult> InjectionStore::Recall(absl::string_view ns_name,
                                                    const RecallOptions& options) {
  ASSIGN_OR_RETURN(NamespacePtr ns, owner_->FindNamespace(ns_name));
  std::shared_ptr<const InjectionState> state;
  {
    absl::ReaderMutexLock l(&ns->mu);
    RETURN_IF_ERROR(ns->GoneStatus());
    ASSIGN_OR_RETURN(state, UsableInjection(*ns));
  }
  const encoder::InjectionModel& model = *state->model;
  const uint32_t edim = static_cast<uint32_t>(model.config().encoder_dim);
  const uint32_t ddim = static_cast<uint32_t>(model.config().decoder_dim);
  const uint32_t m = static_cast<uint32_t>(model.config().memory_tokens);
  uint32_t candidates = 0, keep = 0;
  RETURN_IF_ERROR(ValidateRecall(options, owner_->options().limits, edim, &candidates, &keep));
  RETURN_IF_ERROR(CheckCallerLineage(model.lineage(), options));
  const bool use_exact = options.exact && options.mode == RecallMode::kMemory;
  if (use_exact && !state->exact) {
    return absl::FailedPreconditionError(absl::StrCat(
        "namespace '", ns_name, "' keeps only PQ codes of its memory tokens (registered ",
        "without exact); ask for the decoded codes or register the model with exact"));
  }

  // The query embedding, unit norm.
  std::vector<float> query;
  if (!options.query_text.empty()) {
    ASSIGN_OR_RETURN(const text::TextEncoder* enc,
                     text::GetEncoder(owner_->options().encoder_dir, ns->config.encoder));
    ASSIGN_OR_RETURN(query, enc->Encode({options.query_text}));
  } else {
    query = options.query_vector;
  }
  if (query.size() != edim) {
    return absl::InternalError(absl::StrCat("query embedding has ", query.size(), " floats"));
  }
  double norm = 0;
  for (float v : query) norm += static_cast<double>(v) * v;
  if (norm > 0) {
    const float inv = static_cast<float>(1.0 / std::sqrt(norm));
    for (float& v : query) v *= inv;
  }

  SearchOptions search;
  search.k = static_cast<int>(candidates);
  search.include_payload = true;
  ASSIGN_OR_RETURN(auto lists, owner_->Search(ns_name, query, search));
  std::vector<Hit> hits = lists.empty() ? std::vector<Hit>() : std::move(lists[0]);

  // Injection records of the hits, by their current internal ids.
  std::vector<std::string> map_keys;
  for (const Hit& h : hits) map_keys.push_back(keys::IdMapKey(ns->nsid, h.id));
  ASSIGN_OR_RETURN(auto internal, owner_->MultiGet(owner_->idmap_cf(), map_keys));
  std::vector<std::string> row_keys;
  std::vector<size_t> live;  // hits still stored
  for (size_t i = 0; i < hits.size(); ++i) {
    if (!internal[i].has_value()) continue;  // deleted since the search
    auto id = keys::ReadU64(*internal[i]);
    if (!id.has_value()) return absl::DataLossError("malformed id map entry");
    row_keys.push_back(keys::RowKey(ns->nsid, static_cast<int64_t>(*id)));
    live.push_back(i);
  }
  ASSIGN_OR_RETURN(auto values, owner_->MultiGet(owner_->inject_cf(), row_keys));

  RecallResult result;
  result.lineage = model.lineage();
  const bool rerank = options.rerank.has_value();
  const size_t mem = model.memory_size();
  for (size_t j = 0; j < live.size(); ++j) {
    Hit& hit = hits[live[j]];
    if (!values[j].has_value()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "chunk '", hit.id, "' of namespace '", ns_name, "' has no injection record (a ",
          "registration did not finish its backfill: register the model again)"));
    }
    absl::StatusOr<injection::ChunkRecord> rec = injection::DecodeChunk(*values[j]);
    if (!rec.ok()) {
      return absl::DataLossError(
          absl::StrCat("injection record of chunk '", hit.id, "': ", rec.status().message()));
    }
    if (rec->tag != state->tag) {
      return absl::FailedPreconditionError(absl::StrCat(
          "model_sha256: the injection record of chunk '", hit.id, "' was written by model ",
          rec->tag, "..., the namespace's model is ", model.lineage().model_sha256));
    }
    if (rec->decoder_dim != ddim || rec->memory_tokens != m ||
        rec->code_size != model.pq().code_size() || (use_exact && rec->exact.empty())) {
      return absl::DataLossError(absl::StrCat("injection record of chunk '", hit.id,
                                              "' does not match its model's shapes"));
    }
    RecallHit out;
    out.chunk_id = hit.id;
    out.score = hit.score;
    if (hit.chunk.has_value()) {
      out.document_id = std::move(hit.chunk->document_id);
      out.text = std::move(hit.chunk->text);
    }
    out.dim = ddim;
    std::vector<float> conditioned;
    if (options.mode == RecallMode::kMemory || rerank) {
      std::vector<float> memory;
      if (use_exact) {
        memory = std::move(rec->exact);
      } else {
        absl::StatusOr<std::vector<float>> decoded = model.pq().DecodeToVector(rec->codes);
        if (!decoded.ok()) {
          return absl::DataLossError(absl::StrCat("injection record of chunk '", hit.id,
                                                  "': ", decoded.status().message()));
        }
        memory = *std::move(decoded);
      }
      if (memory.size() != mem) {
        return absl::DataLossError(absl::StrCat("injection record of chunk '", hit.id,
                                                "' decodes to ", memory.size(), " floats"));
      }
      ASSIGN_OR_RETURN(conditioned, model.Condition(memory, query));
      if (rerank) {
        ASSIGN_OR_RETURN(float score, model.RerankScore(conditioned, query));
        out.rerank_score = score;
      }
    }
    if (options.mode == RecallMode::kMemory) {
      out.m = m;
      out.tokens = std::move(conditioned);
    } else {
      out.m = 1;
      out.tokens = std::move(rec->xrag);
    }
    result.hits.push_back(std::move(out));
  }
  if (rerank) {
    std::stable_sort(result.hits.begin(), result.hits.end(),
                     [](const RecallHit& a, const RecallHit& b) {
                       return *a.rerank_score > *b.rerank_score;
                     });
  }
  if (result.hits.size() > keep) result.hits.resize(keep);
  return result;
}

}  // namespace mnemo::db
