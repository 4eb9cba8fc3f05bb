#include "index/multivec.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include <omp.h>

#include "absl/container/flat_hash_set.h"
#include "gtest/gtest.h"

namespace mnemo::index {
namespace {

// FAISS k-means under OpenMP spin-waits on a loaded 2-core machine; pin one
// thread like the other index suites.
const int kOneOmpThread = [] {
  omp_set_num_threads(1);
  return 1;
}();

constexpr uint32_t kDim = 64;
constexpr size_t kDocs = 2000;
constexpr size_t kConcepts = 128;
constexpr size_t kConceptsPerDoc = 6;
// Norm of the Gaussian noise around a concept (concepts have norm 1).
constexpr float kTokenNoise = 0.3f;

void Normalize(float* v, size_t dim) {
  double norm = 0;
  for (size_t j = 0; j < dim; ++j) norm += double{v[j]} * v[j];
  const float inv = static_cast<float>(1.0 / std::sqrt(norm));
  for (size_t j = 0; j < dim; ++j) v[j] *= inv;
}

// Synthetic clustered corpus: 128 unit "concepts"; each document draws
// 20..60 tokens from its own 6 concepts, each token a noisy, renormalised
// copy of its concept (ids 0..kDocs-1).
//
// The concept vocabulary sets how graded the brute-force ranking is below
// the target document: with 128 concepts documents share 0..4 concepts with
// a query's target, so ranks 2..10 are mostly separated by how much they
// share. With 1024 concepts nearly all runner-ups share one concept and
// their order is decided by token noise alone, which 2-bit residuals cannot
// preserve: recall@10 drops to ~0.89 (256 concepts: ~0.93) while the target
// stays at rank 1.
MultiVectorCorpus MakeCorpus(size_t ndocs, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> gauss;
  std::vector<float> concepts(kConcepts * kDim);
  for (float& x : concepts) x = gauss(rng);
  for (size_t c = 0; c < kConcepts; ++c) Normalize(&concepts[c * kDim], kDim);
  std::uniform_int_distribution<size_t> pick_concept(0, kConcepts - 1);
  std::uniform_int_distribution<size_t> pick_len(20, 60);
  std::uniform_int_distribution<size_t> pick_slot(0, kConceptsPerDoc - 1);
  const float sigma = kTokenNoise / std::sqrt(static_cast<float>(kDim));
  MultiVectorCorpus corpus;
  corpus.dim = kDim;
  for (size_t d = 0; d < ndocs; ++d) {
    size_t pool[kConceptsPerDoc];
    for (size_t& p : pool) p = pick_concept(rng);
    const size_t len = pick_len(rng);
    for (size_t t = 0; t < len; ++t) {
      const float* c = &concepts[pool[pick_slot(rng)] * kDim];
      const size_t row = corpus.vectors.size();
      for (size_t j = 0; j < kDim; ++j) {
        corpus.vectors.push_back(c[j] + sigma * gauss(rng));
      }
      Normalize(&corpus.vectors[row], kDim);
    }
    corpus.ids.push_back(static_cast<int64_t>(d));
    corpus.offsets.push_back(corpus.vectors.size() / kDim);
  }
  return corpus;
}

absl::Span<const float> DocTokens(const MultiVectorCorpus& corpus, size_t d) {
  return absl::MakeConstSpan(corpus.vectors)
      .subspan(corpus.offsets[d] * kDim,
               (corpus.offsets[d + 1] - corpus.offsets[d]) * kDim);
}

// A query of 8..32 tokens that are perturbed copies of tokens of `target`.
std::vector<float> MakeQuery(const MultiVectorCorpus& corpus, size_t target,
                             std::mt19937* rng) {
  std::normal_distribution<float> gauss;
  std::uniform_int_distribution<size_t> pick_len(8, 32);
  const size_t first = corpus.offsets[target];
  const size_t n = corpus.offsets[target + 1] - first;
  std::uniform_int_distribution<size_t> pick_token(0, n - 1);
  const float sigma = 0.3f / std::sqrt(static_cast<float>(kDim));
  const size_t m = pick_len(*rng);
  std::vector<float> query(m * kDim);
  for (size_t i = 0; i < m; ++i) {
    const float* t = &corpus.vectors[(first + pick_token(*rng)) * kDim];
    for (size_t j = 0; j < kDim; ++j) {
      query[i * kDim + j] = t[j] + sigma * gauss(*rng);
    }
    Normalize(&query[i * kDim], kDim);
  }
  return query;
}

MultiVectorIndexOptions Options(uint32_t nbits) {
  MultiVectorIndexOptions o;
  o.dim = kDim;
  o.nbits = nbits;
  o.num_centroids = 512;
  o.train_threshold = uint64_t{1} << 40;  // trained explicitly
  return o;
}

class EvenIds final : public IdPredicate {
 public:
  bool Contains(int64_t id) const override { return id % 2 == 0; }
};

double RecallAt(const MultiVectorSearchResult& got,
                const MultiVectorSearchResult& truth) {
  absl::flat_hash_set<int64_t> want;
  for (int64_t id : truth.ids) {
    if (id >= 0) want.insert(id);
  }
  if (want.empty()) return 1.0;
  size_t hit = 0;
  for (int64_t id : got.ids) hit += want.contains(id);
  return static_cast<double>(hit) / static_cast<double>(want.size());
}

class MultiVectorIndexTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    corpus_ = new MultiVectorCorpus(MakeCorpus(kDocs, 42));
    const auto start = std::chrono::steady_clock::now();
    auto index = MultiVectorIndex::Create(Options(2));
    ASSERT_TRUE(index.ok()) << index.status();
    for (size_t d = 0; d < kDocs; ++d) {
      ASSERT_TRUE((*index)->Add(corpus_->ids[d], DocTokens(*corpus_, d)).ok());
    }
    ASSERT_FALSE((*index)->is_trained());
    ASSERT_TRUE((*index)->Train().ok());
    index_ = index->release();
    std::printf("built %s in %.2f s\n", index_->Describe().c_str(),
                std::chrono::duration<double>(
                    std::chrono::steady_clock::now() - start)
                    .count());
  }
  static void TearDownTestSuite() {
    delete index_;
    delete corpus_;
    index_ = nullptr;
    corpus_ = nullptr;
  }

