// Reuse of independently encoded chunks without their gap, on the committed
// reference model: CacheBlend selective recompute
// (decoder/selective_recompute.h) and APE parallel encoding
// (decoder/parallel_encoding.h). Each test is one where a wrong parameter
// or a wrong splice changes the answer: recomputing every token reproduces
// a full sequential prefill, recomputing none is plain reuse, the selection
// is the top of independently computed scores, APE over one chunk with
// neutral settings is a plain prefill and its temperature and scale move
// the logits. Fails when the model directory is absent (it is committed).
#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <numeric>
#include <vector>

#include "attention/partial.h"
#include "decoder/chunk_kv.h"
#include "decoder/model.h"
#include "decoder/parallel_encoding.h"
#include "decoder/selective_recompute.h"
#include "decoder/session.h"
#include "gtest/gtest.h"
#include "tests/decoder/test_model.h"

namespace mnemo::decoder {
namespace {

// Recomputing every token gives a full prefill's K/V and logits up to float
// rounding (attention over the same keys in other blocks, the log-sum-exp
// merges of the forward's pieces).
constexpr float kKvTolerance = 1e-4f;
constexpr float kLogitTolerance = 1e-3f;
// Plain reuse vs blending none: layer 0 recomputed from the same tokens.
constexpr float kSameTolerance = 1e-5f;

constexpr BlendSelector kSelectors[] = {BlendSelector::kKvDeviation,
                                       BlendSelector::kMissedAttention, BlendSelector::kRecent,
                                       BlendSelector::kQueryAttention};

float MaxAbsDiff(absl::Span<const float> a, absl::Span<const float> b) {
  if (a.size() != b.size()) return std::numeric_limits<float>::infinity();
  float m = 0.0f;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

double L2(absl::Span<const float> a, absl::Span<const float> b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += (a[i] - b[i]) * double(a[i] - b[i]);
  return std::sqrt(s);
}

class ReuseTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!testing::ReferenceModelPresent()) return;
    auto model = Model::Load(testing::ReferenceModelDir());
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = model->release();
  }
  static void TearDownTestSuite() {
    delete model_;
    model_ = nullptr;
  }
  void SetUp() override {
    if (!testing::ReferenceModelPresent()) {
      GTEST_FAIL() << "reference model directory " << testing::ReferenceModelDir()
                   << " is absent";
    }
    ASSERT_NE(model_, nullptr);
    // Deterministic token ids (no tokenizer needed): three chunks and a
    // question.
    uint32_t state = 12345;
    auto next = [&] {
      state = state * 1664525u + 1013904223u;
      return static_cast<int32_t>(3 + (state >> 8) % (config().vocab_size - 3));
    };
    for (int len : lengths_) {
      std::vector<int32_t> chunk;
      for (int i = 0; i < len; ++i) chunk.push_back(next());
      chunks_.push_back(chunk);
      context_.insert(context_.end(), chunk.begin(), chunk.end());
    }
    for (int i = 0; i < 9; ++i) question_.push_back(next());
  }

  const ModelConfig& config() const { return model_->config(); }
  int n() const { return static_cast<int>(context_.size()); }
  int capacity() const { return n() + static_cast<int>(question_.size()); }

  // The chunks encoded alone and placed one after another.
  std::unique_ptr<KvCache> PlainCache() {
    auto cache = std::make_unique<KvCache>(config(), capacity());
    for (const auto& chunk : chunks_) {
      auto kv = EncodeChunk(*model_, chunk);
      EXPECT_TRUE(kv.ok()) << kv.status();
      auto placed = PlaceChunk(config(), *kv, cache->next_position());
      EXPECT_TRUE(placed.ok()) << placed.status();
      EXPECT_TRUE(cache->AppendKv(placed->view()).ok());
    }
    return cache;
  }

  // A full sequential prefill of the context, with its trace.
  std::unique_ptr<KvCache> FullCache(ForwardTrace* trace = nullptr) {
    auto cache = std::make_unique<KvCache>(config(), capacity());
    CpuForward forward(*model_);
    EXPECT_TRUE(forward.Forward(context_, cache.get(), LogitsMode::kNone, nullptr, trace).ok());
    return cache;
  }

