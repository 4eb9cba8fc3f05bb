// Late interaction's token vectors in the store: preparing them outside the
// lock (token_vectors.h), staging their rows into a write (training the
// residual codec when a write reaches the threshold), applying a committed
// write to the multi-vector index, and rebuilding that index from the
// multivec CF.
#include "db/token_vectors.h"

#include <cmath>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "db/bounded_iterator.h"
#include "db/keys.h"
#include "db/records.h"
#include "db/rocks_status.h"
#include "db/store_impl.h"
#include "db/validation.h"
#include "index/multivec.h"
#include "spdlog/spdlog.h"

namespace mnemo::db {
namespace {

// Chunks whose token states are computed in one encoder call on upsert.
constexpr size_t kTokenEncodeBatch = 64;

void RoundThroughHalf(std::vector<float>* v) {
  for (float& x : *v) x = records::HalfToFloat(records::FloatToHalf(x));
}

}  // namespace

absl::StatusOr<std::vector<float>> CleanTokens(std::vector<float> states, uint32_t dim) {
  std::vector<float> kept;
  kept.reserve(states.size());
  for (size_t t = 0; (t + 1) * dim <= states.size(); ++t) {
    double norm = 0;
    bool finite = true;
    for (size_t j = 0; j < dim; ++j) {
      const float x = states[t * dim + j];
      finite = finite && std::isfinite(x);
      norm += double{x} * x;
    }
    if (!finite || !(norm > 0) || !std::isfinite(norm)) continue;
    kept.insert(kept.end(), states.begin() + t * dim, states.begin() + (t + 1) * dim);
  }
  std::vector<float> out;
  if (kept.empty()) return out;
  RETURN_IF_ERROR(index::NormalizeMultiVectorTokens(kept, dim, &out));
  return out;
}

absl::StatusOr<std::vector<std::optional<PendingTokens>>> PrepareTokens(
    const text::TextEncoder& enc, const std::vector<Chunk>& chunks, uint32_t dim,
    const index::ResidualCodec* codec, std::vector<std::optional<std::vector<float>>>* known) {
  if (enc.token_dim() != static_cast<int>(dim)) {
    return absl::InternalError(absl::StrCat("encoder token states have ", enc.token_dim(),
                                            " dimensions; the namespace dim is ", dim));
  }
  std::vector<std::optional<PendingTokens>> out(chunks.size());
  std::vector<std::string> texts;
  std::vector<size_t> where;
  auto flush = [&]() -> absl::Status {
    if (texts.empty()) return absl::OkStatus();
    std::vector<std::vector<float>> states;
    if (known != nullptr && (*known)[where.front()].has_value()) {
      for (size_t w : where) states.push_back(std::move(*(*known)[w]));
    } else {
      ASSIGN_OR_RETURN(states, enc.EncodeTokens(texts));
    }
    if (states.size() != texts.size()) {
      return absl::InternalError("encoder returned token states for a different batch size");
    }
    for (size_t i = 0; i < states.size(); ++i) {
      ASSIGN_OR_RETURN(std::vector<float> clean, CleanTokens(std::move(states[i]), dim));
      if (clean.empty()) continue;  // no usable token: no row
      PendingTokens pending;
      if (codec != nullptr) {
        ASSIGN_OR_RETURN(pending.codes, codec->Encode(clean));
        pending.encoded = true;
      } else {
        RoundThroughHalf(&clean);
        pending.raw = std::move(clean);
      }
      out[where[i]] = std::move(pending);
    }
    texts.clear();
    where.clear();
    return absl::OkStatus();
  };
  // Chunks whose states are known go in batches of their own, so a batch
  // is either all known or all to encode.
  for (const bool want_known : {true, false}) {
    for (size_t c = 0; c < chunks.size(); ++c) {
      if (IsBlank(chunks[c].text)) continue;
      const bool is_known = known != nullptr && (*known)[c].has_value();
      if (is_known != want_known) continue;
      texts.push_back(chunks[c].text);
      where.push_back(c);
      if (texts.size() >= kTokenEncodeBatch) RETURN_IF_ERROR(flush());
    }
    RETURN_IF_ERROR(flush());
  }
  return out;
}

absl::StatusOr<std::unique_ptr<index::MultiVectorIndex>> StoreImpl::BuildMultiVecFromCf(
    const Namespace& ns) {
  ASSIGN_OR_RETURN(auto mv, index::MultiVectorIndex::Create(MultiVecOptionsFor(ns.config)));
  ASSIGN_OR_RETURN(auto codec_bytes, GetOne(meta_, keys::MultiVecCodecKey(ns.nsid)));
  size_t code_size = 0;
  if (codec_bytes.has_value()) {
    auto codec = index::ResidualCodec::Deserialize(absl::MakeConstSpan(
        reinterpret_cast<const uint8_t*>(codec_bytes->data()), codec_bytes->size()));
    if (!codec.ok()) {
      return absl::DataLossError(
          absl::StrCat("stored token codec: ", codec.status().message()));
    }
    code_size = (*codec)->code_size();
    RETURN_IF_ERROR(Annotate(mv->AdoptCodec(std::shared_ptr<const index::ResidualCodec>(
                                 *std::move(codec))),
                             "stored token codec"));
  }
  const std::string begin = keys::NsPrefix(ns.nsid);
  const std::string end = keys::NsEnd(ns.nsid);
  BoundedIterator it(db_.get(), multivec_, end);
  records::MultiVecRecord row;
  for (it->Seek(begin); it->Valid(); it->Next()) {
    auto id = keys::RowKeyId(View(it->key()));
    if (!id.has_value()) return absl::DataLossError("malformed multivec key");
    const auto internal = static_cast<int64_t>(*id);
    if (!ns.external_ids.contains(internal)) {
      return absl::DataLossError(
          absl::StrCat("multivec row ", internal, " belongs to no stored chunk"));
    }
    RETURN_IF_ERROR(records::DecodeMultiVec(View(it->value()), ns.config.dim, code_size, &row));
    if (row.encoded) {
      RETURN_IF_ERROR(mv->AddEncoded(internal, row.centroids, row.residuals));
    } else {
      // Staged row (or, should a codec exist, one it encodes now).
      RETURN_IF_ERROR(mv->Add(internal, row.raw));
    }
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "scanning token vectors"));
  return mv;
}

