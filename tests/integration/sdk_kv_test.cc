// Chunk KV caches end to end: the SDK over real gRPC to a real mnemod on
// 127.0.0.1. One mnemod serves the suite (each test uses its own
// namespace, named after the test); the restart tests start their own on a
// data directory they keep.
//
// The model is synthetic (2 layers, 4 heads, 2 KV heads, head_dim 8) and
// K/V are seeded random floats, so every expectation is exact or has a
// stated tolerance: the fp32 codec round-trips bit for bit, fp16 / bf16 wire
// types are compared with an independent rounding (_Float16, and frexp for
// bf16), the fp16 codec within its relative rounding of 2^-11.
//
// Bad input: each refused call has its exact gRPC code and is followed by a
// check that the stored KV, the namespace's stats and its chunks are as
// before (KvBadInputTest::ExpectIntact).
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "attention/rope.h"
#include "common/status_macros.h"
#include "mnemo/client.h"
#include "mnemo/v1/mnemo.grpc.pb.h"
#include "tests/integration/kv_test_model.h"
#include "tests/integration/mnemod_process.h"
#include "tests/integration/sdk_test_util.h"

namespace mnemo::testing {
namespace {

using ::testing::HasSubstr;

constexpr int kLayers = 2;
constexpr int kHeads = 4;
constexpr int kKvHeads = 2;
constexpr int kHeadDim = 8;
constexpr double kRopeTheta = kKvTestRopeTheta;

ModelFingerprint TestModel() { return KvTestModel(kLayers, kHeads, kKvHeads, kHeadDim, 'a'); }

size_t Elements(size_t tokens) { return static_cast<size_t>(kKvHeads) * tokens * kHeadDim; }

std::vector<float> RandomTensor(std::mt19937& rng, size_t n) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(n);
  for (float& v : x) v = normal(rng);
  return x;
}

std::vector<int32_t> Tokens(int32_t first, int n) {
  std::vector<int32_t> t(n);
  for (int i = 0; i < n; ++i) t[i] = first + i;
  return t;
}

// A whole chunk's KV: seeded random K and V for every layer.
KvPut MakePut(const std::string& chunk_id, std::vector<int32_t> tokens, uint32_t seed,
              KvDtype dtype = KvDtype::kFp32) {
  std::mt19937 rng(seed);
  KvPut put;
  put.chunk_id = chunk_id;
  put.model = TestModel();
  put.dtype = dtype;
  for (int l = 0; l < kLayers; ++l) {
    put.k.push_back(RandomTensor(rng, Elements(tokens.size())));
    put.v.push_back(RandomTensor(rng, Elements(tokens.size())));
  }
  put.tokens = std::move(tokens);
  return put;
}

// Independent references for the wire conversions: the compiler's IEEE
// binary16 (round to nearest even), and bf16 as 8 significant bits rounded
// half to even by nearbyint.
float RoundFp16(float x) { return static_cast<float>(static_cast<_Float16>(x)); }
float RoundBf16(float x) {
  if (x == 0 || !std::isfinite(x)) return x;
  int exponent = 0;
  const double mantissa = std::frexp(static_cast<double>(x), &exponent);  // [0.5, 1)
  return static_cast<float>(std::ldexp(std::nearbyint(mantissa * 256.0) / 256.0, exponent));
}
std::vector<float> Rounded(const std::vector<float>& x, KvDtype dtype) {
  std::vector<float> out(x);
  for (float& v : out) {
    if (dtype == KvDtype::kFp16) v = RoundFp16(v);
    if (dtype == KvDtype::kBf16) v = RoundBf16(v);
  }
  return out;
}

// Bit-for-bit equality, reporting the first difference.
void ExpectBitEqual(const std::vector<float>& got, const std::vector<float>& want,
                    const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::memcmp(&got[i], &want[i], sizeof(float)) != 0) {
      ADD_FAILURE() << what << ": element " << i << " is " << got[i] << ", expected " << want[i];
      return;
    }
  }
}

// |got - want| <= rel * |want| + abs elementwise, reporting the first
// violation and how many there are.
void ExpectNear(const std::vector<float>& got, const std::vector<float>& want, double rel,
                double abs, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  size_t bad = 0, first = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (!(std::fabs(static_cast<double>(got[i]) - want[i]) <= rel * std::fabs(want[i]) + abs)) {
      if (bad++ == 0) first = i;
    }
  }
  EXPECT_EQ(bad, 0u) << what << ": " << bad << " of " << got.size()
                     << " elements out of tolerance; first at " << first << ": " << got[first]
                     << " vs " << want[first] << " (rel " << rel << ", abs " << abs << ")";
}

class KvTest : public SdkTest {
 protected:
  void SetUp() override {
    SdkTest::SetUp();
    if (HasFatalFailure()) return;
    ns_ = ::testing::UnitTest::GetInstance()->current_test_info()->name();
  }

  // Creates ns_ (dim kDim, no encoder) holding chunks `ids` with text
  // "text of <id>".
  void CreateWithChunks(const std::vector<std::string>& ids) {
    NamespaceConfig config;
    config.name = ns_;
    config.dim = kDim;
    auto created = client_->CreateNamespace(config);
    ASSERT_TRUE(created.ok()) << created.status();
    UpsertChunks(ids);
  }

  void UpsertChunks(const std::vector<std::string>& ids) {
    std::vector<Chunk> chunks;
    for (size_t i = 0; i < ids.size(); ++i) {
      Chunk c;
      c.id = ids[i];
      c.text = "text of " + ids[i];
      c.vector = Basis(kDim, static_cast<uint32_t>(i), 1.0f + static_cast<float>(i));
      chunks.push_back(std::move(c));
    }
    auto written = client_->Upsert(ns_, {}, chunks);
    ASSERT_TRUE(written.ok()) << written.status();
  }

  KvConfig Config(KvCodec codec) const {
    KvConfig config;
    config.model = TestModel();
    config.codec = codec;
    return config;
  }

  void Register(const KvConfig& config) {
    auto stats = client_->RegisterKvModel(ns_, config);
    ASSERT_TRUE(stats.ok()) << stats.status();
  }
  void Register(KvCodec codec) { Register(Config(codec)); }

  // Puts `put` and expects success.
  KvPutResult Put(const KvPut& put) {
    auto result = client_->PutKv(ns_, put);
    EXPECT_TRUE(result.ok()) << "put of " << put.chunk_id << ": " << result.status();
    return result.ok() ? *result : KvPutResult{};
  }

  absl::StatusOr<std::vector<KvBlock>> Get(const std::vector<std::string>& ids,
                                           KvDtype dtype = KvDtype::kFp32) {
    KvGetRequest request;
    request.chunk_ids = ids;
    request.model = TestModel();
    request.dtype = dtype;
    return client_->GetKv(ns_, request);
  }

  // Token count of the chunk's stored KV (0 = none); -1 when the call fails.
  int64_t Exists(const std::string& id) {
    auto exists = client_->ExistsKv(ns_, {id}, TestModel());
    EXPECT_TRUE(exists.ok()) << exists.status();
    if (!exists.ok() || exists->size() != 1) return -1;
    return (*exists)[0];
  }

  KvStats Stats() {
    auto stats = client_->GetKvStats(ns_);
    EXPECT_TRUE(stats.ok()) << stats.status();
    return stats.ok() ? *stats : KvStats{};
  }

  // The chunk's text as Get returns it ("" when missing).
  std::string Text(const std::string& id) {
    auto got = client_->Get(ns_, {id}, {}, false);
    EXPECT_TRUE(got.ok()) << got.status();
    if (!got.ok() || got->chunks.empty()) return "";
    return got->chunks[0].text;
  }

  std::string ns_;
};

// --- round trips ----------------------------------------------------------

