#include "tests/db/test_util.h"

#include <stdlib.h>

#include <cstdint>
#include <cstdlib>
#include <stdexcept>

#include "absl/strings/str_cat.h"
#include "common/hash.h"

namespace mnemo::db::test {

std::vector<float> VectorFor(absl::string_view id, int dim) {
  uint64_t h = Fnv1a(id, kFnv1aStoredBasis);
  std::vector<float> v(dim);
  for (int i = 0; i < dim; ++i) {
    // splitmix64 step
    h += 0x9e3779b97f4a7c15ull;
    uint64_t z = h;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    v[i] = static_cast<float>(static_cast<double>(z >> 11) / static_cast<double>(1ull << 53)) *
               2.0f -
           1.0f;
  }
  return v;
}

ModelFingerprint SmallKvModel(int n_layers, int n_kv_heads, int head_dim) {
  ModelFingerprint m;
  m.architecture = "llama";
  m.n_layers = n_layers;
  m.n_heads = 4;
  m.n_kv_heads = n_kv_heads;
  m.head_dim = head_dim;
  m.dim = 32;
  m.rope_theta = 10000.0;
  m.rope_style = "half";
  m.dtype = "float32";
  m.tokenizer_sha256 = "00ff";
  return m;
}

ModelFingerprint CrashKvModel() {
  ModelFingerprint m;
  m.architecture = "llama";
  m.n_layers = 2;
  m.n_heads = 2;
  m.n_kv_heads = 1;
  m.head_dim = 4;
  m.dim = 8;
  m.rope_theta = 10000;
  m.rope_style = "half";
  m.dtype = "float32";
  m.tokenizer_sha256 = "crash";
  return m;
}

std::vector<float> KvFor(absl::string_view id, int layer, char which) {
  const ModelFingerprint m = CrashKvModel();
  return VectorFor(absl::StrCat(id, "/", layer, std::string(1, which)),
                   m.n_kv_heads * static_cast<int>(kCrashKvTokens) * m.head_dim);
}

std::string MakeTempDir(absl::string_view tag) {
  const char* env = std::getenv("TEST_TMPDIR");
  if (env == nullptr) env = std::getenv("TMPDIR");
  std::string base = env != nullptr ? env : "/tmp";
  std::string templ = absl::StrCat(base, "/mnemo_", tag, "_XXXXXX");
  if (mkdtemp(templ.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  return templ;
}

}  // namespace mnemo::db::test
