// The memory write path (see memory_engine.h): Add with its exact- and
// near-duplicate handling, Update, Delete, DeleteAll and Reset. Each call
// validates, embeds outside the namespace lock, then stages the memories'
// chunks (StoreImpl::StageUpsertLocked / StageChunkDeletesLocked), their
// duplicate and expiry rows and their history events into one
// NamespaceWrite and commits it with StoreImpl::CommitLocked: a memory, its
// event and its index changes land together or not at all.
#include <cmath>
#include <exception>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "db/hybrid_candidates.h"
#include "db/keys.h"
#include "db/memory_engine.h"
#include "db/memory_filter.h"
#include "db/memory_records.h"
#include "db/records.h"
#include "db/store_impl.h"
#include "db/text.h"
#include "db/validation.h"
#include "nlohmann/json.hpp"

namespace mnemo::db {
namespace {

using Json = nlohmann::json;

constexpr float kDefaultNearDuplicate = 0.9f;
constexpr size_t kMaxScopeBytes = 256;

absl::Status ValidateScope(const MemoryScope& scope) {
  if (scope.empty()) {
    return absl::InvalidArgumentError(
        "a memory scope needs at least one of user_id, agent_id and run_id");
  }
  for (const auto& [value, name] : {std::pair<const std::string*, const char*>{
                                        &scope.user_id, "user_id"},
                                    {&scope.agent_id, "agent_id"},
                                    {&scope.run_id, "run_id"}}) {
    if (value->size() > kMaxScopeBytes) {
      return absl::InvalidArgumentError(absl::StrCat(name, " is ", value->size(),
                                                     " bytes; the limit is ", kMaxScopeBytes));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateMemoryText(absl::string_view text, absl::string_view what,
                                const Limits& limits) {
  RETURN_IF_ERROR(ValidateText(text, what, limits));
  if (IsBlank(text)) return absl::InvalidArgumentError(absl::StrCat(what, " has empty text"));
  return absl::OkStatus();
}

absl::Status ValidateTime(std::optional<int64_t> ms, absl::string_view name) {
  if (ms.has_value() && *ms < 0) {
    return absl::InvalidArgumentError(absl::StrCat(name, " must be >= 0 (Unix ms), got ", *ms));
  }
  return absl::OkStatus();
}

bool Expired(const Memory& m, int64_t now_ms) {
  return m.expires_at_ms.has_value() && *m.expires_at_ms <= now_ms;
}

std::string NotFoundMessage(absl::string_view id, absl::string_view ns) {
  return absl::StrCat("memory '", id, "' not found in namespace '", ns, "'");
}

}  // namespace

absl::StatusOr<std::pair<int64_t, Memory>> MemoryEngine::LoadLocked(Namespace* ns,
                                                                     absl::string_view id) {
  if (!memrecords::IsMemoryId(id)) {
    return absl::NotFoundError(NotFoundMessage(id, ns->config.name));
  }
  ASSIGN_OR_RETURN(auto mapped, owner_->GetOne(owner_->idmap_, keys::IdMapKey(ns->nsid, id)));
  if (!mapped.has_value()) return absl::NotFoundError(NotFoundMessage(id, ns->config.name));
  std::optional<uint64_t> internal = keys::ReadU64(*mapped);
  if (!internal.has_value()) return absl::DataLossError("malformed id map entry");
  const auto iid = static_cast<int64_t>(*internal);
  ASSIGN_OR_RETURN(auto row, owner_->GetOne(owner_->chunks_, keys::RowKey(ns->nsid, iid)));
  if (!row.has_value()) return absl::DataLossError(absl::StrCat("memory '", id, "' has no row"));
  Chunk chunk;
  RETURN_IF_ERROR(records::DecodeChunk(*row, &chunk));
  absl::StatusOr<Memory> memory = memrecords::MemoryFromChunk(chunk);
  if (absl::IsNotFound(memory.status())) {
    return absl::NotFoundError(NotFoundMessage(id, ns->config.name));
  }
  if (!memory.ok()) return memory.status();
  return std::make_pair(iid, *std::move(memory));
}

absl::Status MemoryEngine::StageMemoriesLocked(Namespace* ns, const std::vector<Memory>& memories,
                                               const std::vector<std::optional<Memory>>& before,
                                               std::vector<Embedded>* embedded,
                                               NamespaceWrite* write) {
  const uint32_t nsid = ns->nsid;
  rocksdb::ColumnFamilyHandle* cf = owner_->memory_;
  std::vector<Chunk> chunks(memories.size());
  std::vector<std::vector<uint32_t>> terms(memories.size());
  std::vector<index::Attributes> attrs(memories.size());
  for (size_t i = 0; i < memories.size(); ++i) {
    const Memory& m = memories[i];
    Chunk& chunk = chunks[i];
    chunk.id = m.id;
    chunk.text = m.text;
    chunk.metadata_json = memrecords::EncodeMemoryMetadata(m);
    chunk.vector = std::move((*embedded)[i].vector);
    terms[i] = std::move((*embedded)[i].terms);
    ASSIGN_OR_RETURN(attrs[i], index::ParseAttributes(chunk.metadata_json));
    const std::string hash_key =
        memrecords::HashKey(nsid, m.scope, memrecords::TextHash(m.text));
    if (before[i].has_value()) {
      const Memory& old = *before[i];
      const std::string old_key =
          memrecords::HashKey(nsid, old.scope, memrecords::TextHash(old.text));
      if (old_key != hash_key) {
        ASSIGN_OR_RETURN(auto owner, owner_->GetOne(cf, old_key));
        if (owner.has_value() && *owner == m.id) write->batch.Delete(cf, old_key);
      }
      if (old.expires_at_ms.has_value() && old.expires_at_ms != m.expires_at_ms) {
        write->batch.Delete(cf, memrecords::ExpiryKey(nsid, *old.expires_at_ms, m.id));
      }
    }
    write->batch.Put(cf, hash_key, m.id);
    if (m.expires_at_ms.has_value()) {
      write->batch.Put(cf, memrecords::ExpiryKey(nsid, *m.expires_at_ms, m.id), "");
    }
  }
  return owner_->StageUpsertLocked(ns, {}, chunks, {}, terms, &attrs, write);
}

absl::Status MemoryEngine::StageRemovalLocked(Namespace* ns, const std::vector<Memory>& memories,
                                              absl::string_view actor, NamespaceWrite* write) {
  const uint32_t nsid = ns->nsid;
  rocksdb::ColumnFamilyHandle* cf = owner_->memory_;
  std::vector<std::string> ids;
  const int64_t now = NowMs();
  for (const Memory& m : memories) {
    ids.push_back(m.id);
    const std::string hash_key =
        memrecords::HashKey(nsid, m.scope, memrecords::TextHash(m.text));
    ASSIGN_OR_RETURN(auto owner, owner_->GetOne(cf, hash_key));
    if (owner.has_value() && *owner == m.id) write->batch.Delete(cf, hash_key);
    if (m.expires_at_ms.has_value()) {
      write->batch.Delete(cf, memrecords::ExpiryKey(nsid, *m.expires_at_ms, m.id));
    }
    MemoryEvent event;
    event.memory_id = m.id;
    event.kind = MemoryEventKind::kDelete;
    event.old_text = m.text;
    event.time_ms = now;
    event.actor = std::string(actor);
    RETURN_IF_ERROR(StageEventLocked(*ns, event, 0, write));
  }
  return owner_->StageChunkDeletesLocked(ns, ids, write).status();
}

absl::StatusOr<std::vector<MemoryAddResult>> MemoryEngine::Add(
    absl::string_view ns_name, absl::Span<const MemoryInput> inputs,
    const MemoryAddOptions& options) {
  const Limits& limits = owner_->options().limits;
  RETURN_IF_ERROR(ValidateScope(options.scope));
  if (inputs.empty()) return absl::InvalidArgumentError("no memories to add");
  if (inputs.size() > limits.max_write_batch) {
    return absl::ResourceExhaustedError(absl::StrCat(inputs.size(),
                                                     " memories in one add; the limit is ",
                                                     limits.max_write_batch));
  }
  const float threshold = options.near_duplicate_threshold.value_or(kDefaultNearDuplicate);
  if (!std::isfinite(threshold) || threshold < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "near_duplicate_threshold must be a finite number >= 0, got ", threshold));
  }
  std::vector<std::string> texts;
  std::vector<std::string> metadata;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const std::string what = absl::StrCat("memory ", i);
    RETURN_IF_ERROR(ValidateMemoryText(inputs[i].text, what, limits));
    ASSIGN_OR_RETURN(std::string meta, NormalizeUserMetadata(inputs[i].metadata_json, what, limits));
    RETURN_IF_ERROR(ValidateTime(inputs[i].expires_at_ms, "expires_at"));
    RETURN_IF_ERROR(ValidateTime(inputs[i].valid_at_ms, "valid_at"));
    texts.push_back(inputs[i].text);
    metadata.push_back(std::move(meta));
  }
  ASSIGN_OR_RETURN(NamespacePtr ns, OpenNamespace(ns_name, /*create=*/true));
  ASSIGN_OR_RETURN(std::vector<Embedded> embedded, Embed(*ns, texts));

