// `mnemo-decode generate --inject` and `mnemo-decode score` against a real
// mnemod, as a user runs them: an encoder namespace created with `mnemo ns
// create --encoder use-lite`, the committed injection model registered with
// `mnemo inject register`, held-out chunks ingested with `mnemo ingest`
// (the server computes each chunk's xRAG vector and memory tokens), then
// the decoder asks Recall for them.
//
// The items are eight held-out validation chunks of the injection model
// (decoder/train/inject/data.py's split): each chunk C = query A + " " +
// target B. The memory of C retrieved for A must lower the perplexity of
// B on average over the items, against no retrieval.
//
// Fails when the committed models, the USE-lite assets or a binary are
// absent.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/integration/mnemod_process.h"
#include "tests/integration/shell_run.h"

namespace mnemo {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using testing::Shell;
using testing::ShellRun;

constexpr char kModelDir[] = MNEMO_SOURCE_DIR "/decoder/models/mnemo-ref-4m";
constexpr char kOtherModelDir[] = MNEMO_SOURCE_DIR "/decoder/models/mnemo-ref-4m-long";
constexpr char kInjectDir[] = MNEMO_SOURCE_DIR "/decoder/models/mnemo-ref-4m-inject";

struct Item {
  const char* id;
  const char* query;   // A, the first half of the chunk
  const char* target;  // B, the rest
};

constexpr Item kItems[] = {
    {"val-92-1", "whitelist on another field when I can modify my code to do so. I wonder if someone is not being careful about their submissions, or",
     "if these are bad mailing lists that don't drop bad mail addresses that become trollboxes in time. Any employee who has left my"},
    {"val-131-1", "Don't use bsddb in a closed-source product. Use dbm or dumdbm or use pickles or",
     "roll your own thang. I doubt the presence of bsddb would be the only barrier to creating a closed-source product"},
    {"val-25-1", "of a special cable for the Modular Bay (where CD-ROM or floppy drive is normally). There is also the possibility",
     "of using a docking station, but Dell's docking solution for the Latitude series doesn't seem to allow for"},
    {"val-4-1", "referred to a committee, but there was no further action upon it. The next session of the Chambers commenced on",
     "April 26th, 1833, and continued until June 26th, 1833. A new"},
    {"val-233-1", "notification to his forwarding address but got no reply. After a month we sent a reminder and finally we discovered from his contract employers",
     "the Nigerian National Petroleum Corporation that Mr. James Herbert died from an automobile accident. On further"},
    {"val-3-2", "yet been formed, and with Bolivia no diplomatic intercourse has yet been established. It will be my",
     "endeavor to encourage those sentiments of amity and that liberal commerce which belong to the relations in which"},
    {"val-8-1", "of like-minded nations in working for steady expansion of trade and closer economic cooperation.",
     "Being strictly an administrative entity, the Organization for Trade Cooperation cannot, of course, alter the control by"},
    {"val-27-2", "we certainly wouldn't have wanted one loose in a busy holiday resort for long.\" Officials believe the animal may have",
     "been abandoned by a private owner because it has not been reported missing. Savannah monitor lizards originate in"},
};

std::string AssetsDir() {
  const char* env = std::getenv("MNEMO_ASSETS_DIR");
  return (env != nullptr && *env != '\0') ? env : MNEMO_SOURCE_DIR "/.assets";
}

// Single quotes for the shell.
std::string Quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

class DecodeInjectTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ASSERT_TRUE(fs::exists(fs::path(kInjectDir) / "config.json")) << "needs " << kInjectDir;
    ASSERT_TRUE(fs::exists(fs::path(AssetsDir()) / "use-lite" / "model.json"))
        << "USE-lite assets not found (run scripts/fetch_encoder, or set MNEMO_ASSETS_DIR)";
    const std::string bin = testing::BinDir();
    decode_ = new std::string(bin + "/mnemo-decode");
    cli_ = new std::string(bin + "/mnemo");
    ASSERT_TRUE(fs::exists(*decode_) && fs::exists(*cli_));
    auto dir = testing::MakeTempDir("mnemo-decode-inject");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = new std::string(*dir);
    auto server = testing::MnemodProcess::Start({"--assets-dir", AssetsDir()});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(server).value().release();
    server_flag_ = new std::string(" --server " + server_->target());

