// GetKv's raw path (KvGetRequest::raw over the gRPC stream, no shared
// memory) against its converted path, over real gRPC to a real mnemod on
// 127.0.0.1: for every storage codec and wire dtype, the raw blocks are
// byte for byte the converted floats written in the wire dtype, in the same
// order with the same metadata, whether mnemod hands a block over as stored
// (codec == dtype, no entropy stage) or converts it.
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "mnemo/client.h"
#include "tests/integration/kv_test_model.h"
#include "tests/integration/sdk_test_util.h"

namespace mnemo::testing {
namespace {

constexpr int kLayers = 3;
constexpr int kKvHeads = 2;
constexpr int kHeadDim = 16;

ModelFingerprint TestModel() { return KvTestModel(kLayers, 4, kKvHeads, kHeadDim, 'b'); }

// The floats as little-endian elements of `dtype`, by an independent
// conversion (the compiler's binary16; bf16 as the top half of a float that
// is already a bf16 value, as the converted path's floats are).
std::string AsDtype(const std::vector<float>& x, KvDtype dtype) {
  std::string out;
  for (float f : x) {
    char b[4];
    if (dtype == KvDtype::kFp32) {
      std::memcpy(b, &f, 4);
      out.append(b, 4);
    } else if (dtype == KvDtype::kFp16) {
      const _Float16 h = static_cast<_Float16>(f);
      std::memcpy(b, &h, 2);
      out.append(b, 2);
    } else {
      uint32_t bits;
      std::memcpy(&bits, &f, 4);
      EXPECT_EQ(bits & 0xffffu, 0u) << "not a bf16 value: " << f;
      const uint16_t top = static_cast<uint16_t>(bits >> 16);
      std::memcpy(b, &top, 2);
      out.append(b, 2);
    }
  }
  return out;
}

class KvRawTest : public SdkTest {};

TEST_F(KvRawTest, RawBlocksAreTheConvertedBlocksByteForByte) {
  struct Case {
    KvCodec codec;
    bool entropy;
    KvDtype dtype;
  };
  const std::vector<Case> cases = {
      {KvCodec::kFp16, false, KvDtype::kFp16},  // handed over as stored
      {KvCodec::kFp16, true, KvDtype::kFp16},   // zstd undone, then as stored
      {KvCodec::kFp16, false, KvDtype::kFp32},
      {KvCodec::kBf16, false, KvDtype::kBf16},
      {KvCodec::kFp32, false, KvDtype::kFp32},
      {KvCodec::kFp32, false, KvDtype::kFp16},
      {KvCodec::kInt8, false, KvDtype::kFp16},
  };
  int n = 0;
  for (const Case& c : cases) {
    const std::string ns = absl::StrCat("raw", n++);
    SCOPED_TRACE(ns);
    NamespaceConfig config;
    config.name = ns;
    config.dim = kDim;
    ASSERT_TRUE(client_->CreateNamespace(config).ok());
    std::vector<std::string> ids = {"a", "b", "c"};
    std::vector<Chunk> chunks;
    for (size_t i = 0; i < ids.size(); ++i) {
      Chunk chunk;
      chunk.id = ids[i];
      chunk.text = ids[i];
      chunk.vector = {1.0f, static_cast<float>(i), 0.0f, 0.0f};
      chunks.push_back(chunk);
    }
    ASSERT_TRUE(client_->Upsert(ns, {}, chunks).ok());
    KvConfig kv;
    kv.model = TestModel();
    kv.codec = c.codec;
    kv.entropy = c.entropy;
    ASSERT_TRUE(client_->RegisterKvModel(ns, kv).ok());
    std::mt19937 rng(7 + n);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (size_t i = 0; i < ids.size(); ++i) {
      KvPut put;
      put.chunk_id = ids[i];
      put.model = TestModel();
      const int tokens = 40 + 3 * static_cast<int>(i);  // blocks > 1 KiB: blob values
      for (int t = 0; t < tokens; ++t) put.tokens.push_back(static_cast<int32_t>(100 * i + t));
      for (int l = 0; l < kLayers; ++l) {
        std::vector<float> k(static_cast<size_t>(kKvHeads) * tokens * kHeadDim), v(k.size());
        for (float& x : k) x = normal(rng);
        for (float& x : v) x = normal(rng);
        put.k.push_back(std::move(k));
        put.v.push_back(std::move(v));
      }
      ASSERT_TRUE(client_->PutKv(ns, put).ok());
    }
    KvGetRequest request;
    request.chunk_ids = {"c", "a", "b"};
    request.model = TestModel();
    request.dtype = c.dtype;
    request.layer_begin = 1;
    auto converted = client_->GetKv(ns, request);
    ASSERT_TRUE(converted.ok()) << converted.status();
    ASSERT_EQ(converted->size(), 3u * (kLayers - 1));

    request.raw = true;
    auto reader = client_->OpenKvReader(ns, request);
    ASSERT_TRUE(reader.ok()) << reader.status();
    KvBlock block;
    size_t i = 0;
    while (true) {
      auto more = (*reader)->Next(&block);
      ASSERT_TRUE(more.ok()) << more.status();
      if (!*more) break;
      ASSERT_LT(i, converted->size());
      const KvBlock& want = (*converted)[i++];
      EXPECT_EQ(block.chunk_index, want.chunk_index);
      EXPECT_EQ(block.chunk_id, want.chunk_id);
      EXPECT_EQ(block.layer, want.layer);
      EXPECT_EQ(block.shape.tokens, want.shape.tokens);
      EXPECT_EQ(block.dtype, c.dtype);
      EXPECT_EQ(block.tokens, want.tokens);
      EXPECT_EQ(block.key_error, want.key_error);
      EXPECT_TRUE(block.k.empty() && block.v.empty());
      EXPECT_EQ(std::string(block.k_raw), AsDtype(want.k, c.dtype)) << "block " << i;
      EXPECT_EQ(std::string(block.v_raw), AsDtype(want.v, c.dtype)) << "block " << i;
    }
    EXPECT_EQ(i, converted->size());
  }
}

// mnemod sends the next block while the previous one is on the wire
// (server/kv_block_sender.h): readers that walk away after a block or two
// (their calls cancelled while a block is being prepared) leave it serving,
// and a full read afterwards still gets every block in order, byte for byte.
TEST_F(KvRawTest, AbandonedRawReadsLeaveTheStreamIntact) {
  const std::string ns = "abandon";
  NamespaceConfig config;
  config.name = ns;
  config.dim = kDim;
  ASSERT_TRUE(client_->CreateNamespace(config).ok());
  std::vector<std::string> ids;
  std::vector<Chunk> chunks;
  for (int i = 0; i < 6; ++i) {
    Chunk chunk;
    chunk.id = absl::StrCat("c", i);
    chunk.text = chunk.id;
    chunk.vector = {1.0f, static_cast<float>(i), 0.0f, 0.0f};
    chunks.push_back(chunk);
    ids.push_back(chunk.id);
  }
  ASSERT_TRUE(client_->Upsert(ns, {}, chunks).ok());
  KvConfig kv;
  kv.model = TestModel();
  kv.codec = KvCodec::kFp16;
  kv.entropy = false;
  ASSERT_TRUE(client_->RegisterKvModel(ns, kv).ok());
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (const std::string& id : ids) {
    KvPut put;
    put.chunk_id = id;
    put.model = TestModel();
    const int tokens = 64;
    for (int t = 0; t < tokens; ++t) put.tokens.push_back(t);
    for (int l = 0; l < kLayers; ++l) {
      std::vector<float> k(static_cast<size_t>(kKvHeads) * tokens * kHeadDim), v(k.size());
      for (float& x : k) x = normal(rng);
      for (float& x : v) x = normal(rng);
      put.k.push_back(std::move(k));
      put.v.push_back(std::move(v));
    }
    ASSERT_TRUE(client_->PutKv(ns, put).ok());
  }
  KvGetRequest request;
  request.chunk_ids = ids;
  request.model = TestModel();
  request.dtype = KvDtype::kFp16;
  auto converted = client_->GetKv(ns, request);
  ASSERT_TRUE(converted.ok()) << converted.status();
  ASSERT_EQ(converted->size(), ids.size() * kLayers);

  request.raw = true;
  KvBlock block;
  for (int round = 0; round < 20; ++round) {
    auto reader = client_->OpenKvReader(ns, request);
    ASSERT_TRUE(reader.ok()) << reader.status();
    for (int b = 0; b <= round % 3; ++b) {
      auto more = (*reader)->Next(&block);
      ASSERT_TRUE(more.ok()) << more.status();
      ASSERT_TRUE(*more);
      EXPECT_EQ(std::string(block.k_raw), AsDtype((*converted)[b].k, KvDtype::kFp16));
    }
  }  // each reader cancelled with blocks left
  auto reader = client_->OpenKvReader(ns, request);
  ASSERT_TRUE(reader.ok()) << reader.status();
  size_t i = 0;
  while (true) {
    auto more = (*reader)->Next(&block);
    ASSERT_TRUE(more.ok()) << more.status();
    if (!*more) break;
    ASSERT_LT(i, converted->size());
    const KvBlock& want = (*converted)[i++];
    EXPECT_EQ(block.chunk_id, want.chunk_id);
    EXPECT_EQ(block.layer, want.layer);
    EXPECT_EQ(std::string(block.k_raw), AsDtype(want.k, KvDtype::kFp16)) << "block " << i;
    EXPECT_EQ(std::string(block.v_raw), AsDtype(want.v, KvDtype::kFp16)) << "block " << i;
  }
  EXPECT_EQ(i, converted->size());
}

}  // namespace
}  // namespace mnemo::testing