TEST_F(KvTest, Fp32CodecRoundTripsBitForBit) {
  CreateWithChunks({"a"});
  Register(KvCodec::kFp32);
  const KvPut put = MakePut("a", Tokens(100, 5), 1);
  KvPutResult result = Put(put);
  ASSERT_EQ(result.key_error.size(), static_cast<size_t>(kLayers));
  ASSERT_EQ(result.value_error.size(), static_cast<size_t>(kLayers));
  for (int l = 0; l < kLayers; ++l) {
    EXPECT_EQ(result.key_error[l], 0.0f);
    EXPECT_EQ(result.value_error[l], 0.0f);
  }
  EXPECT_GT(result.stored_bytes, 0u);
  EXPECT_EQ(result.evicted_chunks, 0u);

  auto blocks = Get({"a"});
  ASSERT_TRUE(blocks.ok()) << blocks.status();
  ASSERT_EQ(blocks->size(), static_cast<size_t>(kLayers));
  for (int l = 0; l < kLayers; ++l) {
    const KvBlock& b = (*blocks)[l];
    EXPECT_EQ(b.chunk_id, "a");
    EXPECT_EQ(b.chunk_index, 0u);
    EXPECT_EQ(b.layer, static_cast<uint32_t>(l));
    EXPECT_EQ(b.shape, (KvShape{kKvHeads, 5, kHeadDim}));
    EXPECT_EQ(b.dtype, KvDtype::kFp32);
    EXPECT_EQ(b.position, -1);
    ExpectBitEqual(b.k, put.k[l], absl::StrCat("K layer ", l));
    ExpectBitEqual(b.v, put.v[l], absl::StrCat("V layer ", l));
    // Token ids travel in each chunk's first block only.
    if (l == 0) {
      EXPECT_EQ(b.tokens, put.tokens);
    } else {
      EXPECT_TRUE(b.tokens.empty());
    }
  }
}

// Every wire dtype into a lossless store: what is stored is exactly the
// sent values rounded to the wire type, which checks the SDK's conversions
// (round to nearest even, subnormals, signed zero, the fp16 maximum)
// element by element.
TEST_F(KvTest, WireDtypesRoundToNearestEven) {
  CreateWithChunks({"f32", "f16", "b16"});
  Register(KvCodec::kFp32);
  std::vector<KvPut> puts = {MakePut("f32", Tokens(1, 6), 11, KvDtype::kFp32),
                             MakePut("f16", Tokens(1, 6), 12, KvDtype::kFp16),
                             MakePut("b16", Tokens(1, 6), 13, KvDtype::kBf16)};
  // Special values in layer 0's K: halfway cases, subnormals, extremes.
  const float specials[] = {0.0f,       -0.0f,      1.0f + 1.0f / 2048,  // fp16 tie, even down
                            1.0f + 3.0f / 2048,                          // fp16 tie, even up
                            1.0f + 1.0f / 256,  1.0f + 3.0f / 256,       // bf16 ties
                            65504.0f,   -65504.0f,  6.0e-8f,  -3.0e-5f,  // fp16 max, subnormals
                            1.0e-30f,   3.0e38f};
  for (KvPut& put : puts) {
    const size_t n = std::size(specials) - (put.dtype == KvDtype::kFp16 ? 1 : 0);  // 3e38: no fp16
    for (size_t i = 0; i < n; ++i) put.k[0][i] = specials[i];
    Put(put);
  }
  for (const KvPut& put : puts) {
    auto blocks = Get({put.chunk_id});
    ASSERT_TRUE(blocks.ok()) << blocks.status();
    ASSERT_EQ(blocks->size(), static_cast<size_t>(kLayers));
    for (int l = 0; l < kLayers; ++l) {
      const std::string what = absl::StrCat(put.chunk_id, " layer ", l);
      ExpectBitEqual((*blocks)[l].k, Rounded(put.k[l], put.dtype), what + " K");
      ExpectBitEqual((*blocks)[l].v, Rounded(put.v[l], put.dtype), what + " V");
    }
  }
}

// The default fp16 codec: within fp16's relative rounding (2^-11) of what
// was sent, for every wire dtype; the reported errors agree.
TEST_F(KvTest, Fp16CodecIsWithinItsRounding) {
  CreateWithChunks({"f32", "f16", "b16"});
  KvConfig config = Config(KvCodec::kFp16);
  Register(config);
  const std::vector<KvPut> puts = {MakePut("f32", Tokens(1, 7), 21, KvDtype::kFp32),
                                   MakePut("f16", Tokens(1, 7), 22, KvDtype::kFp16),
                                   MakePut("b16", Tokens(1, 7), 23, KvDtype::kBf16)};
  for (const KvPut& put : puts) {
    KvPutResult result = Put(put);
    ASSERT_EQ(result.key_error.size(), static_cast<size_t>(kLayers));
    for (int l = 0; l < kLayers; ++l) {
      EXPECT_LE(result.key_error[l], 1e-3f);
      EXPECT_LE(result.value_error[l], 1e-3f);
    }
  }
  for (const KvPut& put : puts) {
    auto blocks = Get({put.chunk_id});
    ASSERT_TRUE(blocks.ok()) << blocks.status();
    ASSERT_EQ(blocks->size(), static_cast<size_t>(kLayers));
    for (int l = 0; l < kLayers; ++l) {
      const std::string what = absl::StrCat(put.chunk_id, " layer ", l);
      // Against the sent floats; bf16 first rounds to 8 significant bits.
      const double rel = put.dtype == KvDtype::kBf16 ? 4e-3 : 1e-3;
      ExpectNear((*blocks)[l].k, put.k[l], rel, 1e-6, what + " K");
      ExpectNear((*blocks)[l].v, put.v[l], rel, 1e-6, what + " V");
      EXPECT_LE((*blocks)[l].key_error, 1e-3f);
    }
  }
  KvStats stats = Stats();
  EXPECT_EQ(stats.chunks, 3u);
  EXPECT_EQ(stats.blocks, 3u * kLayers);
  EXPECT_EQ(stats.tokens, 21u);
  EXPECT_EQ(stats.fp16_bytes, 3u * kLayers * 2 * Elements(7) * 2);
  EXPECT_GT(stats.stored_bytes, 0u);
  EXPECT_GT(stats.mean_key_error, 0.0);
  EXPECT_LE(stats.mean_key_error, 1e-3);
  EXPECT_EQ(stats.config.codec, KvCodec::kFp16);
  EXPECT_EQ(stats.config.model, TestModel());
  EXPECT_EQ(stats.config.eviction_policy, "lru");
}

TEST_F(KvTest, Int8Int4AndKvqCodecsAreWithinTheirStatedError) {
  CreateWithChunks({"a"});
  Register(KvCodec::kFp16);
  for (KvCodec codec : {KvCodec::kInt8, KvCodec::kInt4, KvCodec::kKvq}) {
    SCOPED_TRACE(KvCodecName(codec));
    ASSERT_TRUE(client_->DeleteKv(ns_, {"a"}).ok());
    Register(codec);  // the same model: only the codec changes
    const KvPut put = MakePut("a", Tokens(1, 64), 31);
    KvPutResult result = Put(put);
    auto blocks = Get({"a"});
    ASSERT_TRUE(blocks.ok()) << blocks.status();
    ASSERT_EQ(blocks->size(), static_cast<size_t>(kLayers));
    for (int l = 0; l < kLayers; ++l) {
      // The stored error is what the block really has.
      double num = 0, den = 0;
      for (size_t i = 0; i < put.k[l].size(); ++i) {
        num += std::pow(static_cast<double>((*blocks)[l].k[i]) - put.k[l][i], 2);
        den += std::pow(static_cast<double>(put.k[l][i]), 2);
      }
      const double measured = std::sqrt(num / den);
      EXPECT_NEAR(measured, (*blocks)[l].key_error, 1e-4);
      EXPECT_NEAR(result.key_error[l], (*blocks)[l].key_error, 1e-6);
      EXPECT_LT(measured, codec == KvCodec::kInt8 ? 0.02 : codec == KvCodec::kInt4 ? 0.2 : 0.25);
    }
  }
  EXPECT_EQ(Stats().config.codec, KvCodec::kKvq);
}

TEST_F(KvTest, LayerRangeAndSeveralChunksInOneCall) {
  CreateWithChunks({"a", "b", "c"});
  Register(KvCodec::kFp32);
  const KvPut a = MakePut("a", Tokens(1, 3), 41);
  const KvPut b = MakePut("b", Tokens(10, 4), 42);
  Put(a);
  Put(b);

  KvGetRequest request;
  request.chunk_ids = {"b", "a"};
  request.model = TestModel();
  request.layer_begin = 1;
  request.layer_end = 2;
  auto blocks = client_->GetKv(ns_, request);
  ASSERT_TRUE(blocks.ok()) << blocks.status();
  ASSERT_EQ(blocks->size(), 2u);
  EXPECT_EQ((*blocks)[0].chunk_id, "b");
  EXPECT_EQ((*blocks)[0].chunk_index, 0u);
  EXPECT_EQ((*blocks)[0].layer, 1u);
  EXPECT_EQ((*blocks)[0].shape.tokens, 4u);
  EXPECT_EQ((*blocks)[0].tokens, b.tokens);  // first block of b in this read
  ExpectBitEqual((*blocks)[0].k, b.k[1], "b K layer 1");
  EXPECT_EQ((*blocks)[1].chunk_id, "a");
  EXPECT_EQ((*blocks)[1].chunk_index, 1u);
  EXPECT_EQ((*blocks)[1].layer, 1u);
  EXPECT_EQ((*blocks)[1].tokens, a.tokens);
  ExpectBitEqual((*blocks)[1].v, a.v[1], "a V layer 1");

  // A chunk without KV in the list fails the whole call before any block.
  request.chunk_ids = {"a", "c"};
  EXPECT_EQ(client_->GetKv(ns_, request).status().code(), absl::StatusCode::kNotFound);
}

