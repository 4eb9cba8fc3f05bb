// Runs the KV codec fuzzer's property (kv_codec_fuzz.h) over the checked-in
// corpus (tests/fuzz/corpus/kv_codec: seeds and every crash the fuzzer
// found) and over freshly encoded seed blocks, so that CI keeps the fuzzer's
// findings fixed without clang.
//
// MNEMO_KV_CODEC_WRITE_SEEDS=<dir> writes the seed blocks there (to
// regenerate the corpus seeds after a format change).
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "db/kv_codec.h"
#include "gtest/gtest.h"
#include "tests/fuzz/kv_codec_fuzz.h"

namespace mnemo::fuzz {
namespace {

using db::KvCodecKind;
using db::KvTensorRole;

struct Seed {
  std::string name;
  std::string bytes;
};

// Small valid blocks: every codec, both roles, entropy on and off, fp16 and
// fp32 quantization parameters, kvq with and without sinks and outliers.
std::vector<Seed> Seeds() {
  std::vector<Seed> seeds;
  std::mt19937 rng(1);
  std::normal_distribution<float> gauss;
  const db::KvTensorShape shape{2, 9, 4};
  // Rows repeat, so that the entropy stage has something to remove.
  std::vector<float> row(shape.head_dim * 3);
  for (float& v : row) v = gauss(rng);
  std::vector<float> x(shape.elements());
  for (size_t i = 0; i < x.size(); ++i) x[i] = row[i % row.size()];
  for (KvCodecKind kind : {KvCodecKind::kFp32, KvCodecKind::kFp16, KvCodecKind::kBf16,
                           KvCodecKind::kInt8, KvCodecKind::kInt4}) {
    for (bool entropy : {false, true}) {
      for (KvTensorRole role : {KvTensorRole::kKeys, KvTensorRole::kValues}) {
        if (kind != KvCodecKind::kInt4 && role == KvTensorRole::kValues) continue;
        db::KvCodecOptions o;
        o.kind = kind;
        o.entropy = entropy;
        o.group_size = 4;
        auto enc = db::EncodeKvTensor(x, shape, role, o);
        EXPECT_TRUE(enc.ok()) << enc.status();
        if (!enc.ok()) continue;
        EXPECT_EQ(db::PeekKvTensor(enc->bytes)->entropy, entropy) << db::KvCodecName(kind);
        seeds.push_back(
            {absl::StrCat("seed-", db::KvCodecName(kind), role == KvTensorRole::kKeys ? "-k" : "-v",
                          entropy ? "-zstd" : "-raw"),
             enc->bytes});
      }
    }
  }
  // Large magnitudes: fp32 quantization parameters.
  std::vector<float> big = x;
  for (float& v : big) v *= 1e6f;
  for (KvCodecKind kind : {KvCodecKind::kInt8, KvCodecKind::kInt4}) {
    db::KvCodecOptions o;
    o.kind = kind;
    o.entropy = false;
    o.group_size = 4;
    auto enc = db::EncodeKvTensor(big, shape, KvTensorRole::kKeys, o);
    EXPECT_TRUE(enc.ok()) << enc.status();
    if (enc.ok())
      seeds.push_back({absl::StrCat("seed-", db::KvCodecName(kind), "-fp32params"), enc->bytes});
  }
  // kvq: both roles; 2-bit codes with two sink tokens and 10% outliers;
  // every token a sink.
  struct KvqSeed {
    const char* name;
    int bits;
    uint32_t sinks;
    double outliers;
  };
  for (const KvqSeed& k : {KvqSeed{"", 3, 1, 0.01}, KvqSeed{"-b2-s2-o10", 2, 2, 0.1},
                           KvqSeed{"-allsinks", 3, 9, 0.01}}) {
    for (KvTensorRole role : {KvTensorRole::kKeys, KvTensorRole::kValues}) {
      db::KvCodecOptions o;
      o.kind = KvCodecKind::kKvq;
      o.kvq_bits = k.bits;
      o.kvq_sink_tokens = k.sinks;
      o.kvq_outlier_fraction = k.outliers;
      auto enc = db::EncodeKvTensor(x, shape, role, o);
      EXPECT_TRUE(enc.ok()) << enc.status();
      if (enc.ok()) {
        seeds.push_back({absl::StrCat("seed-kvq", role == KvTensorRole::kKeys ? "-k" : "-v", k.name),
                         enc->bytes});
      }
    }
  }
  return seeds;
}

TEST(KvCodecCorpusTest, SeedBlocksDecodeAndHoldTheProperty) {
  const std::vector<Seed> seeds = Seeds();
  ASSERT_EQ(seeds.size(), 20u);
  for (const Seed& s : seeds) {
    std::vector<float> out;
    EXPECT_TRUE(db::DecodeKvTensor(s.bytes, &out).ok()) << s.name;
    EXPECT_EQ(CheckKvCodecInput(s.bytes), "") << s.name;
  }
  if (const char* dir = std::getenv("MNEMO_KV_CODEC_WRITE_SEEDS"); dir != nullptr) {
    std::filesystem::create_directories(dir);
    for (const Seed& s : seeds) {
      std::ofstream(std::filesystem::path(dir) / s.name, std::ios::binary) << s.bytes;
    }
  }
}

TEST(KvCodecCorpusTest, EveryCorpusFileHoldsTheProperty) {
  const std::filesystem::path dir = MNEMO_KV_CODEC_CORPUS_DIR;
  ASSERT_TRUE(std::filesystem::is_directory(dir)) << dir;
  size_t files = 0, decoded = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(CheckKvCodecInput(bytes), "") << entry.path();
    std::vector<float> out;
    decoded += db::DecodeKvTensor(bytes, &out).ok();
    ++files;
  }
  EXPECT_GT(files, 0u);
  EXPECT_GT(decoded, 0u);  // the seeds
}

}  // namespace
}  // namespace mnemo::fuzz