  static MultiVectorCorpus* corpus_;
  static MultiVectorIndex* index_;
};

MultiVectorCorpus* MultiVectorIndexTest::corpus_ = nullptr;
MultiVectorIndex* MultiVectorIndexTest::index_ = nullptr;

TEST_F(MultiVectorIndexTest, RecallAt10AgainstBruteForce) {
  ASSERT_NE(index_, nullptr);
  std::mt19937 rng(7);
  std::uniform_int_distribution<size_t> pick_doc(0, kDocs - 1);
  constexpr int kQueries = 100;
  double recall = 0;
  int target_found = 0;
  for (int q = 0; q < kQueries; ++q) {
    const size_t target = pick_doc(rng);
    const std::vector<float> query = MakeQuery(*corpus_, target, &rng);
    auto truth = BruteForceMaxSim(*corpus_, query, 10, nullptr);
    auto got = index_->Search(query, 10, nullptr, {});
    ASSERT_TRUE(truth.ok()) << truth.status();
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(truth->ids[0], static_cast<int64_t>(target));
    recall += RecallAt(*got, *truth);
    target_found += got->ids[0] == static_cast<int64_t>(target);
    // Scores are MaxSim over decoded tokens: close to the exact ones.
    EXPECT_NEAR(got->scores[0], truth->scores[0],
                0.05 * std::abs(truth->scores[0]));
  }
  recall /= kQueries;
  std::printf("recall@10 vs brute-force MaxSim: %.3f, target at rank 1: %d/%d\n",
              recall, target_found, kQueries);
  EXPECT_GE(recall, 0.95);
  EXPECT_GE(target_found, kQueries * 98 / 100);
}

