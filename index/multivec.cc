// MultiVectorIndex: implementation notes (the contract is in the header).
//
// * Token store: documents live in dense slots (a hash map id -> slot, freed
//   slots reused), so search marks candidates in a per-query byte map
//   instead of a hash set. Trained entries hold centroid ids and packed
//   residuals; untrained ones hold raw (normalised) floats.
// * Inverted lists: lists_[c] holds the slot of each document with at least
//   one token in centroid c exactly once. Remove erases the slot from the
//   lists of the document's distinct centroids (linear in their lengths).
// * Scoring: query x centroid scores are one sgemm (m x K); the rerank
//   decodes the survivors' tokens into a block buffer and does one sgemm per
//   block (m x tokens), then a max per (query token, document) and a sum.
// * Ties between equal scores are broken by smaller id, so results are
//   deterministic.
#include "index/multivec.h"

#include "index/byte_io.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/checksum_frame.h"
#include "common/status_macros.h"
#include "index/residual_codec.h"

namespace mnemo::index {
namespace {

constexpr uint32_t kMagic = 0x564d4e4d;  // "MNMV" little-endian
constexpr uint32_t kVersion = 1;
constexpr int kMaxK = 100000;
// Bounds that keep one call's memory sane: tokens per document, and query
// tokens (the query x centroid table is m * K floats).
constexpr size_t kMaxDocTokens = size_t{1} << 20;
constexpr size_t kMaxQueryTokens = 4096;
constexpr uint64_t kDefaultTrainThreshold = 4096;
// Search defaults, chosen with bench_maxsim (synthetic and --real): on real
// USE-lite token states the centroid-only pruning of stage 2 is coarse, so
// the rerank pool matters as much as the residual bits.
constexpr uint32_t kDefaultNprobe = 8;
constexpr uint32_t kMinDefaultCandidates = 512;
constexpr uint32_t kCandidatesPerK = 32;
// Tokens decoded per rerank sgemm: bounds the scratch buffers
// (kBlockTokens * (dim + m) floats).
constexpr size_t kBlockTokens = 2048;
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// The codec's options for these index options, with `num_centroids` (the
// index's own may be 0, automatic).
ResidualCodecOptions CodecOptions(const MultiVectorIndexOptions& o, uint32_t num_centroids) {
  ResidualCodecOptions codec;
  codec.dim = o.dim;
  codec.nbits = o.nbits;
  codec.num_centroids = num_centroids;
  codec.kmeans_iterations = o.kmeans_iterations;
  codec.max_points_per_centroid = o.max_points_per_centroid;
  codec.seed = o.seed;
  return codec;
}

// What passes through to the codec follows the codec's rules.
absl::Status ValidateOptions(const MultiVectorIndexOptions& o) {
  if (o.num_centroids > 65536) {
    return absl::InvalidArgumentError("num_centroids must be <= 65536");
  }
  return ValidateResidualCodecOptions(CodecOptions(o, std::max(o.num_centroids, 1u)));
}

// Checks shape and values, and normalises rows into `out`.
absl::Status NormalizeTokens(absl::Span<const float> in, uint32_t dim,
                             size_t max_tokens, absl::string_view what,
                             std::vector<float>* out) {
  if (in.empty() || in.size() % dim != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, " size ", in.size(), " is not a positive multiple of dim ",
        dim));
  }
  if (in.size() / dim > max_tokens) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": ", in.size() / dim, " tokens, at most ", max_tokens));
  }
  out->assign(in.begin(), in.end());
  const size_t n = in.size() / dim;
  for (size_t i = 0; i < n; ++i) {
    float* row = &(*out)[i * dim];
    double norm = 0;
    for (size_t j = 0; j < dim; ++j) {
      if (!std::isfinite(row[j])) {
        return absl::InvalidArgumentError(
            absl::StrCat(what, " contains NaN or infinity"));
      }
      norm += double{row[j]} * row[j];
    }
    if (!(norm > 0) || !std::isfinite(norm)) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " token ", i, " has zero or infinite norm"));
    }
    const float inv = static_cast<float>(1.0 / std::sqrt(norm));
    for (size_t j = 0; j < dim; ++j) row[j] *= inv;
  }
  return absl::OkStatus();
}

