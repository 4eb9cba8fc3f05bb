// Tests of `mnemo ingest` (client/cli/ingest.cc) against an in-process fake
// Client: what is sent, what is skipped, and that a re-run sends nothing.
// The real server is exercised by cli_text_test.cc.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/cli/commands.h"
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
class FakeClient : public Client {
 public:
  std::map<std::string, Document> documents;
  std::vector<std::vector<std::string>> messages;  // ids per stream message
  int streams = 0;
  int get_calls = 0;
  std::string encoder = "use-lite";

  class Writer : public UpsertWriter {
   public:
    explicit Writer(FakeClient* client) : client_(client) {}
    absl::Status Write(const std::vector<Document>& docs,
                       const std::vector<Chunk>& chunks) override {
      std::vector<std::string> ids;
      for (const Document& d : docs) {
        client_->documents[d.id] = d;
        ids.push_back(d.id);
        result_.documents_written += 1;
        result_.chunks_written += (d.text.size() + 99) / 100;
      }
      client_->messages.push_back(ids);
      return absl::OkStatus();
    }
    absl::StatusOr<UpsertResult> Finish() override { return result_; }

   private:
    FakeClient* client_;
    UpsertResult result_;
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
    ++streams;
    return std::unique_ptr<UpsertWriter>(new Writer(this));
  }
  absl::StatusOr<GetResult> Get(const std::string&, const std::vector<std::string>& chunk_ids,
                                const std::vector<std::string>& document_ids, bool,
                                const CallOptions&) override {
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
  json Run(IngestOptions o) {
    o.ns = "notes";
    std::FILE* out = std::tmpfile();
    std::FILE* err = std::tmpfile();
    Output output{out, err, /*json=*/true};
    GlobalOptions g;
    g.json = true;
    status_ = Ingest(client_, g, o, output);
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
  ASSERT_EQ(client_.messages.size(), 3u);
  EXPECT_EQ(client_.messages[0].size(), 4u);
  EXPECT_EQ(client_.messages[2].size(), 2u);

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

}  // namespace
}  // namespace mnemo::cli
