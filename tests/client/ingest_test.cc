// Tests of `mnemo ingest` (client/cli/ingest.cc) against an in-process fake
// Client: what is sent, what is skipped, and that a re-run sends nothing.
// The real server is exercised by cli_text_test.cc.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "client/cli/commands.h"
#include "client/cli/ingest_pipeline.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace mnemo::cli {
namespace {

namespace fs = std::filesystem;
using ::nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

// Stores documents in a map; "chunks" one per started 100 bytes of text.
// Thread-safe: ingest writes several batches at once, each on its own
// thread and stream.
class FakeClient : public Client {
 public:
  // All guarded by mu (read them only when no Ingest is running).
  absl::Mutex mu;
  std::map<std::string, Document> documents;
  std::vector<std::vector<std::string>> messages;  // ids per stream message
  int streams = 0;
  int get_calls = 0;
  std::string encoder = "use-lite";
  // Concurrency seen by the fake: streams between their first Write and
  // Finish, the most at once, and ids written while a stream that has the
  // same id was still open.
  int open_writes = 0;
  int peak_open_writes = 0;
  std::multiset<std::string> open_ids;
  std::vector<std::string> raced_ids;
  // When > 1, Finish holds streams open until that many have been open at
  // once (a sync point that a serial client never reaches: it gives up
  // after 10 s once, then stops waiting).
  int hold_until_open = 0;
  bool gave_up_waiting = false;
  // Writes of a document with this id fail with INVALID_ARGUMENT.
  std::string reject_id;

  class Writer : public UpsertWriter {
   public:
    explicit Writer(FakeClient* client) : client_(client) {}
    absl::Status Write(const std::vector<Document>& docs,
                       const std::vector<Chunk>& chunks) override {
      absl::MutexLock lock(&client_->mu);
      std::vector<std::string> ids;
      for (const Document& d : docs) {
        if (d.id == client_->reject_id) {
          failed_ = absl::InvalidArgumentError(absl::StrCat("document '", d.id, "' is rejected"));
          return absl::UnavailableError("stream broken");
        }
      }
      for (const Document& d : docs) {
        if (client_->open_ids.count(d.id) > 0) client_->raced_ids.push_back(d.id);
        client_->documents[d.id] = d;
        ids.push_back(d.id);
        ids_.push_back(d.id);
        client_->open_ids.insert(d.id);
        result_.documents_written += 1;
        result_.chunks_written += (d.text.size() + 99) / 100;
      }
      client_->messages.push_back(ids);
      ++client_->open_writes;
      client_->peak_open_writes = std::max(client_->peak_open_writes, client_->open_writes);
      open_ = true;
      return absl::OkStatus();
    }
    absl::StatusOr<UpsertResult> Finish() override {
      absl::MutexLock lock(&client_->mu);
      if (!failed_.ok()) return failed_;
      if (!open_) return result_;
      if (client_->hold_until_open > 1 && !client_->gave_up_waiting) {
        auto enough = [this]() ABSL_SHARED_LOCKS_REQUIRED(client_->mu) {
          return client_->peak_open_writes >= client_->hold_until_open ||
                 client_->gave_up_waiting;
        };
        if (!client_->mu.AwaitWithTimeout(absl::Condition(&enough), absl::Seconds(10))) {
          client_->gave_up_waiting = true;
        }
      }
      --client_->open_writes;
      for (const std::string& id : ids_) client_->open_ids.erase(client_->open_ids.find(id));
      return result_;
    }

   private:
    FakeClient* client_;
    UpsertResult result_;
    std::vector<std::string> ids_;
    bool open_ = false;
    absl::Status failed_;
  };

