// Integration tests of the `mnemo` CLI: each test starts a real mnemod
// (MnemodProcess) and runs the real `mnemo` binary from $MNEMO_BIN_DIR,
// checking its exit code, stderr and --json output.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/client/cli_runner.h"
#include "tests/integration/mnemod_process.h"

extern char** environ;

namespace mnemo {
namespace {

using ::nlohmann::json;
using ::testing::HasSubstr;
using testing::MnemodProcess;

constexpr int kDim = 8;
constexpr int kChunks = 40;


// Deterministic unit vectors: each is its own unique nearest neighbour.
std::vector<std::vector<float>> MakeVectors(int n, int dim) {
  std::mt19937 rng(1234);
  std::normal_distribution<float> normal;
  std::vector<std::vector<float>> vectors(n, std::vector<float>(dim));
  for (auto& v : vectors) {
    float norm = 0;
    for (float& x : v) {
      x = normal(rng);
      norm += x * x;
    }
    for (float& x : v) x /= std::sqrt(norm);
  }
  return vectors;
}

std::string VectorJson(const std::vector<float>& v) { return json(v).dump(); }

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::string> dir = testing::MakeTempDir("mnemo-cli-test");
    ASSERT_TRUE(dir.ok()) << dir.status();
    work_dir_ = *dir;
    absl::StatusOr<std::unique_ptr<MnemodProcess>> server = MnemodProcess::Start();
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    vectors_ = MakeVectors(kChunks, kDim);
  }

  void TearDown() override {
    if (server_) {
      EXPECT_TRUE(server_->Stop().ok()) << server_->LogTail();
    }
    std::error_code ignored;
    std::filesystem::remove_all(work_dir_, ignored);
  }

  // Runs mnemo against the test server.
  CliResult Mnemo(std::vector<std::string> args, const std::string& stdin_path = "/dev/null") {
    args.insert(args.begin(), {"--server", server_->target(), "--timeout", "20"});
    return RunMnemo(work_dir_, args, stdin_path);
  }

  // A JSONL file with two documents and kChunks chunks ("c0".."c39"),
  // metadata {"n": i, "parity": "even"|"odd"}.
  std::string WriteCorpus() {
    const std::string path = work_dir_ + "/corpus.jsonl";
    std::ofstream out(path);
    out << json{{"type", "document"}, {"id", "d0"}, {"text", "document zero"}}.dump() << "\n";
    out << json{{"type", "document"}, {"id", "d1"}, {"text", "document one"}}.dump() << "\n";
    out << "\n";  // blank lines are skipped
    for (int i = 0; i < kChunks; ++i) {
      json line{{"id", absl::StrCat("c", i)},
                {"document_id", absl::StrCat("d", i % 2)},
                {"text", absl::StrCat("chunk number ", i, " of the test corpus")},
                {"metadata", {{"n", i}, {"parity", i % 2 == 0 ? "even" : "odd"}}},
                {"vector", vectors_[i]}};
      out << line.dump() << "\n";
    }
    return path;
  }

  void CreateNamespace(const std::string& name) {
    CliResult r = Mnemo({"ns", "create", name, "--dim", std::to_string(kDim), "--metric", "ip",
                         "--index", "Flat"});
    ASSERT_EQ(r.exit_code, 0) << r;
  }

  void LoadCorpus(const std::string& ns) {
    CreateNamespace(ns);
    CliResult r = Mnemo({"upsert", "--ns", ns, WriteCorpus(), "--json", "--batch", "7"});
    ASSERT_EQ(r.exit_code, 0) << r;
    json summary = ParseJson(r);
    EXPECT_EQ(summary["chunks_written"], kChunks);
    EXPECT_EQ(summary["documents_written"], 2);
  }

  std::string work_dir_;
  std::unique_ptr<MnemodProcess> server_;
  std::vector<std::vector<float>> vectors_;
};

