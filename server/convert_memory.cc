// MnemoMemory wire <-> store conversions (see convert_memory.h).
#include "server/convert_memory.h"

#include <algorithm>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"

namespace mnemo::server {
namespace {

constexpr int kMaxDepth = filter::kMaxMemoryFilterDepth;

absl::StatusOr<filter::MemoryOp> OpFromProto(v1::MemoryFilterOp op, absl::string_view path) {
  switch (op) {
    case v1::MEMORY_FILTER_OP_EQ: return filter::MemoryOp::kEq;
    case v1::MEMORY_FILTER_OP_NE: return filter::MemoryOp::kNe;
    case v1::MEMORY_FILTER_OP_IN: return filter::MemoryOp::kIn;
    case v1::MEMORY_FILTER_OP_NIN: return filter::MemoryOp::kNin;
    case v1::MEMORY_FILTER_OP_GT: return filter::MemoryOp::kGt;
    case v1::MEMORY_FILTER_OP_GTE: return filter::MemoryOp::kGte;
    case v1::MEMORY_FILTER_OP_LT: return filter::MemoryOp::kLt;
    case v1::MEMORY_FILTER_OP_LTE: return filter::MemoryOp::kLte;
    case v1::MEMORY_FILTER_OP_CONTAINS: return filter::MemoryOp::kContains;
    case v1::MEMORY_FILTER_OP_ICONTAINS: return filter::MemoryOp::kIContains;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("filter ", path, ": condition without a valid operator (", op, ")"));
  }
}

absl::StatusOr<db::MemoryFilter> FilterFromProto(const v1::MemoryFilter& in,
                                                 const std::string& path, int depth) {
  if (depth > kMaxDepth) {
    return absl::InvalidArgumentError(
        absl::StrCat("filter ", path, ": nested deeper than ", kMaxDepth, " levels"));
  }
  db::MemoryFilter out;
  switch (in.node_case()) {
    case v1::MemoryFilter::NODE_NOT_SET:
      return out;
    case v1::MemoryFilter::kAllOf:
    case v1::MemoryFilter::kAnyOf: {
      const bool all = in.node_case() == v1::MemoryFilter::kAllOf;
      out.kind = all ? db::MemoryFilter::Kind::kAnd : db::MemoryFilter::Kind::kOr;
      const v1::MemoryFilterList& list = all ? in.all_of() : in.any_of();
      for (int i = 0; i < list.filters_size(); ++i) {
        absl::StatusOr<db::MemoryFilter> child = FilterFromProto(
            list.filters(i), absl::StrCat(path, ".", all ? "AND" : "OR", "[", i, "]"), depth + 1);
        if (!child.ok()) return child.status();
        out.children.push_back(*std::move(child));
      }
      return out;
    }
    case v1::MemoryFilter::kNegation: {
      out.kind = db::MemoryFilter::Kind::kNot;
      absl::StatusOr<db::MemoryFilter> child =
          FilterFromProto(in.negation(), absl::StrCat(path, ".NOT"), depth + 1);
      if (!child.ok()) return child.status();
      out.children.push_back(*std::move(child));
      return out;
    }
    case v1::MemoryFilter::kCondition:
      break;
  }
  const v1::MemoryCondition& cond = in.condition();
  out.kind = db::MemoryFilter::Kind::kCondition;
  out.field = cond.field();
  absl::StatusOr<filter::MemoryOp> op = OpFromProto(cond.op(), path);
  if (!op.ok()) return op.status();
  out.op = *op;
  for (const v1::MemoryFilterValue& v : cond.values()) {
    switch (v.kind_case()) {
      case v1::MemoryFilterValue::kStringValue:
        out.values.emplace_back(v.string_value());
        break;
      case v1::MemoryFilterValue::kNumberValue:
        out.values.emplace_back(v.number_value());
        break;
      case v1::MemoryFilterValue::kBoolValue:
        out.values.emplace_back(v.bool_value());
        break;
      default:
        return absl::InvalidArgumentError(absl::StrCat(
            "filter ", path, ": a value of the condition on '", cond.field(), "' is unset"));
    }
  }
  return out;
}

void ScopeToProto(const db::MemoryScope& scope, v1::MemoryScope* out) {
  out->set_user_id(scope.user_id);
  out->set_agent_id(scope.agent_id);
  out->set_run_id(scope.run_id);
}

v1::MemoryEventKind EventKindToProto(db::MemoryEventKind kind) {
  switch (kind) {
    case db::MemoryEventKind::kAdd: return v1::MEMORY_EVENT_KIND_ADD;
    case db::MemoryEventKind::kUpdate: return v1::MEMORY_EVENT_KIND_UPDATE;
    case db::MemoryEventKind::kDelete: return v1::MEMORY_EVENT_KIND_DELETE;
  }
  return v1::MEMORY_EVENT_KIND_UNSPECIFIED;
}

}  // namespace