  absl::StatusOr<NamespaceInfo> CreateNamespace(const NamespaceConfig&,
                                                const CallOptions&) override {
    return absl::UnimplementedError("fake");
  }
  absl::StatusOr<NamespaceInfo> GetNamespace(const std::string& name, const CallOptions&) override {
    if (name != "notes") return absl::NotFoundError("no such namespace");
    NamespaceInfo info;
    info.config.name = name;
    info.config.encoder = encoder;
    return info;
  }
  absl::StatusOr<std::vector<NamespaceInfo>> ListNamespaces(const CallOptions&) override {
    return absl::UnimplementedError("fake");
  }
  absl::Status DropNamespace(const std::string&, const CallOptions&) override {
    return absl::UnimplementedError("fake");
  }
  absl::StatusOr<UpsertResult> Upsert(const std::string&, const std::vector<Document>&,
                                      const std::vector<Chunk>&, const CallOptions&) override {
    return absl::UnimplementedError("fake");
  }
  absl::StatusOr<std::unique_ptr<UpsertWriter>> UpsertStream(const std::string&,
                                                             const CallOptions&) override {
    absl::MutexLock lock(&mu);
    ++streams;
    return std::unique_ptr<UpsertWriter>(new Writer(this));
  }
  absl::StatusOr<GetResult> Get(const std::string&, const std::vector<std::string>& chunk_ids,
                                const std::vector<std::string>& document_ids, bool,
                                const CallOptions&) override {
    absl::MutexLock lock(&mu);
    ++get_calls;
    GetResult result;
    for (const std::string& id : document_ids) {
      auto it = documents.find(id);
      if (it == documents.end()) {
        result.missing_ids.push_back(id);
      } else {
        result.documents.push_back(it->second);
      }
    }
    return result;
  }
  absl::StatusOr<DeleteResult> Delete(const std::string&, const std::vector<std::string>&,
                                      const std::vector<std::string>&,
                                      const CallOptions&) override {
    return absl::UnimplementedError("fake");
  }
  absl::StatusOr<std::vector<std::vector<Hit>>> Search(const SearchRequest&,
                                                       const CallOptions&) override {
    return absl::UnimplementedError("fake");
  }
  absl::StatusOr<StatsResult> Stats(const std::string&, const CallOptions&) override {
    return absl::UnimplementedError("fake");
  }
  absl::StatusOr<uint64_t> Checkpoint(const std::string&, const CallOptions&) override {
    return absl::UnimplementedError("fake");
  }
  absl::Status Compact(const std::string&, const CallOptions&) override {
    return absl::UnimplementedError("fake");
  }
  absl::StatusOr<BackupInfo> CreateBackup(const std::string&, const CallOptions&) override {
    return absl::UnimplementedError("fake");
  }
  absl::StatusOr<std::vector<BackupInfo>> ListBackups(const std::string&,
                                                      const CallOptions&) override {
    return absl::UnimplementedError("fake");
  }
  absl::StatusOr<std::vector<uint32_t>> VerifyBackup(const std::string&, uint32_t,
                                                     const CallOptions&) override {
    return absl::UnimplementedError("fake");
  }
  absl::Status HealthCheck(const CallOptions&) override { return absl::OkStatus(); }
};

std::string ReadAll(std::FILE* f) {
  std::fflush(f);
  std::rewind(f);
  std::string s;
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof(buffer), f)) > 0) s.append(buffer, n);
  return s;
}

class IngestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / absl::StrCat("mnemo-ingest-test-", getpid());
    fs::remove_all(root_);
    fs::create_directories(root_ / "docs" / "sub");
    Write("docs/alpha.txt", "Alpha text about the river and its boats.\n");
    Write("docs/beta.md", "# Beta\n\nMarkdown about mountains.\n");
    Write("docs/sub/gamma.html",
          "<html><head><style>p{}</style></head><body><p>Gamma &amp; the "
          "<b>desert</b></p><script>x()</script></body></html>");
    Write("docs/binary.txt", std::string("\x89PNG\r\n\x1a\n\0\0\0", 11));
    Write("docs/latin1.txt", "caf\xE9");
    Write("docs/empty.md", "");
    Write("docs/blank.txt", "  \n\n ");
    Write("docs/ignored.csv", "a,b");
  }
  void TearDown() override { fs::remove_all(root_); }

  void Write(const std::string& rel, const std::string& data) {
    fs::create_directories((root_ / rel).parent_path());
    std::ofstream(root_ / rel, std::ios::binary) << data;
  }

  // Runs Ingest with --json; returns its summary (stderr in err_).
  json Run(IngestOptions o, IngestPipelineOptions pipeline = {}) {
    o.ns = "notes";
    std::FILE* out = std::tmpfile();
    std::FILE* err = std::tmpfile();
    Output output{out, err, /*json=*/true};
    GlobalOptions g;
    g.json = true;
    status_ = IngestPipelined(client_, g, o, output, pipeline);
    const std::string text = ReadAll(out);
    err_ = ReadAll(err);
    std::fclose(out);
    std::fclose(err);
    if (!status_.ok()) return json();
    return json::parse(text);
  }

  IngestOptions Docs() {
    IngestOptions o;
    o.paths = {(root_ / "docs").string()};
    return o;
  }

  fs::path root_;
  FakeClient client_;
  absl::Status status_;
  std::string err_;
};

