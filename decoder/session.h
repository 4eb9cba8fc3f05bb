// A decoding session: one sequence's KV cache on a device (CPU, or the GPU
// when built with CUDA), and generation on top of it.
#ifndef MNEMO_DECODER_SESSION_H_
#define MNEMO_DECODER_SESSION_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "decoder/model.h"
#include "decoder/sampling.h"

namespace mnemo::decoder {

enum class Device { kCpu, kCuda };

// "cpu" or "cuda"; INVALID_ARGUMENT otherwise.
absl::StatusOr<Device> ParseDevice(absl::string_view name);

// Not thread-safe; one per sequence. Borrows the model, which must outlive it.
class DecodeSession {
 public:
  virtual ~DecodeSession() = default;
  // Runs `tokens` at positions [length(), length() + T) and appends their
  // K/V (CpuForward::Forward's contract). Logits per `mode` on the host.
  virtual absl::Status Append(absl::Span<const int32_t> tokens, LogitsMode mode,
                              std::vector<float>* logits) = 0;
  virtual int length() const = 0;
  virtual int capacity() const = 0;
  // Forgets every position.
  virtual void Reset() = 0;
  virtual Device device() const = 0;
};

// A session on `device` holding up to `capacity` positions (0: the model's
// max_seq_len). For kCuda: UNAVAILABLE when CUDA was not compiled in or no
// device is usable.
absl::StatusOr<std::unique_ptr<DecodeSession>> NewDecodeSession(const Model& model, Device device,
                                                                int capacity = 0);

struct GenerateOptions {
  // Most tokens to produce; generation also stops when the session is full.
  int max_tokens = 64;
  SamplingOptions sampling;
  // Stop after producing `eos_id` (which is included in the output).
  bool stop_at_eos = true;
  int eos_id = -1;
};

// Resets the session, prefills `prompt` in one call and decodes one token
// at a time from the KV cache. Returns the new tokens; `on_token`, when
// set, sees each as it is chosen. INVALID_ARGUMENT for an empty prompt or
// bad options, OUT_OF_RANGE when the prompt does not fit.
absl::StatusOr<std::vector<int32_t>> Generate(DecodeSession* session,
                                              absl::Span<const int32_t> prompt,
                                              const GenerateOptions& options,
                                              const std::function<void(int32_t)>& on_token = {});

}  // namespace mnemo::decoder

#endif  // MNEMO_DECODER_SESSION_H_
