// SDK against a real mnemod: the happy paths of every RPC.
#include <algorithm>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/integration/sdk_test_util.h"

namespace mnemo::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

std::vector<std::string> HitIds(const std::vector<Hit>& hits) {
  std::vector<std::string> ids;
  for (const Hit& h : hits) ids.push_back(h.id);
  return ids;
}

TEST_F(SdkTest, HealthCheckReportsServing) { EXPECT_TRUE(client_->HealthCheck().ok()); }

TEST_F(SdkTest, NamespaceCreateGetListDrop) {
  NamespaceConfig config;
  config.name = "life.cycle";
  config.dim = 16;
  config.metric = Metric::kCosine;
  config.description = "lifecycle";
  auto created = client_->CreateNamespace(config);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(created->config.name, "life.cycle");
  EXPECT_EQ(created->config.dim, 16u);
  EXPECT_EQ(created->config.metric, Metric::kCosine);
  EXPECT_EQ(created->chunk_count, 0u);

  auto got = client_->GetNamespace("life.cycle");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->config.description, "lifecycle");
  EXPECT_EQ(got->config.index_factory, "Flat");

  auto listed = client_->ListNamespaces();
  ASSERT_TRUE(listed.ok());
  EXPECT_TRUE(std::any_of(listed->begin(), listed->end(), [](const NamespaceInfo& i) {
    return i.config.name == "life.cycle";
  }));

  ASSERT_TRUE(client_->DropNamespace("life.cycle").ok());
  EXPECT_EQ(client_->GetNamespace("life.cycle").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(client_->DropNamespace("life.cycle").code(), absl::StatusCode::kNotFound);
}

TEST_F(SdkTest, UpsertGetRoundTrip) {
  Seed("getns");
  auto got = client_->Get("getns", {"c1", "nope", "c0"}, {"d0"}, /*include_vectors=*/true);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->chunks.size(), 2u);
  EXPECT_EQ(got->chunks[0].id, "c1");
  EXPECT_EQ(got->chunks[0].document_id, "d0");
  EXPECT_EQ(got->chunks[0].text, "text 1");
  EXPECT_THAT(got->chunks[0].vector, ElementsAre(0.0f, 2.0f, 0.0f, 0.0f));
  EXPECT_EQ(got->chunks[1].id, "c0");
  ASSERT_EQ(got->documents.size(), 1u);
  EXPECT_EQ(got->documents[0].text, "document zero");
  EXPECT_THAT(got->missing_ids, ElementsAre("nope"));

  auto no_vectors = client_->Get("getns", {"c2"}, {}, /*include_vectors=*/false);
  ASSERT_TRUE(no_vectors.ok());
  ASSERT_EQ(no_vectors->chunks.size(), 1u);
  EXPECT_THAT(no_vectors->chunks[0].vector, IsEmpty());
}

TEST_F(SdkTest, SearchFindsNearestWithAndWithoutPayload) {
  Seed("searchns");
  SearchRequest req;
  req.ns = "searchns";
  req.dim = kDim;
  // Two queries: e1 (c1 best), then e2 + small e0 (c0 scores 3*0.5=1.5 > c2's 1).
  req.queries = {0, 1, 0, 0, 0.5f, 0, 1, 0};
  req.k = 2;
  auto results = client_->Search(req);
  ASSERT_TRUE(results.ok()) << results.status();
  ASSERT_EQ(results->size(), 2u);
  ASSERT_EQ((*results)[0].size(), 2u);
  EXPECT_EQ((*results)[0][0].id, "c1");
  EXPECT_FLOAT_EQ((*results)[0][0].score, 2.0f);
  EXPECT_FALSE((*results)[0][0].chunk.has_value());
  EXPECT_THAT(HitIds((*results)[1]), ElementsAre("c0", "c2"));
  EXPECT_FLOAT_EQ((*results)[1][0].score, 1.5f);

  req.include_payload = true;
  auto with_payload = client_->Search(req);
  ASSERT_TRUE(with_payload.ok()) << with_payload.status();
  const Hit& top = (*with_payload)[0][0];
  ASSERT_TRUE(top.chunk.has_value());
  EXPECT_EQ(top.chunk->text, "text 1");
  EXPECT_EQ(top.chunk->document_id, "d0");
  EXPECT_NE(top.chunk->metadata_json.find("fr"), std::string::npos);

  req.include_payload = false;
  req.include_vectors = true;
  auto with_vectors = client_->Search(req);
  ASSERT_TRUE(with_vectors.ok());
  ASSERT_TRUE((*with_vectors)[0][0].chunk.has_value());
  EXPECT_THAT((*with_vectors)[0][0].chunk->vector, ElementsAre(0.0f, 2.0f, 0.0f, 0.0f));
}

TEST_F(SdkTest, SearchWithJsonFilter) {
  Seed("filterns");
  SearchRequest req;
  req.ns = "filterns";
  req.dim = kDim;
  req.queries = {1, 1, 1, 1};
  req.k = 10;
  req.filter_json = R"({"lang": "en"})";
  auto results = client_->Search(req);
  ASSERT_TRUE(results.ok()) << results.status();
  EXPECT_THAT(HitIds((*results)[0]), ElementsAre("c0", "c2"));

  req.filter_json = R"({"i": {"gte": 1}, "lang": {"in": ["en", "de"]}})";
  results = client_->Search(req);
  ASSERT_TRUE(results.ok()) << results.status();
  EXPECT_THAT(HitIds((*results)[0]), ElementsAre("c2"));
}