TEST_F(MultiVectorIndexTest, FilterIsRespected) {
  ASSERT_NE(index_, nullptr);
  EvenIds even;
  std::mt19937 rng(9);
  std::uniform_int_distribution<size_t> pick_doc(0, kDocs - 1);
  double recall = 0;
  constexpr int kQueries = 30;
  for (int q = 0; q < kQueries; ++q) {
    const std::vector<float> query = MakeQuery(*corpus_, pick_doc(rng), &rng);
    auto got = index_->Search(query, 10, &even, {});
    auto truth = BruteForceMaxSim(*corpus_, query, 10, &even);
    ASSERT_TRUE(got.ok() && truth.ok());
    for (int64_t id : got->ids) {
      ASSERT_GE(id, 0);
      EXPECT_EQ(id % 2, 0);
    }
    recall += RecallAt(*got, *truth);
  }
  EXPECT_GE(recall / kQueries, 0.9);
}

class OnlyIds final : public IdPredicate {
 public:
  explicit OnlyIds(absl::flat_hash_set<int64_t> ids) : ids_(std::move(ids)) {}
  bool Contains(int64_t id) const override { return ids_.contains(id); }

 private:
  absl::flat_hash_set<int64_t> ids_;
};

TEST_F(MultiVectorIndexTest, SelectiveFilterStillFillsK) {
  ASSERT_NE(index_, nullptr);
  // Three documents far from the query's target: candidate generation
  // alone would not find them.
  OnlyIds only({1, 500, 1999});
  std::mt19937 rng(10);
  const std::vector<float> query = MakeQuery(*corpus_, 1000, &rng);
  auto got = index_->Search(query, 5, &only, {});
  ASSERT_TRUE(got.ok()) << got.status();
  absl::flat_hash_set<int64_t> ids(got->ids.begin(), got->ids.begin() + 3);
  EXPECT_EQ(ids, (absl::flat_hash_set<int64_t>{1, 500, 1999}));
  EXPECT_EQ(got->ids[3], -1);
  EXPECT_EQ(got->ids[4], -1);
  EXPECT_TRUE(std::isinf(got->scores[4]));
}

TEST_F(MultiVectorIndexTest, SerializeRoundTripGivesSameResults) {
  ASSERT_NE(index_, nullptr);
  auto bytes = index_->Serialize();
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  auto restored = MultiVectorIndex::Deserialize(Options(2), *bytes);
  ASSERT_TRUE(restored.ok()) << restored.status();
  EXPECT_EQ((*restored)->size(), index_->size());
  EXPECT_EQ((*restored)->num_tokens(), index_->num_tokens());
  EXPECT_TRUE((*restored)->is_trained());
  std::mt19937 rng(11);
  std::uniform_int_distribution<size_t> pick_doc(0, kDocs - 1);
  for (int q = 0; q < 10; ++q) {
    const std::vector<float> query = MakeQuery(*corpus_, pick_doc(rng), &rng);
    auto a = index_->Search(query, 10, nullptr, {});
    auto b = (*restored)->Search(query, 10, nullptr, {});
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ(a->ids, b->ids);
    EXPECT_EQ(a->scores, b->scores);
  }
  // Same state, same bytes.
  auto again = (*restored)->Serialize();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *bytes);

  // Options that disagree with the stored index.
  EXPECT_EQ(MultiVectorIndex::Deserialize(Options(1), *bytes).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(MultiVectorIndexTest, ConcurrentSearchesMatchSerialOnes) {
  ASSERT_NE(index_, nullptr);
  std::mt19937 rng(19);
  std::uniform_int_distribution<size_t> pick_doc(0, kDocs - 1);
  std::vector<std::vector<float>> queries;
  std::vector<MultiVectorSearchResult> serial;
  for (int q = 0; q < 16; ++q) {
    queries.push_back(MakeQuery(*corpus_, pick_doc(rng), &rng));
    auto r = index_->Search(queries.back(), 10, nullptr, {});
    ASSERT_TRUE(r.ok());
    serial.push_back(*r);
  }
  std::vector<MultiVectorSearchResult> parallel(queries.size());
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (size_t q = t; q < queries.size(); q += 4) {
        auto r = index_->Search(queries[q], 10, nullptr, {});
        if (r.ok()) parallel[q] = *r;
      }
    });
  }
  for (auto& th : threads) th.join();
  for (size_t q = 0; q < queries.size(); ++q) {
    EXPECT_EQ(parallel[q].ids, serial[q].ids) << "query " << q;
  }
}