  // Logits of every question token on top of `cache` (which it extends).
  std::vector<float> QuestionLogits(KvCache* cache) {
    CpuForward forward(*model_);
    std::vector<float> logits;
    EXPECT_TRUE(forward.Forward(question_, cache, LogitsMode::kAll, &logits).ok());
    return logits;
  }

  // Slots [0, n) of a layer of the cache as head-major [n_kv_heads, n, hd].
  std::vector<float> Slots(const KvCache& cache, int layer, bool keys) {
    std::vector<float> out;
    const attention::KeyValueBlock b = cache.View(layer, 0, n());
    for (int g = 0; g < config().n_kv_heads; ++g) {
      const float* src = (keys ? b.keys : b.values) + g * b.head_stride * config().head_dim;
      out.insert(out.end(), src, src + static_cast<size_t>(n()) * config().head_dim);
    }
    return out;
  }

  absl::StatusOr<BlendStats> Blend(KvCache* cache, BlendSelector selector, double fraction) {
    BlendOptions options;
    options.selector = selector;
    options.recompute_fraction = fraction;
    options.query = question_;
    return BlendContext(*model_, context_, lengths_, options, cache);
  }

  static Model* model_;
  const std::vector<int> lengths_ = {20, 17, 23};
  std::vector<std::vector<int32_t>> chunks_;
  std::vector<int32_t> context_, question_;
};

Model* ReuseTest::model_ = nullptr;

TEST_F(ReuseTest, RecomputingEveryTokenReproducesAFullPrefill) {
  auto full = FullCache();
  const std::vector<float> full_logits = QuestionLogits(full.get());
  for (BlendSelector selector : kSelectors) {
    auto cache = PlainCache();
    auto stats = Blend(cache.get(), selector, 1.0);
    ASSERT_TRUE(stats.ok()) << stats.status();
    EXPECT_EQ(stats->candidates, n() - lengths_[0]);
    EXPECT_EQ(static_cast<int>(stats->selected.size()), stats->candidates);
    for (int l = 0; l < config().n_layers; ++l) {
      EXPECT_LT(MaxAbsDiff(Slots(*cache, l, true), Slots(*full, l, true)), kKvTolerance)
          << "layer " << l;
      EXPECT_LT(MaxAbsDiff(Slots(*cache, l, false), Slots(*full, l, false)), kKvTolerance)
          << "layer " << l;
    }
    EXPECT_LT(MaxAbsDiff(QuestionLogits(cache.get()), full_logits), kLogitTolerance);
    // Every token after the first chunk through every layer: below a full
    // prefill (the first chunk is free), above the candidates' share of it.
    EXPECT_LT(stats->compute_fraction(), 1.0);
    EXPECT_GT(stats->compute_fraction(), 0.5);
  }
}

TEST_F(ReuseTest, RecomputingNoTokenIsPlainReuseAndMoreGetsCloserToFull) {
  auto plain = PlainCache();
  const std::vector<float> plain_logits = QuestionLogits(plain.get());
  auto full = FullCache();
  const std::vector<float> full_logits = QuestionLogits(full.get());
  // The gap exists on this prompt.
  ASSERT_GT(MaxAbsDiff(plain_logits, full_logits), 100 * kLogitTolerance);
  for (BlendSelector selector : kSelectors) {
    auto none = PlainCache();
    auto stats = Blend(none.get(), selector, 0.0);
    ASSERT_TRUE(stats.ok()) << stats.status();
    EXPECT_TRUE(stats->selected.empty());
    EXPECT_LT(MaxAbsDiff(QuestionLogits(none.get()), plain_logits), kSameTolerance);

    auto half = PlainCache();
    auto half_stats = Blend(half.get(), selector, 0.5);
    ASSERT_TRUE(half_stats.ok()) << half_stats.status();
    EXPECT_EQ(static_cast<int>(half_stats->selected.size()), std::lround(0.5 * n()));
    EXPECT_LT(L2(QuestionLogits(half.get()), full_logits), L2(plain_logits, full_logits));
    EXPECT_GT(half_stats->compute_fraction(), stats->compute_fraction());
  }
}