absl::Status CheckK(int k) {
  if (k < 1 || k > kMaxK) {
    return absl::InvalidArgumentError(
        absl::StrCat("k must be in [1, ", kMaxK, "], got ", k));
  }
  return absl::OkStatus();
}

// Sum of squares with 8 independent partial sums, so the compiler can keep
// them in vector lanes (a single accumulator is a serial dependency chain).
float SquaredNorm(const float* v, size_t n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  size_t j = 0;
  for (; j + 8 <= n; j += 8) {
    for (size_t l = 0; l < 8; ++l) acc[l] += v[j + l] * v[j + l];
  }
  float sum = 0;
  for (; j < n; ++j) sum += v[j] * v[j];
  for (float a : acc) sum += a;
  return sum;
}

// C (m x n) = A (m x d) * B^T, B row-major n x d.
void MatMulTransposed(const float* a, size_t m, const float* b, size_t n,
                      size_t d, float* c) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(m),
              static_cast<int>(n), static_cast<int>(d), 1.0f, a,
              static_cast<int>(d), b, static_cast<int>(d), 0.0f, c,
              static_cast<int>(n));
}

// MaxSim of every document of a block given sim = m x total (row-major),
// documents owning consecutive column ranges [starts[i], starts[i + 1]).
void BlockMaxSim(const float* sim, size_t m, size_t total,
                 const std::vector<size_t>& starts, float* out) {
  const size_t ndocs = starts.size() - 1;
  for (size_t d = 0; d < ndocs; ++d) out[d] = 0;
  for (size_t i = 0; i < m; ++i) {
    const float* row = sim + i * total;
    for (size_t d = 0; d < ndocs; ++d) {
      float best = kNegInf;
      for (size_t t = starts[d]; t < starts[d + 1]; ++t) {
        best = std::max(best, row[t]);
      }
      out[d] += best;
    }
  }
}

bool Better(const std::pair<float, int64_t>& a,
            const std::pair<float, int64_t>& b) {
  if (a.first != b.first) return a.first > b.first;
  return a.second < b.second;
}

MultiVectorSearchResult TopK(std::vector<std::pair<float, int64_t>> scored,
                             int k) {
  const size_t keep = std::min(scored.size(), static_cast<size_t>(k));
  std::partial_sort(scored.begin(), scored.begin() + keep, scored.end(),
                    Better);
  MultiVectorSearchResult result;
  result.ids.assign(k, -1);
  result.scores.assign(k, kNegInf);
  for (size_t i = 0; i < keep; ++i) {
    result.scores[i] = scored[i].first;
    result.ids[i] = scored[i].second;
  }
  return result;
}

using internal::Put;
using internal::PutBytes;
using Reader = internal::ByteReader;

absl::Status DataLoss(absl::string_view why) {
  return absl::DataLossError(absl::StrCat("corrupt multi-vector index: ", why));
}

struct DocEntry {
  int64_t id = -1;
  uint32_t ntokens = 0;
  // Trained: centroid id per token, ntokens * code_size residual bytes, and
  // the sorted distinct centroids (inverted-list membership, pruning).
  std::vector<uint32_t> centroids;
  std::vector<uint8_t> residuals;
  std::vector<uint32_t> distinct;
  // Untrained: ntokens * dim normalised floats.
  std::vector<float> raw;
};

class Impl final : public MultiVectorIndex {
 public:
  explicit Impl(const MultiVectorIndexOptions& options) : options_(options) {
    train_threshold_ = options.train_threshold == 0 ? kDefaultTrainThreshold
                                                    : options.train_threshold;
  }

