// The decoder side of retrieval attention over chunks stored in mnemo: a
// context of memory chunks laid out from position 1 (after the BOS sink at
// 0, which the decoder keeps), then the prompt.
//
//   full       every chunk's KV is fetched with GetKv, rotated for where it
//              goes, and appended to the session (the chunks are then part
//              of the decoder's own cache);
//   retrieval  the session holds only the prompt and what it generates
//              (from position N + 1); per layer and step the server attends
//              to the chunks' keys through their key indexes (Attend
//              stream, attention pushdown) and returns a partial that
//              RemoteAttention merges with the sink's and the session's by
//              log-sum-exp;
//   topk       as retrieval, but the server returns the keys and values it
//              would attend exactly, rotated to their positions, and the
//              decoder attends to them itself.
#ifndef MNEMO_DECODER_REMOTE_ATTENTION_H_
#define MNEMO_DECODER_REMOTE_ATTENTION_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "decoder/model.h"
#include "decoder/session.h"
#include "mnemo/client.h"

namespace mnemo::decoder {

enum class MemoryAttention { kFull, kRetrieval, kTopK };

// "full", "retrieval" or "topk"; INVALID_ARGUMENT otherwise.
absl::StatusOr<MemoryAttention> ParseMemoryAttention(const std::string& name);

struct RemoteAttentionStats {
  uint64_t keys = 0;        // context keys the queries could attend (per KV head and query)
  uint64_t exact_keys = 0;  // of those, read exactly
  uint64_t calls = 0;
  double client_seconds = 0;  // round trips, as the decoder waited for them
  double server_seconds = 0;  // of which the server computed

  double keys_read_fraction() const {
    return keys == 0 ? 0 : static_cast<double>(exact_keys) / static_cast<double>(keys);
  }
};

// ExternalAttention over an Attend stream (retrieval or topk), merged with
// a local sink: the tokens the decoder keeps before the context (its BOS at
// position 0), held in `sink` (may be empty or null).
class RemoteAttention final : public ExternalAttention {
 public:
  // Borrows `model`, `stream` and `sink`.
  RemoteAttention(const Model& model, AttendStream* stream, MemoryAttention mode,
                  AttendBudget budget, const KvCache* sink);

  absl::Status Attend(int layer, const float* q_pre_rope, const float* q_post_rope, int n_tokens,
                      int first_position, attention::PartialResult* result) override;

  const RemoteAttentionStats& stats() const { return stats_; }

 private:
  const Model& model_;
  AttendStream* const stream_;
  const MemoryAttention mode_;
  const AttendBudget budget_;
  const KvCache* const sink_;
  attention::PartialResult sink_part_;
  RemoteAttentionStats stats_;
};

// Memory chunks laid out for a generation.
struct MemoryLayout {
  std::vector<std::string> chunk_ids;
  std::vector<int64_t> starts;     // chunk i sits at [starts[i], starts[i] + tokens[i])
  std::vector<uint32_t> tokens;
  int64_t end = 0;                 // the prompt's first position
};

// Lays `chunk_ids` out in order from `first_position`, with their token
// counts from the server (ExistsKv): NOT_FOUND naming a chunk without KV.
absl::StatusOr<MemoryLayout> LayOutMemory(Client* client, const std::string& ns,
                                          const ModelFingerprint& model,
                                          const std::vector<std::string>& chunk_ids,
                                          int64_t first_position);

// kFull: reads every chunk's KV rotated for the layout (GetKv) and appends
// it to `session`, which must end right before the layout's first chunk.
absl::Status AppendMemoryKv(Client* client, const std::string& ns, const Model& model,
                            const MemoryLayout& layout, DecodeSession* session);

}  // namespace mnemo::decoder

#endif  // MNEMO_DECODER_REMOTE_ATTENTION_H_