// OpenKvReader hands blocks out as they arrive, layer-major: every chunk's
// block of a layer before any block of the next.
TEST_F(KvTest, StreamedBlocksComeLayerByLayer) {
  const std::vector<std::string> ids = {"x", "y", "z"};
  CreateWithChunks(ids);
  Register(KvCodec::kFp16);
  for (size_t i = 0; i < ids.size(); ++i) {
    Put(MakePut(ids[i], Tokens(static_cast<int32_t>(10 * i), 2 + static_cast<int>(i)),
                50 + static_cast<uint32_t>(i)));
  }
  KvGetRequest request;
  request.chunk_ids = {"z", "x", "y"};
  request.model = TestModel();
  auto reader = client_->OpenKvReader(ns_, request);
  ASSERT_TRUE(reader.ok()) << reader.status();
  std::vector<std::pair<uint32_t, std::string>> order;
  KvBlock block;
  for (;;) {
    absl::StatusOr<bool> more = (*reader)->Next(&block);
    ASSERT_TRUE(more.ok()) << more.status();
    if (!*more) break;
    EXPECT_EQ(request.chunk_ids[block.chunk_index], block.chunk_id);
    EXPECT_EQ(block.tokens.empty(), block.layer != 0) << block.chunk_id << " " << block.layer;
    EXPECT_EQ(block.k.size(), block.shape.elements());
    order.emplace_back(block.layer, block.chunk_id);
  }
  const std::vector<std::pair<uint32_t, std::string>> want = {
      {0, "z"}, {0, "x"}, {0, "y"}, {1, "z"}, {1, "x"}, {1, "y"}};
  EXPECT_EQ(order, want);
  // After the end, Next keeps saying so.
  absl::StatusOr<bool> again = (*reader)->Next(&block);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again);
}

// A reader dropped halfway cancels its call; the server is fine after it.
TEST_F(KvTest, AbandonedReaderCancelsCleanly) {
  CreateWithChunks({"a"});
  Register(KvCodec::kFp16);
  Put(MakePut("a", Tokens(1, 4), 61));
  KvGetRequest request;
  request.chunk_ids = {"a"};
  request.model = TestModel();
  {
    auto reader = client_->OpenKvReader(ns_, request);
    ASSERT_TRUE(reader.ok());
    KvBlock block;
    auto more = (*reader)->Next(&block);
    ASSERT_TRUE(more.ok()) << more.status();
    EXPECT_TRUE(*more);
  }
  auto blocks = client_->GetKv(ns_, request);
  ASSERT_TRUE(blocks.ok()) << blocks.status();
  EXPECT_EQ(blocks->size(), static_cast<size_t>(kLayers));
}

// GetKv in fp16: the stored floats rounded to fp16 by the server, decoded
// by the SDK.
TEST_F(KvTest, Fp16OutputIsTheStoredValuesRounded) {
  CreateWithChunks({"a"});
  Register(KvCodec::kFp32);
  const KvPut put = MakePut("a", Tokens(1, 5), 71);
  Put(put);
  auto blocks = Get({"a"}, KvDtype::kFp16);
  ASSERT_TRUE(blocks.ok()) << blocks.status();
  ASSERT_EQ(blocks->size(), static_cast<size_t>(kLayers));
  for (int l = 0; l < kLayers; ++l) {
    EXPECT_EQ((*blocks)[l].dtype, KvDtype::kFp16);
    ExpectBitEqual((*blocks)[l].k, Rounded(put.k[l], KvDtype::kFp16), "K");
    ExpectBitEqual((*blocks)[l].v, Rounded(put.v[l], KvDtype::kFp16), "V");
  }
  auto bf16 = Get({"a"}, KvDtype::kBf16);
  ASSERT_TRUE(bf16.ok()) << bf16.status();
  ExpectBitEqual((*bf16)[0].k, Rounded(put.k[0], KvDtype::kBf16), "bf16 K");
}

// Positions rotate the stored pre-RoPE keys exactly as attention::RotateKeys
// does (the decoder's own RoPE); values are untouched.
TEST_F(KvTest, PositionsRotateTheStoredKeys) {
  CreateWithChunks({"a", "b"});
  Register(KvCodec::kFp16);
  Put(MakePut("a", Tokens(1, 5), 81));
  Put(MakePut("b", Tokens(9, 3), 82));
  auto plain = Get({"a", "b"});
  ASSERT_TRUE(plain.ok()) << plain.status();
  ASSERT_EQ(plain->size(), 2u * kLayers);

  KvGetRequest request;
  request.chunk_ids = {"a", "b"};
  request.model = TestModel();
  request.positions = {7, 1000};
  auto rotated = client_->GetKv(ns_, request);
  ASSERT_TRUE(rotated.ok()) << rotated.status();
  ASSERT_EQ(rotated->size(), plain->size());
  for (size_t i = 0; i < rotated->size(); ++i) {
    const KvBlock& r = (*rotated)[i];
    const KvBlock& p = (*plain)[i];
    ASSERT_EQ(r.chunk_id, p.chunk_id);
    const int64_t position = request.positions[r.chunk_index];
    EXPECT_EQ(r.position, position);
    std::vector<float> want = p.k;
    ASSERT_TRUE(attention::RotateKeys(want.data(), kKvHeads, static_cast<int>(p.shape.tokens),
                                      kHeadDim, kRopeTheta, position)
                    .ok());
    ExpectBitEqual(r.k, want, absl::StrCat(r.chunk_id, " layer ", r.layer, " rotated K"));
    ExpectBitEqual(r.v, p.v, "V");
  }
}

// Keys sent already rotated (keys_position) are stored pre-RoPE: reading
// them back without positions gives the original keys, with the put's
// position the sent ones (a rotation there and back: a few float ulps).
TEST_F(KvTest, RotatedKeysArePutBackBeforeRope) {
  CreateWithChunks({"a"});
  Register(KvCodec::kFp32);
  const KvPut original = MakePut("a", Tokens(1, 6), 91);
  KvPut put = original;
  put.keys_position = 40;
  for (int l = 0; l < kLayers; ++l) {
    ASSERT_TRUE(
        attention::RotateKeys(put.k[l].data(), kKvHeads, 6, kHeadDim, kRopeTheta, 40).ok());
  }
  Put(put);
  auto blocks = Get({"a"});
  ASSERT_TRUE(blocks.ok()) << blocks.status();
  for (int l = 0; l < kLayers; ++l) {
    ExpectNear((*blocks)[l].k, original.k[l], 0, 1e-5, "pre-RoPE K");
    ExpectBitEqual((*blocks)[l].v, original.v[l], "V");
  }
}

TEST_F(KvTest, ExistsKvGivesTokenCounts) {
  CreateWithChunks({"a", "b", "c"});
  Register(KvCodec::kFp16);
  Put(MakePut("a", Tokens(1, 5), 101));
  Put(MakePut("c", Tokens(1, 2), 102));
  auto exists = client_->ExistsKv(ns_, {"a", "b", "c", "no-such-chunk"}, TestModel());
  ASSERT_TRUE(exists.ok()) << exists.status();
  EXPECT_EQ(*exists, (std::vector<uint32_t>{5, 0, 2, 0}));
}

TEST_F(KvTest, DeleteKvKeepsTheChunk) {
  CreateWithChunks({"a", "b"});
  Register(KvCodec::kFp16);
  Put(MakePut("a", Tokens(1, 5), 111));
  Put(MakePut("b", Tokens(1, 5), 112));
  auto deleted = client_->DeleteKv(ns_, {"a", "no-such-chunk"});
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(*deleted, 1u);
  EXPECT_EQ(Text("a"), "text of a");
  EXPECT_EQ(Exists("a"), 0);
  EXPECT_EQ(Get({"a"}).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Exists("b"), 5);
  // Again: nothing left to delete.
  deleted = client_->DeleteKv(ns_, {"a"});
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(*deleted, 0u);
  EXPECT_EQ(Stats().chunks, 1u);
}

