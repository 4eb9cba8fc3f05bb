// Integration tests of the text verbs of the `mnemo` CLI (ns create
// --encoder, ingest, text search) against a real mnemod started with
// --assets-dir <repo>/.assets.
//
// The text tests need the USE-lite assets (scripts/fetch_encoder, or
// MNEMO_ASSETS_DIR); without them they fail, saying so.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/client/cli_runner.h"
#include "tests/integration/mnemod_process.h"

namespace mnemo {
namespace {

namespace fs = std::filesystem;
using ::nlohmann::json;
using ::testing::HasSubstr;
using testing::MnemodProcess;
using ::testing::StartsWith;

std::string AssetsDir() {
  const char* env = std::getenv("MNEMO_ASSETS_DIR");
  return (env != nullptr && *env != '\0') ? env : MNEMO_SOURCE_DIR "/.assets";
}

bool HaveUseLite() {
  const fs::path dir = fs::path(AssetsDir()) / "use-lite";
  return fs::exists(dir / "model.json") && fs::exists(dir / "vocab.json");
}

// Writes `data` to dir/rel, creating folders.
void WriteFile(const fs::path& dir, const std::string& rel, const std::string& data) {
  fs::create_directories((dir / rel).parent_path());
  std::ofstream(dir / rel, std::ios::binary) << data;
}

constexpr char kRivers[] =
    "Rivers carry fresh water from the mountains to the sea. Boats travel along wide rivers, "
    "and fishermen cast their nets for salmon and trout in the current. Bridges cross the "
    "river at every town, and the river banks flood after heavy spring rain.\n";
constexpr char kVolcano[] =
    "# Volcanoes\n\nA volcano erupts when molten lava and ash burst through the crust. The "
    "eruption sends lava flows down the slopes of the volcano and clouds of volcanic ash "
    "into the sky. Magma chambers beneath the volcano feed each eruption.\n";
constexpr char kChess[] =
    "<!DOCTYPE html><html><head><title>Chess</title><style>p { color: red }</style>"
    "<script>var bishop = 'volcano lava eruption';</script></head><body>"
    "<h1>Chess openings</h1><p>The chess player moves a pawn, then a knight; the queen's "
    "gambit and the Sicilian defence are famous chess openings. Checkmate ends the game "
    "when the king cannot escape.</p></body></html>";

class CliTextTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    setup_error_ = new std::string();
    if (!HaveUseLite()) {
      *setup_error_ = absl::StrCat("USE-lite assets not found in ", AssetsDir(),
                                   " (run scripts/fetch_encoder, or set MNEMO_ASSETS_DIR)");
      return;
    }
    absl::StatusOr<std::unique_ptr<MnemodProcess>> server =
        MnemodProcess::Start({"--assets-dir", AssetsDir()});
    if (!server.ok()) {
      *setup_error_ = absl::StrCat("mnemod did not start: ", server.status().ToString());
      return;
    }
    server_ = server->release();
  }

  static void TearDownTestSuite() {
    if (server_ != nullptr) {
      EXPECT_TRUE(server_->Stop().ok()) << server_->LogTail();
      delete server_;
      server_ = nullptr;
    }
    delete setup_error_;
    setup_error_ = nullptr;
  }