TEST_F(IngestTest, IngestsTextSkipsBadFilesAndReRunIsUnchanged) {
  json first = Run(Docs());
  ASSERT_TRUE(status_.ok()) << status_;
  EXPECT_EQ(first["ingested"], 3);
  EXPECT_EQ(first["unchanged"], 0);
  EXPECT_EQ(first["skipped"], 4);
  EXPECT_EQ(first["inputs"], 7);  // .csv is not taken from a folder
  EXPECT_EQ(first["documents_written"], 3);
  EXPECT_GE(first["chunks_written"].get<int>(), 3);
  EXPECT_THAT(err_, HasSubstr("binary.txt: binary: NUL byte at offset 8"));
  EXPECT_THAT(err_, HasSubstr("latin1.txt: not valid UTF-8"));
  EXPECT_THAT(err_, HasSubstr("empty.md: empty file"));
  EXPECT_THAT(err_, HasSubstr("blank.txt: only whitespace"));

  ASSERT_EQ(client_.documents.count("sub/gamma.html"), 1u);
  const Document& gamma = client_.documents["sub/gamma.html"];
  EXPECT_EQ(gamma.text, "Gamma & the desert");
  json metadata = json::parse(gamma.metadata_json);
  EXPECT_EQ(metadata["path"], (root_ / "docs" / "sub" / "gamma.html").string());
  EXPECT_EQ(metadata["bytes"], fs::file_size(root_ / "docs" / "sub" / "gamma.html"));
  EXPECT_EQ(metadata["sha256"].get<std::string>().size(), 64u);
  EXPECT_TRUE(metadata.contains("mtime"));
  EXPECT_EQ(client_.documents["alpha.txt"].text, "Alpha text about the river and its boats.\n");

  const size_t messages = client_.messages.size();
  json second = Run(Docs());
  ASSERT_TRUE(status_.ok()) << status_;
  EXPECT_EQ(second["ingested"], 0);
  EXPECT_EQ(second["unchanged"], 3);
  EXPECT_EQ(second["chunks_written"], 0);
  EXPECT_EQ(client_.messages.size(), messages) << "a re-run must send nothing";

  Write("docs/beta.md", "# Beta\n\nMarkdown about valleys now.\n");
  json third = Run(Docs());
  ASSERT_TRUE(status_.ok()) << status_;
  EXPECT_EQ(third["ingested"], 1);
  EXPECT_EQ(third["unchanged"], 2);
  EXPECT_THAT(client_.messages.back(), ElementsAre("beta.md"));
  EXPECT_THAT(client_.documents["beta.md"].text, HasSubstr("valleys"));
}

TEST_F(IngestTest, BatchesByCountAndBytes) {
  for (int i = 0; i < 10; ++i) Write(absl::StrCat("many/f", i, ".txt"), std::string(50, 'a' + i));
  IngestOptions o;
  o.paths = {(root_ / "many").string()};
  o.batch = 4;
  Run(o);
  ASSERT_TRUE(status_.ok()) << status_;
  // Batches are written concurrently, so they may arrive in any order.
  std::vector<size_t> sizes;
  for (const auto& m : client_.messages) sizes.push_back(m.size());
  EXPECT_THAT(sizes, UnorderedElementsAre(4u, 4u, 2u));

  client_.documents.clear();
  client_.messages.clear();
  o.batch = 100;
  o.batch_bytes = 120;  // two 50-byte files per message
  Run(o);
  ASSERT_TRUE(status_.ok()) << status_;
  EXPECT_EQ(client_.messages.size(), 5u);
}

TEST_F(IngestTest, TooLargeFilesAreSkippedWithoutFailingTheRun) {
  Write("big/huge.txt", std::string(5000, 'x'));
  Write("big/small.txt", "small");
  IngestOptions o;
  o.paths = {(root_ / "big").string()};
  o.max_file_bytes = 1000;
  json summary = Run(o);
  ASSERT_TRUE(status_.ok()) << status_;
  EXPECT_EQ(summary["ingested"], 1);
  EXPECT_EQ(summary["skipped"], 1);
  EXPECT_THAT(err_, HasSubstr("huge.txt: 5000 bytes is more than --max-file-bytes (1000)"));
  EXPECT_EQ(summary["skipped_inputs"][0]["source"], (root_ / "big" / "huge.txt").string());
}