TEST_F(KvTest, DeletingOrReplacingTheChunkRemovesItsKv) {
  CreateWithChunks({"a", "b", "c"});
  Register(KvCodec::kFp16);
  Put(MakePut("a", Tokens(1, 5), 121));
  Put(MakePut("b", Tokens(1, 5), 122));
  Put(MakePut("c", Tokens(1, 5), 123));

  auto deleted = client_->Delete(ns_, {"a"}, {});
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(Exists("a"), 0);
  // The same id upserted again is a new chunk without KV.
  UpsertChunks({"a"});
  EXPECT_EQ(Exists("a"), 0);
  EXPECT_EQ(Get({"a"}).status().code(), absl::StatusCode::kNotFound);

  // Replacing a chunk (upsert of the same id) drops its KV in the same commit.
  UpsertChunks({"b"});
  EXPECT_EQ(Exists("b"), 0);
  EXPECT_EQ(Exists("c"), 5);
  EXPECT_EQ(Stats().chunks, 1u);
}

TEST_F(KvTest, DropNamespaceRemovesItsKv) {
  CreateWithChunks({"a"});
  Register(KvCodec::kFp16);
  Put(MakePut("a", Tokens(1, 5), 131));
  ASSERT_TRUE(client_->DropNamespace(ns_).ok());
  EXPECT_EQ(client_->GetKvStats(ns_).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(client_->ExistsKv(ns_, {"a"}, TestModel()).status().code(),
            absl::StatusCode::kNotFound);
  // A namespace of the same name starts without a model and without KV.
  CreateWithChunks({"a"});
  EXPECT_EQ(client_->GetKvStats(ns_).status().code(), absl::StatusCode::kFailedPrecondition);
  Register(KvCodec::kFp16);
  EXPECT_EQ(Exists("a"), 0);
  EXPECT_EQ(Stats().chunks, 0u);
}

TEST_F(KvTest, LookupPrefixFindsARunAndStopsAtAMismatch) {
  CreateWithChunks({"a", "b", "c", "d"});
  Register(KvCodec::kFp16);
  Put(MakePut("a", {1, 2, 3}, 141));
  Put(MakePut("b", {4, 5}, 142));
  Put(MakePut("c", {9, 9}, 143));
  Put(MakePut("d", {1, 2}, 144));  // a shorter chunk matching a's start

  auto lookup = [&](std::vector<int32_t> tokens) {
    auto match = client_->LookupPrefix(ns_, TestModel(), tokens);
    EXPECT_TRUE(match.ok()) << match.status();
    return match.ok() ? *match : KvPrefixMatch{};
  };
  KvPrefixMatch m = lookup({1, 2, 3, 4, 5, 6, 7});
  EXPECT_EQ(m.chunk_ids, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(m.chunk_tokens, (std::vector<uint32_t>{3, 2}));
  EXPECT_EQ(m.matched_tokens, 5u);

  m = lookup({1, 2, 3, 4, 6});  // b does not match: the run stops after a
  EXPECT_EQ(m.chunk_ids, (std::vector<std::string>{"a"}));
  EXPECT_EQ(m.matched_tokens, 3u);

  m = lookup({1, 2, 7});  // the longest matching chunk at each step: d
  EXPECT_EQ(m.chunk_ids, (std::vector<std::string>{"d"}));
  EXPECT_EQ(m.matched_tokens, 2u);

  m = lookup({4, 5, 9, 9, 1, 2, 3});
  EXPECT_EQ(m.chunk_ids, (std::vector<std::string>{"b", "c", "a"}));
  EXPECT_EQ(m.matched_tokens, 7u);

  m = lookup({7, 1, 2, 3});
  EXPECT_TRUE(m.chunk_ids.empty());
  EXPECT_EQ(m.matched_tokens, 0u);
  EXPECT_EQ(lookup({}).matched_tokens, 0u);

  // Chunks whose KV is gone are not matched.
  ASSERT_TRUE(client_->DeleteKv(ns_, {"b"}).ok());
  m = lookup({1, 2, 3, 4, 5});
  EXPECT_EQ(m.chunk_ids, (std::vector<std::string>{"a"}));
}

// --- capacity, pinning, TTL -------------------------------------------

class KvCapacityTest : public KvTest {
 protected:
  // Registers ns_ with the fp32 codec and no entropy stage, so every chunk
  // of kTokens tokens takes exactly the same bytes, and learns that size.
  static constexpr int kTokens = 4;

  void SetUpCapacity(const std::vector<std::string>& ids, const std::string& policy,
                     int chunks_that_fit) {
    CreateWithChunks(ids);
    KvConfig config = Config(KvCodec::kFp32);
    config.entropy = false;
    config.eviction_policy = policy;
    Register(config);
    KvPutResult probe = Put(MakePut(ids[0], Tokens(0, kTokens), 1));
    chunk_bytes_ = probe.stored_bytes;
    ASSERT_GT(chunk_bytes_, 0u);
    ASSERT_TRUE(client_->DeleteKv(ns_, {ids[0]}).ok());
    // Room for `chunks_that_fit` chunks and a half.
    config.capacity_bytes = chunk_bytes_ * chunks_that_fit + chunk_bytes_ / 2;
    Register(config);
  }

  absl::StatusOr<KvPutResult> TryPut(const std::string& id, uint32_t seed, bool pin = false) {
    KvPut put = MakePut(id, Tokens(static_cast<int32_t>(seed), kTokens), seed);
    put.pin = pin;
    return client_->PutKv(ns_, put);
  }

  void Touch(const std::string& id) { ASSERT_TRUE(Get({id}).ok()); }

  uint64_t chunk_bytes_ = 0;
};

TEST_F(KvCapacityTest, LruEvictsTheLeastRecentlyReadChunk) {
  SetUpCapacity({"a", "b", "c"}, "lru", 2);
  ASSERT_TRUE(TryPut("a", 1).ok());
  ASSERT_TRUE(TryPut("b", 2).ok());
  Touch("a");  // b is now the least recently used
  auto c = TryPut("c", 3);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->evicted_chunks, 1u);

  EXPECT_EQ(Exists("a"), kTokens);
  EXPECT_EQ(Exists("b"), 0);
  EXPECT_EQ(Exists("c"), kTokens);
  // Evicted KV reads as missing, never as corrupt; the chunk stays.
  EXPECT_EQ(Get({"b"}).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Text("b"), "text of b");
  KvStats stats = Stats();
  EXPECT_EQ(stats.chunks, 2u);
  EXPECT_EQ(stats.evicted_chunks, 1u);
  EXPECT_EQ(stats.stored_bytes, 2 * chunk_bytes_);
  EXPECT_LE(stats.stored_bytes, stats.config.capacity_bytes);
}

TEST_F(KvCapacityTest, FifoEvictsTheOldestPutEvenIfRead) {
  SetUpCapacity({"a", "b", "c"}, "fifo", 2);
  ASSERT_TRUE(TryPut("a", 1).ok());
  ASSERT_TRUE(TryPut("b", 2).ok());
  Touch("a");
  ASSERT_TRUE(TryPut("c", 3).ok());
  EXPECT_EQ(Exists("a"), 0);
  EXPECT_EQ(Exists("b"), kTokens);
  EXPECT_EQ(Exists("c"), kTokens);
  EXPECT_EQ(Stats().config.eviction_policy, "fifo");
}

// Changing a chunk's retention (pin, TTL) is neither a put nor a read, so it
// must not move the chunk in the eviction order.
//
// Regression of a fixed bug (then in StoreImpl::SetKvRetention, now db/kv_store.cc: it ended with
// kv->Put(id, entry) for every updated chunk, and KvSpace::Put (db/kv_space.cc)
// calls policy_->Add(id), which moves the chunk to the back of the order): a
// TTL or pin change makes the chunk the most recently put, so here b is
// evicted instead of a. Expected: a (oldest put, unpinned) loses its KV.
TEST_F(KvCapacityTest, RetentionChangeDoesNotReorderEviction) {
  SetUpCapacity({"a", "b", "c"}, "fifo", 2);
  ASSERT_TRUE(TryPut("a", 1).ok());
  ASSERT_TRUE(TryPut("b", 2).ok());
  auto updated = client_->SetKvRetention(ns_, {"a"}, std::nullopt, int64_t{3600});
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(*updated, 1u);
  ASSERT_TRUE(TryPut("c", 3).ok());
  EXPECT_EQ(Exists("a"), 0) << "a, the oldest put, should have been evicted";
  EXPECT_EQ(Exists("b"), kTokens);
}

TEST_F(KvCapacityTest, PinnedChunksAreNotEvicted) {
  SetUpCapacity({"a", "b", "c", "d"}, "lru", 2);
  ASSERT_TRUE(TryPut("a", 1, /*pin=*/true).ok());
  ASSERT_TRUE(TryPut("b", 2).ok());
  Touch("b");  // a is the least recently used, but pinned
  auto c = TryPut("c", 3);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->evicted_chunks, 1u);
  EXPECT_EQ(Exists("a"), kTokens);
  EXPECT_EQ(Exists("b"), 0);
  EXPECT_EQ(Exists("c"), kTokens);

  // Pin c too: only pinned chunks remain, so a put does not fit and evicts
  // nothing.
  auto pinned = client_->SetKvRetention(ns_, {"c"}, true, std::nullopt);
  ASSERT_TRUE(pinned.ok()) << pinned.status();
  EXPECT_EQ(*pinned, 1u);
  EXPECT_EQ(Stats().pinned_chunks, 2u);
  auto d = TryPut("d", 4);
  EXPECT_EQ(d.status().code(), absl::StatusCode::kResourceExhausted) << d.status();
  EXPECT_EQ(Exists("d"), 0);
  EXPECT_EQ(Exists("a"), kTokens);
  EXPECT_EQ(Exists("c"), kTokens);
  EXPECT_EQ(Stats().chunks, 2u);

  // Unpinned, c makes room again.
  ASSERT_TRUE(client_->SetKvRetention(ns_, {"c"}, false, std::nullopt).ok());
  ASSERT_TRUE(TryPut("d", 4).ok());
  EXPECT_EQ(Exists("c"), 0);
  EXPECT_EQ(Exists("a"), kTokens);
  EXPECT_EQ(Exists("d"), kTokens);
}

