// The SDK's agent-memory calls (Client::Memory*, mnemo/memory.h): the SDK
// <-> MnemoMemory wire conversions (the JSON filter is parsed by the one
// parser of its syntax, common/memory_filter.h, and sent as a tree), the
// ClientImpl methods, and the UNIMPLEMENTED defaults for test fakes.
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "client/client_impl.h"
#include "common/memory_filter.h"
#include "common/status_macros.h"

namespace mnemo {

namespace {

absl::Status Unimplemented(const char* what) {
  return absl::UnimplementedError(absl::StrCat(what, " is not implemented by this client"));
}

}  // namespace

absl::StatusOr<std::vector<MemoryAddResult>> Client::MemoryAdd(const std::string&,
                                                               const std::vector<MemoryInput>&,
                                                               const MemoryAddOptions&,
                                                               const CallOptions&) {
  return Unimplemented("MemoryAdd");
}
absl::StatusOr<std::vector<MemoryHit>> Client::MemorySearch(const MemorySearchRequest&,
                                                            const CallOptions&) {
  return Unimplemented("MemorySearch");
}
absl::StatusOr<Memory> Client::MemoryGet(const std::string&, const std::string&,
                                         const CallOptions&) {
  return Unimplemented("MemoryGet");
}
absl::StatusOr<MemoryPage> Client::MemoryList(const MemoryListRequest&, const CallOptions&) {
  return Unimplemented("MemoryList");
}
absl::StatusOr<Memory> Client::MemoryUpdate(const std::string&, const std::string&,
                                            const MemoryChanges&, const CallOptions&) {
  return Unimplemented("MemoryUpdate");
}
absl::Status Client::MemoryDelete(const std::string&, const std::string&, const std::string&,
                                  const CallOptions&) {
  return Unimplemented("MemoryDelete");
}
absl::StatusOr<uint64_t> Client::MemoryDeleteAll(const std::string&, const MemoryScope&,
                                                 const std::string&, const CallOptions&) {
  return Unimplemented("MemoryDeleteAll");
}
absl::StatusOr<std::vector<MemoryEvent>> Client::MemoryHistory(const std::string&,
                                                               const std::string&,
                                                               const CallOptions&) {
  return Unimplemented("MemoryHistory");
}
absl::StatusOr<uint64_t> Client::MemoryReset(const std::string&, const CallOptions&) {
  return Unimplemented("MemoryReset");
}
absl::StatusOr<MemoryBlock> Client::BlockGet(const std::string&, const std::string&,
                                             const std::string&, const CallOptions&) {
  return Unimplemented("BlockGet");
}
absl::StatusOr<MemoryBlock> Client::BlockEdit(const std::string&, const std::string&,
                                              const std::string&, const BlockChange&,
                                              const CallOptions&) {
  return Unimplemented("BlockEdit");
}
absl::StatusOr<std::vector<BlockEvent>> Client::BlockHistory(const std::string&,
                                                             const std::string&,
                                                             const std::string&,
                                                             const CallOptions&) {
  return Unimplemented("BlockHistory");
}

namespace client_internal {
namespace {

v1::MemoryFilterOp OpToProto(filter::MemoryOp op) {
  switch (op) {
    case filter::MemoryOp::kEq: return v1::MEMORY_FILTER_OP_EQ;
    case filter::MemoryOp::kNe: return v1::MEMORY_FILTER_OP_NE;
    case filter::MemoryOp::kIn: return v1::MEMORY_FILTER_OP_IN;
    case filter::MemoryOp::kNin: return v1::MEMORY_FILTER_OP_NIN;
    case filter::MemoryOp::kGt: return v1::MEMORY_FILTER_OP_GT;
    case filter::MemoryOp::kGte: return v1::MEMORY_FILTER_OP_GTE;
    case filter::MemoryOp::kLt: return v1::MEMORY_FILTER_OP_LT;
    case filter::MemoryOp::kLte: return v1::MEMORY_FILTER_OP_LTE;
    case filter::MemoryOp::kContains: return v1::MEMORY_FILTER_OP_CONTAINS;
    case filter::MemoryOp::kIContains: return v1::MEMORY_FILTER_OP_ICONTAINS;
  }
  return v1::MEMORY_FILTER_OP_UNSPECIFIED;
}

void FilterToProto(const filter::MemoryFilter& f, v1::MemoryFilter* out) {
  switch (f.kind) {
    case filter::MemoryFilter::Kind::kAll:
      return;
    case filter::MemoryFilter::Kind::kAnd:
      for (const auto& c : f.children) FilterToProto(c, out->mutable_all_of()->add_filters());
      return;
    case filter::MemoryFilter::Kind::kOr:
      for (const auto& c : f.children) FilterToProto(c, out->mutable_any_of()->add_filters());
      return;
    case filter::MemoryFilter::Kind::kNot:
      FilterToProto(f.children[0], out->mutable_negation());
      return;
    case filter::MemoryFilter::Kind::kCondition:
      break;
  }
  v1::MemoryCondition* cond = out->mutable_condition();
  cond->set_field(f.field);
  cond->set_op(OpToProto(f.op));
  for (const filter::FilterValue& v : f.values) {
    v1::MemoryFilterValue* p = cond->add_values();
    if (const auto* s = std::get_if<std::string>(&v)) {
      p->set_string_value(*s);
    } else if (const auto* d = std::get_if<double>(&v)) {
      p->set_number_value(*d);
    } else {
      p->set_bool_value(std::get<bool>(v));
    }
  }
}

absl::Status JsonFilterToProto(const std::string& json, v1::MemoryFilter* out) {
  if (absl::StripAsciiWhitespace(json).empty()) return absl::OkStatus();
  ASSIGN_OR_RETURN(filter::MemoryFilter parsed, filter::ParseMemoryFilterJson(json));
  FilterToProto(parsed, out);
  return absl::OkStatus();
}

void ScopeToProto(const MemoryScope& scope, v1::MemoryScope* out) {
  out->set_user_id(scope.user_id);
  out->set_agent_id(scope.agent_id);
  out->set_run_id(scope.run_id);
}

Memory MemoryFromProto(const v1::Memory& p) {
  Memory m;
  m.id = p.id();
  m.text = p.text();
  m.metadata_json = p.metadata_json();
  m.scope.user_id = p.scope().user_id();
  m.scope.agent_id = p.scope().agent_id();
  m.scope.run_id = p.scope().run_id();
  m.created_at_ms = p.created_at_ms();
  m.updated_at_ms = p.updated_at_ms();
  if (p.has_expires_at_ms()) m.expires_at_ms = p.expires_at_ms();
  m.valid_at_ms = p.valid_at_ms();
  if (p.has_invalid_at_ms()) m.invalid_at_ms = p.invalid_at_ms();
  m.hash = p.hash();
  return m;
}

MemoryBlock BlockFromProto(const v1::MemoryBlock& p) {
  MemoryBlock b;
  b.agent_id = p.agent_id();
  b.label = p.label();
  b.value = p.value();
  b.limit_bytes = p.limit_bytes();
  b.updated_at_ms = p.updated_at_ms();
  return b;
}

v1::BlockEditKind BlockKindToProto(BlockEditKind kind) {
  switch (kind) {
    case BlockEditKind::kSet: return v1::BLOCK_EDIT_KIND_SET;
    case BlockEditKind::kAppend: return v1::BLOCK_EDIT_KIND_APPEND;
    case BlockEditKind::kReplace: return v1::BLOCK_EDIT_KIND_REPLACE;
    case BlockEditKind::kInsert: return v1::BLOCK_EDIT_KIND_INSERT;
  }
  return v1::BLOCK_EDIT_KIND_UNSPECIFIED;
}

BlockEditKind BlockKindFromProto(v1::BlockEditKind kind) {
  switch (kind) {
    case v1::BLOCK_EDIT_KIND_APPEND: return BlockEditKind::kAppend;
    case v1::BLOCK_EDIT_KIND_REPLACE: return BlockEditKind::kReplace;
    case v1::BLOCK_EDIT_KIND_INSERT: return BlockEditKind::kInsert;
    default: return BlockEditKind::kSet;
  }
}

}  // namespace

absl::StatusOr<std::vector<MemoryAddResult>> ClientImpl::MemoryAdd(
    const std::string& ns, const std::vector<MemoryInput>& memories,
    const MemoryAddOptions& options, const CallOptions& call) {
  v1::MemoryAddRequest request;
  request.set_namespace_(ns);
  ScopeToProto(options.scope, request.mutable_scope());
  request.set_actor(options.actor);
  if (options.near_duplicate_threshold.has_value()) {
    request.set_near_duplicate_threshold(*options.near_duplicate_threshold);
  }
  for (const MemoryInput& in : memories) {
    v1::MemoryInput* p = request.add_memories();
    p->set_text(in.text);
    p->set_metadata_json(in.metadata_json);
    if (in.expires_at_ms.has_value()) p->set_expires_at_ms(*in.expires_at_ms);
    if (in.valid_at_ms.has_value()) p->set_valid_at_ms(*in.valid_at_ms);
  }
  v1::MemoryAddResponse response;
  // Retried: an exact duplicate of a committed add is dropped by the server.
  RETURN_IF_ERROR(Call(call, [&](grpc::ClientContext* ctx) {
    response.Clear();
    return memory_stub_->MemoryAdd(ctx, request, &response);
  }));
  std::vector<MemoryAddResult> out;
  for (const v1::MemoryAddResult& r : response.results()) {
    MemoryAddResult result;
    switch (r.outcome()) {
      case v1::MEMORY_ADD_OUTCOME_UPDATED:
        result.outcome = MemoryAddOutcome::kUpdated;
        break;
      case v1::MEMORY_ADD_OUTCOME_NOOP:
        result.outcome = MemoryAddOutcome::kNoop;
        break;
      default:
        result.outcome = MemoryAddOutcome::kAdded;
        break;
    }
    result.memory = MemoryFromProto(r.memory());
    result.similarity = r.similarity();
    out.push_back(std::move(result));
  }
  return out;
}

absl::StatusOr<std::vector<MemoryHit>> ClientImpl::MemorySearch(const MemorySearchRequest& req,
                                                                const CallOptions& call) {
  v1::MemorySearchRequest request;
  request.set_namespace_(req.ns);
  ScopeToProto(req.scope, request.mutable_scope());
  request.set_query(req.query);
  if (req.top_k < 1) {
    return absl::InvalidArgumentError(absl::StrCat("top_k must be >= 1, got ", req.top_k));
  }
  request.set_top_k(static_cast<uint32_t>(req.top_k));
  if (req.threshold.has_value()) request.set_threshold(*req.threshold);
  RETURN_IF_ERROR(JsonFilterToProto(req.filter_json, request.mutable_filter()));
  if (req.valid_from_ms.has_value()) request.set_valid_from_ms(*req.valid_from_ms);
  if (req.valid_to_ms.has_value()) request.set_valid_to_ms(*req.valid_to_ms);
  request.set_recency_weight(req.recency_weight);
  request.set_recency_half_life_ms(req.recency_half_life_ms);
  request.set_show_expired(req.show_expired);
  v1::MemorySearchResponse response;
  RETURN_IF_ERROR(Call(call, [&](grpc::ClientContext* ctx) {
    response.Clear();
    return memory_stub_->MemorySearch(ctx, request, &response);
  }));
  std::vector<MemoryHit> out;
  for (const v1::MemoryHit& h : response.hits()) {
    MemoryHit hit;
    hit.memory = MemoryFromProto(h.memory());
    hit.score = h.score();
    hit.similarity = h.similarity();
    out.push_back(std::move(hit));
  }
  return out;
}

absl::StatusOr<Memory> ClientImpl::MemoryGet(const std::string& ns, const std::string& id,
                                             const CallOptions& call) {
  v1::MemoryGetRequest request;
  request.set_namespace_(ns);
  request.set_id(id);
  v1::MemoryGetResponse response;
  RETURN_IF_ERROR(Call(call, [&](grpc::ClientContext* ctx) {
    response.Clear();
    return memory_stub_->MemoryGet(ctx, request, &response);
  }));
  return MemoryFromProto(response.memory());
}

absl::StatusOr<MemoryPage> ClientImpl::MemoryList(const MemoryListRequest& req,
                                                  const CallOptions& call) {
  v1::MemoryListRequest request;
  request.set_namespace_(req.ns);
  ScopeToProto(req.scope, request.mutable_scope());
  RETURN_IF_ERROR(JsonFilterToProto(req.filter_json, request.mutable_filter()));
  request.set_show_expired(req.show_expired);
  request.set_page_size(req.page_size);
  request.set_page_token(req.page_token);
  v1::MemoryListResponse response;
  RETURN_IF_ERROR(Call(call, [&](grpc::ClientContext* ctx) {
    response.Clear();
    return memory_stub_->MemoryList(ctx, request, &response);
  }));
  MemoryPage page;
  for (const v1::Memory& m : response.memories()) page.memories.push_back(MemoryFromProto(m));
  page.next_page_token = response.next_page_token();
  return page;
}

absl::StatusOr<Memory> ClientImpl::MemoryUpdate(const std::string& ns, const std::string& id,
                                                const MemoryChanges& changes,
                                                const CallOptions& call) {
  v1::MemoryUpdateRequest request;
  request.set_namespace_(ns);
  request.set_id(id);
  if (changes.text.has_value()) request.set_text(*changes.text);
  if (changes.metadata_json.has_value()) request.set_metadata_json(*changes.metadata_json);
  if (changes.expires_at_ms.has_value()) request.set_expires_at_ms(*changes.expires_at_ms);
  if (changes.valid_at_ms.has_value()) request.set_valid_at_ms(*changes.valid_at_ms);
  if (changes.invalid_at_ms.has_value()) request.set_invalid_at_ms(*changes.invalid_at_ms);
  request.set_actor(changes.actor);
  v1::MemoryUpdateResponse response;
  RETURN_IF_ERROR(Call(call, [&](grpc::ClientContext* ctx) {
    response.Clear();
    return memory_stub_->MemoryUpdate(ctx, request, &response);
  }));
  return MemoryFromProto(response.memory());
}

absl::Status ClientImpl::MemoryDelete(const std::string& ns, const std::string& id,
                                      const std::string& actor, const CallOptions& call) {
  v1::MemoryDeleteRequest request;
  request.set_namespace_(ns);
  request.set_id(id);
  request.set_actor(actor);
  v1::MemoryDeleteResponse response;
  return Call(call, [&](grpc::ClientContext* ctx) {
    return memory_stub_->MemoryDelete(ctx, request, &response);
  });
}

absl::StatusOr<uint64_t> ClientImpl::MemoryDeleteAll(const std::string& ns,
                                                     const MemoryScope& scope,
                                                     const std::string& actor,
                                                     const CallOptions& call) {
  v1::MemoryDeleteAllRequest request;
  request.set_namespace_(ns);
  ScopeToProto(scope, request.mutable_scope());
  request.set_actor(actor);
  v1::MemoryDeleteAllResponse response;
  RETURN_IF_ERROR(Call(call, [&](grpc::ClientContext* ctx) {
    response.Clear();
    return memory_stub_->MemoryDeleteAll(ctx, request, &response);
  }));
  return response.deleted();
}

absl::StatusOr<std::vector<MemoryEvent>> ClientImpl::MemoryHistory(const std::string& ns,
                                                                   const std::string& id,
                                                                   const CallOptions& call) {
  v1::MemoryHistoryRequest request;
  request.set_namespace_(ns);
  request.set_id(id);
  v1::MemoryHistoryResponse response;
  RETURN_IF_ERROR(Call(call, [&](grpc::ClientContext* ctx) {
    response.Clear();
    return memory_stub_->MemoryHistory(ctx, request, &response);
  }));
  std::vector<MemoryEvent> out;
  for (const v1::MemoryEvent& e : response.events()) {
    MemoryEvent event;
    event.memory_id = e.memory_id();
    switch (e.kind()) {
      case v1::MEMORY_EVENT_KIND_UPDATE:
        event.kind = MemoryEventKind::kUpdate;
        break;
      case v1::MEMORY_EVENT_KIND_DELETE:
        event.kind = MemoryEventKind::kDelete;
        break;
      default:
        event.kind = MemoryEventKind::kAdd;
        break;
    }
    event.old_text = e.old_text();
    event.new_text = e.new_text();
    event.time_ms = e.time_ms();
    event.actor = e.actor();
    out.push_back(std::move(event));
  }
  return out;
}

absl::StatusOr<uint64_t> ClientImpl::MemoryReset(const std::string& ns, const CallOptions& call) {
  v1::MemoryResetRequest request;
  request.set_namespace_(ns);
  v1::MemoryResetResponse response;
  RETURN_IF_ERROR(Call(call, [&](grpc::ClientContext* ctx) {
    response.Clear();
    return memory_stub_->MemoryReset(ctx, request, &response);
  }));
  return response.deleted();
}

absl::StatusOr<MemoryBlock> ClientImpl::BlockGet(const std::string& ns,
                                                 const std::string& agent_id,
                                                 const std::string& label,
                                                 const CallOptions& call) {
  v1::BlockGetRequest request;
  request.set_namespace_(ns);
  request.set_agent_id(agent_id);
  request.set_label(label);
  v1::BlockGetResponse response;
  RETURN_IF_ERROR(Call(call, [&](grpc::ClientContext* ctx) {
    response.Clear();
    return memory_stub_->BlockGet(ctx, request, &response);
  }));
  return BlockFromProto(response.block());
}

absl::StatusOr<MemoryBlock> ClientImpl::BlockEdit(const std::string& ns,
                                                  const std::string& agent_id,
                                                  const std::string& label,
                                                  const BlockChange& change,
                                                  const CallOptions& call) {
  v1::BlockEditRequest request;
  request.set_namespace_(ns);
  request.set_agent_id(agent_id);
  request.set_label(label);
  request.set_kind(BlockKindToProto(change.kind));
  request.set_text(change.text);
  request.set_old_text(change.old_text);
  if (change.line.has_value()) request.set_line(*change.line);
  if (change.limit_bytes.has_value()) request.set_limit_bytes(*change.limit_bytes);
  request.set_actor(change.actor);
  v1::BlockEditResponse response;
  // Not retried: an append or insert is not idempotent.
  grpc::ClientContext ctx;
  ctx.set_deadline(Clock::now() + call.timeout.value_or(options_.default_timeout));
  RETURN_IF_ERROR(FromGrpc(memory_stub_->BlockEdit(&ctx, request, &response)));
  return BlockFromProto(response.block());
}

absl::StatusOr<std::vector<BlockEvent>> ClientImpl::BlockHistory(const std::string& ns,
                                                                 const std::string& agent_id,
                                                                 const std::string& label,
                                                                 const CallOptions& call) {
  v1::BlockHistoryRequest request;
  request.set_namespace_(ns);
  request.set_agent_id(agent_id);
  request.set_label(label);
  v1::BlockHistoryResponse response;
  RETURN_IF_ERROR(Call(call, [&](grpc::ClientContext* ctx) {
    response.Clear();
    return memory_stub_->BlockHistory(ctx, request, &response);
  }));
  std::vector<BlockEvent> out;
  for (const v1::BlockEvent& e : response.events()) {
    BlockEvent event;
    event.kind = BlockKindFromProto(e.kind());
    event.old_value = e.old_value();
    event.new_value = e.new_value();
    event.time_ms = e.time_ms();
    event.actor = e.actor();
    out.push_back(std::move(event));
  }
  return out;
}

}  // namespace client_internal
}  // namespace mnemo
