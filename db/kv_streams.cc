// The KV put and read objects a store hands out (see kv_streams.h).
#include "db/kv_streams.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "attention/rope.h"
#include "common/status_macros.h"
#include "db/kv_codec.h"
#include "db/kv_key_index.h"
#include "db/kv_records.h"
#include "db/kv_store.h"
#include "db/rocks_status.h"

namespace mnemo::db {
namespace {

// The wire type a stored kind is already in, if any.
std::optional<KvDtype> StoredAs(KvCodecKind kind) {
  switch (kind) {
    case KvCodecKind::kFp32:
      return KvDtype::kFp32;
    case KvCodecKind::kFp16:
      return KvDtype::kFp16;
    case KvCodecKind::kBf16:
      return KvDtype::kBf16;
    default:
      return std::nullopt;
  }
}

// Bound on KvReadOptions::read_ahead_bytes (memory per reader).
constexpr uint64_t kMaxReadAheadBytes = uint64_t{1} << 30;

}  // namespace

KvChunkWriterImpl::KvChunkWriterImpl(std::shared_ptr<StoreLifetime> lifetime, KvStore* kv_store,
                                     NamespacePtr ns, KvPutHeader header, KvConfig config)
    : lifetime_(std::move(lifetime)),
      kv_store_(kv_store),
      ns_(std::move(ns)),
      header_(std::move(header)),
      config_(std::move(config)),
      fingerprint_hash_(config_.model.Hash()) {}

absl::Status KvChunkWriterImpl::AddLayer(uint32_t layer, const KvTensorShape& shape,
                                         absl::Span<const float> k, absl::Span<const float> v) {
  if (done_) return absl::FailedPreconditionError("KV put already finished");
  const ModelFingerprint& m = config_.model;
  const auto n_layers = static_cast<uint32_t>(m.n_layers);
  const auto tokens = static_cast<uint32_t>(header_.tokens.size());
  if (layer >= n_layers) {
    return absl::InvalidArgumentError(
        absl::StrCat("layer ", layer, " is out of range: the model has ", n_layers, " layers"));
  }
  if (layer != next_layer_) {
    return absl::InvalidArgumentError(absl::StrCat(
        "layer ", layer, " arrived where layer ", next_layer_, " was expected (in order)"));
  }
  if (shape.heads != static_cast<uint32_t>(m.n_kv_heads) ||
      shape.head_dim != static_cast<uint32_t>(m.head_dim)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "layer ", layer, ": shape [", shape.heads, ", ", shape.tokens, ", ", shape.head_dim,
        "] does not match the model's [n_kv_heads ", m.n_kv_heads, ", tokens, head_dim ",
        m.head_dim, "]"));
  }
  if (shape.tokens != tokens) {
    return absl::InvalidArgumentError(absl::StrCat("layer ", layer, " holds ", shape.tokens,
                                                   " tokens; the chunk's header gives ",
                                                   tokens));
  }
  const size_t elements = static_cast<size_t>(shape.heads) * shape.tokens * shape.head_dim;
  if (k.size() != elements || v.size() != elements) {
    return absl::InvalidArgumentError(absl::StrCat("layer ", layer, ": K holds ", k.size(),
                                                   " and V ", v.size(),
                                                   " values; the shape needs ", elements));
  }
  for (const auto& [name, data] : {std::pair{"K", k}, std::pair{"V", v}}) {
    for (size_t i = 0; i < data.size(); ++i) {
      if (!std::isfinite(data[i])) {
        return absl::InvalidArgumentError(
            absl::StrCat("layer ", layer, ": ", name, " holds a NaN or infinity at element ", i));
      }
    }
  }
  absl::Span<const float> keys = k;
  std::vector<float> unrotated;
  if (header_.keys_position.has_value()) {
    unrotated.assign(k.begin(), k.end());
    RETURN_IF_ERROR(attention::UnrotateKeys(unrotated.data(), m.n_kv_heads,
                                            static_cast<int>(tokens), m.head_dim, m.rope_theta,
                                            *header_.keys_position));
    keys = unrotated;
  }
  const auto t0 = std::chrono::steady_clock::now();
  ASSIGN_OR_RETURN(EncodedKvTensor ek,
                   EncodeKvTensor(keys, shape, KvTensorRole::kKeys, config_.codec));
  ASSIGN_OR_RETURN(EncodedKvTensor ev,
                   EncodeKvTensor(v, shape, KvTensorRole::kValues, config_.codec));
  const auto t1 = std::chrono::steady_clock::now();
  if (config_.key_index_keys_per_cluster > 0) {
    // Over the keys as given (pre-RoPE), not the codec's reconstruction:
    // the summaries then do not compound the codec's error.
    const kvindex::LayerShape index_shape{m.n_kv_heads, static_cast<int>(tokens), m.head_dim};
    ASSIGN_OR_RETURN(std::vector<attention::KeyClusters> index,
                     kvindex::BuildLayerKeyIndex(keys, v, index_shape, m.rope_theta,
                                                 static_cast<int>(config_.key_index_keys_per_cluster)));
    index_blocks_.push_back(kvindex::EncodeLayerKeyIndex(fingerprint_hash_, index));
    result_.index_bytes += index_blocks_.back().size();
    result_.stored_bytes += index_blocks_.back().size();
  }
  const auto t2 = std::chrono::steady_clock::now();
  result_.encode_seconds += std::chrono::duration<double>(t1 - t0).count();
  result_.index_seconds += std::chrono::duration<double>(t2 - t1).count();
  blocks_.push_back(kvrecords::EncodeBlock(fingerprint_hash_, ek.bytes, ev.bytes));
  result_.stored_bytes += blocks_.back().size();
  result_.key_error.push_back(ek.relative_error);
  result_.value_error.push_back(ev.relative_error);
  fp16_bytes_ += 2 * elements * 2;
  ++next_layer_;
  return absl::OkStatus();
}