    // The chunks as documents, one chunk each.
    {
      std::ofstream docs(*dir_ + "/items.jsonl");
      for (const Item& it : kItems) {
        docs << json({{"id", it.id}, {"text", absl::StrCat(it.query, " ", it.target)}}).dump()
             << "\n";
      }
    }
    ShellRun create = Shell(absl::StrCat(*cli_, *server_flag_,
                                         " ns create inj --encoder use-lite --chunk-tokens 128"));
    ASSERT_EQ(create.exit_code, 0) << create.out;
    ShellRun reg = Shell(absl::StrCat(*cli_, *server_flag_, " inject register --ns inj --dir ",
                                      kInjectDir));
    ASSERT_EQ(reg.exit_code, 0) << reg.out;
    ShellRun ingest = Shell(absl::StrCat(*cli_, *server_flag_, " ingest --ns inj ", *dir_,
                                         "/items.jsonl"));
    ASSERT_EQ(ingest.exit_code, 0) << ingest.out;
    // An encoder namespace without an injection model.
    ShellRun plain = Shell(absl::StrCat(*cli_, *server_flag_, " ns create plain --encoder use-lite"));
    ASSERT_EQ(plain.exit_code, 0) << plain.out;
    ShellRun plain_ingest = Shell(absl::StrCat(*cli_, *server_flag_, " ingest --ns plain ", *dir_,
                                               "/items.jsonl"));
    ASSERT_EQ(plain_ingest.exit_code, 0) << plain_ingest.out;
  }

  static void TearDownTestSuite() {
    if (server_ != nullptr) {
      EXPECT_TRUE(server_->Stop().ok()) << server_->LogTail();
      delete server_;
      server_ = nullptr;
    }
    if (dir_ != nullptr) {
      std::error_code ec;
      fs::remove_all(*dir_, ec);
    }
    delete dir_;
    delete decode_;
    delete cli_;
    delete server_flag_;
    dir_ = decode_ = cli_ = server_flag_ = nullptr;
  }

  void SetUp() override {
    if (server_ == nullptr) GTEST_FAIL() << "the suite's setup failed";
  }

  static ShellRun Decode(const std::string& args) {
    return Shell(absl::StrCat(*decode_, " ", args));
  }

  static json ParseJson(const ShellRun& r) {
    EXPECT_EQ(r.exit_code, 0) << r.out;
    json j = json::parse(r.out, nullptr, /*allow_exceptions=*/false);
    EXPECT_TRUE(j.is_object()) << r.out;
    return j;
  }

  // score --json of item `i`'s target after its query, memory per `mode`.
  static json Score(const Item& it, const std::string& mode, const std::string& extra = "") {
    const std::string file = absl::StrCat(*dir_, "/", it.id, ".target.txt");
    std::ofstream(file) << it.target;
    return ParseJson(Decode(absl::StrCat("score --model ", kModelDir, *server_flag_,
                                         " --ns inj --inject ", mode, " --query ",
                                         Quote(it.query), " --text ", file, " --json ", extra)));
  }

  static inline std::string* decode_ = nullptr;
  static inline std::string* cli_ = nullptr;
  static inline std::string* dir_ = nullptr;
  static inline std::string* server_flag_ = nullptr;
  static inline testing::MnemodProcess* server_ = nullptr;
};

TEST_F(DecodeInjectTest, GenerateXragAnswersFromTheRetrievedChunk) {
  const Item& it = kItems[3];
  const json j = ParseJson(Decode(absl::StrCat(
      "generate --model ", kModelDir, *server_flag_, " --ns inj --inject xrag -k 1 --query ",
      Quote(it.query), " --max-tokens 8 --json ", Quote(it.query))));
  ASSERT_TRUE(j.contains("tokens")) << j.dump();
  EXPECT_GE(j["tokens"].size(), 1u);
  EXPECT_LE(j["tokens"].size(), 8u);
  EXPECT_EQ(j["mode"], "xrag");
  EXPECT_EQ(j["injected_rows"].get<int>(), 1);
  EXPECT_EQ(j["rows_position"].get<int>(), 1);  // right after BOS
  ASSERT_EQ(j["hits"].size(), 1u);
  // The query is the chunk's first half: dense search finds the chunk.
  EXPECT_EQ(j["hits"][0]["chunk_id"].get<std::string>().rfind(it.id, 0), 0u) << j.dump();
  // Plain text output too.
  ShellRun text = Decode(absl::StrCat("generate --model ", kModelDir, *server_flag_,
                                      " --ns inj --inject xrag --max-tokens 4 ",
                                      Quote(it.query)));
  EXPECT_EQ(text.exit_code, 0) << text.out;
  EXPECT_FALSE(text.out.empty());
}

TEST_F(DecodeInjectTest, MemoryRowsReplaceThePlaceholder) {
  std::ifstream cfg(std::string(kInjectDir) + "/config.json");
  const int memory_tokens = json::parse(cfg)["memory_tokens"];
  const Item& it = kItems[5];
  const json j = ParseJson(Decode(absl::StrCat(
      "generate --model ", kModelDir, *server_flag_, " --ns inj --inject memory -k 2 --query ",
      Quote(it.query), " --max-tokens 4 --json ", Quote(absl::StrCat("Context: <memory> ", it.query)))));
  EXPECT_EQ(j["injected_rows"].get<int>(), 2 * memory_tokens);
  EXPECT_GT(j["rows_position"].get<int>(), 1);  // after BOS and "Context:"
  EXPECT_EQ(j["hits"].size(), 2u);
  // Reranked: the dense top 4 scored, 1 kept, with its rerank score.
  const json r = ParseJson(Decode(absl::StrCat(
      "generate --model ", kModelDir, *server_flag_, " --ns inj --inject memory -k 1 --rerank 4 "
      "--max-tokens 2 --json ", Quote(it.query))));
  ASSERT_EQ(r["hits"].size(), 1u);
  EXPECT_TRUE(r["hits"][0].contains("rerank_score")) << r.dump();
  EXPECT_EQ(r["injected_rows"].get<int>(), memory_tokens);
}

