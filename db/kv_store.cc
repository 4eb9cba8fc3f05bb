// The chunk KV caches of a store (see kv_store.h).
#include "db/kv_store.h"

#include <algorithm>
#include <chrono>
#include <tuple>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "attention/rope.h"
#include "common/status_macros.h"
#include "db/bounded_iterator.h"
#include "db/keys.h"
#include "db/kv_streams.h"
#include "db/namespace_write.h"
#include "db/rocks_status.h"
#include "db/store_impl.h"
#include "db/validation.h"
#include "rocksdb/db.h"
#include "spdlog/spdlog.h"

namespace mnemo::db {
namespace {

int64_t ExpiryMs(int64_t now_ms, int64_t ttl_seconds) {
  if (ttl_seconds <= 0) return 0;
  constexpr int64_t kMaxTtl = int64_t{1} << 40;  // seconds; keeps the sum in range
  return now_ms + std::min(ttl_seconds, kMaxTtl) * 1000;
}

}  // namespace

KvEntry KvEntryOf(const kvrecords::KvChunkRecord& r) {
  KvEntry e;
  e.n_tokens = static_cast<uint32_t>(r.tokens.size());
  e.n_layers = r.n_layers;
  e.stored_bytes = r.stored_bytes;
  e.index_bytes = r.index_bytes;
  e.fp16_bytes = r.fp16_bytes;
  e.expires_ms = r.expires_ms;
  e.pinned = r.pinned;
  e.token_hash = kvrecords::TokenHash(r.tokens);
  e.key_error_sum = r.key_error_sum;
  e.value_error_sum = r.value_error_sum;
  return e;
}

int64_t KvStore::NowMs() const {
  if (clock_) return clock_();
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

absl::Status KvStore::LoadLocked(Namespace* ns) {
  ASSIGN_OR_RETURN(auto value, owner_->GetOne(owner_->meta_cf(), kvrecords::ConfigKey(ns->nsid)));
  if (!value.has_value()) return absl::OkStatus();
  ASSIGN_OR_RETURN(KvConfig config, kvrecords::DecodeConfig(*value));
  ASSIGN_OR_RETURN(ns->kv, KvSpace::Create(config));
  // Recency stamps first: chunks are put into the space oldest first, so
  // the eviction order is the one before the restart (as of the last
  // flushed stamps; chunks without one, from before stamps, come first in
  // put order).
  absl::flat_hash_map<int64_t, uint64_t> stamps;
  {
    const std::string begin = kvrecords::RecencyKeyPrefix(ns->nsid);
    BoundedIterator it(owner_->db(), owner_->kv_cf(), keys::PrefixEnd(begin));
    for (it->Seek(begin); it->Valid(); it->Next()) {
      auto id = kvrecords::RecencyKeyId(View(it->key()));
      if (!id.has_value()) return absl::DataLossError("malformed KV recency key");
      ASSIGN_OR_RETURN(stamps[*id], kvrecords::DecodeRecency(View(it->value())));
    }
    RETURN_IF_ERROR(FromRocks(it->status(), "scanning KV recency"));
  }
  struct Loaded {
    uint64_t recency;
    int64_t created_ms;
    int64_t id;
    KvEntry entry;
  };
  std::vector<Loaded> loaded;
  const std::string begin = kvrecords::ChunkKeyPrefix(ns->nsid);
  const std::string end = keys::PrefixEnd(begin);
  BoundedIterator it(owner_->db(), owner_->kv_cf(), end);
  for (it->Seek(begin); it->Valid(); it->Next()) {
    auto id = kvrecords::ChunkKeyId(View(it->key()));
    if (!id.has_value()) return absl::DataLossError("malformed KV chunk key");
    ASSIGN_OR_RETURN(kvrecords::KvChunkRecord r, kvrecords::DecodeChunkRecord(View(it->value())));
    if (!ns->external_ids.contains(*id)) {
      // Cannot happen (KV is removed in the chunk's own commit); never
      // serve it.
      spdlog::warn("namespace '{}': KV of unknown chunk {} ignored", ns->config.name, *id);
      continue;
    }
    KvEntry e = KvEntryOf(r);
    auto stamp = stamps.find(*id);
    e.recency = stamp == stamps.end() ? 0 : stamp->second;
    loaded.push_back({e.recency, r.created_ms, *id, e});
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "scanning KV chunks"));
  std::sort(loaded.begin(), loaded.end(), [](const Loaded& a, const Loaded& b) {
    return std::tie(a.recency, a.created_ms, a.id) < std::tie(b.recency, b.created_ms, b.id);
  });
  for (const Loaded& l : loaded) ns->kv->Put(l.id, l.entry);
  const size_t chunks = loaded.size();
  spdlog::info("namespace '{}': KV of {} chunks ({})", ns->config.name, chunks,
               config.model.Canonical());
  return absl::OkStatus();
}

absl::StatusOr<KvSpace*> KvStore::SpaceFor(const Namespace& ns,
                                               const ModelFingerprint* model) {
  RETURN_IF_ERROR(ns.GoneStatus());
  if (ns.kv == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        "namespace '", ns.config.name, "' has no registered KV model (RegisterKvModel first)"));
  }
  if (model != nullptr) {
    const KvConfig config = ns.kv->config();
    if (auto diff = FirstDifference(config.model, *model)) {
      return absl::FailedPreconditionError(
          absl::StrCat("model fingerprint does not match namespace '", ns.config.name,
                       "''s KV model: ", diff->ToString()));
    }
  }
  return ns.kv.get();
}