  void SetUp() override {
    ASSERT_TRUE(setup_error_->empty()) << *setup_error_;
    ASSERT_NE(server_, nullptr) << "mnemod did not start";
    absl::StatusOr<std::string> dir = testing::MakeTempDir("mnemo-cli-text");
    ASSERT_TRUE(dir.ok()) << dir.status();
    work_dir_ = *dir;
    ns_ = ::testing::UnitTest::GetInstance()->current_test_info()->name();

    CliResult r = Mnemo({"ns", "create", ns_, "--encoder", "use-lite", "--chunk-tokens", "32",
                         "--chunk-overlap", "4", "--json"});
    ASSERT_EQ(r.exit_code, 0) << r;
    json created = ParseJson(r);
    ASSERT_EQ(created["encoder"], "use-lite") << r.out;
    EXPECT_EQ(created["dim"], 512);
    EXPECT_EQ(created["chunk_max_tokens"], 32);
    EXPECT_EQ(created["chunk_overlap_tokens"], 4);
    EXPECT_EQ(created["metric"], "cosine");  // the default with an encoder

    corpus_ = fs::path(work_dir_) / "corpus";
    WriteFile(corpus_, "rivers.txt", kRivers);
    WriteFile(corpus_, "geo/volcano.md", kVolcano);
    WriteFile(corpus_, "games/chess.html", kChess);
    WriteFile(corpus_, "corrupt.txt", std::string("\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16));
  }

  void TearDown() override {
    if (!work_dir_.empty()) {
      std::error_code ignored;
      fs::remove_all(work_dir_, ignored);
    }
  }

  CliResult Mnemo(std::vector<std::string> args, const std::string& stdin_path = "/dev/null") {
    args.insert(args.begin(), {"--server", server_->target(), "--timeout", "60"});
    return RunMnemo(work_dir_, args, stdin_path);
  }

  // Ingests the corpus folder.
  json Ingest() {
    CliResult r = Mnemo({"ingest", corpus_.string(), "--ns", ns_, "--json"});
    EXPECT_EQ(r.exit_code, 0) << r;
    last_err_ = r.err;
    return ParseJson(r);
  }

  // Top hit of a text search (JSON).
  json TopHit(const std::string& query, const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {"search", "--ns", ns_, query, "-k", "3", "--json"};
    args.insert(args.end(), extra.begin(), extra.end());
    CliResult r = Mnemo(args);
    EXPECT_EQ(r.exit_code, 0) << r;
    json result = ParseJson(r);
    if (!result.contains("results") || result["results"].empty() ||
        result["results"][0]["hits"].empty()) {
      ADD_FAILURE() << "no hits for \"" << query << "\":\n" << r;
      return json::object();
    }
    return result["results"][0]["hits"][0];
  }

  static MnemodProcess* server_;
  // Why the suite's server could not start; empty when it did.
  static std::string* setup_error_;
  std::string work_dir_;
  std::string ns_;
  fs::path corpus_;
  std::string last_err_;
};

MnemodProcess* CliTextTest::server_ = nullptr;
std::string* CliTextTest::setup_error_ = nullptr;

TEST_F(CliTextTest, IngestSkipsBinaryReRunIsUnchangedAndAChangedFileIsReplaced) {
  json first = Ingest();
  EXPECT_EQ(first["ingested"], 3) << first.dump(2);
  EXPECT_EQ(first["skipped"], 1);
  EXPECT_EQ(first["unchanged"], 0);
  EXPECT_GE(first["chunks_written"].get<int>(), 3);
  EXPECT_THAT(last_err_, HasSubstr("corrupt.txt: binary"));

  json second = Ingest();
  EXPECT_EQ(second["ingested"], 0) << second.dump(2);
  EXPECT_EQ(second["unchanged"], 3);
  EXPECT_EQ(second["chunks_written"], 0);

  WriteFile(corpus_, "geo/volcano.md", "# Glaciers\n\nGlaciers are rivers of slow ice.\n");
  json third = Ingest();
  EXPECT_EQ(third["ingested"], 1) << third.dump(2);
  EXPECT_EQ(third["unchanged"], 2);

  CliResult r = Mnemo({"get", "--ns", ns_, "--doc", "geo/volcano.md", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r;
  json got = ParseJson(r);
  ASSERT_EQ(got["documents"].size(), 1u);
  EXPECT_THAT(got["documents"][0]["text"].get<std::string>(), HasSubstr("Glaciers"));
  json metadata = got["documents"][0]["metadata"];
  EXPECT_EQ(metadata["sha256"].get<std::string>().size(), 64u);

  // The old chunks were replaced: BM25 no longer finds "lava" in it.
  json hit = TopHit("glaciers of ice", {"--mode", "bm25"});
  EXPECT_THAT(hit.value("id", ""), StartsWith("geo/volcano.md#"));
  EXPECT_THAT(hit.value("text", ""), ::testing::Not(HasSubstr("lava")));
}

TEST_F(CliTextTest, EveryModeFindsTheRightDocumentFirst) {
  Ingest();
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"lava eruption of the volcano", "geo/volcano.md#"},
      {"chess openings and checkmate", "games/chess.html#"},
      {"boats and fishermen on the river", "rivers.txt#"},
  };
  for (const char* mode : {"dense", "bm25", "hybrid", "weighted", "late"}) {
    for (const auto& [query, prefix] : cases) {
      json hit = TopHit(query, {"--mode", mode});
      EXPECT_THAT(hit.value("id", ""), StartsWith(prefix))
          << "mode " << mode << ", query \"" << query << "\": " << hit.dump(2);
      EXPECT_TRUE(hit.contains("source_begin") && hit.contains("source_end")) << hit.dump(2);
    }
  }
  json weighted = TopHit("volcano", {"--dense-weight", "0.2", "--bm25-weight", "0.8"});
  EXPECT_THAT(weighted.value("id", ""), StartsWith("geo/volcano.md#"));
}

TEST_F(CliTextTest, HighlightMarksTheQueryTerms) {
  Ingest();
  json hit = TopHit("volcano lava", {"--mode", "hybrid", "--highlight"});
  EXPECT_THAT(hit.value("snippet", ""), HasSubstr("[[")) << hit.dump(2);

  CliResult r = Mnemo({"search", "--ns", ns_, "chess openings", "--highlight", "-k", "1"});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_THAT(r.out, HasSubstr("games/chess.html#"));
  EXPECT_THAT(r.out, HasSubstr("[["));
}

TEST_F(CliTextTest, IngestFromStdin) {
  const std::string input = work_dir_ + "/note.txt";
  WriteFile(work_dir_, "note.txt", "A note about telescopes and distant galaxies.\n");
  CliResult r = Mnemo({"ingest", "-", "--ns", ns_, "--stdin-id", "note-1", "--json"}, input);
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(ParseJson(r)["ingested"], 1);
  json hit = TopHit("telescopes", {"--mode", "bm25"});
  EXPECT_THAT(hit.value("id", ""), StartsWith("note-1#"));
}

// Needs no text support on the server.
class CliTextPlainServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::string> dir = testing::MakeTempDir("mnemo-cli-text-plain");
    ASSERT_TRUE(dir.ok()) << dir.status();
    work_dir_ = *dir;
    absl::StatusOr<std::unique_ptr<MnemodProcess>> server = MnemodProcess::Start();
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }
  void TearDown() override {
    if (server_) {
      EXPECT_TRUE(server_->Stop().ok()) << server_->LogTail();
    }
    std::error_code ignored;
    fs::remove_all(work_dir_, ignored);
  }
  CliResult Mnemo(std::vector<std::string> args) {
    args.insert(args.begin(), {"--server", server_->target(), "--timeout", "20"});
    return RunMnemo(work_dir_, args);
  }