TEST_F(MultiVectorIndexTest, GarbageBytesAreDataLoss) {
  ASSERT_NE(index_, nullptr);
  auto bytes = index_->Serialize();
  ASSERT_TRUE(bytes.ok());
  std::vector<uint8_t> empty;
  EXPECT_EQ(MultiVectorIndex::Deserialize(Options(2), empty).status().code(),
            absl::StatusCode::kDataLoss);
  std::vector<uint8_t> truncated(bytes->begin(), bytes->begin() + 1000);
  EXPECT_EQ(
      MultiVectorIndex::Deserialize(Options(2), truncated).status().code(),
      absl::StatusCode::kDataLoss);
  std::mt19937 rng(12);
  std::vector<uint8_t> random(5000);
  for (auto& b : random) b = static_cast<uint8_t>(rng());
  EXPECT_EQ(MultiVectorIndex::Deserialize(Options(2), random).status().code(),
            absl::StatusCode::kDataLoss);
  std::vector<uint8_t> flipped = *bytes;
  flipped[flipped.size() / 2] ^= 1;
  EXPECT_EQ(MultiVectorIndex::Deserialize(Options(2), flipped).status().code(),
            absl::StatusCode::kDataLoss);
}

TEST_F(MultiVectorIndexTest, RemoveDropsTheDocument) {
  ASSERT_NE(index_, nullptr);
  auto bytes = index_->Serialize();
  ASSERT_TRUE(bytes.ok());
  auto copy = MultiVectorIndex::Deserialize(Options(2), *bytes);
  ASSERT_TRUE(copy.ok());
  MultiVectorIndex& index = **copy;
  std::mt19937 rng(13);
  const size_t target = 321;
  const std::vector<float> query = MakeQuery(*corpus_, target, &rng);
  auto before = index.Search(query, 10, nullptr, {});
  ASSERT_TRUE(before.ok());
  ASSERT_EQ(before->ids[0], static_cast<int64_t>(target));

  const size_t tokens = index.num_tokens();
  auto removed = index.Remove(target);
  ASSERT_TRUE(removed.ok());
  EXPECT_TRUE(*removed);
  EXPECT_FALSE(index.Contains(target));
  EXPECT_EQ(index.size(), kDocs - 1);
  EXPECT_EQ(index.num_tokens(),
            tokens - (corpus_->offsets[target + 1] - corpus_->offsets[target]));
  auto after = index.Search(query, 10, nullptr, {});
  ASSERT_TRUE(after.ok());
  for (int64_t id : after->ids) EXPECT_NE(id, static_cast<int64_t>(target));
  // The rest of the ranking shifts up by one.
  EXPECT_EQ(after->ids[0], before->ids[1]);

  auto again = index.Remove(target);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again);

  // Re-adding (as a replacement of another id's content) works after
  // training: the new tokens are encoded with the trained codec.
  ASSERT_TRUE(index.Add(target, DocTokens(*corpus_, target)).ok());
  auto back = index.Search(query, 10, nullptr, {});
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->ids, before->ids);
}

TEST_F(MultiVectorIndexTest, AddReplacesAnExistingDocument) {
  ASSERT_NE(index_, nullptr);
  auto bytes = index_->Serialize();
  ASSERT_TRUE(bytes.ok());
  auto copy = MultiVectorIndex::Deserialize(Options(2), *bytes);
  ASSERT_TRUE(copy.ok());
  MultiVectorIndex& index = **copy;
  std::mt19937 rng(14);
  const std::vector<float> query = MakeQuery(*corpus_, 77, &rng);
  // Document 5 takes document 77's tokens: both now match the query.
  ASSERT_TRUE(index.Add(5, DocTokens(*corpus_, 77)).ok());
  EXPECT_EQ(index.size(), kDocs);
  auto got = index.Search(query, 2, nullptr, {});
  ASSERT_TRUE(got.ok());
  absl::flat_hash_set<int64_t> top(got->ids.begin(), got->ids.end());
  EXPECT_EQ(top, (absl::flat_hash_set<int64_t>{5, 77}));
  EXPECT_FLOAT_EQ(got->scores[0], got->scores[1]);
}