  absl::MutexLock lock(&ns->mu);
  RETURN_IF_ERROR(ns->GoneStatus());
  const int64_t now = NowMs();
  MemorySelection same_scope;
  same_scope.scope = options.scope;
  same_scope.exact_scope = true;
  same_scope.now_ms = now;
  MemoryPredicate live_in_scope(&ns->attrs, &same_scope);
  // The near-duplicate candidates: the scope's memories when they are few
  // (scored exactly, hybrid_candidates.h), else the dense index under the
  // predicate. Neither sees this call's own inputs (staged_index does).
  std::optional<std::vector<int64_t>> scope_memories;
  if (threshold <= 1) {
    const std::pair<const char*, std::string> scope_fields[] = {
        {memrecords::kAttrUser, options.scope.user_id},
        {memrecords::kAttrAgent, options.scope.agent_id},
        {memrecords::kAttrRun, options.scope.run_id}};
    scope_memories =
        ScopeCandidatesLocked(*ns, scope_fields, kScopePlanMaxRecords, live_in_scope);
  }

  std::vector<MemoryAddResult> results(inputs.size());
  std::vector<Memory> staged;
  std::vector<std::optional<Memory>> before;
  std::vector<Embedded> staged_embedded;
  absl::flat_hash_map<std::string, size_t> staged_index;  // memory id -> staged position
  absl::flat_hash_map<uint64_t, size_t> batch_texts;      // text hash -> result index
  std::vector<MemoryEvent> events;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const MemoryInput& in = inputs[i];
    const uint64_t hash = memrecords::TextHash(in.text);
    MemoryAddResult& result = results[i];