absl::Status StoreImpl::StageMultiVecLocked(
    Namespace* ns, rocksdb::WriteBatch* batch, const std::vector<int64_t>& removed,
    const std::vector<int64_t>& ids, std::vector<std::optional<PendingTokens>>* tokens,
    std::shared_ptr<const index::ResidualCodec>* trained,
    std::vector<std::pair<int64_t, index::ResidualCodes>>* reencoded) {
  const uint32_t nsid = ns->nsid;
  const uint32_t dim = ns->config.dim;
  for (int64_t id : removed) batch->Delete(multivec_, keys::RowKey(nsid, id));
  std::shared_ptr<const index::ResidualCodec> codec = ns->multivec->codec();
  // Normalises a staged (fp16-rounded) row as the index does, then encodes.
  auto encode_raw = [&](const index::ResidualCodec& with,
                        const std::vector<float>& raw) -> absl::StatusOr<index::ResidualCodes> {
    std::vector<float> unit;
    RETURN_IF_ERROR(index::NormalizeMultiVectorTokens(raw, dim, &unit));
    return with.Encode(unit);
  };
  uint64_t new_raw_tokens = 0;
  for (const auto& t : *tokens) {
    if (t.has_value() && !t->encoded) new_raw_tokens += t->raw.size() / dim;
  }
  if (codec == nullptr && new_raw_tokens > 0 &&
      ns->multivec->num_tokens() + new_raw_tokens >= ns->config.late_interaction_train_tokens) {
    // Train on every surviving staged row plus this write's tokens, in id
    // order (stored rows first: their ids are smaller).
    absl::flat_hash_set<int64_t> gone(removed.begin(), removed.end());
    std::vector<std::pair<int64_t, std::vector<float>>> staged;
    {
      const std::string begin = keys::NsPrefix(nsid);
      const std::string end = keys::NsEnd(nsid);
      BoundedIterator it(db_.get(), multivec_, end);
      records::MultiVecRecord row;
      for (it->Seek(begin); it->Valid(); it->Next()) {
        auto id = keys::RowKeyId(View(it->key()));
        if (!id.has_value()) return absl::DataLossError("malformed multivec key");
        if (gone.contains(static_cast<int64_t>(*id))) continue;
        RETURN_IF_ERROR(records::DecodeMultiVec(View(it->value()), dim, 0, &row));
        staged.emplace_back(static_cast<int64_t>(*id), std::move(row.raw));
      }
      RETURN_IF_ERROR(FromRocks(it->status(), "scanning staged token vectors"));
    }
    uint64_t total = new_raw_tokens;
    for (const auto& [id, raw] : staged) total += raw.size() / dim;
    const index::MultiVectorIndexOptions options = MultiVecOptionsFor(ns->config);
    const uint64_t stride = index::MultiVectorSampleStride(options, total);
    std::vector<float> sample;
    uint64_t seen = 0;
    auto take = [&](const std::vector<float>& raw) {
      for (size_t t = 0; (t + 1) * dim <= raw.size(); ++t, ++seen) {
        if (seen % stride == 0) {
          sample.insert(sample.end(), raw.begin() + t * dim, raw.begin() + (t + 1) * dim);
        }
      }
    };
    for (const auto& [id, raw] : staged) take(raw);
    for (const auto& t : *tokens) {
      if (t.has_value() && !t->encoded) take(t->raw);
    }
    std::vector<float> unit_sample;
    RETURN_IF_ERROR(index::NormalizeMultiVectorTokens(sample, dim, &unit_sample));
    sample.clear();
    ASSIGN_OR_RETURN(std::unique_ptr<index::ResidualCodec> fresh,
                     index::TrainMultiVectorCodec(options, total, unit_sample));
    codec = std::shared_ptr<const index::ResidualCodec>(std::move(fresh));
    ASSIGN_OR_RETURN(std::vector<uint8_t> codec_bytes, codec->Serialize());
    batch->Put(meta_, keys::MultiVecCodecKey(nsid),
               rocksdb::Slice(reinterpret_cast<const char*>(codec_bytes.data()),
                              codec_bytes.size()));
    for (auto& [id, raw] : staged) {
      ASSIGN_OR_RETURN(index::ResidualCodes codes, encode_raw(*codec, raw));
      batch->Put(multivec_, keys::RowKey(nsid, id),
                 records::EncodeMultiVecCoded(codes.centroids, codes.residuals));
      reencoded->emplace_back(id, std::move(codes));
    }
    *trained = codec;
    spdlog::info("namespace '{}': trained the token codec on {} tokens ({} centroids, {}-bit)",
                 ns->config.name, total, codec->num_centroids(), codec->nbits());
  }
  for (size_t i = 0; i < tokens->size(); ++i) {
    std::optional<PendingTokens>& t = (*tokens)[i];
    if (!t.has_value()) continue;
    if (!t->encoded && codec != nullptr) {
      ASSIGN_OR_RETURN(t->codes, encode_raw(*codec, t->raw));
      t->raw.clear();
      t->encoded = true;
    }
    batch->Put(multivec_, keys::RowKey(nsid, ids[i]),
               t->encoded ? records::EncodeMultiVecCoded(t->codes.centroids, t->codes.residuals)
                          : records::EncodeMultiVecRaw(t->raw, dim));
  }
  return absl::OkStatus();
}