absl::StatusOr<std::optional<int64_t>> KvStore::InternalIdLocked(const Namespace& ns,
                                                                   absl::string_view chunk_id) {
  ASSIGN_OR_RETURN(auto value, owner_->GetOne(owner_->idmap_cf(), keys::IdMapKey(ns.nsid, chunk_id)));
  if (!value.has_value()) return std::optional<int64_t>();
  auto id = keys::ReadU64(*value);
  if (!id.has_value()) return absl::DataLossError("malformed id map entry");
  return std::optional<int64_t>(static_cast<int64_t>(*id));
}

absl::StatusOr<KvStats> KvStore::RegisterKvModel(absl::string_view ns_name,
                                                   const KvConfig& config_in) {
  RETURN_IF_ERROR(ValidateKvConfig(config_in));
  KvConfig config = config_in;
  if (config.eviction_policy.empty()) config.eviction_policy = kKvEvictLru;
  ASSIGN_OR_RETURN(NamespacePtr ns, owner_->FindNamespace(ns_name));
  absl::MutexLock lock(&ns->mu);
  RETURN_IF_ERROR(ns->GoneStatus());
  bool same_model = false;
  if (ns->kv != nullptr) {
    const KvConfig current = ns->kv->config();
    auto diff = FirstDifference(current.model, config.model);
    same_model = !diff.has_value();
    if (!same_model && !ns->kv->empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "namespace '", ns->config.name, "' holds KV of another model (", diff->ToString(),
          "); delete its KV before registering a new model"));
    }
  }
  NamespaceWrite write;
  write.batch.Put(owner_->meta_cf(), kvrecords::ConfigKey(ns->nsid),
                  kvrecords::EncodeConfig(config));
  RETURN_IF_ERROR(owner_->CommitLocked(ns.get(), &write, "registering KV model"));
  if (same_model) {
    RETURN_IF_ERROR(ns->kv->Reconfigure(config));
  } else {
    ASSIGN_OR_RETURN(ns->kv, KvSpace::Create(config));
  }
  return ns->kv->Stats(NowMs());
}

