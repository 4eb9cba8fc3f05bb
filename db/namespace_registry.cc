// The namespace registry: creating (config defaults and checks), getting,
// listing and dropping namespaces, and their NamespaceInfo.
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "db/injection_records.h"
#include "db/keys.h"
#include "db/kv_records.h"
#include "db/namespace_quota.h"
#include "db/records.h"
#include "db/rocks_status.h"
#include "db/store_impl.h"
#include "encoder/chunker.h"
#include "index/multivec.h"
#include "rocksdb/write_batch.h"
#include "spdlog/spdlog.h"

namespace mnemo::db {
namespace {

namespace fs = std::filesystem;

// Chunking defaults of encoder namespaces (see NamespaceConfig).
constexpr uint32_t kDefaultChunkMaxTokens = 128;
constexpr uint32_t kDefaultChunkOverlapTokens = 16;
constexpr uint32_t kMaxChunkTokens = 4096;
// Late interaction defaults (see NamespaceConfig).
constexpr uint32_t kDefaultLateNbits = 2;

}  // namespace

absl::Status ValidateNamespaceName(absl::string_view name) {
  if (name.empty() || name.size() > 128) {
    return absl::InvalidArgumentError(
        absl::StrCat("namespace name must be 1..128 characters, got ", name.size()));
  }
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
    if (!ok) {
      return absl::InvalidArgumentError(absl::StrCat(
          "namespace name '", name, "' may only contain [A-Za-z0-9_.-]"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<NamespaceInfo> StoreImpl::CreateNamespace(const NamespaceConfig& config_in) {
  RETURN_IF_ERROR(ValidateNamespaceName(config_in.name));
  const Limits& limits = options_.limits;
  NamespaceConfig config = config_in;
  if (!config.encoder.empty()) {
    ASSIGN_OR_RETURN(const uint32_t encoder_dim, text::EncoderDim(config.encoder));
    if (config.dim == 0) config.dim = encoder_dim;
    if (config.dim != encoder_dim) {
      return absl::InvalidArgumentError(absl::StrCat("dim ", config.dim, " does not match encoder ",
                                                     config.encoder, " (dim ", encoder_dim,
                                                     "); leave dim 0 to take the encoder's"));
    }
    if (config.metric_unset) {
      config.metric = Metric::kCosine;
      config.metric_unset = false;
    }
    if (config.chunk_max_tokens == 0) config.chunk_max_tokens = kDefaultChunkMaxTokens;
    if (!config.chunk_overlap_tokens.has_value()) {
      config.chunk_overlap_tokens =
          std::min<uint32_t>(kDefaultChunkOverlapTokens, config.chunk_max_tokens / 2);
    }
    if (config.chunk_max_tokens > kMaxChunkTokens) {
      return absl::InvalidArgumentError(absl::StrCat(
          "chunk_max_tokens must be at most ", kMaxChunkTokens, ", got ", config.chunk_max_tokens));
    }
    encoder::ChunkerOptions chunking;
    chunking.max_tokens = static_cast<int>(config.chunk_max_tokens);
    chunking.overlap_tokens = static_cast<int>(
        std::min<uint32_t>(*config.chunk_overlap_tokens, kMaxChunkTokens + 1));
    if (chunking.max_tokens < 1 || chunking.overlap_tokens < 0 ||
        chunking.overlap_tokens > chunking.max_tokens / 2) {
      return absl::InvalidArgumentError(absl::StrCat(
          "chunk_overlap_tokens must be at most half of chunk_max_tokens (", chunking.max_tokens,
          "), got ", *config.chunk_overlap_tokens));
    }
    if (!config.late_interaction.has_value()) config.late_interaction = true;
    if (*config.late_interaction) {
      if (config.late_interaction_nbits == 0) config.late_interaction_nbits = kDefaultLateNbits;
      if (config.late_interaction_nbits != 1 && config.late_interaction_nbits != 2 &&
          config.late_interaction_nbits != 4) {
        return absl::InvalidArgumentError(absl::StrCat(
            "late_interaction_nbits must be 1, 2 or 4, got ", config.late_interaction_nbits));
      }
      if (config.late_interaction_train_tokens == 0) {
        config.late_interaction_train_tokens = index::kLateInteractionTrainTokens;
      }
    } else if (config.late_interaction_nbits != 0 || config.late_interaction_train_tokens != 0) {
      return absl::InvalidArgumentError(
          "late_interaction_nbits and late_interaction_train_tokens need late_interaction");
    }
    // Fail early when the encoder cannot be loaded: such a namespace could
    // not take text.
    RETURN_IF_ERROR(text::GetEncoder(options_.encoder_dir, config.encoder).status());
  } else if (config.chunk_max_tokens != 0 || config.chunk_overlap_tokens.has_value()) {
    return absl::InvalidArgumentError(
        "chunk_max_tokens and chunk_overlap_tokens apply to encoder namespaces only");
  } else if (config.late_interaction.value_or(false) || config.late_interaction_nbits != 0 ||
             config.late_interaction_train_tokens != 0) {
    return absl::InvalidArgumentError(
        "late interaction needs an encoder namespace: its token vectors come from the encoder");
  }
  if (config.encoder.empty()) config.late_interaction = false;
  if (config.metric_unset) config.metric = Metric::kInnerProduct;
  config.metric_unset = false;
  if (config.dim < 1 || config.dim > limits.max_dim) {
    return absl::InvalidArgumentError(absl::StrCat("dim must be in 1..", limits.max_dim,
                                                   ", got ", config.dim));
  }
  if (config.index_factory.empty()) config.index_factory = "Flat";
  auto created = index::DenseIndex::Create(IndexOptionsFor(config));
  if (!created.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("index factory '", config.index_factory,
                                                   "': ", created.status().message()));
  }

  absl::MutexLock l(&mu_);
  if (closed_) return absl::FailedPreconditionError("store is closed");
  if (namespaces_.contains(config.name)) {
    return absl::AlreadyExistsError(absl::StrCat("namespace '", config.name, "' already exists"));
  }
  if (namespaces_.size() >= limits.max_namespaces) {
    return absl::ResourceExhaustedError(
        absl::StrCat("the store already holds the maximum of ", limits.max_namespaces,
                     " namespaces"));
  }
  if (next_nsid_ > keys::kMaxNsId) {
    return absl::ResourceExhaustedError("namespace ids are exhausted");
  }
  auto ns = std::make_shared<Namespace>();
  ns->nsid = next_nsid_;
  ns->created_unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();

  // The quota lives in its own meta row (SetNamespaceQuota changes it).
  const NamespaceQuota quota = config.quota;
  config.quota = NamespaceQuota();
  ns->config = config;
  records::StoredNamespace stored{config, ns->nsid, ns->created_unix_ms};
  rocksdb::WriteBatch batch;
  std::string next;
  keys::AppendU32(&next, ns->nsid + 1);
  records::NamespaceCounters counters;
  batch.Put(meta_, keys::NsConfigKey(config.name), records::EncodeNamespace(stored));
  batch.Put(meta_, keys::NsCountersKey(ns->nsid), records::EncodeCounters(counters));
  batch.Put(meta_, keys::kNextNsIdKey, next);
  if (quota != NamespaceQuota()) batch.Put(meta_, keys::NsQuotaKey(ns->nsid), quota::Encode(quota));
  RETURN_IF_ERROR(WriteToDb(SyncedWrite(), &batch, "creating namespace"));
  next_nsid_ = ns->nsid + 1;

  absl::MutexLock nl(&ns->mu);
  if (!config.encoder.empty()) {
    // The namespace id is fresh, so its BM25 key range is empty.
    ASSIGN_OR_RETURN(ns->bm25, Bm25Index::Open(db_.get(), bm25_, ns->nsid));
  }
  if (*config.late_interaction) {
    ASSIGN_OR_RETURN(ns->multivec, index::MultiVectorIndex::Create(MultiVecOptionsFor(config)));
  }
  ns->index = *std::move(created);
  ns->counters = counters;
  ns->quota = quota;
  ns->snapshot_seq.reset();
  NamespaceInfo info = InfoLocked(*ns);
  namespaces_[config.name] = ns;
  spdlog::info("created namespace '{}' (id {}, dim {}, {})", config.name, ns->nsid, config.dim,
               config.index_factory);
  return info;
}

absl::StatusOr<NamespaceInfo> StoreImpl::GetNamespace(absl::string_view name) {
  ASSIGN_OR_RETURN(NamespacePtr ns, FindNamespace(name));
  absl::ReaderMutexLock l(&ns->mu);
  if (ns->gone != Gone::kDamaged) RETURN_IF_ERROR(ns->GoneStatus());
  return InfoLocked(*ns);
}

absl::StatusOr<std::vector<NamespaceInfo>> StoreImpl::ListNamespaces() { return Stats(""); }

absl::StatusOr<std::vector<NamespaceInfo>> StoreImpl::Stats(absl::string_view name) {
  std::vector<NamespaceInfo> out;
  if (!name.empty()) {
    ASSIGN_OR_RETURN(NamespaceInfo info, GetNamespace(name));
    out.push_back(std::move(info));
    return out;
  }
  // Hold the store lock so Close cannot tear the DB down underneath.
  absl::ReaderMutexLock store_lock(&mu_);
  if (closed_) return absl::FailedPreconditionError("store is closed");
  std::vector<NamespacePtr> all;
  for (const auto& [n, ns] : namespaces_) all.push_back(ns);
  std::sort(all.begin(), all.end(), [](const NamespacePtr& a, const NamespacePtr& b) {
    return a->config.name < b->config.name;
  });
  for (const NamespacePtr& ns : all) {
    absl::ReaderMutexLock l(&ns->mu);
    if (ns->gone != Gone::kNo && ns->gone != Gone::kDamaged) continue;
    out.push_back(InfoLocked(*ns));
  }
  return out;
}

absl::Status StoreImpl::DropNamespace(absl::string_view name) {
  absl::MutexLock l(&mu_);
  if (closed_) return absl::FailedPreconditionError("store is closed");
  auto it = namespaces_.find(name);
  if (it == namespaces_.end()) {
    return absl::NotFoundError(absl::StrCat("namespace '", name, "' does not exist"));
  }
  NamespacePtr ns = it->second;
  absl::MutexLock snapshot_lock(&ns->snapshot_mu);
  absl::MutexLock nl(&ns->mu);

  const std::string begin = keys::NsPrefix(ns->nsid);
  const std::string end = keys::NsEnd(ns->nsid);
  rocksdb::WriteBatch batch;
  for (rocksdb::ColumnFamilyHandle* cf : DataCfs()) {
    RETURN_IF_ERROR(FromRocks(batch.DeleteRange(cf, begin, end), "dropping namespace"));
  }
  batch.Delete(meta_, keys::NsConfigKey(ns->config.name));
  batch.Delete(meta_, keys::NsCountersKey(ns->nsid));
  batch.Delete(meta_, keys::MultiVecCodecKey(ns->nsid));
  batch.Delete(meta_, keys::NsQuotaKey(ns->nsid));
  batch.Delete(meta_, kvrecords::ConfigKey(ns->nsid));
  batch.Delete(meta_, injection::ModelKey(ns->nsid));
  RETURN_IF_ERROR(WriteToDb(SyncedWrite(), &batch, "dropping namespace"));

  ns->gone = Gone::kDropped;
  ns->index.reset();
  ns->bm25.reset();
  ns->multivec.reset();
  ns->kv.reset();
  ns->injection.reset();
  ns->attrs.Clear();
  ns->external_ids.clear();
  namespaces_.erase(it);
  std::error_code ec;
  fs::remove(SnapshotPath(ns->nsid), ec);
  if (ec) {
    // Harmless: Open removes snapshot files of unknown namespaces.
    spdlog::warn("namespace '{}': cannot remove snapshot: {}", ns->config.name, ec.message());
  }
  spdlog::info("dropped namespace '{}' (id {})", ns->config.name, ns->nsid);
  return absl::OkStatus();
}

NamespaceInfo StoreImpl::InfoLocked(const Namespace& ns) {
  NamespaceInfo info;
  info.config = ns.config;
  info.created_unix_ms = ns.created_unix_ms;
  info.approximate_bytes = ApproximateBytesLocked(ns);
  if (ns.gone == Gone::kDamaged) {
    // Nothing of it was loaded: no counts, no index.
    info.damage = std::string(ns.damage.message());
    return info;
  }
  info.chunk_count = ns.external_ids.size();
  info.document_count = ns.document_count;
  info.index_trained = ns.index->is_trained();
  info.index_description = ns.index->Describe();
  info.config.quota = ns.quota;
  info.usage = UsageLocked(ns);
  if (ns.multivec != nullptr) {
    info.late_interaction_tokens = ns.multivec->num_tokens();
    info.late_interaction_trained = ns.multivec->is_trained();
    info.late_interaction_description = ns.multivec->Describe();
  }
  return info;
}

uint64_t StoreImpl::ApproximateBytesLocked(const Namespace& ns) {
  const std::string begin = keys::NsPrefix(ns.nsid);
  const std::string end = keys::NsEnd(ns.nsid);
  rocksdb::Range range(begin, end);
  rocksdb::SizeApproximationOptions approx;
  approx.include_memtables = true;
  approx.include_files = true;
  uint64_t bytes = 0;
  for (rocksdb::ColumnFamilyHandle* cf : DataCfs()) {
    uint64_t size = 0;
    if (db_->GetApproximateSizes(approx, cf, &range, 1, &size).ok()) bytes += size;
  }
  return bytes;
}

}  // namespace mnemo::db