absl::Status StoreImpl::ApplyMultiVecLocked(
    Namespace* ns, const std::vector<int64_t>& removed, const std::vector<int64_t>& ids,
    std::vector<std::optional<PendingTokens>> tokens,
    std::shared_ptr<const index::ResidualCodec> trained,
    std::vector<std::pair<int64_t, index::ResidualCodes>> reencoded) {
  auto apply = [&]() -> absl::Status {
    if (trained != nullptr) {
      // Every surviving staged row was rewritten encoded: start over from
      // those, exactly as Open would rebuild them.
      ASSIGN_OR_RETURN(auto fresh,
                       index::MultiVectorIndex::Create(MultiVecOptionsFor(ns->config)));
      RETURN_IF_ERROR(fresh->AdoptCodec(trained));
      for (const auto& [id, codes] : reencoded) {
        RETURN_IF_ERROR(fresh->AddEncoded(id, codes.centroids, codes.residuals));
      }
      ns->multivec = std::move(fresh);
    } else {
      for (int64_t id : removed) RETURN_IF_ERROR(ns->multivec->Remove(id).status());
    }
    for (size_t i = 0; i < tokens.size() && i < ids.size(); ++i) {
      const std::optional<PendingTokens>& t = tokens[i];
      if (!t.has_value()) continue;
      if (t->encoded) {
        RETURN_IF_ERROR(ns->multivec->AddEncoded(ids[i], t->codes.centroids, t->codes.residuals));
      } else {
        RETURN_IF_ERROR(ns->multivec->Add(ids[i], t->raw));
      }
    }
    return absl::OkStatus();
  };
  absl::Status st = apply();
  if (st.ok()) return st;
  spdlog::error("namespace '{}': token index update failed ({}); rebuilding from stored rows",
                ns->config.name, st.ToString());
  auto rebuilt = BuildMultiVecFromCf(*ns);
  if (!rebuilt.ok()) {
    return absl::InternalError(absl::StrCat(
        "write committed but the token index could not be updated: ", st.message(),
        "; rebuild failed: ", rebuilt.status().message()));
  }
  ns->multivec = *std::move(rebuilt);
  return absl::OkStatus();
}

}  // namespace mnemo::db