absl::StatusOr<std::unique_ptr<KvChunkWriter>> KvStore::BeginPutKv(absl::string_view ns_name,
                                                                     KvPutHeader header) {
  const Limits& limits = owner_->options().limits;
  RETURN_IF_ERROR(ValidateId(header.chunk_id, "chunk id", limits));
  if (header.tokens.empty() || header.tokens.size() > kMaxKvTokens) {
    return absl::InvalidArgumentError(absl::StrCat("a KV put carries ", header.tokens.size(),
                                                   " token ids; 1..", kMaxKvTokens,
                                                   " are accepted"));
  }
  for (size_t i = 0; i < header.tokens.size(); ++i) {
    if (header.tokens[i] < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("token id ", header.tokens[i], " at ", i, " is negative"));
    }
  }
  if (header.ttl_seconds < 0) return absl::InvalidArgumentError("ttl_seconds must be >= 0");
  if (header.keys_position.has_value() &&
      (*header.keys_position < 0 ||
       *header.keys_position > attention::kMaxRopePosition - kMaxKvTokens)) {
    return absl::InvalidArgumentError("keys_position must be >= 0 and < 2^53");
  }
  ASSIGN_OR_RETURN(NamespacePtr ns, owner_->FindNamespace(ns_name));
  KvConfig config;
  {
    absl::ReaderMutexLock lock(&ns->mu);
    ASSIGN_OR_RETURN(KvSpace * kv, SpaceFor(*ns, &header.model));
    ASSIGN_OR_RETURN(std::optional<int64_t> id, InternalIdLocked(*ns, header.chunk_id));
    if (!id.has_value()) {
      return absl::NotFoundError(absl::StrCat("chunk '", header.chunk_id,
                                              "' does not exist in namespace '", ns_name, "'"));
    }
    config = kv->config();
  }
  return std::unique_ptr<KvChunkWriter>(
      new KvChunkWriterImpl(owner_->lifetime(), this, ns, std::move(header), std::move(config)));
}

absl::StatusOr<KvPutResult> KvStore::CommitPut(const NamespacePtr& ns, const KvPutHeader& header,
                                                const std::vector<std::string>& blocks,
                                                const std::vector<std::string>& index_blocks,
                                                const KvPutResult& encoded, uint64_t fp16_bytes,
                                                uint64_t fingerprint_hash) {
  absl::MutexLock lock(&ns->mu);
  ASSIGN_OR_RETURN(KvSpace * kv, SpaceFor(*ns, &header.model));
  ASSIGN_OR_RETURN(std::optional<int64_t> found, InternalIdLocked(*ns, header.chunk_id));
  if (!found.has_value()) {
    return absl::NotFoundError(
        absl::StrCat("chunk '", header.chunk_id, "' was deleted during the KV put"));
  }
  const int64_t id = *found;
  const int64_t now = NowMs();
  std::vector<int64_t> expired = kv->ExpiredIds(now);
  std::vector<int64_t> freed = expired;
  if (kv->Find(id).has_value()) freed.push_back(id);
  ASSIGN_OR_RETURN(std::vector<int64_t> victims, kv->PlanEviction(encoded.stored_bytes, freed));

  NamespaceWrite write;
  owner_->StageKvRemovalLocked(*ns, &write.batch, freed);
  owner_->StageKvRemovalLocked(*ns, &write.batch, victims);
  kvrecords::KvChunkRecord record;
  record.fingerprint_hash = fingerprint_hash;
  record.n_layers = static_cast<uint32_t>(blocks.size());
  record.stored_bytes = encoded.stored_bytes;
  record.index_bytes = encoded.index_bytes;
  record.fp16_bytes = fp16_bytes;
  record.created_ms = now;
  record.expires_ms = ExpiryMs(
      now, header.ttl_seconds > 0 ? header.ttl_seconds : kv->config().default_ttl_seconds);
  record.pinned = header.pin;
  for (float e : encoded.key_error) record.key_error_sum += e;
  for (float e : encoded.value_error) record.value_error_sum += e;
  record.tokens = header.tokens;
  for (size_t l = 0; l < blocks.size(); ++l) {
    write.batch.Put(owner_->kv_cf(), kvrecords::BlockKey(ns->nsid, id, static_cast<uint32_t>(l)),
                    blocks[l]);
  }
  // Key indexes: one per layer or none (a config without them).
  for (size_t l = 0; l < index_blocks.size(); ++l) {
    write.batch.Put(owner_->kv_cf(),
                    kvrecords::KeyIndexKey(ns->nsid, id, static_cast<uint32_t>(l)),
                    index_blocks[l]);
  }
  write.batch.Put(owner_->kv_cf(), kvrecords::ChunkKey(ns->nsid, id),
                  kvrecords::EncodeChunkRecord(record));
  // The put is the chunk's latest use: its stamp goes in the same batch.
  KvEntry entry = KvEntryOf(record);
  entry.recency = kv->NextRecency();
  write.batch.Put(owner_->kv_cf(), kvrecords::RecencyKey(ns->nsid, id),
                  kvrecords::EncodeRecency(entry.recency));
  for (int64_t e : expired) write.kv_erased.emplace_back(e, KvSpace::Why::kExpired);
  for (int64_t v : victims) write.kv_erased.emplace_back(v, KvSpace::Why::kEvicted);
  write.kv_put.emplace_back(id, entry);
  RETURN_IF_ERROR(owner_->CommitLocked(ns.get(), &write, "writing KV"));
  KvPutResult result = encoded;
  result.evicted_chunks = static_cast<uint32_t>(victims.size());
  return result;
}