  absl::Status Add(int64_t id, absl::Span<const float> tokens) override {
    if (id < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("document id must be >= 0, got ", id));
    }
    std::vector<float> normalized;
    RETURN_IF_ERROR(
        NormalizeTokens(tokens, options_.dim, kMaxDocTokens,
                        "document tokens", &normalized));
    DocEntry entry;
    entry.id = id;
    entry.ntokens = static_cast<uint32_t>(normalized.size() / options_.dim);
    if (codec_ != nullptr) {
      ASSIGN_OR_RETURN(ResidualCodes codes, codec_->Encode(normalized));
      entry.centroids = std::move(codes.centroids);
      entry.residuals = std::move(codes.residuals);
    } else {
      entry.raw = std::move(normalized);
    }
    RemoveInternal(id);
    Insert(std::move(entry));
    if (codec_ == nullptr && num_tokens_ >= train_threshold_) {
      return Train();
    }
    return absl::OkStatus();
  }

  absl::Status Train() override {
    if (codec_ != nullptr) return absl::OkStatus();
    if (num_tokens_ == 0) {
      return absl::FailedPreconditionError(
          "cannot train a multi-vector index without tokens");
    }
    const size_t dim = options_.dim;
    // Training sample: every token when few, else an evenly strided subset
    // of about k * max_points_per_centroid tokens, in id order (not slot
    // order, which depends on history) so that training is reproducible.
    const uint64_t stride = MultiVectorSampleStride(options_, num_tokens_);
    const std::vector<uint32_t> order = SlotsById();
    std::vector<float> sample;
    sample.reserve((num_tokens_ / stride + 1) * dim);
    uint64_t seen = 0;
    for (uint32_t slot : order) {
      const DocEntry& entry = slots_[slot];
      for (uint32_t t = 0; t < entry.ntokens; ++t, ++seen) {
        if (seen % stride != 0) continue;
        sample.insert(sample.end(), entry.raw.begin() + t * dim,
                      entry.raw.begin() + (t + 1) * dim);
      }
    }
    ASSIGN_OR_RETURN(std::unique_ptr<ResidualCodec> codec,
                     TrainMultiVectorCodec(options_, num_tokens_, sample));
    return AdoptCodec(std::move(codec));
  }

  absl::Status AdoptCodec(std::shared_ptr<const ResidualCodec> codec) override {
    if (codec_ != nullptr) {
      return absl::FailedPreconditionError("the multi-vector index is already trained");
    }
    if (codec == nullptr || codec->dim() != options_.dim ||
        codec->nbits() != options_.nbits) {
      return absl::InvalidArgumentError(
          "codec is null or its dim / nbits differ from the index options");
    }
    const std::vector<uint32_t> order = SlotsById();
    // Encode everything before touching the index, so a failure leaves it
    // untrained and intact.
    std::vector<ResidualCodes> encoded(slots_.size());
    for (uint32_t slot : order) {
      ASSIGN_OR_RETURN(encoded[slot], codec->Encode(slots_[slot].raw));
    }
    codec_ = std::move(codec);
    lists_.assign(codec_->num_centroids(), {});
    for (uint32_t slot : order) {
      DocEntry& entry = slots_[slot];
      entry.centroids = std::move(encoded[slot].centroids);
      entry.residuals = std::move(encoded[slot].residuals);
      entry.raw.clear();
      entry.raw.shrink_to_fit();
      Link(slot);
    }
    return absl::OkStatus();
  }

  absl::Status AddEncoded(int64_t id, absl::Span<const uint32_t> centroids,
                          absl::Span<const uint8_t> residuals) override {
    if (codec_ == nullptr) {
      return absl::FailedPreconditionError(
          "AddEncoded needs a trained multi-vector index");
    }
    if (id < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("document id must be >= 0, got ", id));
    }
    if (centroids.empty() || centroids.size() > kMaxDocTokens ||
        residuals.size() != centroids.size() * codec_->code_size()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "encoded document has ", centroids.size(), " tokens and ",
          residuals.size(), " residual bytes; expected 1..", kMaxDocTokens,
          " tokens of ", codec_->code_size(), " bytes"));
    }
    for (uint32_t c : centroids) {
      if (c >= codec_->num_centroids()) {
        return absl::InvalidArgumentError(
            absl::StrCat("centroid id ", c, " out of range"));
      }
    }
    DocEntry entry;
    entry.id = id;
    entry.ntokens = static_cast<uint32_t>(centroids.size());
    entry.centroids.assign(centroids.begin(), centroids.end());
    entry.residuals.assign(residuals.begin(), residuals.end());
    RemoveInternal(id);
    Insert(std::move(entry));
    return absl::OkStatus();
  }

  std::shared_ptr<const ResidualCodec> codec() const override { return codec_; }

  absl::StatusOr<bool> Remove(int64_t id) override {
    return RemoveInternal(id);
  }

  absl::StatusOr<MultiVectorSearchResult> Search(
      absl::Span<const float> query_tokens, int k, const IdPredicate* filter,
      const MultiVectorSearchParams& params) const override {
    RETURN_IF_ERROR(CheckK(k));
    std::vector<float> query;
    RETURN_IF_ERROR(
        NormalizeTokens(query_tokens, options_.dim, kMaxQueryTokens,
                        "query tokens", &query));
    const size_t m = query.size() / options_.dim;
    if (codec_ == nullptr) {
      std::vector<uint32_t> all;
      all.reserve(slot_of_.size());
      for (uint32_t slot : SlotsById()) {
        if (filter == nullptr || filter->Contains(slots_[slot].id)) {
          all.push_back(slot);
        }
      }
      return TopK(Rerank(query, m, all), k);
    }

    const size_t nc = codec_->num_centroids();
    const uint32_t nprobe = static_cast<uint32_t>(std::min<size_t>(
        params.nprobe == 0 ? kDefaultNprobe : params.nprobe, nc));
    const size_t max_candidates =
        params.max_candidates != 0
            ? params.max_candidates
            : std::max<size_t>(kMinDefaultCandidates,
                               size_t{kCandidatesPerK} * k);

    // Stage 1: centroid x query token scores (nc x m, so one centroid's
    // scores are contiguous for stage 2), probed centroids, candidates.
    std::vector<float> cq(nc * m);
    MatMulTransposed(codec_->centroids().data(), nc, query.data(), m,
                     options_.dim, cq.data());
    std::vector<char> probed(nc, 0);
    std::vector<std::pair<float, uint32_t>> column(nc);
    for (size_t i = 0; i < m; ++i) {
      for (uint32_t c = 0; c < nc; ++c) column[c] = {cq[c * m + i], c};
      std::nth_element(column.begin(), column.begin() + (nprobe - 1),
                       column.end(), [](const auto& a, const auto& b) {
                         return a.first > b.first;
                       });
      for (uint32_t p = 0; p < nprobe; ++p) probed[column[p].second] = 1;
    }
    std::vector<char> seen(slots_.size(), 0);
    std::vector<uint32_t> candidates;
    for (size_t c = 0; c < nc; ++c) {
      if (!probed[c]) continue;
      for (uint32_t slot : lists_[c]) {
        if (seen[slot]) continue;
        seen[slot] = 1;
        if (filter != nullptr && !filter->Contains(slots_[slot].id)) continue;
        candidates.push_back(slot);
      }
    }
    if (candidates.size() < static_cast<size_t>(k) && filter != nullptr) {
      // A selective filter: score everything it admits instead.
      candidates.clear();
      for (uint32_t slot = 0; slot < slots_.size(); ++slot) {
        if (slots_[slot].ntokens > 0 && filter->Contains(slots_[slot].id)) {
          candidates.push_back(slot);
        }
      }
    }

    // Stage 2: centroid interaction, keep the best max_candidates.
    if (candidates.size() > max_candidates) {
      std::vector<std::pair<float, int64_t>> approx;
      approx.reserve(candidates.size());
      std::vector<float> best(m);
      for (uint32_t slot : candidates) {
        const DocEntry& entry = slots_[slot];
        std::fill(best.begin(), best.end(), kNegInf);
        for (uint32_t c : entry.distinct) {
          const float* row = &cq[size_t{c} * m];
          for (size_t i = 0; i < m; ++i) best[i] = std::max(best[i], row[i]);
        }
        float score = 0;
        for (float b : best) score += b;
        approx.emplace_back(score, entry.id);
      }
      std::nth_element(approx.begin(), approx.begin() + (max_candidates - 1),
                       approx.end(), Better);
      candidates.clear();
      for (size_t i = 0; i < max_candidates; ++i) {
        candidates.push_back(slot_of_.find(approx[i].second)->second);
      }
    }
    // Slot order depends on history; id order makes the scoring blocks,
    // hence the float sums, identical for equal contents.
    std::sort(candidates.begin(), candidates.end(),
              [this](uint32_t a, uint32_t b) {
                return slots_[a].id < slots_[b].id;
              });

    // Stage 3: MaxSim over decompressed tokens.
    return TopK(Rerank(query, m, candidates), k);
  }

  absl::StatusOr<std::vector<uint8_t>> Serialize() const override {
    std::vector<uint8_t> out;
    Put(&out, kMagic);
    Put(&out, kVersion);
    Put(&out, options_.dim);
    Put(&out, options_.nbits);
    Put(&out, static_cast<uint8_t>(codec_ != nullptr));
    if (codec_ != nullptr) {
      ASSIGN_OR_RETURN(std::vector<uint8_t> codec_bytes, codec_->Serialize());
      Put(&out, static_cast<uint64_t>(codec_bytes.size()));
      PutBytes(&out, codec_bytes.data(), codec_bytes.size());
    }
    Put(&out, static_cast<uint64_t>(slot_of_.size()));
    // Sorted by id so equal indexes serialise to equal bytes.
    for (uint32_t slot : SlotsById()) {
      const DocEntry& entry = slots_[slot];
      Put(&out, entry.id);
      Put(&out, entry.ntokens);
      if (codec_ != nullptr) {
        PutBytes(&out, entry.centroids.data(),
                 entry.centroids.size() * sizeof(uint32_t));
        PutBytes(&out, entry.residuals.data(), entry.residuals.size());
      } else {
        PutBytes(&out, entry.raw.data(), entry.raw.size() * sizeof(float));
      }
    }
    AppendChecksumTrailer(&out);
    return out;
  }

  // Restores the state written by Serialize into this fresh index.
  absl::Status Load(absl::Span<const uint8_t> bytes) {
    if (bytes.size() < 4 * sizeof(uint32_t) + 1 + sizeof(uint64_t) + kChecksumTrailerBytes) {
      return DataLoss("too short");
    }
    const std::optional<absl::Span<const uint8_t>> body = StripChecksumTrailer(bytes);
    if (!body.has_value()) return DataLoss("checksum mismatch");
    Reader r(*body);
    uint32_t magic, version, dim, nbits;
    uint8_t trained;
    if (!r.Get(&magic) || magic != kMagic) return DataLoss("bad magic");
    if (!r.Get(&version) || version != kVersion) {
      return DataLoss("unsupported version");
    }
    if (!r.Get(&dim) || !r.Get(&nbits) || !r.Get(&trained) || trained > 1) {
      return DataLoss("truncated header");
    }
    if (dim != options_.dim || nbits != options_.nbits) {
      return absl::FailedPreconditionError(absl::StrCat(
          "stored multi-vector index has dim ", dim, " nbits ", nbits,
          ", options say dim ", options_.dim, " nbits ", options_.nbits));
    }
    if (trained) {
      uint64_t codec_size;
      if (!r.Get(&codec_size) || codec_size > r.remaining()) {
        return DataLoss("bad codec size");
      }
      auto codec = ResidualCodec::Deserialize(r.Take(codec_size));
      if (!codec.ok()) return DataLoss(codec.status().message());
      codec_ = std::move(codec).value();
      if (codec_->dim() != dim || codec_->nbits() != nbits) {
        return DataLoss("codec does not match the header");
      }
      lists_.assign(codec_->num_centroids(), {});
    }
    uint64_t ndocs;
    if (!r.Get(&ndocs)) return DataLoss("truncated document count");
    // Every document takes at least 12 bytes.
    if (ndocs > r.remaining() / 12) return DataLoss("bad document count");
    const size_t per_token =
        trained ? sizeof(uint32_t) + codec_->code_size() : dim * sizeof(float);
    for (uint64_t d = 0; d < ndocs; ++d) {
      DocEntry entry;
      if (!r.Get(&entry.id) || !r.Get(&entry.ntokens)) {
        return DataLoss("truncated document");
      }
      if (entry.id < 0 || entry.ntokens == 0 ||
          entry.ntokens > kMaxDocTokens || slot_of_.contains(entry.id)) {
        return DataLoss("bad document header");
      }
      if (entry.ntokens > r.remaining() / per_token) {
        return DataLoss("truncated document tokens");
      }
      if (trained) {
        entry.centroids.resize(entry.ntokens);
        entry.residuals.resize(size_t{entry.ntokens} * codec_->code_size());
        r.GetBytes(entry.centroids.data(),
                   entry.centroids.size() * sizeof(uint32_t));
        r.GetBytes(entry.residuals.data(), entry.residuals.size());
        for (uint32_t c : entry.centroids) {
          if (c >= codec_->num_centroids()) {
            return DataLoss("centroid id out of range");
          }
        }
      } else {
        entry.raw.resize(size_t{entry.ntokens} * dim);
        r.GetBytes(entry.raw.data(), entry.raw.size() * sizeof(float));
        for (float x : entry.raw) {
          if (!std::isfinite(x)) return DataLoss("non-finite token value");
        }
      }
      Insert(std::move(entry));
    }
    if (r.remaining() != 0) return DataLoss("trailing bytes");
    return absl::OkStatus();
  }

  size_t size() const override { return slot_of_.size(); }
  size_t num_tokens() const override { return num_tokens_; }
  bool is_trained() const override { return codec_ != nullptr; }
  bool Contains(int64_t id) const override { return slot_of_.contains(id); }
  double BytesPerToken() const override {
    const size_t bytes = codec_ != nullptr
                             ? sizeof(uint32_t) + codec_->code_size()
                             : sizeof(float) * size_t{options_.dim};
    return static_cast<double>(bytes);
  }
  std::string Describe() const override {
    if (codec_ == nullptr) {
      return absl::StrCat("MultiVector untrained (", slot_of_.size(),
                          " docs, ", num_tokens_, " raw tokens)");
    }
    return absl::StrCat("MultiVector K=", codec_->num_centroids(), " ",
                        options_.nbits, "-bit (", slot_of_.size(), " docs, ",
                        num_tokens_, " tokens, ", BytesPerToken(),
                        " B/token)");
  }
  const MultiVectorIndexOptions& options() const override { return options_; }

 private:
  // Live slots sorted by document id.
  std::vector<uint32_t> SlotsById() const {
    std::vector<std::pair<int64_t, uint32_t>> pairs(slot_of_.begin(),
                                                    slot_of_.end());
    std::sort(pairs.begin(), pairs.end());
    std::vector<uint32_t> slots;
    slots.reserve(pairs.size());
    for (const auto& p : pairs) slots.push_back(p.second);
    return slots;
  }

  // Stores a new document (its id must be absent) and links it into the
  // inverted lists when trained.
  void Insert(DocEntry entry) {
    uint32_t slot;
    if (!free_slots_.empty()) {
      slot = free_slots_.back();
      free_slots_.pop_back();
    } else {
      slot = static_cast<uint32_t>(slots_.size());
      slots_.emplace_back();
    }
    num_tokens_ += entry.ntokens;
    slot_of_[entry.id] = slot;
    slots_[slot] = std::move(entry);
    if (codec_ != nullptr) Link(slot);
  }

  void Link(uint32_t slot) {
    DocEntry& entry = slots_[slot];
    entry.distinct = entry.centroids;
    std::sort(entry.distinct.begin(), entry.distinct.end());
    entry.distinct.erase(
        std::unique(entry.distinct.begin(), entry.distinct.end()),
        entry.distinct.end());
    for (uint32_t c : entry.distinct) lists_[c].push_back(slot);
  }

  bool RemoveInternal(int64_t id) {
    auto it = slot_of_.find(id);
    if (it == slot_of_.end()) return false;
    const uint32_t slot = it->second;
    DocEntry& entry = slots_[slot];
    for (uint32_t c : entry.distinct) {
      auto& list = lists_[c];
      auto pos = std::find(list.begin(), list.end(), slot);
      if (pos != list.end()) {
        *pos = list.back();
        list.pop_back();
      }
    }
    num_tokens_ -= entry.ntokens;
    entry = DocEntry();  // ntokens 0 marks a free slot
    free_slots_.push_back(slot);
    slot_of_.erase(it);
    return true;
  }

  // MaxSim of `query` (m normalised tokens) against each document of
  // `slots` over its decoded (or raw) tokens, in blocks of about
  // kBlockTokens tokens.
  std::vector<std::pair<float, int64_t>> Rerank(
      const std::vector<float>& query, size_t m,
      const std::vector<uint32_t>& slots) const {
    const size_t dim = options_.dim;
    std::vector<std::pair<float, int64_t>> scored;
    scored.reserve(slots.size());
    std::vector<float> tokens;
    std::vector<float> sim;
    std::vector<size_t> starts;
    std::vector<float> block_scores;
    size_t next = 0;
    while (next < slots.size()) {
      starts.assign(1, 0);
      const size_t first = next;
      // At least one document per block, however long.
      while (next < slots.size() &&
             (next == first ||
              starts.back() + slots_[slots[next]].ntokens <= kBlockTokens)) {
        starts.push_back(starts.back() + slots_[slots[next]].ntokens);
        ++next;
      }
      const size_t total = starts.back();
      tokens.resize(total * dim);
      for (size_t d = first; d < next; ++d) {
        const DocEntry& entry = slots_[slots[d]];
        float* out = &tokens[starts[d - first] * dim];
        if (codec_ == nullptr) {
          std::memcpy(out, entry.raw.data(), entry.raw.size() * sizeof(float));
          continue;
        }
        const size_t cs = codec_->code_size();
        for (uint32_t t = 0; t < entry.ntokens; ++t) {
          float* v = out + t * dim;
          codec_->DecodeOneUnchecked(entry.centroids[t],
                                     &entry.residuals[t * cs], v);
          // Stored tokens had unit norm; quantisation shrinks them unevenly
          // (bucket means pull towards the centroid), so restore the norm.
          const float norm = SquaredNorm(v, dim);
          if (norm > 0) {
            const float inv = 1.0f / std::sqrt(norm);
            for (size_t j = 0; j < dim; ++j) v[j] *= inv;
          }
        }
      }
      sim.resize(m * total);
      MatMulTransposed(query.data(), m, tokens.data(), total, dim, sim.data());
      block_scores.resize(next - first);
      BlockMaxSim(sim.data(), m, total, starts, block_scores.data());
      for (size_t d = first; d < next; ++d) {
        scored.emplace_back(block_scores[d - first], slots_[slots[d]].id);
      }
    }
    return scored;
  }

  MultiVectorIndexOptions options_;
  uint64_t train_threshold_;
  // Documents by slot; a free slot has ntokens == 0 and is in free_slots_.
  std::vector<DocEntry> slots_;
  std::vector<uint32_t> free_slots_;
  absl::flat_hash_map<int64_t, uint32_t> slot_of_;
  // Centroid -> slots of the documents with a token there (each once).
  std::vector<std::vector<uint32_t>> lists_;
  // Null until trained; shared with owners that persist it.
  std::shared_ptr<const ResidualCodec> codec_;
  uint64_t num_tokens_ = 0;
};

}  // namespace

