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
#include "decoder/selective_recompute.h"

namespace mnemo::decoder {

enum class Device { kCpu, kCuda };

// "cpu" or "cuda"; INVALID_ARGUMENT otherwise.
absl::StatusOr<Device> ParseDevice(absl::string_view name);

// Not thread-safe; one per sequence. Borrows the model, which must outlive it.
class DecodeSession {
 public:
  virtual ~DecodeSession() = default;
  // Runs `tokens` at positions [next_position(), next_position() + T) and
  // appends their K/V (CpuForward::Forward's contract). Logits per `mode`
  // on the host.
  virtual absl::Status Append(absl::Span<const int32_t> tokens, LogitsMode mode,
                              std::vector<float>* logits) = 0;
  // Append with some positions of `tokens` running on given input rows
  // instead of their embeddings (memory injection; CpuForward::Forward's
  // `injected` contract). UNIMPLEMENTED on a device that cannot, unless
  // `injected` is empty.
  virtual absl::Status AppendInjected(absl::Span<const int32_t> tokens,
                                      absl::Span<const InputRows> injected, LogitsMode mode,
                                      std::vector<float>* logits) {
    if (injected.empty()) return Append(tokens, mode, logits);
    return absl::UnimplementedError("injected input rows run on the CPU session only");
  }
  // Appends K/V computed elsewhere (stored chunks rotated for where they go,
  // decoder/chunk_kv.h) at the next positions, with KvCache::AppendKv's
  // contract: INVALID_ARGUMENT for a layer count, shape or first position
  // that does not match, or a non-finite value; OUT_OF_RANGE when there is
  // no room; the session is unchanged on error. A prompt's context can so
  // be built from stored chunks and the question then Append-ed on top.
  [[nodiscard]] virtual absl::Status AppendKv(const PositionedKv& kv) = 0;
  // Positions held (cache slots used).
  virtual int length() const = 0;
  virtual int capacity() const = 0;
  // The position the next token takes: the first position plus length().
  virtual int next_position() const = 0;
  // Forgets every position; the next token goes to position 0.
  virtual void Reset() = 0;
  // Forgets every position; the next token goes to `first_position` (a
  // sequence, e.g. a chunk encoded afresh on its own, that starts there).
  // INVALID_ARGUMENT (session unchanged) for a negative position or one
  // whose capacity would run past INT32_MAX.
  [[nodiscard]] virtual absl::Status ResetAt(int first_position) = 0;
  virtual Device device() const = 0;
  // Sets (or, with nullptr, clears) attention over keys outside the cache
  // for every later Append (CpuForward::Forward's `external`); borrowed,
  // must outlive its use. UNIMPLEMENTED on a device that cannot.
  [[nodiscard]] virtual absl::Status SetExternalAttention(ExternalAttention* external) = 0;
  // CacheBlend-style selective recompute of a context built from stored
  // chunks (decoder/selective_recompute.h, BlendContext's contract): the
  // session must hold exactly those chunks, `tokens` in `chunk_lengths`.
  // UNIMPLEMENTED on a device that cannot.
  virtual absl::StatusOr<BlendStats> BlendStoredContext(absl::Span<const int32_t> /*tokens*/,
                                                        absl::Span<const int> /*chunk_lengths*/,
                                                        const BlendOptions& /*options*/) {
    return absl::UnimplementedError("selective recompute runs on the CPU session only");
  }
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
  // Append the prompt after what the session holds (a context built from
  // stored chunks) instead of resetting it first.
  bool keep_context = false;
  // Positions of the prompt that run on given input rows instead of their
  // tokens' embeddings (DecodeSession::AppendInjected); borrowed.
  std::vector<InputRows> prompt_rows;
};

// Resets the session (unless options.keep_context), prefills `prompt` in one call and decodes one token
// at a time from the KV cache. Returns the new tokens; `on_token`, when
// set, sees each as it is chosen. INVALID_ARGUMENT for an empty prompt or
// bad options, OUT_OF_RANGE when the prompt does not fit.
absl::StatusOr<std::vector<int32_t>> Generate(DecodeSession* session,
                                              absl::Span<const int32_t> prompt,
                                              const GenerateOptions& options,
                                              const std::function<void(int32_t)>& on_token = {});

}  // namespace mnemo::decoder

#endif  // MNEMO_DECODER_SESSION_H_
