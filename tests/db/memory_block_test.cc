// Core-memory blocks (db/memory.h): set, append, replace of a unique match,
// insert at a line, the size limit, history, and every bad input. Needs the
// USE-lite assets (the block lives in a memory namespace; skips without).
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "db/memory.h"
#include "db/store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/db/test_util.h"

namespace mnemo::db {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

std::string AssetsDir() {
  const char* env = std::getenv("MNEMO_ASSETS_DIR");
  return (env != nullptr && *env != '\0') ? env : MNEMO_SOURCE_DIR "/.assets";
}

BlockEdit Edit(BlockEdit::Kind kind, const std::string& text, const std::string& old_text = "",
               int64_t line = -1) {
  BlockEdit e;
  e.kind = kind;
  e.text = text;
  e.old_text = old_text;
  e.line = line;
  e.actor = "agent";
  return e;
}

class MemoryBlockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(fs::path(AssetsDir()) / "use-lite" / "model.json")) {
      GTEST_FAIL() << "USE-lite assets not found (run scripts/fetch_assets)";
    }
    dir_ = test::MakeTempDir("memory-block");
    StoreOptions options;
    options.encoder_dir = AssetsDir();
    options.memory_expiry_interval_ms = 0;
    auto store = Store::Open(options, dir_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
  }
  void TearDown() override {
    store_.reset();
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }
  absl::StatusOr<MemoryBlock> Do(const BlockEdit& e, const std::string& label = "persona") {
    return store_->memories().EditBlock("mem", "bot", label, e);
  }

  std::string dir_;
  std::unique_ptr<Store> store_;
};

TEST_F(MemoryBlockTest, EditsAndHistory) {
  BlockEdit set = Edit(BlockEdit::Kind::kSet, "Name: Sam");
  set.limit_bytes = 100;
  auto b = Do(set);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->limit_bytes, 100u);
  ASSERT_TRUE(Do(Edit(BlockEdit::Kind::kAppend, "Likes: tea")).ok());
  ASSERT_TRUE(Do(Edit(BlockEdit::Kind::kInsert, "Role: helper", "", 1)).ok());
  ASSERT_TRUE(Do(Edit(BlockEdit::Kind::kReplace, "coffee", "tea")).ok());
  auto got = store_->memories().GetBlock("mem", "bot", "persona");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->value, "Name: Sam\nRole: helper\nLikes: coffee");
  EXPECT_EQ(got->limit_bytes, 100u);
  ASSERT_TRUE(Do(Edit(BlockEdit::Kind::kInsert, "# persona", "", 0)).ok());
  EXPECT_EQ(store_->memories().GetBlock("mem", "bot", "persona")->value,
            "# persona\nName: Sam\nRole: helper\nLikes: coffee");
  auto history = store_->memories().BlockHistory("mem", "bot", "persona");
  ASSERT_TRUE(history.ok()) << history.status();
  ASSERT_EQ(history->size(), 5u);
  EXPECT_EQ((*history)[0].kind, BlockEdit::Kind::kSet);
  EXPECT_EQ((*history)[3].kind, BlockEdit::Kind::kReplace);
  EXPECT_EQ((*history)[3].old_value, "Name: Sam\nRole: helper\nLikes: tea");
  EXPECT_EQ((*history)[3].new_value, "Name: Sam\nRole: helper\nLikes: coffee");
  EXPECT_EQ((*history)[3].actor, "agent");
  // Another label is another block.
  EXPECT_EQ(store_->memories().GetBlock("mem", "bot", "human").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(MemoryBlockTest, BadInputLeavesTheBlockIntact) {
  BlockEdit set = Edit(BlockEdit::Kind::kSet, "a cat and a cat");
  set.limit_bytes = 20;
  ASSERT_TRUE(Do(set).ok());
  auto zero = Do(Edit(BlockEdit::Kind::kReplace, "dog", "bird"));
  EXPECT_EQ(zero.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(zero.status().message()), HasSubstr("occurs 0 times"));
  auto two = Do(Edit(BlockEdit::Kind::kReplace, "dog", "cat"));
  EXPECT_EQ(two.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(two.status().message()), HasSubstr("occurs 2 times"));
  auto over = Do(Edit(BlockEdit::Kind::kAppend, "and a very long tail"));
  EXPECT_EQ(over.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(over.status().message()), HasSubstr("limit is 20"));
  EXPECT_EQ(Do(Edit(BlockEdit::Kind::kInsert, "x", "", 5)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Do(Edit(BlockEdit::Kind::kAppend, "x"), "missing").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->memories().EditBlock("mem", "", "persona", set).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->memories().GetBlock("mem", "bot", "persona")->value, "a cat and a cat");
  EXPECT_EQ(store_->memories().BlockHistory("mem", "bot", "persona")->size(), 1u);
}

}  // namespace
}  // namespace mnemo::db
