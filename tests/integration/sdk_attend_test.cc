// Retrieval attention end to end: the SDK's AttendStream over real gRPC to
// a real mnemod on 127.0.0.1. Chunk KV is put through the SDK (the server
// builds each chunk's key index in the put's commit); the pushdown with the
// whole budget must equal full attention computed here over the same KV
// read back with GetKv at the chunks' positions, a top-k fetch with the
// whole budget must return every key at its position, and bad input must
// get its status. Synthetic model: 2 layers, 4 heads, 2 KV heads,
// head_dim 16.
#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "attention/context_attention.h"
#include "attention/partial.h"
#include "attention/rope.h"
#include "mnemo/client.h"
#include "tests/integration/kv_test_model.h"
#include "tests/integration/mnemod_process.h"
#include "tests/integration/sdk_test_util.h"

namespace mnemo::testing {
namespace {

constexpr int kLayers = 2, kHeads = 4, kKvHeads = 2, kHeadDim = 16;

ModelFingerprint Model() { return KvTestModel(kLayers, kHeads, kKvHeads, kHeadDim, 'b'); }

std::vector<float> Random(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> gauss(0.0f, 1.0f);
  std::vector<float> x(n);
  for (float& v : x) v = gauss(rng);
  return x;
}

class AttendTest : public SdkTest {
 protected:
  void SetUp() override {
    SdkTest::SetUp();
    if (HasFatalFailure()) return;
    ns_ = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    NamespaceConfig config;
    config.name = ns_;
    config.dim = kDim;
    ASSERT_TRUE(client_->CreateNamespace(config).ok());
    std::vector<Chunk> chunks;
    for (const char* id : {"a", "b", "c"}) {
      Chunk c;
      c.id = id;
      c.text = id;
      c.vector = Basis(kDim, 0, 1.0f);
      chunks.push_back(c);
    }
    ASSERT_TRUE(client_->Upsert(ns_, {}, chunks).ok());
    KvConfig kv;
    kv.model = Model();
    kv.codec = KvCodec::kFp32;
    kv.key_index_keys_per_cluster = 4;
    ASSERT_TRUE(client_->RegisterKvModel(ns_, kv).ok());
    unsigned seed = 1;
    for (auto [id, tokens] : {std::pair{"a", 30}, std::pair{"b", 17}, std::pair{"c", 41}}) {
      KvPut put;
      put.chunk_id = id;
      put.model = Model();
      for (int t = 0; t < tokens; ++t) put.tokens.push_back(5 + t);
      for (int l = 0; l < kLayers; ++l) {
        put.k.push_back(Random(size_t(kKvHeads) * tokens * kHeadDim, seed++));
        put.v.push_back(Random(size_t(kKvHeads) * tokens * kHeadDim, seed++));
      }
      auto result = client_->PutKv(ns_, put);
      ASSERT_TRUE(result.ok()) << result.status();
      EXPECT_GT(result->index_bytes, 0u);
    }
  }

  // Full attention of pre-RoPE `q` at `position` over the KV of `layer`
  // read back through GetKv rotated for the chunks' starts.
  attention::PartialResult Full(const std::vector<AttendChunk>& chunks, uint32_t layer,
                                const std::vector<float>& q, int64_t position) {
    KvGetRequest get;
    get.model = Model();
    for (const AttendChunk& c : chunks) {
      get.chunk_ids.push_back(c.chunk_id);
      get.positions.push_back(c.start);
    }
    get.layer_begin = layer;
    get.layer_end = layer + 1;
    auto blocks = client_->GetKv(ns_, get);
    EXPECT_TRUE(blocks.ok()) << blocks.status();
    std::vector<std::vector<float>> k(kKvHeads), v(kKvHeads);
    std::vector<int32_t> positions;
    for (const KvBlock& b : *blocks) {
      const int T = static_cast<int>(b.shape.tokens);
      for (int h = 0; h < kKvHeads; ++h) {
        k[h].insert(k[h].end(), b.k.begin() + size_t(h) * T * kHeadDim,
                    b.k.begin() + size_t(h + 1) * T * kHeadDim);
        v[h].insert(v[h].end(), b.v.begin() + size_t(h) * T * kHeadDim,
                    b.v.begin() + size_t(h + 1) * T * kHeadDim);
      }
      for (int t = 0; t < T; ++t) {
        positions.push_back(static_cast<int32_t>(chunks[b.chunk_index].start + t));
      }
    }
    std::vector<float> keys, values;
    for (int h = 0; h < kKvHeads; ++h) {
      keys.insert(keys.end(), k[h].begin(), k[h].end());
      values.insert(values.end(), v[h].begin(), v[h].end());
    }
    std::vector<float> post = PostRope(q, position);
    const int n = static_cast<int>(positions.size());
    attention::KeyValueBlock kv{keys.data(), values.data(), n, n, positions.data(), 0};
    attention::PartialResult r;
    EXPECT_TRUE(attention::AttendPartial(shape_, attention::QueryBlock{post.data(), 1, 0}, kv,
                                         false, &r)
                    .ok());
    return r;
  }

  static std::vector<float> PostRope(std::vector<float> q, int64_t position) {
    std::vector<double> cos, sin;
    attention::RopeTables(kHeadDim, 10000.0, position, 1, &cos, &sin);
    attention::ApplyRope(q.data(), 1, kHeads, kHeadDim, cos, sin);
    return q;
  }