absl::StatusOr<KvPutResult> KvChunkWriterImpl::Commit() {
  if (done_) return absl::FailedPreconditionError("KV put already finished");
  done_ = true;
  const auto n_layers = static_cast<uint32_t>(config_.model.n_layers);
  if (next_layer_ != n_layers) {
    return absl::InvalidArgumentError(absl::StrCat("KV put of chunk '", header_.chunk_id,
                                                   "' ended after ", next_layer_, " of ",
                                                   n_layers, " layers; nothing was stored"));
  }
  // The pin keeps Close (and so the destruction of kv_store_) waiting
  // until the commit returned.
  StoreLifetime::Pin pin(lifetime_.get());
  if (pin.db() == nullptr) return StoreLifetime::UsedAfterClose("KvChunkWriter");
  return kv_store_->CommitPut(ns_, header_, blocks_, index_blocks_, result_, fp16_bytes_,
                              fingerprint_hash_);
}

KvReaderImpl::KvReaderImpl(std::shared_ptr<StoreLifetime> lifetime, rocksdb::DB* db,
                           rocksdb::ColumnFamilyHandle* cf, uint32_t nsid, std::vector<Item> items,
                           uint32_t layer_begin, uint32_t layer_end, ModelFingerprint model,
                           std::optional<KvDtype> as_bytes, bool with_key_index,
                           uint64_t read_ahead_bytes)
    : lifetime_(std::move(lifetime)),
      as_bytes_(as_bytes),
      with_key_index_(with_key_index),
      cf_(cf),
      snapshot_(db->GetSnapshot()),
      nsid_(nsid),
      items_(std::move(items)),
      layer_begin_(layer_begin),
      layer_end_(layer_end),
      model_(std::move(model)),
      fingerprint_hash_(model_.Hash()),
      read_ahead_bytes_(std::min(read_ahead_bytes, kMaxReadAheadBytes)) {
  lifetime_->Register(this);
}

KvReaderImpl::~KvReaderImpl() {
  // After Close the snapshot was released by ReleaseDb already.
  lifetime_->Unregister(this, [this](rocksdb::DB* db) { ReleaseDb(db); });
}

void KvReaderImpl::ReleaseDb(rocksdb::DB* db) {
  group_values_.clear();
  value_.Reset();
  k_out_.clear();
  v_out_.clear();
  if (snapshot_ != nullptr) db->ReleaseSnapshot(snapshot_);
  snapshot_ = nullptr;
}