TEST(CliHelpTest, EveryVerbHasHelpListingItsOptions) {
  absl::StatusOr<std::string> dir = testing::MakeTempDir("mnemo-cli-help");
  ASSERT_TRUE(dir.ok()) << dir.status();
  const std::vector<std::pair<std::vector<std::string>, std::vector<std::string>>> cases = {
      {{}, {"--server", "--timeout", "--json", "ns", "upsert", "ingest", "search", "checkpoint"}},
      {{"ns"}, {"create", "list", "get", "drop"}},
      {{"ns", "create"},
       {"--dim", "--metric", "--index", "--train-threshold", "--description", "--encoder",
        "--chunk-tokens", "--chunk-overlap"}},
      {{"ns", "list"}, {"--help"}},
      {{"ns", "get"}, {"name"}},
      {{"ns", "drop"}, {"--yes"}},
      {{"upsert"}, {"--ns", "--batch", "--progress", "FILE"}},
      {{"search"},
       {"--ns", "--vector", "--like", "--vectors-file", "-k", "--filter", "--payload", "--ef",
        "--nprobe", "--mode", "--dense-weight", "--bm25-weight", "--rrf-k", "--highlight"}},
      {{"ingest"}, {"--ns", "--ext", "--batch", "--max-file-bytes", "--progress", "PATH"}},
      {{"get"}, {"--ns", "--vectors", "--doc"}},
      {{"delete"}, {"--ns", "--doc"}},
      {{"stats"}, {"--ns"}},
      {{"checkpoint"}, {"--to"}},
      {{"compact"}, {"--ns"}},
      {{"health"}, {"--help"}},
  };
  for (const auto& [verb, options] : cases) {
    std::vector<std::string> args = verb;
    args.push_back("--help");
    CliResult r = RunMnemo(*dir, args);
    EXPECT_EQ(r.exit_code, 0) << absl::StrJoin(verb, " ") << "\n" << r;
    for (const std::string& option : options) {
      EXPECT_THAT(r.out, HasSubstr(option)) << "mnemo " << absl::StrJoin(verb, " ") << " --help";
    }
  }
  std::filesystem::remove_all(*dir);
}

TEST(CliUsageTest, UnknownVerbIsAUsageError) {
  absl::StatusOr<std::string> dir = testing::MakeTempDir("mnemo-cli-usage");
  ASSERT_TRUE(dir.ok()) << dir.status();
  CliResult r = RunMnemo(*dir, {"frobnicate"});
  EXPECT_EQ(r.exit_code, 2) << r;
  std::filesystem::remove_all(*dir);
}

TEST(CliUnreachableTest, ReportsUnavailable) {
  absl::StatusOr<std::string> dir = testing::MakeTempDir("mnemo-cli-unreachable");
  ASSERT_TRUE(dir.ok()) << dir.status();
  // Port 1 on loopback: nothing listens there.
  CliResult r = RunMnemo(*dir, {"--server", "127.0.0.1:1", "--timeout", "1", "health"});
  EXPECT_NE(r.exit_code, 0) << r;
  EXPECT_THAT(r.err, HasSubstr("error: "));
  std::filesystem::remove_all(*dir);
}

TEST_F(CliTest, HealthReportsServing) {
  CliResult r = Mnemo({"health"});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_THAT(r.out, HasSubstr("SERVING"));
}