absl::StatusOr<std::unique_ptr<MultiVectorIndex>> MultiVectorIndex::Create(
    const MultiVectorIndexOptions& options) {
  RETURN_IF_ERROR(ValidateOptions(options));
  return std::make_unique<Impl>(options);
}

absl::StatusOr<std::unique_ptr<MultiVectorIndex>> MultiVectorIndex::Deserialize(
    const MultiVectorIndexOptions& options, absl::Span<const uint8_t> bytes) {
  RETURN_IF_ERROR(ValidateOptions(options));
  auto impl = std::make_unique<Impl>(options);
  RETURN_IF_ERROR(impl->Load(bytes));
  return impl;
}

absl::Status NormalizeMultiVectorTokens(absl::Span<const float> tokens, uint32_t dim,
                                        std::vector<float>* out) {
  if (dim == 0) return absl::InvalidArgumentError("dim is 0");
  return NormalizeTokens(tokens, dim, std::numeric_limits<size_t>::max(), "tokens", out);
}

namespace {
uint32_t NumCentroidsFor(const MultiVectorIndexOptions& options, uint64_t total_tokens) {
  uint32_t k = options.num_centroids;
  if (k == 0) {
    const double target = 4.0 * std::sqrt(static_cast<double>(total_tokens));
    k = 16;
    while (k * 2 <= target && k < 65536) k *= 2;
  }
  return k;
}
}  // namespace