TEST_F(KvCapacityTest, ChunkLargerThanTheBudgetIsResourceExhausted) {
  SetUpCapacity({"a", "b"}, "lru", 1);
  ASSERT_TRUE(TryPut("a", 1).ok());
  KvPut big = MakePut("b", Tokens(0, 3 * kTokens), 7);
  EXPECT_EQ(client_->PutKv(ns_, big).status().code(), absl::StatusCode::kResourceExhausted);
  // Nothing was evicted for a put that cannot fit anyway.
  EXPECT_EQ(Exists("a"), kTokens);
  EXPECT_EQ(Exists("b"), 0);
}

// Polls ExistsKv until the chunk's KV is gone or `limit` passes.
bool WaitUntilMissing(Client& client, const std::string& ns, const std::string& id,
                      std::chrono::milliseconds limit = std::chrono::seconds(15)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    auto exists = client.ExistsKv(ns, {id}, TestModel());
    if (exists.ok() && exists->size() == 1 && (*exists)[0] == 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

TEST_F(KvTest, TtlExpiresKv) {
  CreateWithChunks({"short", "long", "later", "other"});
  Register(KvCodec::kFp16);
  KvPut short_lived = MakePut("short", Tokens(1, 3), 151);
  short_lived.ttl_seconds = 1;
  Put(short_lived);
  Put(MakePut("long", Tokens(1, 3), 152));
  Put(MakePut("later", Tokens(20, 3), 153));
  EXPECT_EQ(Exists("short"), 3);
  // A TTL set afterwards expires too.
  auto updated = client_->SetKvRetention(ns_, {"later"}, std::nullopt, int64_t{1});
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(*updated, 1u);

  ASSERT_TRUE(WaitUntilMissing(*client_, ns_, "short"));
  ASSERT_TRUE(WaitUntilMissing(*client_, ns_, "later"));
  EXPECT_EQ(Get({"short"}).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Text("short"), "text of short");
  EXPECT_EQ(Exists("long"), 3);
  EXPECT_EQ(Stats().chunks, 1u);
  auto match = client_->LookupPrefix(ns_, TestModel(), {20, 21, 22});
  ASSERT_TRUE(match.ok());
  EXPECT_EQ(match->matched_tokens, 0u);
  // The next put purges expired KV and counts it.
  Put(MakePut("other", Tokens(1, 3), 154));
  EXPECT_EQ(Stats().expired_chunks, 2u);
}

TEST_F(KvTest, DefaultTtlAppliesToPutsWithoutOne) {
  CreateWithChunks({"a"});
  KvConfig config = Config(KvCodec::kFp16);
  config.default_ttl_seconds = 1;
  Register(config);
  EXPECT_EQ(Stats().config.default_ttl_seconds, 1);
  Put(MakePut("a", Tokens(1, 3), 161));
  EXPECT_TRUE(WaitUntilMissing(*client_, ns_, "a"));
}

// Re-registering the same model changes the settings; another model is
// refused while KV is stored, accepted once it is gone.
TEST_F(KvTest, ReRegistering) {
  CreateWithChunks({"a"});
  Register(KvCodec::kFp16);
  Put(MakePut("a", Tokens(1, 3), 171));
  KvConfig config = Config(KvCodec::kInt8);
  config.capacity_bytes = 1 << 20;
  auto stats = client_->RegisterKvModel(ns_, config);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->config.codec, KvCodec::kInt8);
  EXPECT_EQ(stats->config.capacity_bytes, 1u << 20);
  EXPECT_EQ(stats->chunks, 1u);

  KvConfig other = Config(KvCodec::kFp16);
  other.model.n_layers = 3;
  auto refused = client_->RegisterKvModel(ns_, other);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(refused.status().message(), HasSubstr("n_layers"));
  EXPECT_EQ(Exists("a"), 3);

  ASSERT_TRUE(client_->DeleteKv(ns_, {"a"}).ok());
  stats = client_->RegisterKvModel(ns_, other);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->config.model.n_layers, 3);
}

// --- restart ------------------------------------------------------------

class KvRestartTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = MakeTempDir("mnemo-kv-restart");
    ASSERT_TRUE(dir.ok()) << dir.status();
    data_dir_ = *dir;
    StartServer();
  }
  void TearDown() override {
    client_.reset();
    server_.reset();
    std::error_code ec;
    std::filesystem::remove_all(data_dir_, ec);
  }
  void StartServer() {
    client_.reset();
    auto server = MnemodProcess::Start({}, data_dir_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    client_ = ConnectOrDie(server_->target());
    ASSERT_NE(client_, nullptr);
  }
  absl::StatusOr<std::vector<KvBlock>> Get(const std::vector<std::string>& ids) {
    KvGetRequest request;
    request.chunk_ids = ids;
    request.model = TestModel();
    return client_->GetKv("kv", request);
  }

  std::string data_dir_;
  std::unique_ptr<MnemodProcess> server_;
  std::unique_ptr<Client> client_;
};

TEST_F(KvRestartTest, KvSurvivesRestartAndKill) {
  NamespaceConfig ns;
  ns.name = "kv";
  ns.dim = 4;
  ASSERT_TRUE(client_->CreateNamespace(ns).ok());
  std::vector<Chunk> chunks;
  for (const char* id : {"a", "b", "c"}) chunks.push_back(Chunk{id, "", id, "", Basis(4, 0)});
  ASSERT_TRUE(client_->Upsert("kv", {}, chunks).ok());
  KvConfig config;
  config.model = TestModel();
  config.codec = KvCodec::kFp16;
  config.capacity_bytes = 1 << 20;
  config.eviction_policy = "fifo";
  ASSERT_TRUE(client_->RegisterKvModel("kv", config).ok());
  KvPut a = MakePut("a", {1, 2, 3}, 181);
  a.pin = true;
  ASSERT_TRUE(client_->PutKv("kv", a).ok());
  ASSERT_TRUE(client_->PutKv("kv", MakePut("b", {4, 5}, 182)).ok());
  auto before = Get({"a", "b"});
  ASSERT_TRUE(before.ok()) << before.status();
  auto stats_before = client_->GetKvStats("kv");
  ASSERT_TRUE(stats_before.ok());

  ASSERT_TRUE(server_->Stop().ok()) << server_->LogTail();
  StartServer();
  auto after = Get({"a", "b"});
  ASSERT_TRUE(after.ok()) << after.status();
  ASSERT_EQ(after->size(), before->size());
  for (size_t i = 0; i < after->size(); ++i) {
    EXPECT_EQ((*after)[i].chunk_id, (*before)[i].chunk_id);
    EXPECT_EQ((*after)[i].tokens, (*before)[i].tokens);
    ExpectBitEqual((*after)[i].k, (*before)[i].k, "K after restart");
    ExpectBitEqual((*after)[i].v, (*before)[i].v, "V after restart");
  }
  auto stats = client_->GetKvStats("kv");
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->chunks, 2u);
  EXPECT_EQ(stats->blocks, stats_before->blocks);
  EXPECT_EQ(stats->tokens, 5u);
  EXPECT_EQ(stats->stored_bytes, stats_before->stored_bytes);
  EXPECT_EQ(stats->pinned_chunks, 1u);
  EXPECT_EQ(stats->config.codec, KvCodec::kFp16);
  EXPECT_EQ(stats->config.capacity_bytes, 1u << 20);
  EXPECT_EQ(stats->config.eviction_policy, "fifo");
  EXPECT_EQ(stats->config.model, TestModel());
  auto match = client_->LookupPrefix("kv", TestModel(), {1, 2, 3, 4, 5});
  ASSERT_TRUE(match.ok()) << match.status();
  EXPECT_EQ(match->chunk_ids, (std::vector<std::string>{"a", "b"}));

  // An acknowledged put survives kill -9.
  ASSERT_TRUE(client_->PutKv("kv", MakePut("c", {7, 7}, 183)).ok());
  server_->Kill();
  StartServer();
  auto exists = client_->ExistsKv("kv", {"a", "b", "c"}, TestModel());
  ASSERT_TRUE(exists.ok()) << exists.status();
  EXPECT_EQ(*exists, (std::vector<uint32_t>{3, 2, 2}));
}