uint64_t KvReaderImpl::total_values() const {
  uint64_t tokens = 0;
  for (const Item& item : items_) tokens += item.tokens;
  return 2 * tokens * static_cast<uint64_t>(model_.n_kv_heads) * model_.head_dim *
         (layer_end_ - layer_begin_);
}

absl::StatusOr<bool> KvReaderImpl::Next(KvBlock* block) {
  StoreLifetime::Pin pin(lifetime_.get());
  if (pin.db() == nullptr) return StoreLifetime::UsedAfterClose("KvReader");
  return NextFrom(pin.db(), block);
}

rocksdb::Status KvReaderImpl::ReadBlock(rocksdb::DB* db, const rocksdb::ReadOptions& ro,
                                        size_t i) {
  value_.Reset();
  const size_t chunks = items_.size();
  const size_t n = total_blocks();
  const auto key = [&](size_t j) {
    return kvrecords::BlockKey(nsid_, items_[j % chunks].internal_id,
                               layer_begin_ + static_cast<uint32_t>(j / chunks));
  };
  if (read_ahead_bytes_ == 0 || n < 2) return db->Get(ro, cf_, key(i), &value_);
  if (i < group_begin_ || i >= group_begin_ + group_values_.size()) {
    // Layers per group: every chunk's blocks of them within the budget.
    uint64_t block_bytes = 1;  // the largest block, as fp16 K + V
    for (const Item& item : items_) {
      block_bytes = std::max<uint64_t>(block_bytes, uint64_t{4} * item.tokens *
                                                        model_.n_kv_heads * model_.head_dim);
    }
    const size_t layers = std::clamp<uint64_t>(read_ahead_bytes_ / (block_bytes * chunks), 1,
                                               layer_end_ - layer_begin_);
    const size_t begin = i - i % (layers * chunks);
    const size_t end = std::min(n, begin + layers * chunks);
    // Chunk by chunk: each chunk's blocks of the group's layers lie back
    // to back in its blob file, so the disk and the kernel's readahead see
    // long sequential runs; handed out layer-major from the group.
    std::vector<std::string> keys;
    std::vector<size_t> at;  // keys[k] is block at[k]
    keys.reserve(end - begin);
    at.reserve(end - begin);
    for (size_t c = 0; c < chunks; ++c) {
      for (size_t j = begin + (c + chunks - begin % chunks) % chunks; j < end; j += chunks) {
        keys.push_back(key(j));
        at.push_back(j - begin);
      }
    }
    // One Get after the other, in file order: the kernel's readahead
    // overlaps them (this RocksDB's MultiGet of blob values measured ~20x
    // slower here, bench_kv_read).
    group_values_.clear();
    group_values_.resize(keys.size());
    group_statuses_.assign(keys.size(), rocksdb::Status::OK());
    for (size_t k = 0; k < keys.size(); ++k) {
      group_statuses_[at[k]] = db->Get(ro, cf_, keys[k], &group_values_[at[k]]);
    }
    group_begin_ = begin;
  }
  value_ = std::move(group_values_[i - group_begin_]);
  return group_statuses_[i - group_begin_];
}