uint64_t MultiVectorSampleStride(const MultiVectorIndexOptions& options, uint64_t total_tokens) {
  const uint64_t cap = uint64_t{NumCentroidsFor(options, total_tokens)} *
                       std::max<uint32_t>(1, options.max_points_per_centroid);
  return std::max<uint64_t>(1, total_tokens / std::max<uint64_t>(1, cap));
}

absl::StatusOr<std::unique_ptr<ResidualCodec>> TrainMultiVectorCodec(
    const MultiVectorIndexOptions& options, uint64_t total_tokens,
    absl::Span<const float> sample) {
  RETURN_IF_ERROR(ValidateOptions(options));
  const uint64_t n = sample.size() / options.dim;
  if (n == 0 || sample.size() % options.dim != 0) {
    return absl::InvalidArgumentError(
        "codec training needs a non-empty sample of whole tokens");
  }
  const auto num_centroids = static_cast<uint32_t>(
      std::min<uint64_t>(NumCentroidsFor(options, std::max(total_tokens, n)), n));
  return ResidualCodec::Train(CodecOptions(options, num_centroids), sample);
}

absl::StatusOr<MultiVectorSearchResult> BruteForceMaxSim(
    const MultiVectorCorpus& corpus, absl::Span<const float> query_tokens,
    int k, const IdPredicate* filter) {
  RETURN_IF_ERROR(CheckK(k));
  const size_t dim = corpus.dim;
  if (dim == 0) return absl::InvalidArgumentError("corpus dim is 0");
  if (query_tokens.empty() || query_tokens.size() % dim != 0) {
    return absl::InvalidArgumentError(
        "query size is not a positive multiple of dim");
  }
  const size_t ndocs = corpus.ids.size();
  if (corpus.offsets.size() != ndocs + 1 || corpus.offsets[0] != 0 ||
      corpus.offsets.back() > corpus.vectors.size() / dim ||
      corpus.offsets.back() * dim != corpus.vectors.size()) {
    return absl::InvalidArgumentError("inconsistent corpus sizes");
  }
  for (size_t d = 0; d < ndocs; ++d) {
    if (corpus.offsets[d + 1] < corpus.offsets[d]) {
      return absl::InvalidArgumentError("corpus offsets decrease");
    }
  }
  const size_t m = query_tokens.size() / dim;
  std::vector<std::pair<float, int64_t>> scored;
  scored.reserve(ndocs);
  std::vector<float> sim;
  std::vector<size_t> starts;
  std::vector<float> block_scores;
  size_t next = 0;
  while (next < ndocs) {
    const size_t first = next;
    const uint64_t base = corpus.offsets[first];
    starts.assign(1, 0);
    while (next < ndocs &&
           (next == first || corpus.offsets[next + 1] - base <= kBlockTokens)) {
      starts.push_back(corpus.offsets[next + 1] - base);
      ++next;
    }
    const size_t total = starts.back();
    sim.resize(m * total);
    if (total > 0) {
      MatMulTransposed(query_tokens.data(), m, &corpus.vectors[base * dim],
                       total, dim, sim.data());
    }
    block_scores.resize(next - first);
    BlockMaxSim(sim.data(), m, total, starts, block_scores.data());
    for (size_t d = first; d < next; ++d) {
      // Documents without tokens have no score and are never returned.
      if (corpus.offsets[d + 1] == corpus.offsets[d]) continue;
      if (filter != nullptr && !filter->Contains(corpus.ids[d])) continue;
      scored.emplace_back(block_scores[d - first], corpus.ids[d]);
    }
  }
  return TopK(std::move(scored), k);
}

}  // namespace mnemo::index
