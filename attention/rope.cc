#include "attention/rope.h"

#include <cmath>
#include <cstddef>

#include "absl/strings/str_cat.h"

namespace mnemo::attention {
namespace {

// Fills [n, head_dim / 2] tables for angles (first + t) * inv_freq_i. `first`
// may be negative (RerotateKeys' offset); the public RopeTables is this.
void Tables(int head_dim, double theta, int64_t first, int n, std::vector<double>* cos,
            std::vector<double>* sin) {
  const int half = head_dim / 2;
  cos->resize(static_cast<size_t>(n) * half);
  sin->resize(static_cast<size_t>(n) * half);
  for (int i = 0; i < half; ++i) {
    const double inv_freq = std::pow(theta, -static_cast<double>(i) * 2.0 / head_dim);
    for (int t = 0; t < n; ++t) {
      const double angle = static_cast<double>(first + t) * inv_freq;
      (*cos)[static_cast<size_t>(t) * half + i] = std::cos(angle);
      (*sin)[static_cast<size_t>(t) * half + i] = std::sin(angle);
    }
  }
}

// Rotates one head vector `v` [2 * half] by one table row. The single place
// the float32 rotation is written, so both layouts round identically.
inline void RotateHead(float* v, int half, const double* c, const double* s) {
  for (int i = 0; i < half; ++i) {
    const float ci = static_cast<float>(c[i]), si = static_cast<float>(s[i]);
    const float a = v[i], b = v[i + half];
    v[i] = a * ci - b * si;
    v[i + half] = a * si + b * ci;
  }
}

// Head-major [n_heads, n_tokens, head_dim]: token t of every head uses row t.
void RotateHeadMajor(float* x, int n_heads, int n_tokens, int head_dim,
                     const std::vector<double>& cos, const std::vector<double>& sin) {
  const int half = head_dim / 2;
  for (int h = 0; h < n_heads; ++h) {
    for (int t = 0; t < n_tokens; ++t) {
      RotateHead(x + (static_cast<size_t>(h) * n_tokens + t) * head_dim, half,
                 cos.data() + static_cast<size_t>(t) * half,
                 sin.data() + static_cast<size_t>(t) * half);
    }
  }
}

absl::Status ValidateKeys(const float* keys, int n_kv_heads, int n_tokens) {
  if (n_kv_heads <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("n_kv_heads must be positive, got ", n_kv_heads));
  }
  if (n_tokens < 0) {
    return absl::InvalidArgumentError(absl::StrCat("n_tokens must be >= 0, got ", n_tokens));
  }
  if (n_tokens > 0 && keys == nullptr) return absl::InvalidArgumentError("null keys");
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateRope(int head_dim, double theta, int64_t first_position, int64_t n_tokens) {
  if (head_dim <= 0 || head_dim % 2 != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("RoPE head_dim must be positive and even, got ", head_dim));
  }
  if (!std::isfinite(theta) || theta <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("RoPE theta must be finite and positive, got ", theta));
  }
  if (n_tokens < 0) {
    return absl::InvalidArgumentError(absl::StrCat("n_tokens must be >= 0, got ", n_tokens));
  }
  if (first_position < 0 || first_position > kMaxRopePosition - n_tokens) {
    return absl::InvalidArgumentError(absl::StrCat("RoPE positions [", first_position, ", ",
                                                   first_position, " + ", n_tokens,
                                                   ") are outside [0, 2^53)"));
  }
  return absl::OkStatus();
}

void RopeTables(int head_dim, double theta, int64_t first, int n, std::vector<double>* cos,
                std::vector<double>* sin) {
  Tables(head_dim, theta, first, n, cos, sin);
}

void ApplyRope(float* x, int n_tokens, int n_heads, int head_dim, const std::vector<double>& cos,
               const std::vector<double>& sin) {
  const int half = head_dim / 2;
  for (int t = 0; t < n_tokens; ++t) {
    const double* c = cos.data() + static_cast<size_t>(t) * half;
    const double* s = sin.data() + static_cast<size_t>(t) * half;
    for (int h = 0; h < n_heads; ++h) {
      RotateHead(x + (static_cast<size_t>(t) * n_heads + h) * head_dim, half, c, s);
    }
  }
}

absl::Status RotateKeys(float* keys, int n_kv_heads, int n_tokens, int head_dim, double theta,
                        int64_t first_position) {
  if (absl::Status s = ValidateKeys(keys, n_kv_heads, n_tokens); !s.ok()) return s;
  if (absl::Status s = ValidateRope(head_dim, theta, first_position, n_tokens); !s.ok()) return s;
  if (n_tokens == 0) return absl::OkStatus();
  std::vector<double> cos, sin;
  Tables(head_dim, theta, first_position, n_tokens, &cos, &sin);
  RotateHeadMajor(keys, n_kv_heads, n_tokens, head_dim, cos, sin);
  return absl::OkStatus();
}

absl::Status UnrotateKeys(float* keys, int n_kv_heads, int n_tokens, int head_dim, double theta,
                          int64_t first_position) {
  if (absl::Status s = ValidateKeys(keys, n_kv_heads, n_tokens); !s.ok()) return s;
  if (absl::Status s = ValidateRope(head_dim, theta, first_position, n_tokens); !s.ok()) return s;
  if (n_tokens == 0) return absl::OkStatus();
  // The inverse rotation of each position: same cosines, negated sines.
  std::vector<double> cos, sin;
  Tables(head_dim, theta, first_position, n_tokens, &cos, &sin);
  for (double& v : sin) v = -v;
  RotateHeadMajor(keys, n_kv_heads, n_tokens, head_dim, cos, sin);
  return absl::OkStatus();
}

absl::Status RerotateKeys(float* keys, int n_kv_heads, int n_tokens, int head_dim, double theta,
                          int64_t from_position, int64_t to_position) {
  if (absl::Status s = ValidateKeys(keys, n_kv_heads, n_tokens); !s.ok()) return s;
  if (absl::Status s = ValidateRope(head_dim, theta, from_position, n_tokens); !s.ok()) return s;
  if (absl::Status s = ValidateRope(head_dim, theta, to_position, n_tokens); !s.ok()) return s;
  if (n_tokens == 0 || from_position == to_position) return absl::OkStatus();
  // Every token moves by the same offset: one table row, shared by all.
  std::vector<double> cos, sin;
  Tables(head_dim, theta, to_position - from_position, 1, &cos, &sin);
  const int half = head_dim / 2;
  for (int64_t r = 0, rows = int64_t{n_kv_heads} * n_tokens; r < rows; ++r) {
    RotateHead(keys + static_cast<size_t>(r) * head_dim, half, cos.data(), sin.data());
  }
  return absl::OkStatus();
}

}  // namespace mnemo::attention