absl::StatusOr<std::unique_ptr<KvReader>> KvStore::ReadKv(absl::string_view ns_name,
                                                           const KvReadOptions& options) {
  RETURN_IF_ERROR(ValidateKvIds("KV read", options.chunk_ids, owner_->options().limits));
  if (!options.positions.empty() && options.positions.size() != options.chunk_ids.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "KV read gives ", options.positions.size(), " positions for ",
        options.chunk_ids.size(), " chunks (one per chunk, or none)"));
  }
  for (int64_t p : options.positions) {
    if (p < 0 || p > attention::kMaxRopePosition - kMaxKvTokens) {
      return absl::InvalidArgumentError(absl::StrCat("position ", p, " is out of range"));
    }
  }
  ASSIGN_OR_RETURN(NamespacePtr ns, owner_->FindNamespace(ns_name));
  absl::ReaderMutexLock lock(&ns->mu);
  ASSIGN_OR_RETURN(KvSpace * kv, SpaceFor(*ns, &options.model));
  const auto n_layers = static_cast<uint32_t>(options.model.n_layers);
  const uint32_t layer_end = options.layer_end == 0 ? n_layers : options.layer_end;
  if (options.layer_begin >= layer_end || layer_end > n_layers) {
    return absl::InvalidArgumentError(absl::StrCat("layer range [", options.layer_begin, ", ",
                                                   layer_end, ") is not within the model's ",
                                                   n_layers, " layers"));
  }
  const int64_t now = NowMs();
  std::vector<KvReaderImpl::Item> items;
  absl::flat_hash_set<absl::string_view> distinct;
  for (size_t i = 0; i < options.chunk_ids.size(); ++i) {
    const std::string& chunk_id = options.chunk_ids[i];
    if (!distinct.insert(chunk_id).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("chunk '", chunk_id, "' is named twice in one KV read"));
    }
    ASSIGN_OR_RETURN(std::optional<int64_t> id, InternalIdLocked(*ns, chunk_id));
    if (!id.has_value()) {
      return absl::NotFoundError(
          absl::StrCat("chunk '", chunk_id, "' does not exist in namespace '", ns_name, "'"));
    }
    std::optional<KvEntry> e = kv->Live(*id, now);
    if (!e.has_value()) {
      return absl::NotFoundError(absl::StrCat(
          "chunk '", chunk_id, "' holds no KV (never stored, deleted, evicted or expired)"));
    }
    items.push_back({*id, chunk_id, e->n_tokens,
                     options.positions.empty() ? -1 : options.positions[i]});
  }
  for (const auto& item : items) kv->Touch(item.internal_id);
  return std::unique_ptr<KvReader>(new KvReaderImpl(owner_->lifetime(), owner_->db(), owner_->kv_cf(),
                                                    ns->nsid, std::move(items),
                                                    options.layer_begin, layer_end,
                                                    options.model, options.as_bytes,
                                                    options.with_key_index,
                                                    options.read_ahead_bytes));
}