TEST_F(SdkTest, UpsertStreamCommitsEveryMessage) {
  NamespaceConfig config;
  config.name = "streamns";
  config.dim = kDim;
  ASSERT_TRUE(client_->CreateNamespace(config).ok());
  auto writer = client_->UpsertStream("streamns");
  ASSERT_TRUE(writer.ok()) << writer.status();
  for (int batch = 0; batch < 5; ++batch) {
    std::vector<Chunk> chunks;
    for (int j = 0; j < 10; ++j) {
      Chunk c;
      c.id = "s" + std::to_string(batch * 10 + j);
      c.vector = Basis(kDim, j, 1.0f + batch);
      chunks.push_back(std::move(c));
    }
    std::vector<Document> docs;
    if (batch == 0) docs.push_back({"sd", "stream doc", ""});
    ASSERT_TRUE((*writer)->Write(docs, chunks).ok());
  }
  auto totals = (*writer)->Finish();
  ASSERT_TRUE(totals.ok()) << totals.status();
  EXPECT_EQ(totals->chunks_written, 50u);
  EXPECT_EQ(totals->documents_written, 1u);
  auto stats = client_->Stats("streamns");
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->namespaces.at(0).chunk_count, 50u);
}

TEST_F(SdkTest, UpsertStreamKeepsMessagesBeforeAFailure) {
  NamespaceConfig config;
  config.name = "streamfail";
  config.dim = kDim;
  ASSERT_TRUE(client_->CreateNamespace(config).ok());
  auto writer = client_->UpsertStream("streamfail");
  ASSERT_TRUE(writer.ok());
  Chunk good{"ok1", "", "", "", Basis(kDim, 0)};
  ASSERT_TRUE((*writer)->Write({}, {good}).ok());
  Chunk bad{"bad", "", "", "", {1.0f, 2.0f}};  // wrong dimension
  // The write itself may or may not see the server's verdict yet; Finish must.
  (void)(*writer)->Write({}, {bad});
  auto totals = (*writer)->Finish();
  EXPECT_EQ(totals.status().code(), absl::StatusCode::kInvalidArgument) << totals.status();
  auto stats = client_->Stats("streamfail");
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->namespaces.at(0).chunk_count, 1u);
}

TEST_F(SdkTest, DeleteByChunkAndByDocument) {
  Seed("delns");
  auto deleted = client_->Delete("delns", {"c2", "never-stored"}, {});
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(deleted->chunks_deleted, 1u);
  deleted = client_->Delete("delns", {}, {"d0"});
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(deleted->documents_deleted, 1u);
  EXPECT_EQ(deleted->chunks_deleted, 2u);  // c0 and c1 belong to d0
  NamespaceSnapshot snap = Snapshot("delns");
  EXPECT_EQ(snap.chunk_count, 0u);
  EXPECT_EQ(snap.document_count, 0u);
  EXPECT_THAT(snap.hits, IsEmpty());
  auto got = client_->Get("delns", {"c0", "c1", "c2"}, {}, false);
  ASSERT_TRUE(got.ok());
  EXPECT_THAT(got->missing_ids, UnorderedElementsAre("c0", "c1", "c2"));
}

TEST_F(SdkTest, StatsReportsCountsDataDirAndVersion) {
  Seed("statsns");
  auto stats = client_->Stats("statsns");
  ASSERT_TRUE(stats.ok()) << stats.status();
  ASSERT_EQ(stats->namespaces.size(), 1u);
  EXPECT_EQ(stats->namespaces[0].config.name, "statsns");
  EXPECT_EQ(stats->namespaces[0].chunk_count, 3u);
  EXPECT_EQ(stats->namespaces[0].document_count, 1u);
  EXPECT_EQ(stats->data_dir, server_->data_dir());
  EXPECT_FALSE(stats->version.empty());

  auto all = client_->Stats("");
  ASSERT_TRUE(all.ok());
  EXPECT_GE(all->namespaces.size(), 1u);
  EXPECT_GE(all->total_approximate_bytes, stats->namespaces[0].approximate_bytes);
}

TEST_F(SdkTest, CompactKeepsData) {
  Seed("compactns");
  ASSERT_TRUE(client_->Delete("compactns", {"c1"}, {}).ok());
  NamespaceSnapshot before = Snapshot("compactns");
  ASSERT_TRUE(client_->Compact("compactns").ok());
  ASSERT_TRUE(client_->Compact("").ok());
  EXPECT_EQ(Snapshot("compactns"), before);
  EXPECT_EQ(before.chunk_count, 2u);
}

TEST_F(SdkTest, CheckpointInPlaceSucceeds) {
  Seed("ckptns");
  auto seq = client_->Checkpoint("");
  ASSERT_TRUE(seq.ok()) << seq.status();
  EXPECT_GT(*seq, 0u);
}

}  // namespace
}  // namespace mnemo::testing