  std::string work_dir_;
  std::unique_ptr<MnemodProcess> server_;
};

TEST_F(CliTextPlainServerTest, IngestIntoANamespaceWithoutEncoderIsRefused) {
  ASSERT_EQ(Mnemo({"ns", "create", "vectors", "--dim", "4"}).exit_code, 0);
  WriteFile(work_dir_, "docs/a.txt", "some text");
  CliResult r = Mnemo({"ingest", work_dir_ + "/docs", "--ns", "vectors"});
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_THAT(r.err, HasSubstr("FAILED_PRECONDITION"));
  EXPECT_THAT(r.err, HasSubstr("--encoder use-lite"));
}

TEST_F(CliTextPlainServerTest, IngestOfAMissingPathIsNotFound) {
  ASSERT_EQ(Mnemo({"ns", "create", "vectors", "--dim", "4"}).exit_code, 0);
  CliResult r = Mnemo({"ingest", work_dir_ + "/nope", "--ns", "vectors"});
  EXPECT_EQ(r.exit_code, 1) << r;
}

TEST_F(CliTextPlainServerTest, LateModeOnANamespaceWithoutEncoderIsFailedPrecondition) {
  ASSERT_EQ(Mnemo({"ns", "create", "vectors", "--dim", "4"}).exit_code, 0);
  CliResult r = Mnemo({"search", "--ns", "vectors", "a question", "--mode", "late"});
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_THAT(r.err, HasSubstr("FAILED_PRECONDITION"));
  r = Mnemo({"search", "--ns", "vectors", "--vector", "[1,0,0,0]", "--mode", "late"});
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_THAT(r.err, HasSubstr("need a text query"));
  r = Mnemo({"ns", "create", "v2", "--dim", "4", "--late-interaction", "on"});
  EXPECT_EQ(r.exit_code, 2) << r;  // --late-interaction needs --encoder
}

TEST_F(CliTextPlainServerTest, TextOptionsNeedATextQuery) {
  ASSERT_EQ(Mnemo({"ns", "create", "vectors", "--dim", "4"}).exit_code, 0);
  CliResult r = Mnemo({"search", "--ns", "vectors", "--vector", "[1,0,0,0]", "--mode", "bm25"});
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_THAT(r.err, HasSubstr("need a text query"));
}

TEST(CliTextUsageTest, UnknownModeIsAUsageErrorListingTheModes) {
  absl::StatusOr<std::string> dir = testing::MakeTempDir("mnemo-cli-text-usage");
  ASSERT_TRUE(dir.ok()) << dir.status();
  CliResult r = RunMnemo(*dir, {"search", "--ns", "x", "question", "--mode", "colbert"});
  EXPECT_EQ(r.exit_code, 2) << r;
  EXPECT_THAT(r.err, HasSubstr("dense"));
  EXPECT_THAT(r.err, HasSubstr("bm25"));
  EXPECT_THAT(r.err, HasSubstr("hybrid"));
  EXPECT_THAT(r.err, HasSubstr("weighted"));
  EXPECT_THAT(r.err, HasSubstr("late"));

  r = RunMnemo(*dir, {"ns", "create", "x"});
  EXPECT_EQ(r.exit_code, 2) << r;
  EXPECT_THAT(r.err, HasSubstr("--encoder"));

  r = RunMnemo(*dir, {"ns", "create", "x", "--dim", "4", "--chunk-tokens", "8"});
  EXPECT_EQ(r.exit_code, 2) << "--chunk-tokens needs --encoder\n" << r;

  r = RunMnemo(*dir, {"search", "--ns", "x", "question", "--vector", "[1]"});
  EXPECT_EQ(r.exit_code, 2) << "a text query excludes --vector\n" << r;

  r = RunMnemo(*dir, {"ingest", "--help"});
  EXPECT_EQ(r.exit_code, 0) << r;
  for (const char* option : {"--ns", "--ext", "--batch", "--batch-bytes", "--max-file-bytes",
                             "--stdin-id", "--progress", "PATH"}) {
    EXPECT_THAT(r.out, HasSubstr(option));
  }
  fs::remove_all(*dir);
}

}  // namespace
}  // namespace mnemo
