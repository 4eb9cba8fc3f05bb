// The model fingerprint of the KV tests and the soak: a llama-shaped model
// of the given shape (model dim = heads x head dim, RoPE rotate-half at
// theta 10000, fp32) whose tokenizer hash is one hex digit repeated, so
// that two tests' models differ by that digit alone.
#ifndef MNEMO_TESTS_INTEGRATION_KV_TEST_MODEL_H_
#define MNEMO_TESTS_INTEGRATION_KV_TEST_MODEL_H_

#include <string>

#include "mnemo/client.h"

namespace mnemo::testing {

constexpr double kKvTestRopeTheta = 10000;

inline ModelFingerprint KvTestModel(int n_layers, int n_heads, int n_kv_heads, int head_dim,
                                    char tokenizer_digit) {
  ModelFingerprint m;
  m.architecture = "llama";
  m.n_layers = n_layers;
  m.n_heads = n_heads;
  m.n_kv_heads = n_kv_heads;
  m.head_dim = head_dim;
  m.dim = n_heads * head_dim;
  m.rope_theta = kKvTestRopeTheta;
  m.rope_style = "half";
  m.dtype = "float32";
  m.tokenizer_sha256 = std::string(64, tokenizer_digit);
  return m;
}

}  // namespace mnemo::testing

#endif  // MNEMO_TESTS_INTEGRATION_KV_TEST_MODEL_H_
