#include "decoder/safetensors.h"

#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/decoder/test_model.h"

namespace mnemo::decoder {
namespace {

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string Header(const std::string& json) {
  std::string out(8, '\0');
  uint64_t n = json.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + json;
}

TEST(SafetensorsTest, WriteThenReadRoundTrips) {
  testing::TempDir dir;
  SafetensorsWriter w;
  w.AddF32("a", {2, 3}, std::vector<float>{1, 2, 3, 4, 5, 6});
  w.AddI32("ids", {4}, std::vector<int32_t>{7, -1, 0, 9});
  w.SetMetadata("k", "v");
  ASSERT_TRUE(w.Write(dir.path() + "/t.safetensors").ok());
  auto f = SafetensorsFile::Open(dir.path() + "/t.safetensors");
  ASSERT_TRUE(f.ok()) << f.status();
  auto a = (*f)->F32("a", {2, 3});
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(std::vector<float>(a->begin(), a->end()), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  auto ids = (*f)->I32("ids");
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(std::vector<int32_t>(ids->begin(), ids->end()), (std::vector<int32_t>{7, -1, 0, 9}));
  EXPECT_EQ((*f)->metadata().at("k"), "v");
  EXPECT_EQ((*f)->F32("a", {3, 2}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*f)->F32("ids").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*f)->F32("missing").status().code(), absl::StatusCode::kNotFound);
}

TEST(SafetensorsTest, UnalignedHeaderLengthStillReadable) {
  // A header whose length is not a multiple of 4 (the format allows it).
  std::string bytes = Header(R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}} )");
  const float one = 1.0f;
  bytes.append(reinterpret_cast<const char*>(&one), 4);
  auto f = SafetensorsFile::Parse(bytes, "mem");
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ((*(*f)->F32("x"))[0], 1.0f);
}

TEST(SafetensorsTest, MissingFileIsNotFound) {
  EXPECT_EQ(SafetensorsFile::Open("/nonexistent/x.safetensors").status().code(),
            absl::StatusCode::kNotFound);
}

TEST(SafetensorsTest, GarbageBytesAreDataLoss) {
  std::mt19937 rng(1);
  for (size_t n : {0, 3, 8, 64, 4096}) {
    std::string bytes(n, '\0');
    for (char& c : bytes) c = static_cast<char>(rng());
    auto f = SafetensorsFile::Parse(bytes, "garbage");
    EXPECT_EQ(f.status().code(), absl::StatusCode::kDataLoss) << n << " bytes: " << f.status();
  }
  // A plausible length followed by non-JSON.
  EXPECT_EQ(SafetensorsFile::Parse(Header("not json at all"), "g").status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(SafetensorsFile::Parse(Header("[1,2]"), "g").status().code(),
            absl::StatusCode::kDataLoss);
}

TEST(SafetensorsTest, TruncatedFileIsDataLossNamingTheTensor) {
  testing::TempDir dir;
  SafetensorsWriter w;
  w.AddF32("big", {1000}, std::vector<float>(1000, 0.5f));
  ASSERT_TRUE(w.Write(dir.path() + "/t.safetensors").ok());
  const std::string bytes = ReadAll(dir.path() + "/t.safetensors");
  for (size_t cut : {bytes.size() - 1, bytes.size() - 2000, size_t{20}, size_t{7}}) {
    auto f = SafetensorsFile::Parse(bytes.substr(0, cut), "t");
    EXPECT_EQ(f.status().code(), absl::StatusCode::kDataLoss) << "cut at " << cut;
    if (cut == bytes.size() - 1) {
      EXPECT_NE(f.status().message().find("big"), std::string::npos) << f.status();
    }
  }
}

TEST(SafetensorsTest, InconsistentEntriesAreRejected) {
  const std::string data(16, '\0');
  // size != elements * 4
  EXPECT_EQ(SafetensorsFile::Parse(
                Header(R"({"x":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}})") + data, "g")
                .status()
                .code(),
            absl::StatusCode::kDataLoss);
  // begin > end
  EXPECT_EQ(SafetensorsFile::Parse(
                Header(R"({"x":{"dtype":"F32","shape":[0],"data_offsets":[8,4]}})") + data, "g")
                .status()
                .code(),
            absl::StatusCode::kDataLoss);
  // negative dimension
  EXPECT_EQ(SafetensorsFile::Parse(
                Header(R"({"x":{"dtype":"F32","shape":[-4],"data_offsets":[0,16]}})") + data, "g")
                .status()
                .code(),
            absl::StatusCode::kDataLoss);
  // missing fields
  EXPECT_EQ(SafetensorsFile::Parse(Header(R"({"x":{"dtype":"F32"}})") + data, "g").status().code(),
            absl::StatusCode::kDataLoss);
  // unsupported dtype
  EXPECT_EQ(SafetensorsFile::Parse(
                Header(R"({"x":{"dtype":"BF16","shape":[8],"data_offsets":[0,16]}})") + data, "g")
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(SafetensorsTest, WriterRejectsShapeMismatch) {
  testing::TempDir dir;
  SafetensorsWriter w;
  w.AddF32("x", {2, 2}, std::vector<float>(3));
  EXPECT_EQ(w.Write(dir.path() + "/x.safetensors").code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace mnemo::decoder