// An owner that persists the codec and the codes (the store) rebuilds an
// identical index from them with AdoptCodec + AddEncoded.
TEST_F(MultiVectorIndexTest, AdoptedCodecAndEncodedDocumentsSearchIdentically) {
  ASSERT_NE(index_, nullptr);
  std::shared_ptr<const ResidualCodec> codec = index_->codec();
  ASSERT_NE(codec, nullptr);
  auto copy = MultiVectorIndex::Create(Options(2));
  ASSERT_TRUE(copy.ok());
  ASSERT_TRUE((*copy)->AdoptCodec(codec).ok());
  EXPECT_TRUE((*copy)->is_trained());
  EXPECT_EQ((*copy)->AdoptCodec(codec).code(), absl::StatusCode::kFailedPrecondition);
  for (size_t d = 0; d < kDocs; ++d) {
    std::vector<float> unit;
    ASSERT_TRUE(NormalizeMultiVectorTokens(DocTokens(*corpus_, d), kDim, &unit).ok());
    auto codes = codec->Encode(unit);
    ASSERT_TRUE(codes.ok());
    ASSERT_TRUE((*copy)->AddEncoded(corpus_->ids[d], codes->centroids, codes->residuals).ok());
  }
  EXPECT_EQ((*copy)->num_tokens(), index_->num_tokens());
  std::mt19937 rng(11);
  for (int q = 0; q < 5; ++q) {
    const std::vector<float> query = MakeQuery(*corpus_, q * 37 % kDocs, &rng);
    auto a = index_->Search(query, 10, nullptr, {});
    auto b = (*copy)->Search(query, 10, nullptr, {});
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ(a->ids, b->ids);
    EXPECT_EQ(a->scores, b->scores);
  }
  // Bad encoded input.
  const std::vector<uint32_t> bad_centroid = {codec->num_centroids()};
  const std::vector<uint8_t> one_code(codec->code_size(), 0);
  EXPECT_EQ((*copy)->AddEncoded(1, bad_centroid, one_code).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*copy)->AddEncoded(1, {0u}, {}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*copy)->AddEncoded(-1, {0u}, one_code).code(), absl::StatusCode::kInvalidArgument);
  auto untrained = MultiVectorIndex::Create(Options(2));
  ASSERT_TRUE(untrained.ok());
  EXPECT_EQ((*untrained)->AddEncoded(1, {0u}, one_code).code(),
            absl::StatusCode::kFailedPrecondition);
  auto one_bit = MultiVectorIndex::Create(Options(1));
  ASSERT_TRUE(one_bit.ok());
  EXPECT_EQ((*one_bit)->AdoptCodec(codec).code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(MultiVectorIndexTest, BadInputIsInvalidArgument) {
  ASSERT_NE(index_, nullptr);
  std::mt19937 rng(15);
  const std::vector<float> query = MakeQuery(*corpus_, 3, &rng);
  const auto code = [&](absl::Span<const float> q, int k) {
    return index_->Search(q, k, nullptr, {}).status().code();
  };
  EXPECT_EQ(code(query, 0), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code(query, -3), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code({}, 10), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code(absl::MakeConstSpan(query).subspan(0, kDim + 1), 10),
            absl::StatusCode::kInvalidArgument);
  std::vector<float> nan = query;
  nan[3] = std::nanf("");
  EXPECT_EQ(code(nan, 10), absl::StatusCode::kInvalidArgument);
  std::vector<float> zero(kDim, 0.0f);
  EXPECT_EQ(code(zero, 10), absl::StatusCode::kInvalidArgument);
  std::vector<float> huge(4097 * kDim, 1.0f);  // over the 4096-token cap
  EXPECT_EQ(code(huge, 10), absl::StatusCode::kInvalidArgument);

  auto index = MultiVectorIndex::Create(Options(2));
  ASSERT_TRUE(index.ok());
  EXPECT_EQ((*index)->Add(1, {}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*index)->Add(1, absl::MakeConstSpan(query).subspan(0, 10)).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*index)->Add(1, nan).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*index)->Add(-1, query).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*index)->size(), 0u);
  EXPECT_EQ((*index)->Train().code(), absl::StatusCode::kFailedPrecondition);

  MultiVectorIndexOptions bad = Options(3);
  EXPECT_EQ(MultiVectorIndex::Create(bad).status().code(),
            absl::StatusCode::kInvalidArgument);
  bad = Options(1);
  bad.dim = 0;
  EXPECT_EQ(MultiVectorIndex::Create(bad).status().code(),
            absl::StatusCode::kInvalidArgument);

  MultiVectorCorpus broken = *corpus_;
  broken.offsets.pop_back();
  EXPECT_EQ(BruteForceMaxSim(broken, query, 10, nullptr).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(BruteForceMaxSim(*corpus_, query, 0, nullptr).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(MultiVectorIndexSmallTest, UntrainedSearchIsExact) {
  const MultiVectorCorpus corpus = MakeCorpus(100, 5);
  auto index = MultiVectorIndex::Create(Options(2));
  ASSERT_TRUE(index.ok());
  for (size_t d = 0; d < 100; ++d) {
    ASSERT_TRUE((*index)->Add(corpus.ids[d], DocTokens(corpus, d)).ok());
  }
  EXPECT_FALSE((*index)->is_trained());
  EXPECT_EQ((*index)->BytesPerToken(), 4.0 * kDim);
  std::mt19937 rng(16);
  for (int q = 0; q < 5; ++q) {
    const std::vector<float> query = MakeQuery(corpus, q * 7, &rng);
    auto got = (*index)->Search(query, 10, nullptr, {});
    auto truth = BruteForceMaxSim(corpus, query, 10, nullptr);
    ASSERT_TRUE(got.ok() && truth.ok());
    EXPECT_EQ(got->ids, truth->ids);
    for (int i = 0; i < 10; ++i) {
      EXPECT_NEAR(got->scores[i], truth->scores[i], 1e-4);
    }
  }
  // Untrained indexes round-trip too.
  auto bytes = (*index)->Serialize();
  ASSERT_TRUE(bytes.ok());
  auto restored = MultiVectorIndex::Deserialize(Options(2), *bytes);
  ASSERT_TRUE(restored.ok()) << restored.status();
  EXPECT_FALSE((*restored)->is_trained());
  EXPECT_EQ((*restored)->size(), 100u);
}

TEST(MultiVectorIndexSmallTest, TrainsAutomaticallyAtThreshold) {
  const MultiVectorCorpus corpus = MakeCorpus(200, 6);
  MultiVectorIndexOptions o = Options(1);
  o.num_centroids = 0;  // automatic
  o.train_threshold = 3000;
  auto index = MultiVectorIndex::Create(o);
  ASSERT_TRUE(index.ok());
  bool trained_midway = false;
  for (size_t d = 0; d < 200; ++d) {
    ASSERT_TRUE((*index)->Add(corpus.ids[d], DocTokens(corpus, d)).ok());
    if ((*index)->is_trained() && d < 199) trained_midway = true;
  }
  EXPECT_TRUE(trained_midway);
  EXPECT_EQ((*index)->BytesPerToken(), 4.0 + kDim / 8);
  std::mt19937 rng(17);
  int found = 0;
  for (int q = 0; q < 20; ++q) {
    const std::vector<float> query = MakeQuery(corpus, q * 9, &rng);
    auto got = (*index)->Search(query, 10, nullptr, {});
    ASSERT_TRUE(got.ok()) << got.status();
    found += got->ids[0] == q * 9;
  }
  EXPECT_GE(found, 18);
}

}  // namespace
}  // namespace mnemo::index