TEST_F(IngestTest, JsonlLinesAreDocumentsAndBadLinesAreSkipped) {
  Write("data/docs.jsonl",
        "{\"id\": \"d1\", \"text\": \"first document\", \"metadata\": {\"year\": 1790}}\n"
        "\n"
        "{\"id\": \"d2\", \"text\": \"second\"}\r\n"
        "not json\n"
        "{\"id\": \"d3\"}\n");
  IngestOptions o;
  o.paths = {(root_ / "data" / "docs.jsonl").string()};
  json summary = Run(o);
  ASSERT_TRUE(status_.ok()) << status_;
  EXPECT_EQ(summary["ingested"], 2);
  EXPECT_EQ(summary["skipped"], 2);
  EXPECT_THAT(err_, HasSubstr("docs.jsonl:4: not valid JSON"));
  EXPECT_THAT(err_, HasSubstr("docs.jsonl:5: missing \"text\""));
  json metadata = json::parse(client_.documents["d1"].metadata_json);
  EXPECT_EQ(metadata["year"], 1790);
  EXPECT_TRUE(metadata.contains("sha256"));
  EXPECT_EQ(client_.documents["d2"].text, "second");

  json again = Run(o);
  EXPECT_EQ(again["unchanged"], 2);
  EXPECT_EQ(again["ingested"], 0);
}

TEST_F(IngestTest, NamespaceWithoutEncoderIsRefusedBeforeAnythingIsRead) {
  client_.encoder = "";
  Run(Docs());
  EXPECT_EQ(status_.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status_.message(), HasSubstr("--encoder use-lite"));
  EXPECT_THAT(client_.messages, IsEmpty());
}

