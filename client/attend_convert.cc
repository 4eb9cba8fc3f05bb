// SDK <-> proto conversion of the Attend stream's messages (client/convert.h).
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/convert.h"

namespace mnemo::client_internal {
namespace {

void StatsFromProto(const v1::AttendStats& p, AttendStats* s) {
  s->keys = p.keys();
  s->exact_keys = p.exact_keys();
  s->clusters = p.clusters();
  s->exact_clusters = p.exact_clusters();
  s->estimated_clusters = p.estimated_clusters();
  s->server_seconds = p.server_seconds();
}

absl::Status Floats(const std::string& bytes, size_t count, const char* what,
                    std::vector<float>* out) {
  if (bytes.size() != count * sizeof(float)) {
    return absl::DataLossError(absl::StrCat("Attend response: ", what, " holds ", bytes.size(),
                                            " bytes, expected ", count * sizeof(float)));
  }
  out->resize(count);
  if (count > 0) std::memcpy(out->data(), bytes.data(), bytes.size());
  return absl::OkStatus();
}

}  // namespace

v1::AttendRequest AttendOpenToProto(const std::string& ns, const ModelFingerprint& model,
                                    const std::vector<AttendChunk>& chunks) {
  v1::AttendRequest request;
  v1::AttendOpen* open = request.mutable_open();
  open->set_namespace_(ns);
  FingerprintToProto(model, open->mutable_model());
  for (const AttendChunk& c : chunks) {
    v1::AttendChunk* chunk = open->add_chunks();
    chunk->set_chunk_id(c.chunk_id);
    chunk->set_start(c.start);
  }
  return request;
}

v1::AttendRequest AttendStepToProto(uint32_t layer, int64_t position,
                                    absl::Span<const float> queries, int n_queries, bool top_k,
                                    const AttendBudget& budget) {
  v1::AttendRequest request;
  v1::AttendStep* step = request.mutable_step();
  step->set_layer(layer);
  step->set_position(position);
  step->set_n_queries(static_cast<uint32_t>(n_queries));
  step->set_queries(std::string(reinterpret_cast<const char*>(queries.data()),
                                queries.size() * sizeof(float)));
  step->set_mode(top_k ? v1::ATTEND_MODE_TOP_K : v1::ATTEND_MODE_PARTIAL);
  if (budget.exact_fraction.has_value()) step->set_exact_fraction(*budget.exact_fraction);
  if (budget.estimated_fraction.has_value()) {
    step->set_estimated_fraction(*budget.estimated_fraction);
  }
  return request;
}

absl::StatusOr<AttendPartial> AttendPartialFromProto(const v1::AttendResponse& response,
                                                     int n_queries, int n_heads, int head_dim) {
  if (!response.has_partial()) return absl::DataLossError("Attend response holds no partial");
  AttendPartial out;
  out.n_queries = n_queries;
  out.n_heads = n_heads;
  out.head_dim = head_dim;
  const size_t heads = size_t(n_queries) * n_heads;
  const v1::AttendPartialResult& p = response.partial();
  if (absl::Status s = Floats(p.out(), heads * head_dim, "out", &out.out); !s.ok()) return s;
  if (absl::Status s = Floats(p.lse(), heads, "lse", &out.lse); !s.ok()) return s;
  if (absl::Status s = Floats(p.max(), heads, "max", &out.max); !s.ok()) return s;
  StatsFromProto(response.stats(), &out.stats);
  return out;
}

absl::StatusOr<TopKeys> TopKeysFromProto(const v1::AttendResponse& response, int n_kv_heads,
                                         int head_dim) {
  if (!response.has_top_keys() || response.top_keys().heads_size() != n_kv_heads) {
    return absl::DataLossError("Attend response holds no top keys for every KV head");
  }
  TopKeys out;
  out.head_dim = head_dim;
  for (const v1::TopKeysHead& h : response.top_keys().heads()) {
    out.positions.emplace_back(h.positions().begin(), h.positions().end());
    const size_t n = size_t(h.positions_size()) * head_dim;
    out.keys.emplace_back();
    out.values.emplace_back();
    if (absl::Status s = Floats(h.keys(), n, "keys", &out.keys.back()); !s.ok()) return s;
    if (absl::Status s = Floats(h.values(), n, "values", &out.values.back()); !s.ok()) return s;
  }
  StatsFromProto(response.stats(), &out.stats);
  return out;
}

}  // namespace mnemo::client_internal