    // Exact duplicates: of an earlier input, then of a stored live memory.
    if (auto it = batch_texts.find(hash);
        it != batch_texts.end() && results[it->second].memory.text == in.text) {
      result.outcome = MemoryAddOutcome::kNoop;
      result.memory = results[it->second].memory;
      result.similarity = 1;
      continue;
    }
    ASSIGN_OR_RETURN(auto dup_id,
                     owner_->GetOne(owner_->memory_,
                                    memrecords::HashKey(ns->nsid, options.scope, hash)));
    if (dup_id.has_value() && !staged_index.contains(*dup_id)) {
      absl::StatusOr<std::pair<int64_t, Memory>> dup = LoadLocked(ns.get(), *dup_id);
      if (!dup.ok() && !absl::IsNotFound(dup.status())) return dup.status();
      if (dup.ok() && dup->second.text == in.text && !Expired(dup->second, now)) {
        result.outcome = MemoryAddOutcome::kNoop;
        result.memory = dup->second;
        result.similarity = 1;
        batch_texts[hash] = i;
        continue;
      }
    }

    // Near duplicate: the most similar live memory of the scope.
    std::optional<std::pair<std::string, float>> near;
    if (threshold <= 1 && ns->index->size() > 0) {
      std::vector<index::ScoredId> best;
      if (scope_memories.has_value()) {
        ASSIGN_OR_RETURN(best,
                         DenseAmongLocked(*owner_, *ns, embedded[i].vector, *scope_memories, 1));
      } else {
        ASSIGN_OR_RETURN(auto lists, owner_->DenseSearchLocked(ns.get(), embedded[i].vector, 1,
                                                               SearchOptions(), &live_in_scope));
        if (!lists.empty()) best = std::move(lists[0]);
      }
      if (!best.empty() && best[0].second >= threshold) {
        auto ext = ns->external_ids.find(best[0].first);
        if (ext != ns->external_ids.end()) near.emplace(ext->second, best[0].second);
      }
    }

