// The field-by-field copy between a ModelFingerprint and its wire message
// (mnemo.v1.ModelFingerprint), written once for both ends of the wire:
// server/convert and client/convert instantiate it with the generated class.
// A template over the message type, so common/ stays free of protobuf.
// Internal (not installed).
#ifndef MNEMO_COMMON_MODEL_FINGERPRINT_WIRE_H_
#define MNEMO_COMMON_MODEL_FINGERPRINT_WIRE_H_

#include <algorithm>
#include <cstdint>

#include "mnemo/model_fingerprint.h"

namespace mnemo {

// Negative sizes (never valid) go out as 0, which the server refuses.
template <typename Message>
void FingerprintToWire(const ModelFingerprint& f, Message* p) {
  auto size = [](int n) { return static_cast<uint32_t>(std::max(n, 0)); };
  p->set_architecture(f.architecture);
  p->set_n_layers(size(f.n_layers));
  p->set_n_heads(size(f.n_heads));
  p->set_n_kv_heads(size(f.n_kv_heads));
  p->set_head_dim(size(f.head_dim));
  p->set_dim(size(f.dim));
  p->set_rope_theta(f.rope_theta);
  p->set_rope_style(f.rope_style);
  p->set_dtype(f.dtype);
  p->set_tokenizer_sha256(f.tokenizer_sha256);
}

// Sizes beyond 2^30 (never valid) are clamped there, so they stay positive
// and the store's checks refuse them.
template <typename Message>
ModelFingerprint FingerprintFromWire(const Message& p) {
  auto size = [](uint32_t n) { return static_cast<int>(std::min<uint32_t>(n, 1u << 30)); };
  ModelFingerprint f;
  f.architecture = p.architecture();
  f.n_layers = size(p.n_layers());
  f.n_heads = size(p.n_heads());
  f.n_kv_heads = size(p.n_kv_heads());
  f.head_dim = size(p.head_dim());
  f.dim = size(p.dim());
  f.rope_theta = p.rope_theta();
  f.rope_style = p.rope_style();
  f.dtype = p.dtype();
  f.tokenizer_sha256 = p.tokenizer_sha256();
  return f;
}

}  // namespace mnemo

#endif  // MNEMO_COMMON_MODEL_FINGERPRINT_WIRE_H_
