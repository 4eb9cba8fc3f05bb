// Replays the RPC request fuzzer's corpus (tests/fuzz/corpus/rpc: seeds
// and every input the fuzzer found a bug with) through the same entry
// function as the libFuzzer target (rpc_fuzz.h), against the in-process
// services, so that CI keeps the fuzzer's findings fixed without clang.
// Also checks that the seeds reach the engines: against the base state
// each answers the status it is meant to.
//
// MNEMO_RPC_WRITE_SEEDS=<dir> writes the seed inputs there (to regenerate
// the corpus seeds after a proto change).
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/fuzz/rpc_fuzz.h"

namespace mnemo::fuzz {
namespace {

std::string TempRoot() {
  const char* tmp = std::getenv("TMPDIR");
  return tmp != nullptr && *tmp != '\0' ? tmp : "/tmp";
}

TEST(RpcCorpusTest, EveryRpcHasASeed) {
  std::set<std::string> seeded;
  for (const RpcSeed& s : RpcSeeds()) {
    const int index = FuzzedRpcMethodIndex(s.request.method);
    ASSERT_GE(index, 0) << s.request.method;
    seeded.insert(FuzzedRpcMethods()[index].path);
  }
  for (const RpcMethod& m : FuzzedRpcMethods()) EXPECT_TRUE(seeded.count(m.path)) << m.path;
  // Mnemo, MnemoKv, MnemoInject, MnemoMemory and MnemoAuth.
  EXPECT_GE(FuzzedRpcMethods().size(), 49u);
  EXPECT_GE(FuzzedRpcMethodIndex("MnemoAuth/RevokeKey"), 0);
}

TEST(RpcCorpusTest, SeedsAnswerAsExpectedAgainstTheBaseState) {
  auto server = RpcFuzzServer::Start(TempRoot());
  ASSERT_TRUE(server.ok()) << server.status();
  const std::vector<RpcSeed> seeds = RpcSeeds();
  for (const RpcSeed& s : seeds) {
    // Each seed sees the base state, whatever the one before it changed.
    ASSERT_EQ(ApplyBaseState(**server), "") << "before " << s.name;
    const SentRpc sent = SendRpcInput(**server, EncodeRpcInput(s.request));
    EXPECT_TRUE(sent.well_formed) << s.name;
    EXPECT_EQ(sent.outcome.status.error_code(), s.expected)
        << s.name << ": " << sent.outcome.status.error_message();
    EXPECT_GE(sent.outcome.responses, s.expected == grpc::StatusCode::OK ? 1 : 0) << s.name;
    // The same request as a fuzz input holds the property.
    EXPECT_EQ(CheckRpcInput(**server, EncodeRpcInput(s.request)), "") << s.name;
  }
  if (const char* dir = std::getenv("MNEMO_RPC_WRITE_SEEDS"); dir != nullptr) {
    std::filesystem::create_directories(dir);
    for (const RpcSeed& s : seeds) {
      std::ofstream(std::filesystem::path(dir) / s.name, std::ios::binary)
          << EncodeRpcInput(s.request);
    }
  }
}

TEST(RpcCorpusTest, PathsInRequestsStayInTheScratchDirectory) {
  auto server = RpcFuzzServer::Start(TempRoot());
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_EQ(ApplyBaseState(**server), "");
  const std::string outside =
      (std::filesystem::path((*server)->scratch_dir()).parent_path().parent_path() /
       "rpc-fuzz-escaped")
          .string();
  for (const RpcSeed& s : RpcSeeds()) {
    if (s.name != "seed-CreateBackup" && s.name != "seed-Checkpoint") continue;
    RpcRequest r = s.request;
    // Both messages hold their directory as field 1, a string.
    ASSERT_LT(outside.size(), 128u);  // a one-byte length
    r.messages[0] = std::string("\x0a") + static_cast<char>(outside.size()) + outside;
    EXPECT_EQ(CheckRpcInput(**server, EncodeRpcInput(r)), "") << s.name;
  }
  EXPECT_FALSE(std::filesystem::exists(outside));
  EXPECT_FALSE(std::filesystem::is_empty((*server)->scratch_dir()));
}

TEST(RpcCorpusTest, EveryCorpusFileHoldsTheProperty) {
  const std::filesystem::path dir = MNEMO_RPC_CORPUS_DIR;
  ASSERT_TRUE(std::filesystem::is_directory(dir)) << dir;
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.is_regular_file()) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  ASSERT_GT(files.size(), 0u);
  auto server = RpcFuzzServer::Start(TempRoot());
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_EQ(ApplyBaseState(**server), "");
  for (const std::filesystem::path& path : files) {
    std::ifstream in(path, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(CheckRpcInput(**server, bytes), "") << path;
  }
}

}  // namespace
}  // namespace mnemo::fuzz