db::MemoryScope MemoryScopeFromProto(const v1::MemoryScope& scope) {
  db::MemoryScope out;
  out.user_id = scope.user_id();
  out.agent_id = scope.agent_id();
  out.run_id = scope.run_id();
  return out;
}

absl::StatusOr<db::MemoryFilter> MemoryFilterFromProto(const v1::MemoryFilter& filter) {
  absl::StatusOr<db::MemoryFilter> out = FilterFromProto(filter, "$", 0);
  if (!out.ok()) return out.status();
  absl::Status valid = filter::ValidateMemoryFilter(*out);
  if (!valid.ok()) return valid;
  return out;
}

std::vector<db::MemoryInput> MemoryInputsFromProto(const v1::MemoryAddRequest& request) {
  std::vector<db::MemoryInput> out;
  for (const v1::MemoryInput& in : request.memories()) {
    db::MemoryInput m;
    m.text = in.text();
    m.metadata_json = in.metadata_json();
    if (in.has_expires_at_ms()) m.expires_at_ms = in.expires_at_ms();
    if (in.has_valid_at_ms()) m.valid_at_ms = in.valid_at_ms();
    out.push_back(std::move(m));
  }
  return out;
}

db::MemoryAddOptions MemoryAddOptionsFromProto(const v1::MemoryAddRequest& request) {
  db::MemoryAddOptions out;
  out.scope = MemoryScopeFromProto(request.scope());
  out.actor = request.actor();
  if (request.has_near_duplicate_threshold()) {
    out.near_duplicate_threshold = request.near_duplicate_threshold();
  }
  return out;
}

absl::StatusOr<db::MemorySearchOptions> MemorySearchOptionsFromProto(
    const v1::MemorySearchRequest& request) {
  db::MemorySearchOptions out;
  out.scope = MemoryScopeFromProto(request.scope());
  out.query = request.query();
  out.top_k = request.top_k() == 0 ? 10 : static_cast<int>(std::min<uint32_t>(request.top_k(), 1u << 30));
  if (request.has_threshold()) out.threshold = request.threshold();
  absl::StatusOr<db::MemoryFilter> filter = MemoryFilterFromProto(request.filter());
  if (!filter.ok()) return filter.status();
  out.filter = *std::move(filter);
  if (request.has_valid_from_ms()) out.valid_from_ms = request.valid_from_ms();
  if (request.has_valid_to_ms()) out.valid_to_ms = request.valid_to_ms();
  out.recency_weight = request.recency_weight();
  out.recency_half_life_ms = request.recency_half_life_ms();
  out.show_expired = request.show_expired();
  return out;
}

absl::StatusOr<db::MemoryListOptions> MemoryListOptionsFromProto(
    const v1::MemoryListRequest& request) {
  db::MemoryListOptions out;
  out.scope = MemoryScopeFromProto(request.scope());
  absl::StatusOr<db::MemoryFilter> filter = MemoryFilterFromProto(request.filter());
  if (!filter.ok()) return filter.status();
  out.filter = *std::move(filter);
  out.show_expired = request.show_expired();
  out.page_size = request.page_size() == 0 ? 100 : request.page_size();
  out.page_token = request.page_token();
  return out;
}

db::MemoryUpdate MemoryUpdateFromProto(const v1::MemoryUpdateRequest& request) {
  db::MemoryUpdate out;
  if (request.has_text()) out.text = request.text();
  if (request.has_metadata_json()) out.metadata_json = request.metadata_json();
  if (request.has_expires_at_ms()) out.expires_at_ms = request.expires_at_ms();
  if (request.has_valid_at_ms()) out.valid_at_ms = request.valid_at_ms();
  if (request.has_invalid_at_ms()) out.invalid_at_ms = request.invalid_at_ms();
  out.actor = request.actor();
  return out;
}

void MemoryToProto(const db::Memory& m, v1::Memory* out) {
  out->set_id(m.id);
  out->set_text(m.text);
  out->set_metadata_json(m.metadata_json);
  ScopeToProto(m.scope, out->mutable_scope());
  out->set_created_at_ms(m.created_at_ms);
  out->set_updated_at_ms(m.updated_at_ms);
  if (m.expires_at_ms.has_value()) out->set_expires_at_ms(*m.expires_at_ms);
  out->set_valid_at_ms(m.valid_at_ms);
  if (m.invalid_at_ms.has_value()) out->set_invalid_at_ms(*m.invalid_at_ms);
  out->set_hash(m.hash);
}

