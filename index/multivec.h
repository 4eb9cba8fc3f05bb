// Multi-vector (token-level) late-interaction index, ColBERTv2 / PLAID style.
//
// Every document (64-bit internal id chosen by the caller) holds a variable
// number of token vectors of dimension `dim`. The score of a document for a
// query of m token vectors is MaxSim:
//   score(q, D) = sum_{i < m} max_{t in D} <q_i, t>.
// Vectors are normalised to unit length on the way in (doc and query), so
// every dot product is a cosine.
//
// Storage: once trained, each token is a centroid id plus a 1-, 2- or 4-bit
// residual per dimension (index/residual_codec.h), i.e. 4 + dim * nbits / 8
// bytes instead of 4 * dim. Until `train_threshold` tokens exist the index
// keeps the raw vectors and searches them exactly; the Add that reaches the
// threshold trains the codec on every staged token (or a sample of them) and
// encodes them. Train() forces this earlier.
//
// Search of a trained index, in three stages:
//   1. candidate generation: for every query token its `nprobe` best
//      centroids (by inner product); the candidates are the documents having
//      at least one token assigned to one of them (inverted lists centroid ->
//      document ids). The filter is applied here, before any scoring.
//   2. centroid interaction (PLAID): each candidate is scored approximately
//      with its tokens replaced by their centroids; the best
//      `max_candidates` survive.
//   3. rerank: MaxSim over the decompressed tokens (centroid + residual,
//      renormalised to unit length) of the survivors; the k best are
//      returned, their scores being these approximate MaxSims.
//
// Thread safety: const methods may run concurrently with each other; every
// non-const method needs exclusive access (the owner holds a writer lock).
// FAISS exceptions never escape: they become INTERNAL.
#ifndef MNEMO_INDEX_MULTIVEC_H_
#define MNEMO_INDEX_MULTIVEC_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "index/filter.h"
#include "index/residual_codec.h"

namespace mnemo::index {

// Tokens a namespace of the store stages (raw) before it trains its codec
// on them; later tokens are encoded with that codec. Large enough for
// k-means to see a representative sample of a corpus's token states
// (bench_maxsim --real measures recall with this default).
inline constexpr uint64_t kLateInteractionTrainTokens = 32768;

struct MultiVectorIndexOptions {
  // Token vector dimension, 1..65536.
  uint32_t dim = 0;
  // Residual bits per dimension, 1, 2 or 4. More bits: better recall (the
  // rerank scores decompressed tokens), proportionally more residual bytes.
  uint32_t nbits = 2;
  // k-means centroids. 0 = automatic when training: the power of two
  // nearest below 4 * sqrt(tokens), clamped to [16, 65536] and to the
  // number of training tokens. More centroids = finer candidate generation
  // and smaller residuals, slower training.
  uint32_t num_centroids = 0;
  // Tokens required before the codec is trained (raw vectors are searched
  // exactly until then). 0 = automatic: 4096.
  uint64_t train_threshold = 0;
  // k-means iterations and per-centroid training sample cap (see
  // ResidualCodecOptions).
  uint32_t kmeans_iterations = 10;
  uint32_t max_points_per_centroid = 64;
  int seed = 1234;
};

// Per-call search knobs; zero means "index default".
struct MultiVectorSearchParams {
  // Centroids probed per query token. Default 8; higher = better recall,
  // more candidates to score.
  uint32_t nprobe = 0;
  // Documents kept after centroid-only scoring for the exact-ish rerank.
  // Default max(512, 32 * k); higher = better recall, slower.
  uint32_t max_candidates = 0;
};

// The k best documents of one query, best first, padded with id -1 and
// score -infinity.
struct MultiVectorSearchResult {
  std::vector<int64_t> ids;
  std::vector<float> scores;
};

class MultiVectorIndex {
 public:
  // INVALID_ARGUMENT on bad options.
  static absl::StatusOr<std::unique_ptr<MultiVectorIndex>> Create(
      const MultiVectorIndexOptions& options);

  // Reads an index written by Serialize. `options.dim` and `options.nbits`
  // must match the stored ones or FAILED_PRECONDITION. Garbage bytes give
  // DATA_LOSS, never a crash.
  static absl::StatusOr<std::unique_ptr<MultiVectorIndex>> Deserialize(
      const MultiVectorIndexOptions& options, absl::Span<const uint8_t> bytes);

  virtual ~MultiVectorIndex() = default;

  // Adds or replaces document `id` with tokens.size() / dim token vectors
  // (row-major, 1..2^20 tokens). INVALID_ARGUMENT on a size that is not a
  // positive multiple of dim, too many tokens, non-finite values, a zero
  // vector or id < 0.
  // May train (see the file comment); when that training fails the
  // document stays added (untrained) and the training error is returned.
  virtual absl::Status Add(int64_t id, absl::Span<const float> tokens) = 0;