TEST_F(CliTest, NamespaceCreateListGetDrop) {
  CliResult r = Mnemo({"--json", "ns", "create", "books", "--dim", "16", "--metric", "cosine",
                       "--description", "test books"});
  ASSERT_EQ(r.exit_code, 0) << r;
  json created = ParseJson(r);
  EXPECT_EQ(created["name"], "books");
  EXPECT_EQ(created["dim"], 16);
  EXPECT_EQ(created["metric"], "cosine");

  r = Mnemo({"ns", "create", "books", "--dim", "16"});
  EXPECT_NE(r.exit_code, 0) << "creating twice must fail\n" << r;
  EXPECT_THAT(r.err, HasSubstr("ALREADY_EXISTS"));

  r = Mnemo({"ns", "list", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r;
  json list = ParseJson(r);
  ASSERT_EQ(list["namespaces"].size(), 1u) << r;
  EXPECT_EQ(list["namespaces"][0]["name"], "books");

  r = Mnemo({"ns", "list"});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_THAT(r.out, HasSubstr("books"));

  r = Mnemo({"ns", "get", "books", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r;
  json got = ParseJson(r);
  EXPECT_EQ(got["dim"], 16);
  EXPECT_EQ(got["description"], "test books");
  EXPECT_EQ(got["chunk_count"], 0);

  // Without --yes and without a terminal the CLI refuses.
  r = Mnemo({"ns", "drop", "books"});
  EXPECT_NE(r.exit_code, 0) << r;
  EXPECT_THAT(r.err, HasSubstr("--yes"));

  r = Mnemo({"ns", "drop", "books", "--yes"});
  ASSERT_EQ(r.exit_code, 0) << r;

  r = Mnemo({"ns", "get", "books"});
  EXPECT_NE(r.exit_code, 0) << r;
  EXPECT_THAT(r.err, HasSubstr("NOT_FOUND"));
}

TEST_F(CliTest, SearchByVectorFindsTheItemFirst) {
  ASSERT_NO_FATAL_FAILURE(LoadCorpus("docs"));
  for (int i : {0, 7, 33}) {
    CliResult r = Mnemo({"search", "--ns", "docs", "--vector", VectorJson(vectors_[i]), "-k",
                         "5", "--json"});
    ASSERT_EQ(r.exit_code, 0) << r;
    json result = ParseJson(r);
    ASSERT_EQ(result["results"].size(), 1u) << r;
    const json& hits = result["results"][0]["hits"];
    ASSERT_EQ(hits.size(), 5u) << r;
    EXPECT_EQ(hits[0]["id"], absl::StrCat("c", i)) << r;
    EXPECT_EQ(hits[0]["rank"], 1);
    EXPECT_NEAR(hits[0]["score"].get<double>(), 1.0, 1e-4);
    EXPECT_GE(hits[0]["score"].get<double>(), hits[1]["score"].get<double>());
  }
}

TEST_F(CliTest, SearchLikeUsesTheStoredVector) {
  ASSERT_NO_FATAL_FAILURE(LoadCorpus("docs"));
  CliResult r = Mnemo({"search", "--ns", "docs", "--like", "c12", "-k", "3", "--payload",
                       "--json"});
  ASSERT_EQ(r.exit_code, 0) << r;
  json result = ParseJson(r);
  const json& hits = result["results"][0]["hits"];
  ASSERT_EQ(hits.size(), 3u) << r;
  EXPECT_EQ(hits[0]["id"], "c12");
  EXPECT_EQ(hits[0]["text"], "chunk number 12 of the test corpus");
  EXPECT_EQ(hits[0]["metadata"]["parity"], "even");
  EXPECT_EQ(hits[0]["document_id"], "d0");

  // Text output: rank, score, id and the snippet.
  r = Mnemo({"search", "--ns", "docs", "--like", "c12", "-k", "3", "--payload"});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_THAT(r.out, HasSubstr("c12"));
  EXPECT_THAT(r.out, HasSubstr("chunk number 12"));

  r = Mnemo({"search", "--ns", "docs", "--like", "no-such-chunk"});
  EXPECT_NE(r.exit_code, 0) << r;
  EXPECT_THAT(r.err, HasSubstr("NOT_FOUND"));
}

TEST_F(CliTest, SearchVectorsFileAnswersEveryQuery) {
  ASSERT_NO_FATAL_FAILURE(LoadCorpus("docs"));
  const std::string path = work_dir_ + "/queries.jsonl";
  {
    std::ofstream out(path);
    out << VectorJson(vectors_[3]) << "\n";
    out << json{{"id", "q-five"}, {"vector", vectors_[5]}}.dump() << "\n";
  }
  CliResult r = Mnemo({"search", "--ns", "docs", "--vectors-file", path, "-k", "2", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r;
  json result = ParseJson(r);
  ASSERT_EQ(result["results"].size(), 2u) << r;
  EXPECT_EQ(result["results"][0]["hits"][0]["id"], "c3");
  EXPECT_EQ(result["results"][1]["hits"][0]["id"], "c5");
  EXPECT_EQ(result["results"][1]["query"], "q-five");
}

TEST_F(CliTest, SearchWithMetadataFilter) {
  ASSERT_NO_FATAL_FAILURE(LoadCorpus("docs"));
  CliResult r = Mnemo({"search", "--ns", "docs", "--vector", VectorJson(vectors_[3]), "-k",
                       "10", "--payload", "--filter", R"({"parity": "even"})", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r;
  json hits = ParseJson(r)["results"][0]["hits"];
  ASSERT_EQ(hits.size(), 10u) << r;
  for (const json& hit : hits) EXPECT_EQ(hit["metadata"]["parity"], "even") << r;

  r = Mnemo({"search", "--ns", "docs", "--vector", VectorJson(vectors_[3]), "-k", "40",
             "--payload", "--filter", R"({"n": {"gte": 10, "lt": 15}})", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r;
  hits = ParseJson(r)["results"][0]["hits"];
  ASSERT_EQ(hits.size(), 5u) << r;
  for (const json& hit : hits) {
    EXPECT_GE(hit["metadata"]["n"].get<int>(), 10);
    EXPECT_LT(hit["metadata"]["n"].get<int>(), 15);
  }
}

TEST_F(CliTest, BadFilterJsonIsInvalidArgument) {
  ASSERT_NO_FATAL_FAILURE(CreateNamespace("docs"));
  CliResult r = Mnemo({"search", "--ns", "docs", "--vector", VectorJson(vectors_[0]),
                       "--filter", "{\"parity\": "});
  EXPECT_NE(r.exit_code, 0) << r;
  EXPECT_THAT(r.err, HasSubstr("INVALID_ARGUMENT"));
  EXPECT_THAT(r.err, HasSubstr("--filter"));
}

TEST_F(CliTest, GetDeleteAndStats) {
  ASSERT_NO_FATAL_FAILURE(LoadCorpus("docs"));
  CliResult r = Mnemo({"get", "--ns", "docs", "c3", "c4", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r;
  json got = ParseJson(r);
  ASSERT_EQ(got["chunks"].size(), 2u) << r;
  EXPECT_EQ(got["chunks"][0]["text"], "chunk number 3 of the test corpus");
  EXPECT_FALSE(got["chunks"][0].contains("vector"));

  r = Mnemo({"get", "--ns", "docs", "c3", "--vectors", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r;
  got = ParseJson(r);
  ASSERT_EQ(got["chunks"].size(), 1u) << r;
  ASSERT_EQ(got["chunks"][0]["vector"].size(), static_cast<size_t>(kDim));
  EXPECT_NEAR(got["chunks"][0]["vector"][0].get<double>(), vectors_[3][0], 1e-6);

  // Text output is JSONL in the upsert format.
  r = Mnemo({"get", "--ns", "docs", "c4"});
  ASSERT_EQ(r.exit_code, 0) << r;
  json line = json::parse(r.out, nullptr, false);
  ASSERT_FALSE(line.is_discarded()) << r;
  EXPECT_EQ(line["id"], "c4");

  r = Mnemo({"get", "--ns", "docs", "--doc", "d1", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r;
  got = ParseJson(r);
  ASSERT_EQ(got["documents"].size(), 1u) << r;
  EXPECT_EQ(got["documents"][0]["text"], "document one");

  r = Mnemo({"delete", "--ns", "docs", "c3", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(ParseJson(r)["chunks_deleted"], 1);

  r = Mnemo({"get", "--ns", "docs", "c3"});
  EXPECT_NE(r.exit_code, 0) << r;
  EXPECT_THAT(r.err, HasSubstr("NOT_FOUND"));
  EXPECT_THAT(r.err, HasSubstr("c3"));

  r = Mnemo({"stats", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r;
  json stats = ParseJson(r);
  ASSERT_EQ(stats["namespaces"].size(), 1u) << r;
  EXPECT_EQ(stats["namespaces"][0]["name"], "docs");
  EXPECT_EQ(stats["namespaces"][0]["chunk_count"], kChunks - 1);
  EXPECT_FALSE(stats["version"].get<std::string>().empty());

  r = Mnemo({"stats", "--ns", "docs"});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_THAT(r.out, HasSubstr("docs"));

  r = Mnemo({"compact", "--ns", "docs"});
  EXPECT_EQ(r.exit_code, 0) << r;
}

TEST_F(CliTest, CheckpointInPlaceAndToADirectory) {
  ASSERT_NO_FATAL_FAILURE(LoadCorpus("docs"));
  CliResult r = Mnemo({"checkpoint", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_TRUE(ParseJson(r).contains("last_sequence"));

  const std::string copy = work_dir_ + "/copy";
  r = Mnemo({"checkpoint", "--to", copy, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_TRUE(std::filesystem::is_directory(copy));

  // The copy is a usable data dir: a server on it sees the same chunks.
  ASSERT_TRUE(server_->Stop().ok()) << server_->LogTail();
  absl::StatusOr<std::unique_ptr<MnemodProcess>> second = MnemodProcess::Start({}, copy);
  ASSERT_TRUE(second.ok()) << second.status();
  server_ = *std::move(second);
  r = Mnemo({"search", "--ns", "docs", "--like", "c9", "-k", "1", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(ParseJson(r)["results"][0]["hits"][0]["id"], "c9");
}

TEST_F(CliTest, UpsertFromStdin) {
  ASSERT_NO_FATAL_FAILURE(CreateNamespace("docs"));
  CliResult r = Mnemo({"upsert", "--ns", "docs", "-", "--json"}, WriteCorpus());
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(ParseJson(r)["chunks_written"], kChunks);
}

TEST_F(CliTest, UpsertProgressGoesToStderr) {
  ASSERT_NO_FATAL_FAILURE(CreateNamespace("docs"));
  CliResult r = Mnemo({"upsert", "--ns", "docs", WriteCorpus(), "--progress"});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_THAT(r.err, HasSubstr(absl::StrCat(kChunks + 2, "/", kChunks + 2)));
  EXPECT_THAT(r.err, HasSubstr("items/s"));
  EXPECT_THAT(r.out, HasSubstr("upserted"));
}

TEST_F(CliTest, MalformedLineIsReportedWithItsNumberAndNothingIsWritten) {
  ASSERT_NO_FATAL_FAILURE(CreateNamespace("docs"));
  const std::string path = work_dir_ + "/bad.jsonl";
  {
    std::ofstream out(path);
    out << json{{"id", "a"}, {"vector", vectors_[0]}}.dump() << "\n";
    out << json{{"id", "b"}, {"vector", vectors_[1]}}.dump() << "\n";
    out << "{\"id\": \"c\", \"vector\": [1, 2,\n";  // line 3: truncated
    out << json{{"id", "d"}, {"vector", {1.0, 2.0}}}.dump() << "\n";  // line 4: wrong dim
  }
  CliResult r = Mnemo({"upsert", "--ns", "docs", path});
  EXPECT_NE(r.exit_code, 0) << r;
  EXPECT_THAT(r.err, HasSubstr("INVALID_ARGUMENT"));
  EXPECT_THAT(r.err, HasSubstr(path + ":3"));
  EXPECT_THAT(r.err, HasSubstr(path + ":4"));

  r = Mnemo({"ns", "get", "docs", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(ParseJson(r)["chunk_count"], 0);
}

TEST_F(CliTest, UnknownNamespaceIsNotFound) {
  CliResult r = Mnemo({"search", "--ns", "nope", "--vector", VectorJson(vectors_[0])});
  EXPECT_NE(r.exit_code, 0) << r;
  EXPECT_THAT(r.err, HasSubstr("error: NOT_FOUND"));

  r = Mnemo({"upsert", "--ns", "nope", WriteCorpus()});
  EXPECT_NE(r.exit_code, 0) << r;
  EXPECT_THAT(r.err, HasSubstr("NOT_FOUND"));

  r = Mnemo({"get", "--ns", "nope", "x"});
  EXPECT_NE(r.exit_code, 0) << r;
  EXPECT_THAT(r.err, HasSubstr("NOT_FOUND"));
}

}  // namespace
}  // namespace mnemo
