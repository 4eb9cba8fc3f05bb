// The `mnemo kv ...` verbs end to end: the real `mnemo` binary against a real
// mnemod, with chunk KV computed by the real `mnemo-decode prefill` of the
// committed reference model (decoder/models/mnemo-ref-4m).
//
// Fails (a test skips only for a missing GPU) when the model directory or
// the mnemo-decode binary is absent.
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
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

const std::string kModelDir = MNEMO_SOURCE_DIR "/decoder/models/mnemo-ref-4m";
constexpr int kChunkTokens = 24;

constexpr char kText[] =
    "Call me Ishmael. Some years ago, never mind how long precisely, having little or no "
    "money in my purse, and nothing particular to interest me on shore, I thought I would "
    "sail about a little and see the watery part of the world. It is a way I have of driving "
    "off the spleen and regulating the circulation.\n";

class CliKvTest : public ::testing::Test {
 protected:
  // One prefill for the suite: mnemo-decode is the slow part.
  static void SetUpTestSuite() {
    missing_reason_ = new std::string();
    if (!fs::exists(fs::path(kModelDir) / "config.json")) {
      *missing_reason_ = absl::StrCat("model directory ", kModelDir, " is absent");
      return;
    }
    if (!fs::exists(testing::BinDir() + "/mnemo-decode")) {
      *missing_reason_ = absl::StrCat("no mnemo-decode in ", testing::BinDir(),
                                   " (build the mnemo_decode target)");
      return;
    }
    absl::StatusOr<std::string> dir = testing::MakeTempDir("mnemo-cli-kv");
    ASSERT_TRUE(dir.ok()) << dir.status();
    suite_dir_ = new std::string(*dir);
    std::ofstream(*suite_dir_ + "/text.txt") << kText;
    CliResult r = RunBinary(*suite_dir_, "mnemo-decode",
                            {"prefill", "--model", kModelDir, *suite_dir_ + "/text.txt", "--out",
                             *suite_dir_ + "/doc", "--chunk-tokens",
                             std::to_string(kChunkTokens)});
    ASSERT_EQ(r.exit_code, 0) << r;
    std::ifstream in(*suite_dir_ + "/doc/manifest.json");
    manifest_ = new json(json::parse(in));
  }

  static void TearDownTestSuite() {
    if (suite_dir_ != nullptr) {
      std::error_code ignored;
      fs::remove_all(*suite_dir_, ignored);
    }
    delete suite_dir_;
    delete manifest_;
    delete missing_reason_;
    suite_dir_ = nullptr;
    manifest_ = nullptr;
    missing_reason_ = nullptr;
  }

  void SetUp() override {
    if (!missing_reason_->empty()) GTEST_FAIL() << *missing_reason_;
    ASSERT_NE(manifest_, nullptr) << "prefill failed";
    absl::StatusOr<std::string> dir = testing::MakeTempDir("mnemo-cli-kv-test");
    ASSERT_TRUE(dir.ok()) << dir.status();
    work_dir_ = *dir;
    auto server = MnemodProcess::Start();
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
    args.insert(args.begin(), {"--server", server_->target(), "--timeout", "30"});
    return RunMnemo(work_dir_, args);
  }

  int NumChunks() const { return static_cast<int>((*manifest_)["chunks"].size()); }

  // A vector namespace holding chunks doc#0..doc#N-1 (one per prefilled
  // chunk), with the model registered.
  void CreateNamespaceWithChunks(const std::string& ns, const std::string& codec = "fp16") {
    CliResult r = Mnemo({"ns", "create", ns, "--dim", "2"});
    ASSERT_EQ(r.exit_code, 0) << r;
    const std::string path = work_dir_ + "/chunks.jsonl";
    {
      std::ofstream out(path);
      for (int i = 0; i < NumChunks(); ++i) {
        out << json{{"id", absl::StrCat("doc#", i)},
                    {"text", (*manifest_)["chunks"][i]["text"]},
                    {"vector", {1.0, static_cast<double>(i)}}}
                   .dump()
            << "\n";
      }
    }
    r = Mnemo({"upsert", "--ns", ns, path});
    ASSERT_EQ(r.exit_code, 0) << r;
    r = Mnemo({"kv", "register", "--ns", ns, "--model-dir", kModelDir, "--codec", codec});
    ASSERT_EQ(r.exit_code, 0) << r;
    EXPECT_THAT(r.out, HasSubstr("registered KV model"));
  }