  const attention::AttentionShape shape_{kHeads, kKvHeads, kHeadDim,
                                         1.0f / std::sqrt(static_cast<float>(kHeadDim))};
  std::string ns_;
};

TEST_F(AttendTest, PushdownAndTopKAtTheWholeBudgetEqualFullAttention) {
  const std::vector<AttendChunk> chunks = {{"b", 1}, {"c", 18}, {"a", 100}};
  auto stream = client_->OpenAttend(ns_, Model(), chunks);
  ASSERT_TRUE(stream.ok()) << stream.status();
  EXPECT_EQ((*stream)->context_tokens(), 88u);
  EXPECT_EQ((*stream)->end_position(), 130);
  const std::vector<float> q = Random(kHeads * kHeadDim, 77);
  for (uint32_t layer = 0; layer < kLayers; ++layer) {
    AttendBudget whole;
    whole.exact_fraction = 1.0;
    whole.estimated_fraction = 0.0;
    auto partial = (*stream)->Attend(layer, 140, q, 1, whole);
    ASSERT_TRUE(partial.ok()) << partial.status();
    EXPECT_EQ(partial->stats.exact_keys, partial->stats.keys);
    EXPECT_EQ(partial->stats.keys, 88u * kKvHeads);
    const attention::PartialResult full = Full(chunks, layer, q, 140);
    for (size_t i = 0; i < full.out.size(); ++i) EXPECT_NEAR(partial->out[i], full.out[i], 1e-4f);
    for (size_t i = 0; i < full.lse.size(); ++i) EXPECT_NEAR(partial->lse[i], full.lse[i], 1e-4f);

    auto top = (*stream)->FetchTopK(layer, 140, q, 1, 1.0);
    ASSERT_TRUE(top.ok()) << top.status();
    ASSERT_EQ(top->positions.size(), size_t(kKvHeads));
    EXPECT_EQ(top->positions[0].size(), 88u);
    attention::SelectedKeys selected;
    selected.head_dim = kHeadDim;
    selected.positions = top->positions;
    selected.keys = top->keys;
    selected.values = top->values;
    attention::PartialResult fetched;
    ASSERT_TRUE(attention::AttendSelectedKeys(shape_, PostRope(q, 140).data(), 1, selected,
                                              &fetched)
                    .ok());
    for (size_t i = 0; i < full.out.size(); ++i) EXPECT_NEAR(fetched.out[i], full.out[i], 1e-4f);
  }
  // The default budget reads a share of the keys.
  auto partial = (*stream)->Attend(1, 141, q, 1);
  ASSERT_TRUE(partial.ok()) << partial.status();
  EXPECT_LT(partial->stats.exact_keys, partial->stats.keys / 2);
  EXPECT_TRUE((*stream)->Close().ok());
}

TEST_F(AttendTest, BadInputGetsClearStatuses) {
  // Unknown chunk, another model, overlapping positions: refused at open.
  EXPECT_EQ(client_->OpenAttend(ns_, Model(), {{"a", 0}, {"zz", 40}}).status().code(),
            absl::StatusCode::kNotFound);
  ModelFingerprint other = Model();
  other.rope_theta = 500000.0;
  auto wrong_model = client_->OpenAttend(ns_, other, {{"a", 0}});
  EXPECT_EQ(wrong_model.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(wrong_model.status().message().find("rope_theta"), std::string::npos)
      << wrong_model.status();
  auto overlap = client_->OpenAttend(ns_, Model(), {{"a", 0}, {"b", 29}});
  EXPECT_EQ(overlap.status().code(), absl::StatusCode::kInvalidArgument) << overlap.status();
  EXPECT_EQ(client_->OpenAttend("no_such_ns", Model(), {{"a", 0}}).status().code(),
            absl::StatusCode::kNotFound);

  // Queries of the wrong shape: refused before anything is sent.
  auto stream = client_->OpenAttend(ns_, Model(), {{"a", 0}, {"b", 30}});
  ASSERT_TRUE(stream.ok()) << stream.status();
  const std::vector<float> q = Random(kHeads * kHeadDim, 5);
  EXPECT_EQ((*stream)->Attend(0, 60, std::vector<float>(3), 1).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE((*stream)->Attend(0, 60, q, 1).ok());
  // A query inside the context ends the stream with INVALID_ARGUMENT.
  auto inside = (*stream)->Attend(0, 20, q, 1);
  EXPECT_EQ(inside.status().code(), absl::StatusCode::kInvalidArgument) << inside.status();
  EXPECT_EQ((*stream)->Attend(0, 60, q, 1).status().code(), absl::StatusCode::kInvalidArgument);

  // A NaN query and a layer out of range, each on a fresh stream.
  auto s2 = client_->OpenAttend(ns_, Model(), {{"a", 0}});
  ASSERT_TRUE(s2.ok());
  std::vector<float> nan_q = q;
  nan_q[3] = std::nanf("");
  EXPECT_EQ((*s2)->Attend(0, 60, nan_q, 1).status().code(), absl::StatusCode::kInvalidArgument);
  auto s3 = client_->OpenAttend(ns_, Model(), {{"a", 0}});
  ASSERT_TRUE(s3.ok());
  EXPECT_EQ((*s3)->Attend(kLayers, 60, q, 1).status().code(), absl::StatusCode::kInvalidArgument);
  AttendBudget bad;
  bad.exact_fraction = 0.9;
  bad.estimated_fraction = 0.5;
  auto s4 = client_->OpenAttend(ns_, Model(), {{"a", 0}});
  ASSERT_TRUE(s4.ok());
  EXPECT_EQ((*s4)->Attend(0, 60, q, 1, bad).status().code(), absl::StatusCode::kInvalidArgument);

  // The stored KV is intact after all of it.
  auto exists = client_->ExistsKv(ns_, {"a", "b", "c"}, Model());
  ASSERT_TRUE(exists.ok());
  EXPECT_EQ(*exists, (std::vector<uint32_t>{30, 17, 41}));
}

}  // namespace
}  // namespace mnemo::testing