absl::StatusOr<bool> KvReaderImpl::NextFrom(rocksdb::DB* db, KvBlock* block) {
  if (next_ >= total_blocks()) return false;
  const size_t chunk_index = next_ % items_.size();
  const uint32_t layer = layer_begin_ + static_cast<uint32_t>(next_ / items_.size());
  ++next_;
  const Item& item = items_[chunk_index];
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot_;
  // Every block carries its own checksums (db/kv_codec.h), verified on
  // decode; RocksDB's second pass over the bytes buys nothing here.
  ro.verify_checksums = false;
  auto corrupt = [&](absl::string_view why) {
    return absl::DataLossError(absl::StrCat("KV of chunk '", item.chunk_id, "' layer ", layer,
                                            ": ", why));
  };
  // A read that fails is DATA_LOSS when what was read is damaged or gone
  // (the reader's snapshot holds it); a file that cannot be read now (EIO)
  // keeps its code (rocks_status.h).
  auto unreadable = [&](const rocksdb::Status& s, absl::string_view what) {
    if (s.IsCorruption() || s.IsNotFound()) {
      return corrupt(absl::StrCat(what, " unreadable: ", s.ToString()));
    }
    return FromRocks(s, absl::StrCat("KV of chunk '", item.chunk_id, "' layer ", layer, ": ",
                                     what, " unreadable"));
  };
  block->tokens.clear();
  if (layer == layer_begin_) {
    std::string record;
    rocksdb::Status s =
        db->Get(ro, cf_, kvrecords::ChunkKey(nsid_, item.internal_id), &record);
    if (!s.ok()) return unreadable(s, "chunk record");
    ASSIGN_OR_RETURN(kvrecords::KvChunkRecord r, kvrecords::DecodeChunkRecord(record));
    block->tokens = std::move(r.tokens);
  }
  rocksdb::Status s = ReadBlock(db, ro, next_ - 1);
  if (!s.ok()) return unreadable(s, "block");
  ASSIGN_OR_RETURN(kvrecords::BlockView view, kvrecords::DecodeBlock(View(value_)));
  if (view.fingerprint_hash != fingerprint_hash_) {
    return absl::FailedPreconditionError(absl::StrCat(
        "KV of chunk '", item.chunk_id, "' layer ", layer,
        " was produced by another model (fingerprint hash ", view.fingerprint_hash, ")"));
  }
  const KvTensorShape want{static_cast<uint32_t>(model_.n_kv_heads), item.tokens,
                           static_cast<uint32_t>(model_.head_dim)};
  KvTensorHeader kh, vh;
  block->k.clear();
  block->v.clear();
  block->k_bytes = {};
  block->v_bytes = {};
  ASSIGN_OR_RETURN(kh, PeekKvTensor(view.k));
  ASSIGN_OR_RETURN(vh, PeekKvTensor(view.v));
  if (!(kh.shape == want) || !(vh.shape == want)) return corrupt("shape does not match");
  if (as_bytes_.has_value() && StoredAs(kh.kind) == as_bytes_ &&
      StoredAs(vh.kind) == as_bytes_ && item.position < 0) {
    // Stored in the asked type: hand the payload over as it is.
    ASSIGN_OR_RETURN(block->k_bytes, ViewKvPayload(view.k, &kh, &k_out_));
    ASSIGN_OR_RETURN(block->v_bytes, ViewKvPayload(view.v, &vh, &v_out_));
  } else {
    RETURN_IF_ERROR(DecodeKvTensor(view.k, &block->k, &kh));
    RETURN_IF_ERROR(DecodeKvTensor(view.v, &block->v, &vh));
    if (item.position >= 0) {
      RETURN_IF_ERROR(attention::RotateKeys(block->k.data(), model_.n_kv_heads,
                                            static_cast<int>(item.tokens), model_.head_dim,
                                            model_.rope_theta, item.position));
    }
    if (as_bytes_.has_value()) {
      k_out_ = FloatsToDtype(block->k, *as_bytes_);
      v_out_ = FloatsToDtype(block->v, *as_bytes_);
      block->k_bytes = k_out_;
      block->v_bytes = v_out_;
      block->k.clear();
      block->v.clear();
    }
  }
  block->key_index.clear();
  if (with_key_index_) {
    std::string index;
    s = db->Get(ro, cf_, kvrecords::KeyIndexKey(nsid_, item.internal_id, layer), &index);
    if (s.IsNotFound()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "KV of chunk '", item.chunk_id, "' layer ", layer,
          " has no key index (put with key_index_keys_per_cluster 0, or before key indexes "
          "existed); put the chunk's KV again"));
    }
    if (!s.ok()) return unreadable(s, "key index");
    ASSIGN_OR_RETURN(block->key_index,
                     kvindex::DecodeLayerKeyIndex(
                         index, fingerprint_hash_,
                         kvindex::LayerShape{model_.n_kv_heads, static_cast<int>(item.tokens),
                                             model_.head_dim}));
  }
  block->chunk_index = chunk_index;
  block->chunk_id = item.chunk_id;
  block->layer = layer;
  block->shape = want;
  block->key_error = kh.relative_error;
  block->value_error = vh.relative_error;
  block->position = item.position;
  return true;
}


}  // namespace mnemo::db