// --- bad input ----------------------------------------------------------

// A namespace with chunks c0..c3, the fp32 codec, and c0's KV stored; every
// test sends one kind of bad input and checks that nothing changed.
class KvBadInputTest : public KvTest {
 protected:
  void SetUp() override {
    KvTest::SetUp();
    if (HasFatalFailure()) return;
    CreateWithChunks({"c0", "c1", "c2", "c3"});
    Register(KvCodec::kFp32);
    baseline_put_ = MakePut("c0", Tokens(1, 4), 7);
    Put(baseline_put_);
    auto blocks = Get({"c0"});
    ASSERT_TRUE(blocks.ok()) << blocks.status();
    baseline_blocks_ = *blocks;
    baseline_stats_ = Stats();
    baseline_ns_ = Snapshot(ns_);
  }

  void ExpectIntact() {
    auto blocks = Get({"c0"});
    ASSERT_TRUE(blocks.ok()) << blocks.status();
    ASSERT_EQ(blocks->size(), baseline_blocks_.size());
    for (size_t i = 0; i < blocks->size(); ++i) {
      ExpectBitEqual((*blocks)[i].k, baseline_blocks_[i].k, "c0 K");
      ExpectBitEqual((*blocks)[i].v, baseline_blocks_[i].v, "c0 V");
      EXPECT_EQ((*blocks)[i].tokens, baseline_blocks_[i].tokens);
    }
    KvStats stats = Stats();
    EXPECT_EQ(stats.chunks, baseline_stats_.chunks);
    EXPECT_EQ(stats.blocks, baseline_stats_.blocks);
    EXPECT_EQ(stats.tokens, baseline_stats_.tokens);
    EXPECT_EQ(stats.stored_bytes, baseline_stats_.stored_bytes);
    EXPECT_EQ(stats.pinned_chunks, baseline_stats_.pinned_chunks);
    EXPECT_EQ(stats.config.codec, baseline_stats_.config.codec);
    EXPECT_EQ(stats.config.model, baseline_stats_.config.model);
    EXPECT_EQ(Exists("c1"), 0);
    EXPECT_EQ(Snapshot(ns_), baseline_ns_);
  }

  absl::StatusCode PutCode(const KvPut& put) { return client_->PutKv(ns_, put).status().code(); }

  // A raw stub for streams the SDK cannot express.
  std::unique_ptr<v1::MnemoKv::Stub> RawStub() {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_ENABLE_HTTP_PROXY, 0);
    return v1::MnemoKv::NewStub(grpc::CreateCustomChannel(
        server_->target(), grpc::InsecureChannelCredentials(), args));
  }

  // Sends `messages` as one PutKv stream and returns the server's status.
  grpc::Status RawPut(const std::vector<v1::PutKvRequest>& messages) {
    auto stub = RawStub();
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::PutKvResponse response;
    auto writer = stub->PutKv(&ctx, &response);
    for (const v1::PutKvRequest& m : messages) {
      if (!writer->Write(m)) break;
    }
    writer->WritesDone();
    return writer->Finish();
  }

  v1::PutKvRequest RawHeader(const std::string& chunk_id, int tokens) {
    v1::PutKvRequest r;
    v1::PutKvHeader* h = r.mutable_header();
    h->set_namespace_(ns_);
    h->set_chunk_id(chunk_id);
    const ModelFingerprint m = TestModel();
    v1::ModelFingerprint* p = h->mutable_model();
    p->set_architecture(m.architecture);
    p->set_n_layers(m.n_layers);
    p->set_n_heads(m.n_heads);
    p->set_n_kv_heads(m.n_kv_heads);
    p->set_head_dim(m.head_dim);
    p->set_dim(m.dim);
    p->set_rope_theta(m.rope_theta);
    p->set_rope_style(m.rope_style);
    p->set_dtype(m.dtype);
    p->set_tokenizer_sha256(m.tokenizer_sha256);
    for (int i = 0; i < tokens; ++i) h->add_tokens(i);
    return r;
  }

  // Layer `layer` of `tokens` tokens in fp32, all values 0.5.
  static v1::PutKvRequest RawLayer(uint32_t layer, int tokens) {
    v1::PutKvRequest r;
    v1::KvLayer* l = r.mutable_layer();
    l->set_layer(layer);
    l->set_dtype(v1::KV_DTYPE_FP32);
    l->set_n_kv_heads(kKvHeads);
    l->set_tokens(tokens);
    l->set_head_dim(kHeadDim);
    const std::vector<float> x(Elements(tokens), 0.5f);
    std::string bytes(reinterpret_cast<const char*>(x.data()), x.size() * sizeof(float));
    l->set_k(bytes);
    l->set_v(bytes);
    return r;
  }

  KvPut baseline_put_;
  std::vector<KvBlock> baseline_blocks_;
  KvStats baseline_stats_;
  NamespaceSnapshot baseline_ns_;
};

// The raw stream helpers make a valid put; the tests below break one thing.
TEST_F(KvBadInputTest, RawValidPutIsAccepted) {
  grpc::Status status = RawPut({RawHeader("c2", 3), RawLayer(0, 3), RawLayer(1, 3)});
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(Exists("c2"), 3);
}

TEST_F(KvBadInputTest, UnregisteredNamespaceIsFailedPrecondition) {
  const std::string other = ns_ + "-unregistered";
  NamespaceConfig config;
  config.name = other;
  config.dim = kDim;
  ASSERT_TRUE(client_->CreateNamespace(config).ok());
  ASSERT_TRUE(client_->Upsert(other, {}, {Chunk{"c0", "", "t", "", Basis(kDim, 0)}}).ok());
  const auto kFailed = absl::StatusCode::kFailedPrecondition;
  auto put = client_->PutKv(other, MakePut("c0", Tokens(1, 2), 1));
  EXPECT_EQ(put.status().code(), kFailed);
  EXPECT_THAT(put.status().message(), HasSubstr("RegisterKvModel"));
  KvGetRequest get;
  get.chunk_ids = {"c0"};
  get.model = TestModel();
  EXPECT_EQ(client_->GetKv(other, get).status().code(), kFailed);
  EXPECT_EQ(client_->ExistsKv(other, {"c0"}, TestModel()).status().code(), kFailed);
  EXPECT_EQ(client_->DeleteKv(other, {"c0"}).status().code(), kFailed);
  EXPECT_EQ(client_->LookupPrefix(other, TestModel(), {1}).status().code(), kFailed);
  EXPECT_EQ(client_->SetKvRetention(other, {"c0"}, true, std::nullopt).status().code(), kFailed);
  EXPECT_EQ(client_->GetKvStats(other).status().code(), kFailed);
  ExpectIntact();
}

TEST_F(KvBadInputTest, UnknownNamespaceIsNotFound) {
  const std::string missing = "no-such-namespace";
  const auto kNotFound = absl::StatusCode::kNotFound;
  EXPECT_EQ(client_->RegisterKvModel(missing, Config(KvCodec::kFp16)).status().code(), kNotFound);
  EXPECT_EQ(client_->PutKv(missing, MakePut("c0", Tokens(1, 2), 1)).status().code(), kNotFound);
  KvGetRequest get;
  get.chunk_ids = {"c0"};
  get.model = TestModel();
  EXPECT_EQ(client_->GetKv(missing, get).status().code(), kNotFound);
  EXPECT_EQ(client_->ExistsKv(missing, {"c0"}, TestModel()).status().code(), kNotFound);
  EXPECT_EQ(client_->DeleteKv(missing, {"c0"}).status().code(), kNotFound);
  EXPECT_EQ(client_->LookupPrefix(missing, TestModel(), {1}).status().code(), kNotFound);
  EXPECT_EQ(client_->SetKvRetention(missing, {"c0"}, true, std::nullopt).status().code(),
            kNotFound);
  EXPECT_EQ(client_->GetKvStats(missing).status().code(), kNotFound);
  ExpectIntact();
}