    MemoryEvent event;
    event.time_ms = now;
    event.actor = options.actor;
    event.new_text = in.text;
    Memory m;
    if (near.has_value()) {
      auto at = staged_index.find(near->first);
      if (at != staged_index.end()) {
        m = staged[at->second];
      } else {
        ASSIGN_OR_RETURN(auto loaded, LoadLocked(ns.get(), near->first));
        m = std::move(loaded.second);
        staged_index[m.id] = staged.size();
        before.emplace_back(m);  // the stored version
        staged.push_back(m);
        staged_embedded.emplace_back();
        at = staged_index.find(m.id);
      }
      event.kind = MemoryEventKind::kUpdate;
      event.old_text = m.text;
      Json merged = Json::parse(m.metadata_json);
      merged.update(Json::parse(metadata[i]));
      m.metadata_json = merged.dump();
      m.updated_at_ms = now;
      if (in.expires_at_ms.has_value()) m.expires_at_ms = in.expires_at_ms;
      if (in.valid_at_ms.has_value()) m.valid_at_ms = *in.valid_at_ms;
      result.outcome = MemoryAddOutcome::kUpdated;
      result.similarity = near->second;
      m.text = in.text;
      m.hash = memrecords::HashHex(hash);
      staged[at->second] = m;
      staged_embedded[at->second] = std::move(embedded[i]);
    } else {
      m.id = memrecords::NewMemoryId(now);
      m.text = in.text;
      m.metadata_json = metadata[i];
      m.scope = options.scope;
      m.created_at_ms = now;
      m.updated_at_ms = now;
      m.expires_at_ms = in.expires_at_ms;
      m.valid_at_ms = in.valid_at_ms.value_or(now);
      m.hash = memrecords::HashHex(hash);
      event.kind = MemoryEventKind::kAdd;
      result.outcome = MemoryAddOutcome::kAdded;
      staged_index[m.id] = staged.size();
      staged.push_back(m);
      before.emplace_back(std::nullopt);
      staged_embedded.push_back(std::move(embedded[i]));
    }
    event.memory_id = m.id;
    events.push_back(std::move(event));
    result.memory = std::move(m);
    batch_texts[hash] = i;
  }
  if (staged.empty()) return results;

  NamespaceWrite write;
  RETURN_IF_ERROR(StageMemoriesLocked(ns.get(), staged, before, &staged_embedded, &write));
  absl::flat_hash_map<std::string, uint32_t> pending;
  for (const MemoryEvent& event : events) {
    RETURN_IF_ERROR(StageEventLocked(*ns, event, pending[event.memory_id]++, &write));
  }
  RETURN_IF_ERROR(owner_->CommitLocked(ns.get(), &write, "adding memories"));
  return results;
}

absl::StatusOr<Memory> MemoryEngine::Update(absl::string_view ns_name, absl::string_view id,
                                            const MemoryUpdate& update) {
  const Limits& limits = owner_->options().limits;
  if (!update.text.has_value() && !update.metadata_json.has_value() &&
      !update.expires_at_ms.has_value() && !update.valid_at_ms.has_value() &&
      !update.invalid_at_ms.has_value()) {
    return absl::InvalidArgumentError(
        "an update needs at least one of text, metadata, expires_at, valid_at, invalid_at");
  }
  if (update.text.has_value()) {
    RETURN_IF_ERROR(ValidateMemoryText(*update.text, "the update", limits));
  }
  std::optional<std::string> metadata;
  if (update.metadata_json.has_value()) {
    ASSIGN_OR_RETURN(metadata, NormalizeUserMetadata(*update.metadata_json, "the update", limits));
  }
  RETURN_IF_ERROR(ValidateTime(update.expires_at_ms, "expires_at"));
  RETURN_IF_ERROR(ValidateTime(update.valid_at_ms, "valid_at"));
  RETURN_IF_ERROR(ValidateTime(update.invalid_at_ms, "invalid_at"));
  ASSIGN_OR_RETURN(NamespacePtr ns, OpenNamespace(ns_name, /*create=*/false));
  std::vector<Embedded> embedded;
  if (update.text.has_value()) {
    ASSIGN_OR_RETURN(embedded, Embed(*ns, {*update.text}));
  }

  absl::MutexLock lock(&ns->mu);
  RETURN_IF_ERROR(ns->GoneStatus());
  ASSIGN_OR_RETURN(auto loaded, LoadLocked(ns.get(), id));
  const Memory& old = loaded.second;
  const int64_t now = NowMs();
  if (Expired(old, now)) {
    return absl::FailedPreconditionError(
        absl::StrCat("memory '", id, "' expired at ", *old.expires_at_ms,
                     " (Unix ms); an expired memory cannot be updated"));
  }
  Memory m = old;
  if (update.text.has_value()) {
    m.text = *update.text;
    m.hash = memrecords::HashHex(memrecords::TextHash(m.text));
  } else {
    // Same text: the stored vector and the text's terms.
    ASSIGN_OR_RETURN(auto row,
                     owner_->GetOne(owner_->dense_, keys::RowKey(ns->nsid, loaded.first)));
    if (!row.has_value()) return absl::DataLossError(absl::StrCat("memory '", id, "' has no vector"));
    embedded.emplace_back();
    RETURN_IF_ERROR(records::DecodeVector(*row, ns->config.dim, &embedded[0].vector));
    ASSIGN_OR_RETURN(const text::TextEncoder* enc,
                     text::GetEncoder(owner_->options().encoder_dir, ns->config.encoder));
    ASSIGN_OR_RETURN(std::vector<int> ids, enc->Tokenize(m.text));
    embedded[0].terms.assign(ids.begin(), ids.end());
  }
  if (metadata.has_value()) m.metadata_json = *metadata;
  if (update.expires_at_ms.has_value()) {
    m.expires_at_ms = *update.expires_at_ms == 0 ? std::nullopt : update.expires_at_ms;
  }
  if (update.valid_at_ms.has_value()) m.valid_at_ms = *update.valid_at_ms;
  if (update.invalid_at_ms.has_value()) {
    m.invalid_at_ms = *update.invalid_at_ms == 0 ? std::nullopt : update.invalid_at_ms;
  }
  m.updated_at_ms = now;

  NamespaceWrite write;
  RETURN_IF_ERROR(StageMemoriesLocked(ns.get(), {m}, {old}, &embedded, &write));
  MemoryEvent event;
  event.memory_id = m.id;
  event.kind = MemoryEventKind::kUpdate;
  event.old_text = old.text;
  event.new_text = m.text;
  event.time_ms = now;
  event.actor = update.actor;
  RETURN_IF_ERROR(StageEventLocked(*ns, event, 0, &write));
  RETURN_IF_ERROR(owner_->CommitLocked(ns.get(), &write, "updating a memory"));
  return m;
}

