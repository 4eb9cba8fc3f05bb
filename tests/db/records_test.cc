#include "db/records.h"

#include <string>

#include "db/keys.h"
#include "gtest/gtest.h"

namespace mnemo::db {
namespace {

TEST(RecordsTest, ChunkRoundTripKeepsEveryField) {
  std::string value = records::EncodeChunk("c1", "doc", std::string("te\0xt", 5), R"({"a":1})");
  Chunk chunk;
  ASSERT_TRUE(records::DecodeChunk(value, &chunk).ok());
  EXPECT_EQ(chunk.id, "c1");
  EXPECT_EQ(chunk.document_id, "doc");
  EXPECT_EQ(chunk.text, std::string("te\0xt", 5));
  EXPECT_EQ(chunk.metadata_json, R"({"a":1})");
}

TEST(RecordsTest, TruncatedChunkIsDataLoss) {
  std::string value = records::EncodeChunk("c1", "doc", std::string(300, 'x'), "");
  for (size_t cut : {size_t{0}, size_t{1}, size_t{5}, value.size() - 1}) {
    Chunk chunk;
    EXPECT_EQ(records::DecodeChunk(value.substr(0, cut), &chunk).code(),
              absl::StatusCode::kDataLoss)
        << cut;
  }
}

TEST(RecordsTest, DocumentRoundTrip) {
  Document doc;
  ASSERT_TRUE(records::DecodeDocument(records::EncodeDocument("hello", "{}"), &doc).ok());
  EXPECT_EQ(doc.text, "hello");
  EXPECT_EQ(doc.metadata_json, "{}");
}

TEST(RecordsTest, NamespaceRoundTrip) {
  records::StoredNamespace ns;
  ns.config.name = "n";
  ns.config.dim = 7;
  ns.config.metric = Metric::kCosine;
  ns.config.index_factory = "HNSW32";
  ns.config.train_threshold = 12;
  ns.config.description = "d";
  ns.nsid = 42;
  ns.created_unix_ms = 1234;
  auto back = records::DecodeNamespace(records::EncodeNamespace(ns));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->config.name, "n");
  EXPECT_EQ(back->config.dim, 7u);
  EXPECT_EQ(back->config.metric, Metric::kCosine);
  EXPECT_EQ(back->config.index_factory, "HNSW32");
  EXPECT_EQ(back->config.train_threshold, 12u);
  EXPECT_EQ(back->nsid, 42u);
  EXPECT_EQ(back->created_unix_ms, 1234);
}

TEST(RecordsTest, SnapshotRoundTripAndChecksum) {
  std::vector<uint8_t> payload = {1, 2, 3, 4, 5};
  std::string bytes = records::EncodeSnapshot(9, 77, payload);
  auto file = records::DecodeSnapshot(bytes);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(file->nsid, 9u);
  EXPECT_EQ(file->log_seq, 77u);
  EXPECT_EQ(file->payload, payload);

  std::string flipped = bytes;
  flipped[33] ^= 0x40;
  EXPECT_EQ(records::DecodeSnapshot(flipped).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(records::DecodeSnapshot(bytes.substr(0, bytes.size() - 1)).status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(records::DecodeSnapshot("garbage").status().code(), absl::StatusCode::kDataLoss);
}

TEST(RecordsTest, VectorSizeMismatchIsDataLoss) {
  std::vector<float> v = {1, 2, 3};
  std::vector<float> out;
  EXPECT_TRUE(records::DecodeVector(records::EncodeVector(v), 3, &out).ok());
  EXPECT_EQ(out, v);
  EXPECT_EQ(records::DecodeVector(records::EncodeVector(v), 4, &out).code(),
            absl::StatusCode::kDataLoss);
}

TEST(KeysTest, NamespaceRangesDoNotOverlap) {
  EXPECT_LT(keys::RowKey(1, INT64_MAX), keys::NsEnd(1));
  EXPECT_LE(keys::NsEnd(1), keys::RowKey(2, 0));
  EXPECT_LT(keys::IdMapKey(1, std::string(512, '\xff')), keys::NsEnd(1));
}

TEST(KeysTest, LogKeysSortBySequence) {
  EXPECT_LT(keys::LogKey(3, 255), keys::LogKey(3, 256));
  EXPECT_LT(keys::LogKey(3, 1), keys::LogKey(3, 1ull << 40));
}

TEST(KeysTest, MembershipPrefixDoesNotCaptureLongerDocumentIds) {
  // Document "a" must not see chunks of document "ab" or "a\0b".
  std::string prefix = keys::MembershipPrefix(1, "a");
  EXPECT_FALSE(keys::MembershipKey(1, "ab", "c").starts_with(prefix));
  EXPECT_FALSE(keys::MembershipKey(1, std::string("a\0b", 3), "c").starts_with(prefix));
  EXPECT_TRUE(keys::MembershipKey(1, "a", "c").starts_with(prefix));
}

TEST(KeysTest, PrefixEndIsExclusiveBound) {
  EXPECT_EQ(keys::PrefixEnd("ab"), "ac");
  EXPECT_EQ(keys::PrefixEnd(std::string("a\xff", 2)), "b");
  EXPECT_EQ(keys::PrefixEnd(std::string("\xff\xff", 2)), "");
}

}  // namespace
}  // namespace mnemo::db
