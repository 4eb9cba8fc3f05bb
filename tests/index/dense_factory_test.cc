#include "index/dense_factory.h"

#include "gtest/gtest.h"

namespace mnemo::index {
namespace {

TEST(DenseFactoryTest, NativeHnswAndItsOptions) {
  auto f = ParseDenseFactory("HNSW32");
  ASSERT_TRUE(f.ok());
  EXPECT_TRUE(f->native_hnsw);
  EXPECT_EQ(f->hnsw_m, 32u);
  EXPECT_EQ(f->ef_construction, kDefaultHnswEfConstruction);
  EXPECT_EQ(f->ef_search, kDefaultHnswEfSearch);

  f = ParseDenseFactory("HNSW16,Flat,efC=300,ef=128");
  ASSERT_TRUE(f.ok());
  EXPECT_TRUE(f->native_hnsw);
  EXPECT_EQ(f->faiss, "HNSW16,Flat");
  EXPECT_EQ(f->ef_construction, 300u);
  EXPECT_EQ(f->ef_search, 128u);
}

TEST(DenseFactoryTest, FaissFactoriesKeepTheirString) {
  for (const char* s : {"Flat", "IVF1024,PQ16", "PQ8", "SQ8"}) {
    auto f = ParseDenseFactory(s);
    ASSERT_TRUE(f.ok()) << s;
    EXPECT_FALSE(f->native_hnsw) << s;
    EXPECT_EQ(f->faiss, s);
    EXPECT_EQ(f->hnsw_m, 0u);
  }
  auto empty = ParseDenseFactory("");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->faiss, "Flat");
  // HNSW over compressed storage stays FAISS's, with the options applied.
  auto sq = ParseDenseFactory("HNSW32,SQ8,efC=64");
  ASSERT_TRUE(sq.ok());
  EXPECT_FALSE(sq->native_hnsw);
  EXPECT_EQ(sq->faiss, "HNSW32,SQ8");
  EXPECT_EQ(sq->hnsw_m, 32u);
  EXPECT_EQ(sq->ef_construction, 64u);
}

TEST(DenseFactoryTest, RejectsBadOptions) {
  for (const char* s : {"HNSW32,efC=", "HNSW32,ef=0", "HNSW32,ef=70000", "HNSW32,efC=-1",
                        "HNSW32,depth=3", "Flat,efC=100", "HNSW1", "HNSW513"}) {
    auto f = ParseDenseFactory(s);
    EXPECT_FALSE(f.ok()) << s;
    if (!f.ok()) {
      EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument) << s;
    }
  }
}

}  // namespace
}  // namespace mnemo::index
