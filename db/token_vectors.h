// Late interaction's token vectors on their way into a write: the encoder's
// token states cleaned (zero / non-finite rows dropped, unit-normalised)
// and either encoded with the namespace's residual codec or staged raw
// through fp16. The store methods that stage them into a commit, apply them
// to the multi-vector index and rebuild it live in token_vectors.cc.
// Internal to db/.
#ifndef MNEMO_DB_TOKEN_VECTORS_H_
#define MNEMO_DB_TOKEN_VECTORS_H_

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "db/store.h"
#include "db/text.h"
#include "index/residual_codec.h"

namespace mnemo::db {

// A chunk's token vectors: encoded with the namespace's codec when it had
// one, else staged raw (unit-norm rows already rounded through fp16, so
// memory and disk hold the same values).
struct PendingTokens {
  std::vector<float> raw;
  index::ResidualCodes codes;
  bool encoded = false;
};

// Drops token rows of zero (or non-finite) norm, which the multi-vector
// index refuses, and unit-normalises the rest. Empty when none is left.
absl::StatusOr<std::vector<float>> CleanTokens(std::vector<float> states, uint32_t dim);

// Token states of `chunks` (those with non-blank text), encoded with
// `codec` when given, else staged raw. Runs the encoder for the chunks
// whose states `known` (null, or one entry per chunk) does not already
// hold; called outside any lock.
absl::StatusOr<std::vector<std::optional<PendingTokens>>> PrepareTokens(
    const text::TextEncoder& enc, const std::vector<Chunk>& chunks, uint32_t dim,
    const index::ResidualCodec* codec,
    std::vector<std::optional<std::vector<float>>>* known = nullptr);

}  // namespace mnemo::db

#endif  // MNEMO_DB_TOKEN_VECTORS_H_
