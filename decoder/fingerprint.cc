#include "decoder/fingerprint.h"

namespace mnemo::decoder {

ModelFingerprint FingerprintFromConfig(const ModelConfig& c) {
  ModelFingerprint f;
  f.architecture = c.architecture;
  f.n_layers = c.n_layers;
  f.n_heads = c.n_heads;
  f.n_kv_heads = c.n_kv_heads;
  f.head_dim = c.head_dim;
  f.dim = c.dim;
  f.rope_theta = c.rope_theta;
  f.rope_style = c.rope_style;
  f.dtype = c.dtype;
  f.tokenizer_sha256 = c.tokenizer_sha256;
  return f;
}

}  // namespace mnemo::decoder