TEST_F(KvBadInputTest, MismatchedFingerprintIsFailedPreconditionNamingTheField) {
  ModelFingerprint other = TestModel();
  other.n_kv_heads = 4;
  KvPut put = MakePut("c1", Tokens(1, 2), 1);
  put.model = other;
  auto status = client_->PutKv(ns_, put).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr("n_kv_heads"));

  KvGetRequest get;
  get.chunk_ids = {"c0"};
  get.model = other;
  status = client_->GetKv(ns_, get).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr("n_kv_heads"));

  ModelFingerprint tokenizer = TestModel();
  tokenizer.tokenizer_sha256 = std::string(64, 'b');
  status = client_->ExistsKv(ns_, {"c0"}, tokenizer).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr("tokenizer_sha256"));
  status = client_->LookupPrefix(ns_, tokenizer, {1, 2}).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);

  ModelFingerprint theta = TestModel();
  theta.rope_theta = 500000;
  get.model = theta;
  status = client_->GetKv(ns_, get).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr("rope_theta"));
  ExpectIntact();
}

TEST_F(KvBadInputTest, UnknownChunkIsNotFound) {
  EXPECT_EQ(PutCode(MakePut("no-such-chunk", Tokens(1, 2), 1)), absl::StatusCode::kNotFound);
  auto status = Get({"c0", "no-such-chunk"}).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(status.message(), HasSubstr("no-such-chunk"));
  // A stored chunk that holds no KV is NOT_FOUND too.
  EXPECT_EQ(Get({"c1"}).status().code(), absl::StatusCode::kNotFound);
  ExpectIntact();
}

TEST_F(KvBadInputTest, WrongNumberOfLayersStoresNothing) {
  KvPut put = MakePut("c1", Tokens(1, 3), 1);
  put.k.pop_back();
  put.v.pop_back();
  auto status = client_->PutKv(ns_, put).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("layers"));
  EXPECT_EQ(Exists("c1"), 0);

  KvPut extra = MakePut("c1", Tokens(1, 3), 1);
  extra.k.push_back(extra.k.back());
  extra.v.push_back(extra.v.back());
  EXPECT_EQ(PutCode(extra), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Exists("c1"), 0);

  // K and V for different layer counts: refused by the SDK.
  KvPut uneven = MakePut("c1", Tokens(1, 3), 1);
  uneven.v.pop_back();
  EXPECT_EQ(PutCode(uneven), absl::StatusCode::kInvalidArgument);
  ExpectIntact();
}