  // Trains the codec now on the tokens present (at least 1). No-op when
  // already trained. FAILED_PRECONDITION on an empty index.
  virtual absl::Status Train() = 0;

  // Makes `codec` (trained elsewhere, e.g. by TrainMultiVectorCodec, or
  // read back from storage) this index's codec: every staged document is
  // encoded with it. For owners that train and persist the codec
  // themselves (they set train_threshold out of reach). FAILED_PRECONDITION
  // when already trained; INVALID_ARGUMENT when the codec's dim or nbits
  // differ from the options'. On error the index is unchanged.
  virtual absl::Status AdoptCodec(std::shared_ptr<const ResidualCodec> codec) = 0;

  // Adds or replaces document `id` in encoded form: one centroid id per
  // token and tokens * codec()->code_size() residual bytes, as
  // codec()->Encode produced them from unit-norm tokens. FAILED_PRECONDITION
  // when untrained; INVALID_ARGUMENT on id < 0, no tokens, more than 2^20
  // tokens, mismatched sizes or a centroid id out of range.
  virtual absl::Status AddEncoded(int64_t id, absl::Span<const uint32_t> centroids,
                                  absl::Span<const uint8_t> residuals) = 0;

  // The codec once trained (shared, immutable), null before.
  virtual std::shared_ptr<const ResidualCodec> codec() const = 0;

  // Removes a document. Returns whether it was present.
  virtual absl::StatusOr<bool> Remove(int64_t id) = 0;

  // The k best documents by MaxSim for a query of query_tokens.size() / dim
  // tokens (1..4096). `filter`, when given, restricts candidates before scoring; when
  // fewer than k candidates pass it, every document passing it is scored.
  // INVALID_ARGUMENT for k outside [1, 100000], an empty query, too many
  // tokens, a size that is not a multiple of dim, non-finite values or a
  // zero vector.
  virtual absl::StatusOr<MultiVectorSearchResult> Search(
      absl::Span<const float> query_tokens, int k, const IdPredicate* filter,
      const MultiVectorSearchParams& params) const = 0;

  virtual absl::StatusOr<std::vector<uint8_t>> Serialize() const = 0;

  virtual size_t size() const = 0;        // documents
  virtual size_t num_tokens() const = 0;  // tokens over all documents
  virtual bool is_trained() const = 0;
  virtual bool Contains(int64_t id) const = 0;
  // Bytes held per token by the token store (centroid id + residual once
  // trained, 4 * dim raw before), excluding the centroid table and lists.
  virtual double BytesPerToken() const = 0;
  virtual std::string Describe() const = 0;
  virtual const MultiVectorIndexOptions& options() const = 0;
};

// Unit-normalises `tokens` (n * dim floats, row-major) into `out`, as Add
// and Search do. INVALID_ARGUMENT when the size is not a positive multiple
// of dim, on non-finite values or a row of zero norm.
absl::Status NormalizeMultiVectorTokens(absl::Span<const float> tokens, uint32_t dim,
                                        std::vector<float>* out);

// The codec training of MultiVectorIndex::Train, for owners that train
// themselves. Of `total_tokens` unit-norm tokens, the caller passes as
// `sample` every MultiVectorSampleStride(options, total_tokens)-th one (in
// a fixed order, for reproducibility); the centroid count is
// options.num_centroids or, when 0, the automatic rule of the options
// comment (at most the sample size). INVALID_ARGUMENT on an empty sample
// or bad options; INTERNAL on FAISS failures.
uint64_t MultiVectorSampleStride(const MultiVectorIndexOptions& options, uint64_t total_tokens);
absl::StatusOr<std::unique_ptr<ResidualCodec>> TrainMultiVectorCodec(
    const MultiVectorIndexOptions& options, uint64_t total_tokens,
    absl::Span<const float> sample);

// Uncompressed documents for exact MaxSim: document i owns token rows
// [offsets[i], offsets[i + 1]) of `vectors` (row-major, dim floats each).
struct MultiVectorCorpus {
  uint32_t dim = 0;
  std::vector<int64_t> ids;
  std::vector<uint64_t> offsets{0};  // ids.size() + 1 entries
  std::vector<float> vectors;
};

// Exact MaxSim of `query_tokens` against every document of `corpus` (one
// BLAS sgemm per block of tokens), k best first, padded like Search. The
// reference MultiVectorIndex is measured against. Vectors are used as given
// (no normalisation). `filter`, when given, excludes documents.
// INVALID_ARGUMENT on inconsistent corpus sizes, k outside [1, 100000], an
// empty query or a query size that is not a multiple of dim.
absl::StatusOr<MultiVectorSearchResult> BruteForceMaxSim(
    const MultiVectorCorpus& corpus, absl::Span<const float> query_tokens,
    int k, const IdPredicate* filter);

}  // namespace mnemo::index

#endif  // MNEMO_INDEX_MULTIVEC_H_