void MemoryAddResultsToProto(const std::vector<db::MemoryAddResult>& results,
                             v1::MemoryAddResponse* out) {
  for (const db::MemoryAddResult& r : results) {
    v1::MemoryAddResult* p = out->add_results();
    switch (r.outcome) {
      case db::MemoryAddOutcome::kAdded:
        p->set_outcome(v1::MEMORY_ADD_OUTCOME_ADDED);
        break;
      case db::MemoryAddOutcome::kUpdated:
        p->set_outcome(v1::MEMORY_ADD_OUTCOME_UPDATED);
        break;
      case db::MemoryAddOutcome::kNoop:
        p->set_outcome(v1::MEMORY_ADD_OUTCOME_NOOP);
        break;
    }
    MemoryToProto(r.memory, p->mutable_memory());
    p->set_similarity(r.similarity);
  }
}

void MemoryHitsToProto(const std::vector<db::MemoryHit>& hits, v1::MemorySearchResponse* out) {
  for (const db::MemoryHit& h : hits) {
    v1::MemoryHit* p = out->add_hits();
    MemoryToProto(h.memory, p->mutable_memory());
    p->set_score(h.score);
    p->set_similarity(h.similarity);
  }
}

void MemoryPageToProto(const db::MemoryPage& page, v1::MemoryListResponse* out) {
  for (const db::Memory& m : page.memories) MemoryToProto(m, out->add_memories());
  out->set_next_page_token(page.next_page_token);
}

void MemoryEventsToProto(const std::vector<db::MemoryEvent>& events,
                         v1::MemoryHistoryResponse* out) {
  for (const db::MemoryEvent& e : events) {
    v1::MemoryEvent* p = out->add_events();
    p->set_memory_id(e.memory_id);
    p->set_kind(EventKindToProto(e.kind));
    p->set_old_text(e.old_text);
    p->set_new_text(e.new_text);
    p->set_time_ms(e.time_ms);
    p->set_actor(e.actor);
  }
}

absl::StatusOr<db::BlockEdit> BlockEditFromProto(const v1::BlockEditRequest& request) {
  db::BlockEdit out;
  switch (request.kind()) {
    case v1::BLOCK_EDIT_KIND_SET:
      out.kind = db::BlockEdit::Kind::kSet;
      break;
    case v1::BLOCK_EDIT_KIND_APPEND:
      out.kind = db::BlockEdit::Kind::kAppend;
      break;
    case v1::BLOCK_EDIT_KIND_REPLACE:
      out.kind = db::BlockEdit::Kind::kReplace;
      break;
    case v1::BLOCK_EDIT_KIND_INSERT:
      out.kind = db::BlockEdit::Kind::kInsert;
      break;
    default:
      return absl::InvalidArgumentError(
          "a block edit needs a kind: SET, APPEND, REPLACE or INSERT");
  }
  out.text = request.text();
  out.old_text = request.old_text();
  out.line = request.has_line() ? request.line() : -1;
  if (request.has_limit_bytes()) out.limit_bytes = request.limit_bytes();
  out.actor = request.actor();
  return out;
}

void MemoryBlockToProto(const db::MemoryBlock& block, v1::MemoryBlock* out) {
  out->set_agent_id(block.agent_id);
  out->set_label(block.label);
  out->set_value(block.value);
  out->set_limit_bytes(block.limit_bytes);
  out->set_updated_at_ms(block.updated_at_ms);
}

void BlockEventsToProto(const std::vector<db::BlockEvent>& events,
                        v1::BlockHistoryResponse* out) {
  for (const db::BlockEvent& e : events) {
    v1::BlockEvent* p = out->add_events();
    switch (e.kind) {
      case db::BlockEdit::Kind::kSet: p->set_kind(v1::BLOCK_EDIT_KIND_SET); break;
      case db::BlockEdit::Kind::kAppend: p->set_kind(v1::BLOCK_EDIT_KIND_APPEND); break;
      case db::BlockEdit::Kind::kReplace: p->set_kind(v1::BLOCK_EDIT_KIND_REPLACE); break;
      case db::BlockEdit::Kind::kInsert: p->set_kind(v1::BLOCK_EDIT_KIND_INSERT); break;
    }
    p->set_old_value(e.old_value);
    p->set_new_value(e.new_value);
    p->set_time_ms(e.time_ms);
    p->set_actor(e.actor);
  }
}

}  // namespace mnemo::server