absl::StatusOr<std::vector<uint32_t>> KvStore::ExistsKv(absl::string_view ns_name,
                                                         absl::Span<const std::string> chunk_ids,
                                                         const ModelFingerprint& model) {
  RETURN_IF_ERROR(ValidateKvIds("KV exists", chunk_ids, owner_->options().limits));
  ASSIGN_OR_RETURN(NamespacePtr ns, owner_->FindNamespace(ns_name));
  absl::ReaderMutexLock lock(&ns->mu);
  ASSIGN_OR_RETURN(KvSpace * kv, SpaceFor(*ns, &model));
  const int64_t now = NowMs();
  std::vector<uint32_t> out;
  for (const std::string& chunk_id : chunk_ids) {
    ASSIGN_OR_RETURN(std::optional<int64_t> id, InternalIdLocked(*ns, chunk_id));
    std::optional<KvEntry> e;
    if (id.has_value()) e = kv->Live(*id, now);
    out.push_back(e.has_value() ? e->n_tokens : 0);
  }
  return out;
}

absl::StatusOr<uint64_t> KvStore::DeleteKv(absl::string_view ns_name,
                                            absl::Span<const std::string> chunk_ids) {
  RETURN_IF_ERROR(ValidateKvIds("KV delete", chunk_ids, owner_->options().limits));
  ASSIGN_OR_RETURN(NamespacePtr ns, owner_->FindNamespace(ns_name));
  absl::MutexLock lock(&ns->mu);
  ASSIGN_OR_RETURN(KvSpace * kv, SpaceFor(*ns, nullptr));
  std::vector<int64_t> ids;
  absl::flat_hash_set<int64_t> seen;
  const int64_t now = NowMs();
  uint64_t live = 0;
  for (const std::string& chunk_id : chunk_ids) {
    ASSIGN_OR_RETURN(std::optional<int64_t> id, InternalIdLocked(*ns, chunk_id));
    if (!id.has_value() || !seen.insert(*id).second) continue;
    std::optional<KvEntry> e = kv->Find(*id);
    if (!e.has_value()) continue;
    if (!e->Expired(now)) ++live;
    ids.push_back(*id);
  }
  if (ids.empty()) return uint64_t{0};
  NamespaceWrite write;
  owner_->StageKvRemovalLocked(*ns, &write.batch, ids);
  for (int64_t id : ids) write.kv_erased.emplace_back(id, KvSpace::Why::kDeleted);
  RETURN_IF_ERROR(owner_->CommitLocked(ns.get(), &write, "deleting KV"));
  return live;
}

absl::StatusOr<KvPrefixMatch> KvStore::LookupPrefix(absl::string_view ns_name,
                                                     const ModelFingerprint& model,
                                                     absl::Span<const int32_t> tokens) {
  constexpr size_t kMaxLookupTokens = size_t{1} << 22;
  if (tokens.size() > kMaxLookupTokens) {
    return absl::ResourceExhaustedError(absl::StrCat("prefix lookup of ", tokens.size(),
                                                     " tokens; the limit is ",
                                                     kMaxLookupTokens));
  }
  ASSIGN_OR_RETURN(NamespacePtr ns, owner_->FindNamespace(ns_name));
  absl::ReaderMutexLock lock(&ns->mu);
  ASSIGN_OR_RETURN(KvSpace * kv, SpaceFor(*ns, &model));
  const int64_t now = NowMs();
  const std::vector<uint32_t> lengths = kv->Lengths();
  KvPrefixMatch match;
  std::vector<int64_t> used;
  size_t pos = 0;
  while (pos < tokens.size()) {
    bool extended = false;
    for (uint32_t len : lengths) {
      if (len > tokens.size() - pos) continue;
      const absl::Span<const int32_t> piece = tokens.subspan(pos, len);
      for (int64_t id : kv->WithTokenHash(kvrecords::TokenHash(piece))) {
        std::optional<KvEntry> e = kv->Live(id, now);
        if (!e.has_value() || e->n_tokens != len) continue;
        ASSIGN_OR_RETURN(auto record, owner_->GetOne(owner_->kv_cf(), kvrecords::ChunkKey(ns->nsid, id)));
        if (!record.has_value()) continue;
        ASSIGN_OR_RETURN(kvrecords::KvChunkRecord r, kvrecords::DecodeChunkRecord(*record));
        if (!std::equal(r.tokens.begin(), r.tokens.end(), piece.begin(), piece.end())) continue;
        auto ext = ns->external_ids.find(id);
        if (ext == ns->external_ids.end()) continue;
        match.chunk_ids.push_back(ext->second);
        match.chunk_tokens.push_back(len);
        used.push_back(id);
        pos += len;
        extended = true;
        break;
      }
      if (extended) break;
    }
    if (!extended) break;
  }
  match.matched_tokens = pos;
  for (int64_t id : used) kv->Touch(id);
  return match;
}

