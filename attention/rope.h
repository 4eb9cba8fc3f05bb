// Rotary position embedding (RoPE), "rotate half" style, as the reference
// decoder (decoder/model.h) and its PyTorch original compute it: dimension
// i < head_dim / 2 of a head rotates with dimension i + head_dim / 2 by the
// angle pos * inv_freq_i, inv_freq_i = theta^(-2i / head_dim), the angles
// and their cos / sin in float64, cast to float32 before the rotation
//   x'_i        = x_i cos - x_{i+half} sin
//   x'_{i+half} = x_i sin + x_{i+half} cos     (float32 arithmetic).
//
// RoPE is what makes a stored chunk's KV position-free: keys kept before
// RoPE (what the store holds) are rotated for the positions they will
// occupy when a decoder loads them (RotateKeys), and keys already rotated
// for one start position can be moved to another (RerotateKeys). Values
// carry no position.
//
// Two layouts:
//   token-major [n_tokens, n_heads, head_dim]: the decoder's projections
//               (ApplyRope);
//   head-major  [n_heads, n_tokens, head_dim]: stored KV blocks and the
//               KV cache, one KV head's keys contiguous (RotateKeys,
//               RerotateKeys).
// Both compute bit for bit the same float32 result for the same position.
#ifndef MNEMO_ATTENTION_ROPE_H_
#define MNEMO_ATTENTION_ROPE_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"

namespace mnemo::attention {

// Positions are exact in float64 below 2^53; larger ones are refused.
inline constexpr int64_t kMaxRopePosition = int64_t{1} << 53;

// INVALID_ARGUMENT unless head_dim is positive and even, theta is finite and
// positive, n_tokens >= 0 and positions [first_position, first_position +
// n_tokens) lie in [0, kMaxRopePosition).
[[nodiscard]] absl::Status ValidateRope(int head_dim, double theta, int64_t first_position,
                                        int64_t n_tokens);

// cos / sin of position (first + t) * inv_freq_i for t < n, i < head_dim / 2,
// [n, head_dim / 2] row-major, in float64. Unchecked: arguments must pass
// ValidateRope (the decoder's hot path calls it per forward).
void RopeTables(int head_dim, double theta, int64_t first, int n, std::vector<double>* cos,
                std::vector<double>* sin);

// Rotates token-major `x` [n_tokens, n_heads, head_dim] in place; token t
// uses row t of tables from RopeTables (cast to float32 first). Unchecked.
void ApplyRope(float* x, int n_tokens, int n_heads, int head_dim, const std::vector<double>& cos,
               const std::vector<double>& sin);

// Applies RoPE for positions [first_position, first_position + n_tokens)
// to head-major pre-RoPE keys [n_kv_heads, n_tokens, head_dim] in place.
// Exactly the decoder's own computation (same float64 tables cast to
// float32, same float32 operations): rotating the stored pre-RoPE keys of a
// chunk to position p gives bit for bit the keys the decoder produces for
// those pre-RoPE keys at p. INVALID_ARGUMENT (keys untouched) for a null
// `keys` with n_tokens > 0, n_kv_heads <= 0 or what ValidateRope refuses.
[[nodiscard]] absl::Status RotateKeys(float* keys, int n_kv_heads, int n_tokens, int head_dim,
                                      double theta, int64_t first_position);

// Undoes RotateKeys: head-major keys rotated for positions
// [first_position, first_position + n_tokens) are rotated back to before
// RoPE (the inverse rotation of each position, same float64 tables). Exact
// up to float rounding (a few float32 ulps of the key's magnitude). Errors
// as RotateKeys.
[[nodiscard]] absl::Status UnrotateKeys(float* keys, int n_kv_heads, int n_tokens, int head_dim,
                                        double theta, int64_t first_position);

// Moves head-major keys [n_kv_heads, n_tokens, head_dim] already rotated
// for positions [from_position, +n_tokens) to [to_position, +n_tokens): a
// rotation of every pair by (to_position - from_position) * inv_freq_i (the
// angle difference is taken in float64 on the integer offset). Exact only
// up to float rounding: the result differs from RotateKeys(pre-RoPE keys,
// to_position) by a few float32 ulps of the key's magnitude (a rotation of
// a rotation rounds twice, and the float32 cos/sin of the offset are not the
// composition of the float32 cos/sin at each end). Prefer RotateKeys on
// pre-RoPE keys when they are available. Errors as RotateKeys, for both
// positions.
[[nodiscard]] absl::Status RerotateKeys(float* keys, int n_kv_heads, int n_tokens, int head_dim,
                                        double theta, int64_t from_position, int64_t to_position);

}  // namespace mnemo::attention

#endif  // MNEMO_ATTENTION_ROPE_H_