absl::Status MemoryEngine::Delete(absl::string_view ns_name, absl::string_view id,
                                  absl::string_view actor) {
  ASSIGN_OR_RETURN(NamespacePtr ns, OpenNamespace(ns_name, /*create=*/false));
  absl::MutexLock lock(&ns->mu);
  RETURN_IF_ERROR(ns->GoneStatus());
  ASSIGN_OR_RETURN(auto loaded, LoadLocked(ns.get(), id));
  NamespaceWrite write;
  RETURN_IF_ERROR(StageRemovalLocked(ns.get(), {loaded.second}, actor, &write));
  return owner_->CommitLocked(ns.get(), &write, "deleting a memory");
}

absl::StatusOr<uint64_t> MemoryEngine::DeleteAll(absl::string_view ns_name,
                                                 const MemoryScope& scope,
                                                 absl::string_view actor) {
  RETURN_IF_ERROR(ValidateScope(scope));
  ASSIGN_OR_RETURN(NamespacePtr ns, OpenNamespace(ns_name, /*create=*/false));
  absl::MutexLock lock(&ns->mu);
  RETURN_IF_ERROR(ns->GoneStatus());
  MemorySelection selection;
  selection.scope = scope;
  selection.show_expired = true;
  ASSIGN_OR_RETURN(std::vector<Memory> victims, ScanLocked(ns.get(), selection, "", SIZE_MAX));
  if (victims.empty()) return uint64_t{0};
  NamespaceWrite write;
  RETURN_IF_ERROR(StageRemovalLocked(ns.get(), victims, actor, &write));
  RETURN_IF_ERROR(owner_->CommitLocked(ns.get(), &write, "deleting memories"));
  return victims.size();
}

absl::StatusOr<uint64_t> MemoryEngine::Reset(absl::string_view ns_name) {
  ASSIGN_OR_RETURN(NamespacePtr ns, OpenNamespace(ns_name, /*create=*/false));
  absl::MutexLock lock(&ns->mu);
  RETURN_IF_ERROR(ns->GoneStatus());
  MemorySelection selection;
  selection.show_expired = true;
  ASSIGN_OR_RETURN(std::vector<Memory> victims, ScanLocked(ns.get(), selection, "", SIZE_MAX));
  NamespaceWrite write;
  std::vector<std::string> ids;
  for (const Memory& m : victims) ids.push_back(m.id);
  if (!ids.empty()) {
    RETURN_IF_ERROR(owner_->StageChunkDeletesLocked(ns.get(), ids, &write).status());
  }
  for (char kind : {'h', 'e', 'x'}) {
    const std::string begin = memrecords::KindPrefix(ns->nsid, kind);
    write.batch.DeleteRange(owner_->memory_, begin, keys::PrefixEnd(begin));
  }
  RETURN_IF_ERROR(owner_->CommitLocked(ns.get(), &write, "resetting memories"));
  return victims.size();
}

}  // namespace mnemo::db