TEST_F(DecodeInjectTest, InjectedMemoryLowersThePerplexityOfTheContinuation) {
  double none = 0, memory = 0, xrag = 0, text = 0;
  for (const Item& it : kItems) {
    const json n = Score(it, "none");
    const json m = Score(it, "memory");
    const json x = Score(it, "xrag");
    const json t = Score(it, "text");
    ASSERT_TRUE(n.contains("perplexity") && m.contains("perplexity")) << n.dump() << m.dump();
    EXPECT_EQ(n["mode"], "none");
    EXPECT_EQ(n["tokens"], m["tokens"]);
    EXPECT_EQ(n["injected_rows"].get<int>(), 0);
    EXPECT_EQ(x["injected_rows"].get<int>(), 1);
    EXPECT_GT(m["injected_rows"].get<int>(), 1);
    EXPECT_GT(t["prompt_tokens"].get<int>(), n["prompt_tokens"].get<int>());
    none += std::log(n["perplexity"].get<double>());
    memory += std::log(m["perplexity"].get<double>());
    xrag += std::log(x["perplexity"].get<double>());
    text += std::log(t["perplexity"].get<double>());
  }
  const double k = std::size(kItems);
  std::printf("mean log-perplexity of B: none %.3f, xrag %.3f, memory %.3f, text %.3f\n",
              none / k, xrag / k, memory / k, text / k);
  EXPECT_LT(memory, none);
  EXPECT_LT(xrag, none);
  EXPECT_LT(text, none);
  // Plain output is the perplexity alone.
  const std::string file = absl::StrCat(*dir_, "/plain.txt");
  std::ofstream(file) << kItems[0].target;
  ShellRun plain = Decode(absl::StrCat("score --model ", kModelDir, " --inject none --query ",
                                       Quote(kItems[0].query), " --text ", file));
  ASSERT_EQ(plain.exit_code, 0) << plain.out;
  EXPECT_NEAR(std::stod(plain.out), Score(kItems[0], "none")["perplexity"].get<double>(), 1e-3);
}

TEST_F(DecodeInjectTest, ErrorsNameTheProblem) {
  const std::string q = Quote(kItems[0].query);
  auto generate = [&](const std::string& flags) {
    return Decode(absl::StrCat("generate --model ", kModelDir, *server_flag_, " --max-tokens 2 ",
                               flags, " ", q));
  };
  ShellRun unknown = generate("--ns nosuch --inject xrag");
  EXPECT_EQ(unknown.exit_code, 1) << unknown.out;
  EXPECT_NE(unknown.out.find("NOT_FOUND"), std::string::npos) << unknown.out;

  ShellRun no_model = generate("--ns plain --inject memory");
  EXPECT_EQ(no_model.exit_code, 1) << no_model.out;
  EXPECT_NE(no_model.out.find("FAILED_PRECONDITION"), std::string::npos) << no_model.out;

  ShellRun bad_mode = generate("--ns inj --inject kv");
  EXPECT_EQ(bad_mode.exit_code, 2) << bad_mode.out;
  EXPECT_NE(bad_mode.out.find("--inject"), std::string::npos) << bad_mode.out;

  ShellRun no_server = Decode(absl::StrCat("generate --model ", kModelDir, " --inject xrag ", q));
  EXPECT_EQ(no_server.exit_code, 1) << no_server.out;
  EXPECT_NE(no_server.out.find("--server"), std::string::npos) << no_server.out;

  ShellRun both = generate("--ns inj --inject xrag --memory a,b");
  EXPECT_EQ(both.exit_code, 1) << both.out;

  // Another decoder (the long-context model) is refused by the lineage
  // check, naming the field.
  ShellRun other = Decode(absl::StrCat("generate --model ", kOtherModelDir, *server_flag_,
                                       " --ns inj --inject xrag --max-tokens 2 ", q));
  EXPECT_EQ(other.exit_code, 1) << other.out;
  EXPECT_NE(other.out.find("FAILED_PRECONDITION"), std::string::npos) << other.out;
  EXPECT_NE(other.out.find("decoder_"), std::string::npos) << other.out;

  // The namespace still answers afterwards.
  const json ok = ParseJson(generate("--ns inj --inject xrag --json"));
  EXPECT_EQ(ok["injected_rows"].get<int>(), 1);
}

}  // namespace
}  // namespace mnemo
