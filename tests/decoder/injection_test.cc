// Memory injection in the reference decoder: a forward whose positions run
// on given input rows instead of token embeddings (CpuForward::Forward's
// `injected`), the prompts that carry them (decoder/injection_prompt.h) and
// the scoring of a continuation after them (decoder/continuation_score.h).
// The forward on a small random model; prompt assembly with the committed
// model's tokenizer.
#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "decoder/continuation_score.h"
#include "decoder/injection_prompt.h"
#include "decoder/model.h"
#include "decoder/session.h"
#include "decoder/tokenizer.h"
#include "gtest/gtest.h"
#include "tests/decoder/test_model.h"

namespace mnemo::decoder {
namespace {

class InjectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::WriteRandomModel(dir_.path(), testing::TinyConfigJson());
    auto m = Model::Load(dir_.path());
    ASSERT_TRUE(m.ok()) << m.status();
    model_ = *std::move(m);
    dim_ = model_->config().dim;
  }
  std::vector<float> Embedding(int32_t id) const {
    const float* e = model_->embeddings() + static_cast<size_t>(id) * dim_;
    return std::vector<float>(e, e + dim_);
  }
  std::vector<float> Logits(absl::Span<const int32_t> tokens,
                            absl::Span<const InputRows> injected) {
    CpuForward f(*model_);
    KvCache cache(model_->config(), 64);
    std::vector<float> logits;
    const absl::Status s = f.Forward(tokens, injected, &cache, LogitsMode::kAll, &logits);
    EXPECT_TRUE(s.ok()) << s;
    return logits;
  }
  testing::TempDir dir_;
  std::unique_ptr<Model> model_;
  int dim_ = 0;
};

TEST_F(InjectionTest, RowsEqualToTheTokensEmbeddingsGiveExactlyItsLogits) {
  const std::vector<int32_t> tokens = {1, 17, 40, 5, 63, 22};
  const std::vector<float> plain = Logits(tokens, {});
  // Positions 2..3 as rows, the ids there replaced by an arbitrary one
  // (ignored where rows are given).
  std::vector<float> rows = Embedding(40);
  const std::vector<float> e5 = Embedding(5);
  rows.insert(rows.end(), e5.begin(), e5.end());
  std::vector<int32_t> masked = tokens;
  masked[2] = masked[3] = 0;
  const InputRows span{2, rows};
  EXPECT_EQ(Logits(masked, {&span, 1}), plain);
  // Two spans, one of them at the first position.
  const std::vector<float> e1 = Embedding(1), e22 = Embedding(22);
  const InputRows two[] = {{0, e1}, {5, e22}};
  EXPECT_EQ(Logits(tokens, two), plain);
}

TEST_F(InjectionTest, OtherRowsChangeTheOutputFromTheirPositionOn) {
  const std::vector<int32_t> tokens = {1, 17, 40, 5, 63, 22};
  const std::vector<float> plain = Logits(tokens, {});
  std::vector<float> row = Embedding(40);
  for (int i = 0; i < dim_; ++i) row[i] += 0.5f * std::sin(0.7f * i);
  const InputRows span{2, row};
  const std::vector<float> injected = Logits(tokens, {&span, 1});
  const int V = model_->config().vocab_size;
  // Causal: positions before the row are untouched, the rest move.
  for (int t = 0; t < static_cast<int>(tokens.size()); ++t) {
    const std::vector<float> a(plain.begin() + t * V, plain.begin() + (t + 1) * V);
    const std::vector<float> b(injected.begin() + t * V, injected.begin() + (t + 1) * V);
    if (t < 2) {
      EXPECT_EQ(a, b) << "position " << t;
    } else {
      EXPECT_NE(a, b) << "position " << t;
    }
  }
}