TEST_F(KvBadInputTest, LayersOutOfOrderAreInvalidArgument) {
  const KvPut put = MakePut("c1", Tokens(1, 3), 1);
  auto writer = client_->OpenKvWriter(ns_, put);
  ASSERT_TRUE(writer.ok());
  absl::Status status = (*writer)->WriteLayer(1, put.k[1], put.v[1]);
  if (status.ok()) status = (*writer)->WriteLayer(0, put.k[0], put.v[0]);
  auto finished = (*writer)->Finish();
  EXPECT_EQ(finished.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(finished.status().message(), HasSubstr("order"));
  EXPECT_EQ(Exists("c1"), 0);

  // A layer twice.
  writer = client_->OpenKvWriter(ns_, put);
  ASSERT_TRUE(writer.ok());
  status = (*writer)->WriteLayer(0, put.k[0], put.v[0]);
  if (status.ok()) status = (*writer)->WriteLayer(0, put.k[0], put.v[0]);
  EXPECT_EQ((*writer)->Finish().status().code(), absl::StatusCode::kInvalidArgument);
  ExpectIntact();
}

TEST_F(KvBadInputTest, ShapeMismatchIsInvalidArgument) {
  const KvPut put = MakePut("c1", Tokens(1, 3), 1);
  // Layer 1 with head_dim 4 (same element count as 2 heads x 6 tokens x 4).
  {
    auto writer = client_->OpenKvWriter(ns_, put);
    ASSERT_TRUE(writer.ok());
    ASSERT_TRUE((*writer)->WriteLayer(0, put.k[0], put.v[0]).ok());
    const std::vector<float> k(Elements(3) / 2, 1.0f);
    IgnoreError((*writer)->WriteLayer(1, KvShape{kKvHeads, 3, kHeadDim / 2}, k, k));
    auto finished = (*writer)->Finish();
    EXPECT_EQ(finished.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(finished.status().message(), HasSubstr("head_dim"));
  }
  // n_kv_heads of the query heads.
  {
    auto writer = client_->OpenKvWriter(ns_, put);
    ASSERT_TRUE(writer.ok());
    const std::vector<float> k(static_cast<size_t>(kHeads) * 3 * kHeadDim, 1.0f);
    IgnoreError((*writer)->WriteLayer(0, KvShape{kHeads, 3, kHeadDim}, k, k));
    EXPECT_EQ((*writer)->Finish().status().code(), absl::StatusCode::kInvalidArgument);
  }
  // Shape right, but fewer floats than it needs.
  {
    auto writer = client_->OpenKvWriter(ns_, put);
    ASSERT_TRUE(writer.ok());
    const std::vector<float> k(Elements(3) - 1, 1.0f);
    IgnoreError((*writer)->WriteLayer(0, k, put.v[0]));
    EXPECT_EQ((*writer)->Finish().status().code(), absl::StatusCode::kInvalidArgument);
  }
  EXPECT_EQ(Exists("c1"), 0);
  ExpectIntact();
}

TEST_F(KvBadInputTest, TokenCountDisagreeingWithTheLayerIsInvalidArgument) {
  const KvPut put = MakePut("c1", Tokens(1, 3), 1);
  auto writer = client_->OpenKvWriter(ns_, put);
  ASSERT_TRUE(writer.ok());
  const std::vector<float> k(Elements(4), 1.0f);
  IgnoreError((*writer)->WriteLayer(0, KvShape{kKvHeads, 4, kHeadDim}, k, k));
  auto finished = (*writer)->Finish();
  EXPECT_EQ(finished.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(finished.status().message(), HasSubstr("tokens"));
  EXPECT_EQ(Exists("c1"), 0);
  ExpectIntact();
}

TEST_F(KvBadInputTest, NanOrInfinityIsInvalidArgument) {
  for (KvDtype dtype : {KvDtype::kFp32, KvDtype::kFp16, KvDtype::kBf16}) {
    SCOPED_TRACE(KvDtypeName(dtype));
    KvPut nan = MakePut("c1", Tokens(1, 3), 1, dtype);
    nan.k[1][5] = std::numeric_limits<float>::quiet_NaN();
    auto status = client_->PutKv(ns_, nan).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(status.message(), HasSubstr("NaN"));
    KvPut inf = MakePut("c1", Tokens(1, 3), 1, dtype);
    inf.v[0][0] = -std::numeric_limits<float>::infinity();
    EXPECT_EQ(PutCode(inf), absl::StatusCode::kInvalidArgument);
  }
  // Finite values fp16 cannot hold are refused by the SDK before sending.
  KvPut big = MakePut("c1", Tokens(1, 3), 1, KvDtype::kFp16);
  big.k[0][0] = 1e6f;
  auto status = client_->PutKv(ns_, big).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("fp16"));
  EXPECT_EQ(Exists("c1"), 0);
  ExpectIntact();
}

TEST_F(KvBadInputTest, ByteCountNotAMultipleOfTheDtypeIsInvalidArgument) {
  v1::PutKvRequest layer0 = RawLayer(0, 3);
  // fp16 needs 2 bytes per element: one byte too many.
  v1::KvLayer* l = layer0.mutable_layer();
  l->set_dtype(v1::KV_DTYPE_FP16);
  l->set_k(std::string(Elements(3) * 2 + 1, '\0'));
  l->set_v(std::string(Elements(3) * 2, '\0'));
  grpc::Status status = RawPut({RawHeader("c1", 3), layer0, RawLayer(1, 3)});
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  // fp32 bytes for one element short.
  v1::PutKvRequest short_layer = RawLayer(0, 3);
  short_layer.mutable_layer()->mutable_v()->resize(Elements(3) * 4 - 4);
  status = RawPut({RawHeader("c1", 3), short_layer, RawLayer(1, 3)});
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  // An unknown dtype.
  v1::PutKvRequest unknown = RawLayer(0, 3);
  unknown.mutable_layer()->set_dtype(static_cast<v1::KvDtype>(9));
  status = RawPut({RawHeader("c1", 3), unknown, RawLayer(1, 3)});
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  EXPECT_EQ(Exists("c1"), 0);
  ExpectIntact();
}

TEST_F(KvBadInputTest, MalformedStreamsAreInvalidArgument) {
  // The first message is a layer, not the header.
  grpc::Status status = RawPut({RawLayer(0, 3), RawHeader("c1", 3), RawLayer(1, 3)});
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  EXPECT_THAT(status.error_message(), HasSubstr("header"));
  // No message at all.
  status = RawPut({});
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  // A second header.
  status = RawPut({RawHeader("c1", 3), RawLayer(0, 3), RawHeader("c1", 3), RawLayer(1, 3)});
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  // A message with neither part.
  status = RawPut({RawHeader("c1", 3), v1::PutKvRequest(), RawLayer(1, 3)});
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  EXPECT_EQ(Exists("c1"), 0);
  ExpectIntact();
}

TEST_F(KvBadInputTest, BadHeaderFieldsAreInvalidArgument) {
  KvPut no_tokens = MakePut("c1", {}, 1);
  EXPECT_EQ(PutCode(no_tokens), absl::StatusCode::kInvalidArgument);
  KvPut negative = MakePut("c1", {1, -2, 3}, 1);
  EXPECT_EQ(PutCode(negative), absl::StatusCode::kInvalidArgument);
  KvPut ttl = MakePut("c1", Tokens(1, 3), 1);
  ttl.ttl_seconds = -1;
  EXPECT_EQ(PutCode(ttl), absl::StatusCode::kInvalidArgument);
  KvPut position = MakePut("c1", Tokens(1, 3), 1);
  position.keys_position = -5;
  EXPECT_EQ(PutCode(position), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(client_->SetKvRetention(ns_, {"c0"}, std::nullopt, int64_t{-1}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(client_->ExistsKv(ns_, {}, TestModel()).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Get({}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Exists("c1"), 0);
  ExpectIntact();
}

// A put the client cancels stores nothing, and the KV the chunk held
// before stays.
TEST_F(KvBadInputTest, CancelledPutStoresNothing) {
  const KvPut put = MakePut("c0", Tokens(50, 4), 99);  // would replace c0's KV
  auto writer = client_->OpenKvWriter(ns_, put);
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->WriteLayer(0, put.k[0], put.v[0]).ok());
  (*writer)->Cancel();
  EXPECT_EQ((*writer)->Finish().status().code(), absl::StatusCode::kCancelled);

  // Abandoned without Finish: the destructor cancels.
  writer = client_->OpenKvWriter(ns_, MakePut("c1", Tokens(1, 3), 1));
  ASSERT_TRUE(writer.ok());
  // The server may already have refused the stream; either way the
  // destructor cancels it.
  IgnoreError((*writer)->WriteLayer(0, put.k[0], put.v[0]));
  writer->reset();
  EXPECT_EQ(Exists("c1"), 0);
  ExpectIntact();
}

// Every layer sent, then the client cancels instead of half-closing: the
// stream did not end after the last layer, so nothing may be stored
// (proto: "Nothing is stored unless the stream ends after the last layer").
//
// SERVER BUG (server/kv_service.cc, PutKvReactor::OnReadDone): a failed
// read (ok == false) is taken as the client's half-close and commits
// (Complete()), but a cancelled or deadline-expired stream also ends with
// ok == false; the reactor should check ctx_->IsCancelled() and store
// nothing. Expected: c0 keeps its old KV and c1 holds none; actual: the
// cancelled puts are committed.
TEST_F(KvBadInputTest, PutCancelledAfterTheLastLayerStoresNothing) {
  const KvPut replacement = MakePut("c0", Tokens(50, 4), 99);
  const KvPut fresh = MakePut("c1", Tokens(1, 3), 98);
  for (const KvPut* put : {&replacement, &fresh}) {
    auto writer = client_->OpenKvWriter(ns_, *put);
    ASSERT_TRUE(writer.ok());
    for (int l = 0; l < kLayers; ++l) {
      ASSERT_TRUE((*writer)->WriteLayer(l, put->k[l], put->v[l]).ok());
    }
    // No client-visible sync point says the server has read the last
    // layer; give it a moment so the cancel does not race the reads.
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    (*writer)->Cancel();
    EXPECT_EQ((*writer)->Finish().status().code(), absl::StatusCode::kCancelled);
  }
  EXPECT_EQ(Exists("c1"), 0) << "a cancelled put was stored";
  ExpectIntact();
}

TEST_F(KvBadInputTest, LayerRangeOutOfBoundsIsInvalidArgument) {
  KvGetRequest request;
  request.chunk_ids = {"c0"};
  request.model = TestModel();
  for (auto [begin, end] : {std::pair{2u, 0u}, std::pair{0u, 3u}, std::pair{1u, 1u},
                            std::pair{2u, 1u}}) {
    request.layer_begin = begin;
    request.layer_end = end;
    EXPECT_EQ(client_->GetKv(ns_, request).status().code(), absl::StatusCode::kInvalidArgument)
        << begin << ":" << end;
  }
  ExpectIntact();
}

TEST_F(KvBadInputTest, PositionsCountMismatchIsInvalidArgument) {
  ASSERT_TRUE(client_->PutKv(ns_, MakePut("c2", Tokens(1, 2), 3)).ok());
  KvGetRequest request;
  request.chunk_ids = {"c0", "c2"};
  request.model = TestModel();
  request.positions = {5};
  EXPECT_EQ(client_->GetKv(ns_, request).status().code(), absl::StatusCode::kInvalidArgument);
  request.positions = {5, 6, 7};
  EXPECT_EQ(client_->GetKv(ns_, request).status().code(), absl::StatusCode::kInvalidArgument);
  request.positions = {5, -1};
  EXPECT_EQ(client_->GetKv(ns_, request).status().code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(client_->DeleteKv(ns_, {"c2"}).ok());
  ExpectIntact();
}

TEST_F(KvBadInputTest, UnknownDtypeOnGetIsInvalidArgument) {
  KvGetRequest request;
  request.chunk_ids = {"c0"};
  request.model = TestModel();
  request.dtype = static_cast<KvDtype>(9);
  EXPECT_EQ(client_->GetKv(ns_, request).status().code(), absl::StatusCode::kInvalidArgument);
  ExpectIntact();
}

TEST_F(KvBadInputTest, BadRegistrationIsInvalidArgument) {
  const auto kInvalid = absl::StatusCode::kInvalidArgument;
  KvConfig codec = Config(static_cast<KvCodec>(42));
  EXPECT_EQ(client_->RegisterKvModel(ns_, codec).status().code(), kInvalid);
  KvConfig policy = Config(KvCodec::kFp32);
  policy.eviction_policy = "random";
  auto status = client_->RegisterKvModel(ns_, policy).status();
  EXPECT_EQ(status.code(), kInvalid);
  EXPECT_THAT(status.message(), HasSubstr("random"));
  KvConfig ttl = Config(KvCodec::kFp32);
  ttl.default_ttl_seconds = -1;
  EXPECT_EQ(client_->RegisterKvModel(ns_, ttl).status().code(), kInvalid);
  KvConfig group = Config(KvCodec::kInt4);
  group.int4_group_size = (1u << 16) + 1;
  EXPECT_EQ(client_->RegisterKvModel(ns_, group).status().code(), kInvalid);
  // Models the store cannot hold: odd head_dim, KV heads not dividing the
  // heads, no layers, another RoPE style, an empty field.
  for (auto mutate : std::vector<void (*)(ModelFingerprint&)>{
           [](ModelFingerprint& m) { m.head_dim = 7; },
           [](ModelFingerprint& m) { m.n_kv_heads = 3; },
           [](ModelFingerprint& m) { m.n_layers = 0; },
           [](ModelFingerprint& m) { m.rope_style = "interleaved"; },
           [](ModelFingerprint& m) { m.tokenizer_sha256.clear(); },
           [](ModelFingerprint& m) { m.rope_theta = std::numeric_limits<double>::infinity(); }}) {
    KvConfig bad = Config(KvCodec::kFp32);
    mutate(bad.model);
    EXPECT_EQ(client_->RegisterKvModel(ns_, bad).status().code(), kInvalid)
        << bad.model.Canonical();
  }
  ExpectIntact();
}

}  // namespace
}  // namespace mnemo::testing