  std::string DocDir() const { return *suite_dir_ + "/doc"; }

  static inline std::string* missing_reason_ = nullptr;
  static inline std::string* suite_dir_ = nullptr;
  static inline json* manifest_ = nullptr;
  std::string work_dir_;
  std::unique_ptr<MnemodProcess> server_;
};

TEST_F(CliKvTest, PutFromPrefillThenStatsGetExistsLookup) {
  ASSERT_GE(NumChunks(), 2) << "the text should make several chunks";
  CreateNamespaceWithChunks("kv");
  CliResult r = Mnemo({"kv", "put", "--ns", "kv", "--from", DocDir(), "--id-prefix", "doc#",
                       "--json"});
  ASSERT_EQ(r.exit_code, 0) << r;
  json put = ParseJson(r);
  ASSERT_EQ(put["chunks"].size(), static_cast<size_t>(NumChunks()));
  EXPECT_EQ(put["chunks"][0]["id"], "doc#0");
  EXPECT_EQ(put["tokens"], (*manifest_)["text_tokens"]);
  for (const json& c : put["chunks"]) EXPECT_LE(c["max_key_error"].get<double>(), 1e-3);

  r = Mnemo({"kv", "stats", "--ns", "kv", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r;
  json stats = ParseJson(r);
  EXPECT_EQ(stats["chunks"], NumChunks());
  EXPECT_EQ(stats["blocks"], NumChunks() * (*manifest_)["n_layers"].get<int>());
  EXPECT_EQ(stats["tokens"], (*manifest_)["text_tokens"]);
  EXPECT_EQ(stats["codec"], "fp16");
  EXPECT_EQ(stats["eviction_policy"], "lru");
  EXPECT_EQ(stats["model"]["canonical"], (*manifest_)["fingerprint"]);
  EXPECT_EQ(stats["model"]["hash"], (*manifest_)["fingerprint_hash"]);
  EXPECT_GT(stats["stored_bytes"].get<uint64_t>(), 0u);
  // fp16 blocks (zstd can only shrink them, up to its header) plus the key
  // index of retrieval attention: ~10 bytes per key at head_dim 32, 8% of
  // the 128 bytes of K+V at fp16.
  EXPECT_EQ(stats["key_index_keys_per_cluster"], 16);
  EXPECT_LE(stats["stored_bytes"].get<uint64_t>(),
            stats["fp16_bytes"].get<uint64_t>() * 110 / 100);

  // The human table.
  r = Mnemo({"kv", "stats", "--ns", "kv"});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_THAT(r.out, HasSubstr("codec:             fp16 + zstd"));
  EXPECT_THAT(r.out, HasSubstr(absl::StrCat("chunks with KV:    ", NumChunks())));

  // get: one line per block, layer by layer; the registered model is used.
  r = Mnemo({"kv", "get", "--ns", "kv", "doc#1", "doc#0", "--layers", "1:3", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r;
  json got = ParseJson(r);
  ASSERT_EQ(got["blocks"].size(), 4u);
  EXPECT_EQ(got["blocks"][0]["chunk_id"], "doc#1");
  EXPECT_EQ(got["blocks"][0]["layer"], 1);
  EXPECT_EQ(got["blocks"][1]["chunk_id"], "doc#0");
  EXPECT_EQ(got["blocks"][2]["layer"], 2);
  EXPECT_EQ(got["blocks"][0]["shape"][0], (*manifest_)["n_kv_heads"]);
  EXPECT_EQ(got["blocks"][0]["shape"][1], (*manifest_)["chunks"][1]["n_tokens"]);

  r = Mnemo({"kv", "get", "--ns", "kv", "doc#0", "--positions", "100", "--dtype", "fp16"});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_THAT(r.out, HasSubstr("CHUNK"));
  EXPECT_THAT(r.out, HasSubstr("100"));

  // --out writes a safetensors file.
  const std::string out_file = work_dir_ + "/kv.safetensors";
  r = Mnemo({"kv", "get", "--ns", "kv", "doc#0", "--out", out_file});
  ASSERT_EQ(r.exit_code, 0) << r;
  {
    // safetensors: 8-byte little-endian header length, then the JSON header.
    std::ifstream in(out_file, std::ios::binary);
    uint64_t header_bytes = 0;
    in.read(reinterpret_cast<char*>(&header_bytes), 8);
    ASSERT_TRUE(in && header_bytes > 0 && header_bytes < (1u << 20));
    std::string header(header_bytes, '\0');
    in.read(header.data(), static_cast<std::streamsize>(header_bytes));
    json h = json::parse(header, nullptr, /*allow_exceptions=*/false);
    ASSERT_TRUE(h.is_object()) << header;
    const int n_layers = (*manifest_)["n_layers"];
    for (int l = 0; l < n_layers; ++l) {
      for (const char* kv : {"k", "v"}) {
        const std::string name = absl::StrCat("doc#0.layer", l, ".", kv);
        ASSERT_TRUE(h.contains(name)) << name;
        EXPECT_EQ(h[name]["dtype"], "F32");
        EXPECT_EQ(h[name]["shape"][1], (*manifest_)["chunks"][0]["n_tokens"]);
      }
    }
    EXPECT_EQ(h["doc#0.tokens"]["dtype"], "I32");
    EXPECT_EQ(h["__metadata__"]["format"], "mnemo-kv-get/1");
    EXPECT_EQ(h["__metadata__"]["fingerprint"], (*manifest_)["fingerprint"]);
  }

  // exists, and lookup of the concatenated tokens of chunks 0 and 1.
  r = Mnemo({"kv", "exists", "--ns", "kv", "doc#0", "nope", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r;
  json exists = ParseJson(r);
  EXPECT_EQ(exists["chunks"][0]["tokens"], (*manifest_)["chunks"][0]["n_tokens"]);
  EXPECT_EQ(exists["chunks"][1]["exists"], false);

  r = Mnemo({"kv", "get", "--ns", "kv", "doc#0", "doc#1", "--layers", "0:1", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r;
  json first = ParseJson(r);
  std::vector<int> prompt;
  for (const json& block : first["blocks"]) {
    for (int t : block["tokens"]) prompt.push_back(t);
  }
  prompt.push_back(4000);
  r = Mnemo({"kv", "lookup", "--ns", "kv", "--tokens", absl::StrJoin(prompt, ","), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r;
  json match = ParseJson(r);
  EXPECT_EQ(match["matched_tokens"], prompt.size() - 1);
  ASSERT_EQ(match["chunks"].size(), 2u);
  EXPECT_EQ(match["chunks"][0]["id"], "doc#0");
  EXPECT_EQ(match["chunks"][1]["id"], "doc#1");

  // pin, ttl, delete.
  r = Mnemo({"kv", "pin", "--ns", "kv", "doc#0", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(ParseJson(r)["updated"], 1);
  r = Mnemo({"kv", "stats", "--ns", "kv", "--json"});
  EXPECT_EQ(ParseJson(r)["pinned_chunks"], 1);
  r = Mnemo({"kv", "unpin", "--ns", "kv", "doc#0"});
  ASSERT_EQ(r.exit_code, 0) << r;
  r = Mnemo({"kv", "ttl", "--ns", "kv", "--seconds", "3600", "doc#0", "doc#1"});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_THAT(r.out, HasSubstr("2 of 2"));
  r = Mnemo({"kv", "delete", "--ns", "kv", "doc#0", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(ParseJson(r)["deleted"], 1);
  r = Mnemo({"kv", "get", "--ns", "kv", "doc#0"});
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_THAT(r.err, HasSubstr("error: NOT_FOUND"));
  // The chunk itself stays.
  r = Mnemo({"get", "--ns", "kv", "doc#0"});
  EXPECT_EQ(r.exit_code, 0) << r;
}

TEST_F(CliKvTest, PutNeedsTheChunksAndTheRegisteredModel) {
  // No chunks yet: NOT_FOUND naming them, nothing stored.
  CliResult r = Mnemo({"ns", "create", "empty", "--dim", "2"});
  ASSERT_EQ(r.exit_code, 0) << r;
  r = Mnemo({"kv", "register", "--ns", "empty", "--model-dir", kModelDir});
  ASSERT_EQ(r.exit_code, 0) << r;
  r = Mnemo({"kv", "put", "--ns", "empty", "--from", DocDir(), "--id-prefix", "doc#"});
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_THAT(r.err, HasSubstr("error: NOT_FOUND"));
  EXPECT_THAT(r.err, HasSubstr("doc#0"));
  // --create-chunks needs an encoder namespace.
  r = Mnemo({"kv", "put", "--ns", "empty", "--from", DocDir(), "--id-prefix", "doc#",
             "--create-chunks"});
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_THAT(r.err, HasSubstr("error: FAILED_PRECONDITION"));
  EXPECT_THAT(r.err, HasSubstr("encoder"));
  r = Mnemo({"kv", "stats", "--ns", "empty", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(ParseJson(r)["chunks"], 0);

  // A namespace registered with another model refuses the put, naming the
  // field.
  r = Mnemo({"ns", "create", "other", "--dim", "2"});
  ASSERT_EQ(r.exit_code, 0) << r;
  std::string fingerprint = (*manifest_)["fingerprint"];
  const std::string needle = absl::StrCat("n_kv_heads=", (*manifest_)["n_kv_heads"].get<int>());
  ASSERT_NE(fingerprint.find(needle), std::string::npos) << fingerprint;
  fingerprint.replace(fingerprint.find(needle), needle.size(), "n_kv_heads=1");
  r = Mnemo({"kv", "register", "--ns", "other", "--fingerprint", fingerprint, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(ParseJson(r)["model"]["n_kv_heads"], 1);
  const std::string path = work_dir_ + "/one.jsonl";
  std::ofstream(path) << json{{"id", "doc#0"}, {"text", "x"}, {"vector", {1.0, 0.0}}}.dump()
                      << "\n";
  ASSERT_EQ(Mnemo({"upsert", "--ns", "other", path}).exit_code, 0);
  r = Mnemo({"kv", "put", "--ns", "other", "--from", DocDir(), "--id-prefix", "doc#"});
  EXPECT_EQ(r.exit_code, 1) << r;  // doc#1.. are missing: refused before any put
  r = Mnemo({"kv", "exists", "--ns", "other", "doc#0", "--model-dir", kModelDir});
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_THAT(r.err, HasSubstr("error: FAILED_PRECONDITION"));
  EXPECT_THAT(r.err, HasSubstr("n_kv_heads"));
}

TEST_F(CliKvTest, RegisterOptionsAndUsageErrors) {
  CliResult r = Mnemo({"ns", "create", "reg", "--dim", "2"});
  ASSERT_EQ(r.exit_code, 0) << r;
  r = Mnemo({"kv", "register", "--ns", "reg", "--model-dir", kModelDir, "--codec", "int4",
             "--int4-group", "16", "--no-entropy", "--capacity-bytes", "1048576", "--eviction",
             "fifo", "--ttl", "600", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r;
  json stats = ParseJson(r);
  EXPECT_EQ(stats["codec"], "int4");
  EXPECT_EQ(stats["int4_group_size"], 16);
  EXPECT_EQ(stats["entropy"], false);
  EXPECT_EQ(stats["capacity_bytes"], 1048576);
  EXPECT_EQ(stats["eviction_policy"], "fifo");
  EXPECT_EQ(stats["default_ttl_seconds"], 600);
  // The same model again with the kvq codec.
  r = Mnemo({"kv", "register", "--ns", "reg", "--model-dir", kModelDir, "--codec", "kvq", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(ParseJson(r)["codec"], "kvq");
  r = Mnemo({"kv", "stats", "--ns", "reg"});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_THAT(r.out, HasSubstr("codec:             kvq (rANS)"));

  // Neither or both model sources; unknown codec; bad fingerprint text.
  r = Mnemo({"kv", "register", "--ns", "reg"});
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_THAT(r.err, HasSubstr("INVALID_ARGUMENT"));
  r = Mnemo({"kv", "register", "--ns", "reg", "--model-dir", kModelDir, "--codec", "int2"});
  EXPECT_EQ(r.exit_code, 2) << r;
  r = Mnemo({"kv", "register", "--ns", "reg", "--fingerprint", "architecture=llama"});
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_THAT(r.err, HasSubstr("INVALID_ARGUMENT"));
  r = Mnemo({"kv", "register", "--ns", "reg", "--model-dir", work_dir_});
  EXPECT_EQ(r.exit_code, 1) << r;
  r = Mnemo({"kv", "get", "--ns", "reg", "a", "--layers", "3:1"});
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_THAT(r.err, HasSubstr("--layers"));
  r = Mnemo({"kv", "lookup", "--ns", "reg", "--tokens", "1,x"});
  EXPECT_EQ(r.exit_code, 1) << r;
  r = Mnemo({"kv", "stats", "--ns", "no-such-namespace"});
  EXPECT_EQ(r.exit_code, 1) << r;
  EXPECT_THAT(r.err, HasSubstr("error: NOT_FOUND"));
}

TEST(CliKvHelpTest, EveryKvVerbHasHelp) {
  absl::StatusOr<std::string> dir = testing::MakeTempDir("mnemo-cli-kv-help");
  ASSERT_TRUE(dir.ok()) << dir.status();
  const std::vector<std::pair<std::vector<std::string>, std::vector<std::string>>> cases = {
      {{"kv"}, {"register", "put", "get", "exists", "delete", "lookup", "pin", "unpin", "ttl",
                "stats"}},
      {{"kv", "register"},
       {"--ns", "--model-dir", "--fingerprint", "--codec", "--no-entropy", "--int4-group",
        "--capacity-bytes", "--eviction", "--ttl"}},
      {{"kv", "put"},
       {"--ns", "--from", "--id-prefix", "--create-chunks", "--dtype", "--pin", "--ttl"}},
      {{"kv", "get"},
       {"--ns", "--layers", "--dtype", "--positions", "--out", "--model-dir", "--fingerprint"}},
      {{"kv", "exists"}, {"--ns", "--model-dir"}},
      {{"kv", "delete"}, {"--ns"}},
      {{"kv", "lookup"}, {"--ns", "--tokens"}},
      {{"kv", "pin"}, {"--ns"}},
      {{"kv", "unpin"}, {"--ns"}},
      {{"kv", "ttl"}, {"--ns", "--seconds"}},
      {{"kv", "stats"}, {"--ns"}},
  };
  for (const auto& [verb, words] : cases) {
    std::vector<std::string> args = verb;
    args.push_back("--help");
    CliResult r = RunMnemo(*dir, args);
    EXPECT_EQ(r.exit_code, 0) << absl::StrJoin(verb, " ") << "\n" << r;
    for (const std::string& w : words) {
      EXPECT_THAT(r.out, HasSubstr(w)) << absl::StrJoin(verb, " ");
    }
  }
  std::error_code ignored;
  fs::remove_all(*dir, ignored);
}

}  // namespace
}  // namespace mnemo
