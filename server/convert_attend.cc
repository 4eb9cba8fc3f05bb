// Proto <-> db conversion of the Attend stream's messages (server/convert.h).
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "server/convert.h"

namespace mnemo::server {
namespace {

template <typename T>
std::string Bytes(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

}  // namespace

db::KvContextOptions KvContextOptionsFromProto(const v1::AttendOpen& open) {
  db::KvContextOptions options;
  options.model = FingerprintFromProto(open.model());
  for (const v1::AttendChunk& c : open.chunks()) {
    options.chunk_ids.push_back(c.chunk_id());
    options.starts.push_back(c.start());
  }
  return options;
}

void AttendOpenedToProto(const db::KvContext& context, v1::AttendResponse* out) {
  v1::AttendOpened* opened = out->mutable_opened();
  opened->set_chunks(static_cast<uint32_t>(context.layout().size()));
  opened->set_tokens(context.layout().total_tokens());
  opened->set_end_position(context.layout().end());
}

absl::StatusOr<AttendStepRequest> AttendStepFromProto(const v1::AttendStep& step,
                                                      const attention::AttentionShape& shape) {
  AttendStepRequest out;
  out.layer = step.layer();
  switch (step.mode()) {
    case v1::ATTEND_MODE_UNSPECIFIED:
    case v1::ATTEND_MODE_PARTIAL:
      break;
    case v1::ATTEND_MODE_TOP_K:
      out.top_k = true;
      break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("unknown attend mode ", static_cast<int>(step.mode())));
  }
  if (step.has_exact_fraction()) out.budget.exact_fraction = step.exact_fraction();
  if (step.has_estimated_fraction()) out.budget.estimated_fraction = step.estimated_fraction();
  if (out.top_k) out.budget.estimated_fraction = 0;
  if (step.n_queries() == 0 || step.n_queries() > (1u << 16)) {
    return absl::InvalidArgumentError(
        absl::StrCat("an attend step carries ", step.n_queries(), " queries; 1..65536 are accepted"));
  }
  out.n_queries = static_cast<int>(step.n_queries());
  const size_t want =
      size_t(out.n_queries) * shape.n_heads * shape.head_dim * sizeof(float);
  if (step.queries().size() != want) {
    return absl::InvalidArgumentError(absl::StrCat(
        "attend step queries hold ", step.queries().size(), " bytes; ", out.n_queries,
        " queries of [n_heads ", shape.n_heads, ", head_dim ", shape.head_dim,
        "] float32 need ", want));
  }
  out.queries.resize(want / sizeof(float));
  std::memcpy(out.queries.data(), step.queries().data(), want);
  out.position = step.position();
  return out;
}

void AttendPartialToProto(const attention::PartialResult& result, v1::AttendResponse* out) {
  v1::AttendPartialResult* p = out->mutable_partial();
  p->set_out(Bytes(result.out));
  p->set_lse(Bytes(result.lse));
  p->set_max(Bytes(result.max));
}

void TopKeysToProto(const attention::SelectedKeys& selected, v1::AttendResponse* out) {
  v1::TopKeys* top = out->mutable_top_keys();
  for (size_t h = 0; h < selected.positions.size(); ++h) {
    v1::TopKeysHead* head = top->add_heads();
    head->mutable_positions()->Add(selected.positions[h].begin(), selected.positions[h].end());
    head->set_keys(Bytes(selected.keys[h]));
    head->set_values(Bytes(selected.values[h]));
  }
}

void AttendStatsToProto(const attention::ContextAttentionStats& stats, double seconds,
                        v1::AttendResponse* out) {
  v1::AttendStats* s = out->mutable_stats();
  s->set_keys(stats.keys);
  s->set_exact_keys(stats.exact_keys);
  s->set_clusters(stats.clusters);
  s->set_exact_clusters(stats.exact_clusters);
  s->set_estimated_clusters(stats.estimated_clusters);
  s->set_server_seconds(seconds);
}

}  // namespace mnemo::server
