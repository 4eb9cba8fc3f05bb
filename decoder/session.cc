#include "decoder/session.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "decoder/cuda_session.h"

namespace mnemo::decoder {
namespace {

class CpuSession final : public DecodeSession {
 public:
  CpuSession(const Model& model, int capacity)
      : model_(model), forward_(model), cache_(model.config(), capacity) {}

  absl::Status Append(absl::Span<const int32_t> tokens, LogitsMode mode,
                      std::vector<float>* logits) override {
    return forward_.Forward(tokens, &cache_, mode, logits, nullptr, external_);
  }
  absl::Status AppendInjected(absl::Span<const int32_t> tokens,
                              absl::Span<const InputRows> injected, LogitsMode mode,
                              std::vector<float>* logits) override {
    return forward_.Forward(tokens, injected, &cache_, mode, logits, nullptr, external_);
  }
  absl::Status SetExternalAttention(ExternalAttention* external) override {
    external_ = external;
    return absl::OkStatus();
  }
  absl::Status AppendKv(const PositionedKv& kv) override { return cache_.AppendKv(kv); }
  absl::StatusOr<BlendStats> BlendStoredContext(absl::Span<const int32_t> tokens,
                                                absl::Span<const int> chunk_lengths,
                                                const BlendOptions& options) override {
    return BlendContext(model_, tokens, chunk_lengths, options, &cache_);
  }
  int length() const override { return cache_.length(); }
  int capacity() const override { return cache_.capacity(); }
  int next_position() const override { return cache_.next_position(); }
  void Reset() override { cache_.Clear(); }
  absl::Status ResetAt(int first_position) override { return cache_.ResetAt(first_position); }
  Device device() const override { return Device::kCpu; }

 private:
  const Model& model_;
  CpuForward forward_;
  KvCache cache_;
  ExternalAttention* external_ = nullptr;
};

}  // namespace

absl::StatusOr<Device> ParseDevice(absl::string_view name) {
  if (name == "cpu") return Device::kCpu;
  if (name == "cuda") return Device::kCuda;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown device \"", name, "\" (expected cpu or cuda)"));
}

absl::StatusOr<std::unique_ptr<DecodeSession>> NewDecodeSession(const Model& model, Device device,
                                                                int capacity) {
  if (capacity < 0) return absl::InvalidArgumentError("capacity must be >= 0");
  if (capacity == 0) capacity = model.config().max_seq_len;
  if (device == Device::kCuda) return internal::NewCudaSession(model, capacity);
  return std::make_unique<CpuSession>(model, capacity);
}

absl::StatusOr<std::vector<int32_t>> Generate(DecodeSession* session,
                                              absl::Span<const int32_t> prompt,
                                              const GenerateOptions& options,
                                              const std::function<void(int32_t)>& on_token) {
  if (prompt.empty()) return absl::InvalidArgumentError("empty prompt");
  if (options.max_tokens < 0) return absl::InvalidArgumentError("max_tokens must be >= 0");
  if (absl::Status s = ValidateSamplingOptions(options.sampling); !s.ok()) return s;
  if (static_cast<int>(prompt.size()) >
      session->capacity() - (options.keep_context ? session->length() : 0)) {
    return absl::OutOfRangeError(absl::StrCat("prompt of ", prompt.size(),
                                              " tokens exceeds the context of ",
                                              session->capacity()));
  }
  if (!options.keep_context) session->Reset();
  std::vector<float> logits;
  if (absl::Status s =
          session->AppendInjected(prompt, options.prompt_rows, LogitsMode::kLast, &logits);
      !s.ok()) {
    return s;
  }
  Sampler sampler(options.sampling);
  std::vector<int32_t> out;
  while (static_cast<int>(out.size()) < options.max_tokens) {
    const int32_t next = sampler.Sample(logits);
    out.push_back(next);
    if (on_token) on_token(next);
    if (options.stop_at_eos && next == options.eos_id) break;
    if (static_cast<int>(out.size()) == options.max_tokens ||
        session->length() >= session->capacity()) {
      break;
    }
    if (absl::Status s = session->Append({&next, 1}, LogitsMode::kLast, &logits); !s.ok()) {
      return s;
    }
  }
  return out;
}

}  // namespace mnemo::decoder
