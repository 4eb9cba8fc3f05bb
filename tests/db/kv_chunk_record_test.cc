// The KV chunk record (db/kv_records.h): what a put commits per chunk.
#include <gtest/gtest.h>

#include <string>

#include "db/kv_records.h"

namespace mnemo::db::kvrecords {
namespace {

KvChunkRecord Sample() {
  KvChunkRecord r;
  r.fingerprint_hash = 0x1234;
  r.n_layers = 4;
  r.stored_bytes = 5000;
  r.index_bytes = 700;
  r.fp16_bytes = 8000;
  r.created_ms = 11;
  r.expires_ms = 22;
  r.pinned = true;
  r.key_error_sum = 0.5;
  r.value_error_sum = 0.25;
  r.tokens = {3, 1, 4, 1, 5};
  return r;
}

TEST(KvChunkRecordTest, RoundTripsWithTheIndexBytes) {
  auto r = DecodeChunkRecord(EncodeChunkRecord(Sample()));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->index_bytes, 700u);
  EXPECT_EQ(r->stored_bytes, 5000u);
  EXPECT_EQ(r->tokens, Sample().tokens);
  EXPECT_TRUE(r->pinned);
}

// Records written before the index's bytes were kept end with the tokens:
// they still decode, with index_bytes 0.
TEST(KvChunkRecordTest, RecordsWithoutTheIndexBytesStillDecode) {
  std::string old = EncodeChunkRecord(Sample());
  old.resize(old.size() - sizeof(uint64_t));
  auto r = DecodeChunkRecord(old);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->index_bytes, 0u);
  EXPECT_EQ(r->tokens, Sample().tokens);
}

TEST(KvChunkRecordTest, BadSizesAndAnIndexLargerThanTheKvAreDataLoss) {
  const std::string good = EncodeChunkRecord(Sample());
  for (size_t cut : {size_t{1}, size_t{3}, size_t{9}}) {
    auto r = DecodeChunkRecord(good.substr(0, good.size() - cut));
    EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss) << cut;
  }
  EXPECT_EQ(DecodeChunkRecord(good + "x").status().code(), absl::StatusCode::kDataLoss);
  KvChunkRecord bad = Sample();
  bad.index_bytes = bad.stored_bytes + 1;
  EXPECT_EQ(DecodeChunkRecord(EncodeChunkRecord(bad)).status().code(),
            absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace mnemo::db::kvrecords
