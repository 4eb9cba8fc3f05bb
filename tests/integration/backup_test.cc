// Backup and restore end to end: a real mnemod backed up (SDK and CLI)
// while a writer keeps upserting; `mnemod --restore-from` into a new data
// directory then serves every write acknowledged before the backup began,
// searchable; restoring over an existing store is refused.
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "mnemo/client.h"
#include "mnemod_process.h"

namespace mnemo {
namespace {

namespace fs = std::filesystem;
using testing::MnemodProcess;

std::vector<float> VectorOf(int i) {
  return {1.0f, static_cast<float>(i % 97) / 97.0f, static_cast<float>(i % 13) / 13.0f,
          static_cast<float>(i) / 10000.0f};
}

TEST(BackupRestoreTest, RestoresEveryWriteAcknowledgedBeforeTheBackup) {
  auto root = testing::MakeTempDir("mnemo-backup");
  ASSERT_TRUE(root.ok()) << root.status();
  const std::string backups = *root + "/backups";
  auto server = MnemodProcess::Start();
  ASSERT_TRUE(server.ok()) << server.status();
  auto client = Client::Connect((*server)->target());
  ASSERT_TRUE(client.ok()) << client.status();
  NamespaceConfig config;
  config.name = "live";
  config.dim = 4;
  config.metric = Metric::kL2;
  ASSERT_TRUE((*client)->CreateNamespace(config).ok());

  // One writer, one chunk per call; `acked` counts the calls answered OK.
  std::atomic<bool> stop{false};
  std::atomic<int> acked{0};
  std::thread writer([&] {
    auto own = Client::Connect((*server)->target());
    ASSERT_TRUE(own.ok());
    for (int i = 0; !stop.load(); ++i) {
      Chunk c;
      c.id = absl::StrCat("w", i);
      c.vector = VectorOf(i);
      ASSERT_TRUE((*own)->Upsert("live", {}, {c}).ok());
      acked.store(i + 1);
    }
  });
  while (acked.load() < 200) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const int before = acked.load();
  auto backup = (*client)->CreateBackup(backups);
  ASSERT_TRUE(backup.ok()) << backup.status();
  const int during = acked.load();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  stop = true;
  writer.join();
  EXPECT_GT(acked.load(), during);  // the writer was never blocked for long

  EXPECT_EQ(backup->id, 1u);
  auto list = (*client)->ListBackups(backups);
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->size(), 1u);
  auto verified = (*client)->VerifyBackup(backups, 0);
  ASSERT_TRUE(verified.ok()) << verified.status();
  EXPECT_EQ(*verified, std::vector<uint32_t>{1});
  // The CLI: a second, incremental backup.
  const std::string cli = testing::BinDir() + "/mnemo";
  ASSERT_EQ(std::system(absl::StrCat(cli, " --server ", (*server)->target(),
                                     " backup create --dir ", backups, " > /dev/null")
                            .c_str()),
            0);
  ASSERT_EQ(std::system(absl::StrCat(cli, " --server ", (*server)->target(),
                                     " backup verify --dir ", backups, " --id 2 > /dev/null")
                            .c_str()),
            0);
  EXPECT_EQ(std::system(absl::StrCat(cli, " --server ", (*server)->target(),
                                     " backup list --dir relative/path > /dev/null 2>&1")
                            .c_str()),
            256);  // exit 1: NOT_FOUND
  EXPECT_EQ((*client)->CreateBackup("relative/path").status().code(),
            absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE((*server)->Stop().ok());

  // Restore backup 1 into a new directory and serve it.
  const std::string restored_dir = *root + "/restored";
  auto restored = MnemodProcess::Start(
      {"--restore-from", backups, "--restore-backup-id", "1"}, restored_dir);
  ASSERT_TRUE(restored.ok()) << restored.status();
  auto rc = Client::Connect((*restored)->target());
  ASSERT_TRUE(rc.ok());
  auto info = (*rc)->GetNamespace("live");
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_GE(info->chunk_count, static_cast<uint64_t>(before));
  EXPECT_LE(info->chunk_count, static_cast<uint64_t>(during) + 1);  // + one in flight
  std::vector<std::string> ids;
  for (int i = 0; i < before; ++i) ids.push_back(absl::StrCat("w", i));
  auto got = (*rc)->Get("live", ids, {}, false);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->chunks.size(), ids.size());
  EXPECT_TRUE(got->missing_ids.empty()) << "first missing: " << got->missing_ids[0];
  for (int i = 0; i < before; i += 37) {  // the rebuilt index finds them
    SearchRequest s;
    s.ns = "live";
    s.dim = 4;
    s.queries = VectorOf(i);
    s.k = 1;
    auto hits = (*rc)->Search(s);
    ASSERT_TRUE(hits.ok()) << hits.status();
    ASSERT_EQ((*hits)[0].size(), 1u);
    EXPECT_EQ((*hits)[0][0].id, absl::StrCat("w", i));
  }
  ASSERT_TRUE((*restored)->Stop().ok());

  // Never over an existing store: mnemod refuses to start.
  auto over = MnemodProcess::Start({"--restore-from", backups}, restored_dir);
  ASSERT_FALSE(over.ok());
  EXPECT_NE(std::string(over.status().message()).find("not empty"), std::string::npos)
      << over.status();
  std::error_code ec;
  fs::remove_all(*root, ec);
}

}  // namespace
}  // namespace mnemo