TEST_F(ReuseTest, KvDeviationSelectsTheTokensWhoseLayerOneKvDeviateMost) {
  // With layer 0 recomputed, a candidate's layer-1 K/V are the full
  // prefill's: its score is their squared distance to the stored ones.
  auto full = FullCache();
  auto plain = PlainCache();
  auto cache = PlainCache();
  auto stats = Blend(cache.get(), BlendSelector::kKvDeviation, 0.15);
  ASSERT_TRUE(stats.ok()) << stats.status();
  const int first = lengths_[0], hd = config().head_dim;
  const std::vector<float> fk = Slots(*full, 1, true), fv = Slots(*full, 1, false),
                           pk = Slots(*plain, 1, true), pv = Slots(*plain, 1, false);
  std::vector<double> want(n() - first, 0.0);
  for (int t = first; t < n(); ++t) {
    for (int g = 0; g < config().n_kv_heads; ++g) {
      for (int e = 0; e < hd; ++e) {
        const size_t i = (static_cast<size_t>(g) * n() + t) * hd + e;
        want[t - first] += (fk[i] - pk[i]) * double(fk[i] - pk[i]) +
                           (fv[i] - pv[i]) * double(fv[i] - pv[i]);
      }
    }
  }
  ASSERT_EQ(stats->scores.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_NEAR(stats->scores[i], want[i], 1e-3 * want[i] + 1e-6) << "candidate " << i;
  }
  std::vector<int> order(want.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int a, int b) { return want[a] > want[b]; });
  const size_t keep = stats->selected.size();
  ASSERT_EQ(static_cast<long>(keep), std::lround(0.15 * n()));
  std::vector<int> top(order.begin(), order.begin() + keep);
  for (int& i : top) i += first;
  std::sort(top.begin(), top.end());
  EXPECT_EQ(stats->selected, top);
  // Only the selected tokens' layer-1 K/V changed, to the full prefill's.
  const std::vector<float> bk = Slots(*cache, 1, true);
  for (int t = first; t < n(); ++t) {
    const bool selected = std::binary_search(top.begin(), top.end(), t);
    const size_t i = static_cast<size_t>(t) * hd;  // KV head 0
    const float to_full = MaxAbsDiff({bk.data() + i, size_t(hd)}, {fk.data() + i, size_t(hd)});
    const float to_plain = MaxAbsDiff({bk.data() + i, size_t(hd)}, {pk.data() + i, size_t(hd)});
    if (selected) {
      EXPECT_LT(to_full, kKvTolerance) << "slot " << t;
    } else {
      EXPECT_EQ(to_plain, 0.0f) << "slot " << t;
    }
  }
}

TEST_F(ReuseTest, MissedAttentionIsTheLayerZeroMassBeforeEachChunk) {
  ForwardTrace trace;
  trace.want_q = true;
  trace.want_kv = true;
  auto full = FullCache(&trace);
  auto cache = PlainCache();
  auto stats = Blend(cache.get(), BlendSelector::kMissedAttention, 0.1);
  ASSERT_TRUE(stats.ok()) << stats.status();
  // Layer 0's attention probabilities of the full prefill.
  const int H = config().n_heads, hd = config().head_dim;
  std::vector<float> q(static_cast<size_t>(n()) * H * hd);  // token-major
  for (int h = 0; h < H; ++h) {
    for (int t = 0; t < n(); ++t) {
      std::copy_n(trace.q[0].data() + (static_cast<size_t>(h) * n() + t) * hd, hd,
                  q.data() + (static_cast<size_t>(t) * H + h) * hd);
    }
  }
  std::vector<float> probs;
  ASSERT_TRUE(attention::AttentionProbabilities(model_->attention_shape(),
                                                {q.data(), n(), 0}, full->View(0, 0, n()),
                                                true, &probs)
                  .ok());
  int begin = lengths_[0];
  for (size_t c = 1; c < lengths_.size(); ++c) {
    for (int t = begin; t < begin + lengths_[c]; ++t) {
      double mass = 0;
      for (int h = 0; h < H; ++h) {
        const float* row = probs.data() + (static_cast<size_t>(h) * n() + t) * n();
        mass += std::accumulate(row, row + begin, 0.0);
      }
      EXPECT_NEAR(stats->scores[t - lengths_[0]], mass / H, 1e-4) << "slot " << t;
    }
    begin += lengths_[c];
  }
}