TEST_F(InjectionTest, BadRowsAreRejectedAndLeaveTheCacheUnchanged) {
  CpuForward f(*model_);
  KvCache cache(model_->config(), 16);
  std::vector<float> logits;
  const std::vector<int32_t> three = {1, 17, 40};
  ASSERT_TRUE(f.Forward(three, &cache, LogitsMode::kLast, &logits).ok());
  auto run = [&](const std::vector<InputRows>& injected) {
    return f.Forward(std::vector<int32_t>{5, 6, 7, 8}, injected, &cache, LogitsMode::kLast,
                     &logits);
  };
  const std::vector<float> short_row(dim_ - 1, 0.1f);
  EXPECT_EQ(run({{1, short_row}}).code(), absl::StatusCode::kInvalidArgument);
  const std::vector<float> empty;
  EXPECT_EQ(run({{1, empty}}).code(), absl::StatusCode::kInvalidArgument);
  std::vector<float> nan_row = Embedding(3);
  nan_row[7] = std::numeric_limits<float>::quiet_NaN();
  const absl::Status nan = run({{1, nan_row}});
  EXPECT_EQ(nan.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(nan.message().find("non-finite"), std::string::npos) << nan;
  std::vector<float> inf_row = Embedding(3);
  inf_row[0] = std::numeric_limits<float>::infinity();
  EXPECT_EQ(run({{1, inf_row}}).code(), absl::StatusCode::kInvalidArgument);
  const std::vector<float> three_rows(3 * dim_, 0.1f);
  EXPECT_EQ(run({{2, three_rows}}).code(), absl::StatusCode::kInvalidArgument);  // past T
  EXPECT_EQ(run({{-1, Embedding(3)}}).code(), absl::StatusCode::kInvalidArgument);
  const std::vector<float> two_rows(2 * dim_, 0.1f);
  EXPECT_EQ(run({{0, two_rows}, {1, Embedding(3)}}).code(),
            absl::StatusCode::kInvalidArgument);  // overlap
  EXPECT_EQ(cache.length(), 3);
  // Ids outside the rows are still checked; the ids under rows are not.
  const std::vector<int32_t> bad_elsewhere = {5, 1000, 7};
  const std::vector<float> row = Embedding(3);
  EXPECT_EQ(f.Forward(bad_elsewhere, {{InputRows{0, row}}}, &cache, LogitsMode::kLast, &logits)
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(f.Forward(bad_elsewhere, {{InputRows{1, row}}}, &cache, LogitsMode::kLast, &logits)
                  .ok());
  EXPECT_EQ(cache.length(), 6);
}

TEST_F(InjectionTest, GenerateWithPromptRowsEqualsThePlainPrompt) {
  const std::vector<int32_t> prompt = {1, 17, 40, 5};
  auto s = NewDecodeSession(*model_, Device::kCpu, 32);
  ASSERT_TRUE(s.ok()) << s.status();
  GenerateOptions opts;
  opts.max_tokens = 8;
  opts.stop_at_eos = false;
  auto plain = Generate(s->get(), prompt, opts);
  ASSERT_TRUE(plain.ok()) << plain.status();
  const std::vector<float> row = Embedding(17);
  opts.prompt_rows = {InputRows{1, row}};
  const std::vector<int32_t> masked = {1, 0, 40, 5};
  auto injected = Generate(s->get(), masked, opts);
  ASSERT_TRUE(injected.ok()) << injected.status();
  EXPECT_EQ(*injected, *plain);
  // A different row changes what is generated or at least the logits.
  std::vector<float> other = Embedding(60);
  opts.prompt_rows = {InputRows{1, other}};
  std::vector<float> a, b;
  ASSERT_TRUE((*s)->AppendInjected(masked, opts.prompt_rows, LogitsMode::kLast, &a).ok());
  (*s)->Reset();
  ASSERT_TRUE((*s)->Append(prompt, LogitsMode::kLast, &b).ok());
  EXPECT_NE(a, b);
}

TEST_F(InjectionTest, ItemPromptLaysOutBosMemoryQuery) {
  const ModelConfig& c = model_->config();
  PromptMemory memory;
  memory.tokens = {30, 31};
  memory.rows = Embedding(9);
  const std::vector<float> e10 = Embedding(10);
  memory.rows.insert(memory.rows.end(), e10.begin(), e10.end());
  const std::vector<int32_t> query = {50, 51, 52};
  auto p = ItemPrompt(c, memory, query);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->tokens, (std::vector<int32_t>{c.bos_id, 30, 31, c.unk_id, c.unk_id, 50, 51, 52}));
  EXPECT_EQ(p->rows_first, 3);
  ASSERT_EQ(p->Injected().size(), 1u);
  EXPECT_EQ(p->Injected()[0].rows.size(), 2u * dim_);
  // The prompt's logits equal those of the ids the rows are the embeddings of.
  std::vector<int32_t> plain = p->tokens;
  plain[3] = 9;
  plain[4] = 10;
  EXPECT_EQ(Logits(p->tokens, p->Injected()), Logits(plain, {}));

  auto none = ItemPrompt(c, {}, query, /*bos=*/false);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->tokens, query);
  EXPECT_TRUE(none->Injected().empty());
  memory.rows.pop_back();
  EXPECT_EQ(ItemPrompt(c, memory, query).status().code(), absl::StatusCode::kInvalidArgument);
  memory.rows = Embedding(9);
  memory.rows[0] = std::nanf("");
  EXPECT_EQ(ItemPrompt(c, memory, query).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ItemPrompt(c, {}, {}, /*bos=*/false).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(InjectionTest, ScoreContinuationMatchesTheLogitsAndGreedy) {
  PromptMemory memory;
  memory.rows = Embedding(9);
  auto p = ItemPrompt(model_->config(), memory, std::vector<int32_t>{50, 51});
  ASSERT_TRUE(p.ok()) << p.status();
  // The greedy continuation is matched exactly; another one is not.
  auto session = NewDecodeSession(*model_, Device::kCpu, 32);
  ASSERT_TRUE(session.ok());
  GenerateOptions opts;
  opts.max_tokens = 5;
  opts.stop_at_eos = false;
  const std::vector<InputRows> injected = p->Injected();
  opts.prompt_rows = injected;
  auto greedy = Generate(session->get(), p->tokens, opts);
  ASSERT_TRUE(greedy.ok()) << greedy.status();
  CpuForward f(*model_);
  KvCache cache(model_->config(), 32);
  auto score = ScoreContinuation(&f, &cache, *p, *greedy);
  ASSERT_TRUE(score.ok()) << score.status();
  EXPECT_EQ(score->tokens, 5);
  EXPECT_TRUE(score->greedy_exact());
  EXPECT_GT(score->nll, 0.0);
  EXPECT_NEAR(score->perplexity(), std::exp(score->nll / 5), 1e-9);
  // The same NLL from the logits by hand.
  std::vector<int32_t> ids = p->tokens;
  ids.insert(ids.end(), greedy->begin(), greedy->end());
  const std::vector<float> logits = Logits(ids, injected);
  const int V = model_->config().vocab_size;
  double nll = 0;
  for (int i = 0; i < 5; ++i) {
    const float* row = logits.data() + (p->tokens.size() - 1 + i) * V;
    double z = 0;
    for (int v = 0; v < V; ++v) z += std::exp(static_cast<double>(row[v]));
    nll += std::log(z) - row[(*greedy)[i]];
  }
  EXPECT_NEAR(score->nll, nll, 1e-6 * nll);
  std::vector<int32_t> other = *greedy;
  other[2] = (other[2] + 1) % V;
  cache.Clear();
  auto worse = ScoreContinuation(&f, &cache, *p, other);
  ASSERT_TRUE(worse.ok());
  EXPECT_FALSE(worse->greedy_exact());
  EXPECT_GT(worse->nll, score->nll);
  cache.Clear();
  EXPECT_EQ(ScoreContinuation(&f, &cache, *p, {}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(InjectionPromptTest, PlaceholderTakesTheMemoryElseItGoesAfterBos) {
  if (!testing::ReferenceModelPresent()) GTEST_SKIP() << "no committed reference model";
  auto model = Model::Load(testing::ReferenceModelDir());
  ASSERT_TRUE(model.ok()) << model.status();
  auto tok = LoadSentencePieceTokenizer(testing::ReferenceModelDir() + "/tokenizer.model");
  ASSERT_TRUE(tok.ok()) << tok.status();
  const ModelConfig& c = (*model)->config();
  auto ids = [&](absl::string_view text) {
    auto e = (*tok)->Encode(text);
    EXPECT_TRUE(e.ok());
    return std::vector<int32_t>(e->begin(), e->end());
  };
  PromptMemory memory;
  memory.rows.assign(3 * c.dim, 0.25f);

  auto at = AssemblePrompt(**tok, c, "Question: <memory> what did the whale do?", memory);
  ASSERT_TRUE(at.ok()) << at.status();
  std::vector<int32_t> want = {c.bos_id};
  for (int32_t id : ids("Question: ")) want.push_back(id);
  const int first = static_cast<int>(want.size());
  want.insert(want.end(), 3, c.unk_id);
  for (int32_t id : ids(" what did the whale do?")) want.push_back(id);
  EXPECT_EQ(at->tokens, want);
  EXPECT_EQ(at->rows_first, first);

  // Only the first placeholder is replaced; the second stays text.
  auto twice = AssemblePrompt(**tok, c, "<memory> and <memory>", memory);
  ASSERT_TRUE(twice.ok());
  EXPECT_EQ(twice->rows_first, 1);
  std::vector<int32_t> tail(twice->tokens.begin() + 4, twice->tokens.end());
  EXPECT_EQ(tail, ids(" and <memory>"));

  auto after_bos = AssemblePrompt(**tok, c, "The whale was seen at dawn", memory);
  ASSERT_TRUE(after_bos.ok());
  EXPECT_EQ(after_bos->rows_first, 1);
  EXPECT_EQ(after_bos->tokens[0], c.bos_id);
  EXPECT_EQ(std::vector<int32_t>(after_bos->tokens.begin() + 4, after_bos->tokens.end()),
            ids("The whale was seen at dawn"));

  // Text memory: each chunk then "\n", then the query (layout B's text RAG).
  const std::vector<std::string> chunks = {"the sea was calm", "the sky was grey"};
  auto text = TextMemoryTokens(**tok, chunks);
  ASSERT_TRUE(text.ok()) << text.status();
  std::vector<int32_t> want_text = ids("the sea was calm");
  for (int32_t id : ids("\n")) want_text.push_back(id);
  for (int32_t id : ids("the sky was grey")) want_text.push_back(id);
  for (int32_t id : ids("\n")) want_text.push_back(id);
  EXPECT_EQ(*text, want_text);
  PromptMemory text_memory;
  text_memory.tokens = *text;
  auto rag = AssemblePrompt(**tok, c, "What was the sea like?", text_memory);
  ASSERT_TRUE(rag.ok());
  EXPECT_TRUE(rag->Injected().empty());
  std::vector<int32_t> want_rag = {c.bos_id};
  want_rag.insert(want_rag.end(), text->begin(), text->end());
  for (int32_t id : ids("What was the sea like?")) want_rag.push_back(id);
  EXPECT_EQ(rag->tokens, want_rag);

  EXPECT_EQ(AssemblePrompt(**tok, c, "", {}, /*bos=*/false).status().code(),
            absl::StatusCode::kInvalidArgument);
  const std::vector<std::string> blank = {""};
  EXPECT_EQ(TextMemoryTokens(**tok, blank).status().code(), absl::StatusCode::kInvalidArgument);
  memory.rows.resize(c.dim + 1);
  EXPECT_EQ(AssemblePrompt(**tok, c, "x <memory>", memory).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace mnemo::decoder