TEST_F(IngestTest, MissingPathFailsBeforeSending) {
  IngestOptions o;
  o.paths = {(root_ / "docs").string(), (root_ / "nope").string()};
  Run(o);
  EXPECT_EQ(status_.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(client_.messages, IsEmpty());
}

TEST_F(IngestTest, UnknownNamespaceIsNotFound) {
  IngestOptions o = Docs();
  std::FILE* out = std::tmpfile();
  Output output{out, out, false};
  o.ns = "other";
  EXPECT_EQ(Ingest(client_, GlobalOptions{}, o, output).code(), absl::StatusCode::kNotFound);
  std::fclose(out);
}

TEST_F(IngestTest, ProgressBarCountsFilesAndChunksAndMessagesDoNotMixWithIt) {
  IngestOptions o = Docs();
  o.progress = true;
  Run(o);
  ASSERT_TRUE(status_.ok()) << status_;
  EXPECT_THAT(err_, HasSubstr("ingest notes"));
  EXPECT_THAT(err_, HasSubstr("7/7 files"));
  EXPECT_THAT(err_, HasSubstr("chunks/s"));
  // The bar is blanked out before a message, which gets a line of its own.
  EXPECT_THAT(err_, ::testing::ContainsRegex("\r +\rskipped [^\r]*empty.md: empty file\n"));
}

TEST_F(IngestTest, ExplicitFilesUseTheirNameAsId) {
  IngestOptions o;
  o.paths = {(root_ / "docs" / "alpha.txt").string(), (root_ / "docs" / "ignored.csv").string()};
  json summary = Run(o);
  ASSERT_TRUE(status_.ok()) << status_;
  EXPECT_EQ(summary["ingested"], 2);
  std::vector<std::string> ids;
  for (const auto& [id, doc] : client_.documents) ids.push_back(id);
  EXPECT_THAT(ids, UnorderedElementsAre("alpha.txt", "ignored.csv"));
}


// Issue 3 (ingestion speed): several batches are written at once, so the
// server can embed one while it commits another.
TEST_F(IngestTest, SeveralBatchesAreInFlightAtOnce) {
  for (int i = 0; i < 8; ++i) Write(absl::StrCat("many/f", i, ".txt"), absl::StrCat("text ", i));
  client_.hold_until_open = 3;
  IngestOptions o;
  o.paths = {(root_ / "many").string()};
  o.batch = 1;
  IngestPipelineOptions pipeline;
  pipeline.in_flight = 3;
  json summary = Run(o, pipeline);
  ASSERT_TRUE(status_.ok()) << status_;
  EXPECT_FALSE(client_.gave_up_waiting) << "never had 3 batches in flight, at most "
                                        << client_.peak_open_writes;
  EXPECT_EQ(client_.peak_open_writes, 3);
  EXPECT_EQ(summary["ingested"], 8);
  EXPECT_EQ(summary["documents_written"], 8);
  EXPECT_EQ(client_.documents.size(), 8u);
  EXPECT_EQ(client_.messages.size(), 8u);
}

TEST_F(IngestTest, OneInFlightWritesOneBatchAtATimeInOrder) {
  for (int i = 0; i < 5; ++i) Write(absl::StrCat("many/f", i, ".txt"), absl::StrCat("text ", i));
  IngestOptions o;
  o.paths = {(root_ / "many").string()};
  o.batch = 2;
  IngestPipelineOptions pipeline;
  pipeline.in_flight = 1;
  Run(o, pipeline);
  ASSERT_TRUE(status_.ok()) << status_;
  EXPECT_EQ(client_.peak_open_writes, 1);
  ASSERT_EQ(client_.messages.size(), 3u);
  EXPECT_THAT(client_.messages[0], ElementsAre("f0.txt", "f1.txt"));
  EXPECT_THAT(client_.messages[2], ElementsAre("f4.txt"));

  pipeline.in_flight = 0;
  Run(o, pipeline);
  EXPECT_EQ(status_.code(), absl::StatusCode::kInvalidArgument);
}

// The same id read twice (two .jsonl lines) is never written by two
// batches at once, and the version read last is the one stored.
TEST_F(IngestTest, AnIdInFlightIsNotWrittenAgainUntilCommittedAndLastVersionWins) {
  Write("data/docs.jsonl",
        "{\"id\": \"d1\", \"text\": \"first version\"}\n"
        "{\"id\": \"d2\", \"text\": \"other\"}\n"
        "{\"id\": \"d1\", \"text\": \"second version\"}\n"
        "{\"id\": \"d3\", \"text\": \"more\"}\n");
  client_.hold_until_open = 2;  // d1 stays open until d2's batch is too
  IngestOptions o;
  o.paths = {(root_ / "data" / "docs.jsonl").string()};
  o.batch = 1;
  json summary = Run(o);
  ASSERT_TRUE(status_.ok()) << status_;
  EXPECT_THAT(client_.raced_ids, IsEmpty());
  EXPECT_EQ(client_.documents["d1"].text, "second version");
  EXPECT_EQ(summary["ingested"], 4);
  EXPECT_EQ(summary["unchanged"], 0);

  // A re-run writes d1 twice again (each line differs from the version
  // stored before it) and leaves the rest alone.
  client_.hold_until_open = 0;
  json again = Run(o);
  ASSERT_TRUE(status_.ok()) << status_;
  EXPECT_EQ(again["unchanged"], 2);
  EXPECT_EQ(again["ingested"], 2);
  EXPECT_EQ(client_.documents["d1"].text, "second version");
}

// A failed batch stops the run with the server's reason, the failed
// documents and the count stored; the other batches stay written and a
// re-run resumes.
TEST_F(IngestTest, FailedBatchNamesItsDocumentsAndReRunResumes) {
  for (int i = 0; i < 6; ++i) Write(absl::StrCat("many/f", i, ".txt"), absl::StrCat("text ", i));
  client_.reject_id = "f2.txt";
  IngestOptions o;
  o.paths = {(root_ / "many").string()};
  o.batch = 1;
  Run(o);
  EXPECT_EQ(status_.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status_.message(), HasSubstr("document 'f2.txt' is rejected"));
  EXPECT_THAT(status_.message(), HasSubstr("writing document f2.txt"));
  EXPECT_THAT(status_.message(), HasSubstr("re-running resumes"));
  EXPECT_EQ(client_.documents.count("f0.txt"), 1u);
  EXPECT_EQ(client_.documents.count("f1.txt"), 1u);
  EXPECT_EQ(client_.documents.count("f2.txt"), 0u);
  const size_t stored = client_.documents.size();

  client_.reject_id.clear();
  json summary = Run(o);
  ASSERT_TRUE(status_.ok()) << status_;
  EXPECT_EQ(summary["unchanged"], static_cast<int>(stored));
  EXPECT_EQ(summary["ingested"], static_cast<int>(6 - stored));
  EXPECT_EQ(client_.documents.size(), 6u);
}

}  // namespace
}  // namespace mnemo::cli