TEST_F(ReuseTest, RecentSelectsTheLastTokensAndQuerySelectsWhatTheQueryAttends) {
  auto cache = PlainCache();
  auto recent = Blend(cache.get(), BlendSelector::kRecent, 0.2);
  ASSERT_TRUE(recent.ok()) << recent.status();
  const int keep = static_cast<int>(std::lround(0.2 * n()));
  std::vector<int> last(keep);
  std::iota(last.begin(), last.end(), n() - keep);
  EXPECT_EQ(recent->selected, last);

  // The query's layer-0 attention mass per context token, from the full
  // prefill of context + question (layer 0 is exact in both).
  ForwardTrace trace;
  trace.want_q = true;
  std::vector<int32_t> all = context_;
  all.insert(all.end(), question_.begin(), question_.end());
  KvCache full(config(), capacity());
  CpuForward forward(*model_);
  ASSERT_TRUE(forward.Forward(all, &full, LogitsMode::kNone, nullptr, &trace).ok());
  const int H = config().n_heads, hd = config().head_dim, nq = static_cast<int>(question_.size());
  const int total = n() + nq;
  std::vector<float> q(static_cast<size_t>(nq) * H * hd);
  for (int h = 0; h < H; ++h) {
    for (int i = 0; i < nq; ++i) {
      std::copy_n(trace.q[0].data() + (static_cast<size_t>(h) * total + n() + i) * hd, hd,
                  q.data() + (static_cast<size_t>(i) * H + h) * hd);
    }
  }
  std::vector<float> probs;
  ASSERT_TRUE(attention::AttentionProbabilities(model_->attention_shape(), {q.data(), nq, n()},
                                                full.View(0, 0, n()), false, &probs)
                  .ok());
  auto plain = PlainCache();
  auto query = Blend(plain.get(), BlendSelector::kQueryAttention, 0.2);
  ASSERT_TRUE(query.ok()) << query.status();
  for (int t = lengths_[0]; t < n(); ++t) {
    double mass = 0;
    for (int r = 0; r < H * nq; ++r) mass += probs[static_cast<size_t>(r) * n() + t];
    EXPECT_NEAR(query->scores[t - lengths_[0]], mass, 1e-4) << "slot " << t;
  }
  EXPECT_EQ(static_cast<int>(query->selected.size()), keep);
  // A query selector without a query is refused.
  BlendOptions options;
  options.selector = BlendSelector::kQueryAttention;
  EXPECT_EQ(BlendContext(*model_, context_, lengths_, options, plain.get()).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(ReuseTest, BadBlendRequestsAreRefusedAndLeaveTheCache) {
  auto cache = PlainCache();
  const std::vector<float> before = Slots(*cache, 2, true);
  for (double bad : {-0.1, 1.5, std::nan("")}) {
    auto s = Blend(cache.get(), BlendSelector::kKvDeviation, bad);
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  BlendOptions options;
  options.selection_layer = 0;  // layer 0's K/V never deviate
  EXPECT_EQ(BlendContext(*model_, context_, lengths_, options, cache.get()).status().code(),
            absl::StatusCode::kInvalidArgument);
  options.selection_layer = config().n_layers;
  EXPECT_EQ(BlendContext(*model_, context_, lengths_, options, cache.get()).status().code(),
            absl::StatusCode::kInvalidArgument);
  const std::vector<int> short_lengths = {20, 17, 22};
  EXPECT_EQ(BlendContext(*model_, context_, short_lengths, {}, cache.get()).status().code(),
            absl::StatusCode::kInvalidArgument);
  const std::vector<int> empty_chunk = {20, 0, 17, 23};
  EXPECT_EQ(BlendContext(*model_, context_, empty_chunk, {}, cache.get()).status().code(),
            absl::StatusCode::kInvalidArgument);
  std::vector<int32_t> bad_tokens = context_;
  bad_tokens[30] = config().vocab_size;
  EXPECT_EQ(BlendContext(*model_, bad_tokens, lengths_, {}, cache.get()).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Slots(*cache, 2, true), before);
}

// Logits of the question through `session` after `ape` is attached.
std::vector<float> ApeLogits(ParallelContext* ape, DecodeSession* session,
                             const std::vector<int32_t>& question) {
  EXPECT_TRUE(ape->Attach(session).ok());
  std::vector<float> logits;
  EXPECT_TRUE(session->Append(question, LogitsMode::kAll, &logits).ok());
  return logits;
}

TEST_F(ReuseTest, ApeOverOneChunkIsAPlainPrefillAndItsSettingsMatter) {
  const std::vector<int32_t> prefix = {config().bos_id};
  auto chunk = EncodeChunkAfterPrefix(*model_, prefix, chunks_[1]);
  ASSERT_TRUE(chunk.ok()) << chunk.status();
  ASSERT_EQ(chunk->n_tokens(), lengths_[1]);
  // A plain prefill of prefix + chunk + question.
  std::vector<int32_t> all = prefix;
  all.insert(all.end(), chunks_[1].begin(), chunks_[1].end());
  const int ctx = static_cast<int>(all.size());
  all.insert(all.end(), question_.begin(), question_.end());
  auto plain = NewDecodeSession(*model_, Device::kCpu);
  ASSERT_TRUE(plain.ok());
  std::vector<float> want;
  ASSERT_TRUE((*plain)->Append({all.data(), size_t(ctx)}, LogitsMode::kNone, nullptr).ok());
  ASSERT_TRUE((*plain)->Append(question_, LogitsMode::kAll, &want).ok());

  ParallelEncodingOptions options;
  options.prefix = prefix;
  auto ape = ParallelContext::Build(*model_, options, {*chunk});
  ASSERT_TRUE(ape.ok()) << ape.status();
  EXPECT_EQ((*ape)->end_position(), ctx);
  auto session = NewDecodeSession(*model_, Device::kCpu);
  ASSERT_TRUE(session.ok());
  EXPECT_LT(MaxAbsDiff(ApeLogits(ape->get(), session->get(), question_), want), kLogitTolerance);

  for (auto [temperature, scale] : {std::pair{0.7f, 1.0f}, std::pair{1.0f, 0.5f}}) {
    options.temperature = temperature;
    options.context_scale = scale;
    auto moved = ParallelContext::Build(*model_, options, {*chunk});
    ASSERT_TRUE(moved.ok()) << moved.status();
    auto s = NewDecodeSession(*model_, Device::kCpu);
    ASSERT_TRUE(s.ok());
    EXPECT_GT(MaxAbsDiff(ApeLogits(moved->get(), s->get(), question_), want),
              100 * kLogitTolerance)
        << "temperature " << temperature << " scale " << scale;
  }
}

TEST_F(ReuseTest, ApeWithoutPrefixIsPlainReuse) {
  // No prefix, neutral settings: the chunks encoded alone, attended as the
  // plain context is.
  std::vector<ChunkKv> stored;
  for (const auto& c : chunks_) {
    auto kv = EncodeChunkAfterPrefix(*model_, {}, c);
    ASSERT_TRUE(kv.ok());
    stored.push_back(*std::move(kv));
  }
  auto ape = ParallelContext::Build(*model_, {}, stored);
  ASSERT_TRUE(ape.ok()) << ape.status();
  auto session = NewDecodeSession(*model_, Device::kCpu);
  ASSERT_TRUE(session.ok());
  auto plain = PlainCache();
  EXPECT_LT(MaxAbsDiff(ApeLogits(ape->get(), session->get(), question_),
                       QuestionLogits(plain.get())),
            kLogitTolerance);
}

TEST_F(ReuseTest, BadApeOptionsAreRefused) {
  auto chunk = EncodeChunk(*model_, chunks_[0]);
  ASSERT_TRUE(chunk.ok());
  for (auto [t, s] : {std::pair{0.0f, 1.0f}, std::pair{-1.0f, 1.0f}, std::pair{1.0f, 0.0f},
                      std::pair{std::numeric_limits<float>::infinity(), 1.0f}}) {
    ParallelEncodingOptions options;
    options.temperature = t;
    options.context_scale = s;
    EXPECT_EQ(ParallelContext::Build(*model_, options, {*chunk}).status().code(),
              absl::StatusCode::kInvalidArgument);
  }
  ParallelEncodingOptions options;
  options.prefix = {config().vocab_size};
  EXPECT_EQ(ParallelContext::Build(*model_, options, {*chunk}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(EncodeChunkAfterPrefix(*model_, {1}, {}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace mnemo::decoder