absl::StatusOr<uint64_t> KvStore::SetKvRetention(absl::string_view ns_name,
                                                  absl::Span<const std::string> chunk_ids,
                                                  std::optional<bool> pin,
                                                  std::optional<int64_t> ttl_seconds) {
  RETURN_IF_ERROR(ValidateKvIds("KV retention", chunk_ids, owner_->options().limits));
  if (ttl_seconds.has_value() && *ttl_seconds < 0) {
    return absl::InvalidArgumentError("ttl_seconds must be >= 0");
  }
  ASSIGN_OR_RETURN(NamespacePtr ns, owner_->FindNamespace(ns_name));
  absl::MutexLock lock(&ns->mu);
  ASSIGN_OR_RETURN(KvSpace * kv, SpaceFor(*ns, nullptr));
  const int64_t now = NowMs();
  NamespaceWrite write;
  std::vector<std::pair<int64_t, KvEntry>>& updated = write.kv_retention;
  absl::flat_hash_set<int64_t> seen;
  for (const std::string& chunk_id : chunk_ids) {
    ASSIGN_OR_RETURN(std::optional<int64_t> id, InternalIdLocked(*ns, chunk_id));
    if (!id.has_value() || !seen.insert(*id).second || !kv->Live(*id, now).has_value()) continue;
    ASSIGN_OR_RETURN(auto value, owner_->GetOne(owner_->kv_cf(), kvrecords::ChunkKey(ns->nsid, *id)));
    if (!value.has_value()) return absl::DataLossError("KV chunk record is missing");
    ASSIGN_OR_RETURN(kvrecords::KvChunkRecord r, kvrecords::DecodeChunkRecord(*value));
    if (pin.has_value()) r.pinned = *pin;
    if (ttl_seconds.has_value()) r.expires_ms = ExpiryMs(now, *ttl_seconds);
    write.batch.Put(owner_->kv_cf(), kvrecords::ChunkKey(ns->nsid, *id),
                    kvrecords::EncodeChunkRecord(r));
    updated.emplace_back(*id, KvEntryOf(r));
  }
  if (updated.empty()) return uint64_t{0};
  const auto count = static_cast<uint64_t>(updated.size());
  RETURN_IF_ERROR(owner_->CommitLocked(ns.get(), &write, "updating KV retention"));
  return count;
}

absl::StatusOr<KvStats> KvStore::GetKvStats(absl::string_view ns_name) {
  ASSIGN_OR_RETURN(NamespacePtr ns, owner_->FindNamespace(ns_name));
  absl::ReaderMutexLock lock(&ns->mu);
  ASSIGN_OR_RETURN(KvSpace * kv, SpaceFor(*ns, nullptr));
  return kv->Stats(NowMs());
}

absl::Status KvStore::RemoveExpiredLocked(Namespace* ns) {
  if (ns->kv == nullptr) return absl::OkStatus();
  // Expired KV reads as missing already; this frees its rows.
  const std::vector<int64_t> expired = ns->kv->ExpiredIds(NowMs());
  if (expired.empty()) return absl::OkStatus();
  NamespaceWrite write;
  owner_->StageKvRemovalLocked(*ns, &write.batch, expired);
  for (int64_t id : expired) write.kv_erased.emplace_back(id, KvSpace::Why::kExpired);
  return owner_->CommitLocked(ns, &write, "removing expired KV");
}

}  // namespace mnemo::db
