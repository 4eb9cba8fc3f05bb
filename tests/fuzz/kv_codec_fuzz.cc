// libFuzzer target for the KV block codec (db/kv_codec.h): see
// kv_codec_fuzz.h for the property. Built with clang and
// -fsanitize=fuzzer,address,undefined when MNEMO_FUZZ=ON (scripts/fuzz);
// CheckKvCodecInput is also linked into kv_codec_corpus_test.
#include "tests/fuzz/kv_codec_fuzz.h"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "attention/kv_quant.h"
#include "db/kv_codec.h"

namespace mnemo::fuzz {
namespace {

using db::KvCodecKind;
using db::KvTensorHeader;

bool SameHeader(const KvTensorHeader& a, const KvTensorHeader& b) {
  return a.kind == b.kind && a.role == b.role && a.shape == b.shape && a.entropy == b.entropy &&
         a.group_size == b.group_size && a.fp32_params == b.fp32_params &&
         std::memcmp(&a.relative_error, &b.relative_error, sizeof(float)) == 0 &&
         a.payload_bytes == b.payload_bytes;
}

std::string CheckRefusal(const absl::Status& s, absl::string_view what) {
  if (s.code() != absl::StatusCode::kDataLoss) {
    return absl::StrCat(what, " refused with ", s.ToString(), ", not DATA_LOSS");
  }
  if (!absl::StartsWith(s.message(), "corrupt KV block: ")) {
    return absl::StrCat(what, " message lacks the prefix: ", s.message());
  }
  return "";
}

std::string CheckBlock(absl::string_view bytes) {
  const absl::StatusOr<KvTensorHeader> peek = db::PeekKvTensor(bytes);
  std::vector<float> out = {1.0f};  // must be emptied on error
  KvTensorHeader h;
  const absl::Status decoded = db::DecodeKvTensor(bytes, &out, &h);
  std::string payload;
  KvTensorHeader ph;
  const absl::Status opened = db::DecodeKvPayload(bytes, &ph, &payload);

  if (!peek.ok()) {
    if (std::string p = CheckRefusal(peek.status(), "Peek"); !p.empty()) return p;
    if (decoded.ok() || opened.ok()) return "Decode accepted a block Peek refused";
  }
  if (!opened.ok()) {
    if (std::string p = CheckRefusal(opened, "DecodeKvPayload"); !p.empty()) return p;
    if (decoded.ok()) return "DecodeKvTensor accepted a block DecodeKvPayload refused";
  }
  if (!decoded.ok()) {
    if (std::string p = CheckRefusal(decoded, "DecodeKvTensor"); !p.empty()) return p;
    if (!out.empty()) return "DecodeKvTensor left output behind on error";
    return "";
  }

  // Decoded: the three views agree and the values are what an encoder
  // could have written.
  if (!peek.ok() || !SameHeader(*peek, h) || !SameHeader(ph, h)) {
    return "Peek, DecodeKvPayload and DecodeKvTensor disagree on the header";
  }
  if (out.size() != h.shape.elements()) return "decoded size is not the header's shape";
  for (size_t i = 0; i < out.size(); ++i) {
    if (!std::isfinite(out[i])) return absl::StrCat("decoded value ", i, " is not finite");
  }

  // Re-encode what was decoded.
  db::KvCodecOptions o;
  o.kind = h.kind;
  o.entropy = h.entropy;
  if (h.kind == KvCodecKind::kInt4) o.group_size = h.group_size;
  auto enc = db::EncodeKvTensor(out, h.shape, h.role, o);
  if (!enc.ok())
    return absl::StrCat("re-encoding a decoded block failed: ", enc.status().ToString());
  std::vector<float> again;
  KvTensorHeader h2;
  if (absl::Status s = db::DecodeKvTensor(enc->bytes, &again, &h2); !s.ok()) {
    return absl::StrCat("a re-encoded block does not decode: ", s.ToString());
  }
  if (h2.kind != h.kind || h2.role != h.role || !(h2.shape == h.shape)) {
    return "the re-encoded header differs";
  }
  double num = 0, den = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    num += (static_cast<double>(out[i]) - again[i]) * (static_cast<double>(out[i]) - again[i]);
    den += static_cast<double>(out[i]) * out[i];
  }
  const double err = den > 0 ? std::sqrt(num / den) : 0.0;
  if (std::abs(err - enc->relative_error) > 1e-5 * err + 1e-7) {
    return absl::StrCat("stored error ", enc->relative_error, " but measured ", err);
  }
  const bool lossless =
      h.kind == KvCodecKind::kFp32 || h.kind == KvCodecKind::kFp16 || h.kind == KvCodecKind::kBf16;
  if (lossless && (enc->relative_error != 0 ||
                   std::memcmp(out.data(), again.data(), out.size() * sizeof(float)) != 0)) {
    return "an fp block does not re-encode to the same values";
  }
  return "";
}

}  // namespace

std::string CheckKvCodecInput(absl::string_view data) {
  if (std::string p = CheckBlock(data); !p.empty()) return absl::StrCat("as given: ", p);
  if (data.size() >= db::kKvTensorHeaderBytes) {
    std::string sealed(data);
    db::ResealKvTensorForTesting(&sealed);
    if (std::string p = CheckBlock(sealed); !p.empty()) return absl::StrCat("resealed: ", p);
  }
  return "";
}

}  // namespace mnemo::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string problem =
      mnemo::fuzz::CheckKvCodecInput(absl::string_view(reinterpret_cast<const char*>(data), size));
  if (!problem.empty()) {
    std::fprintf(stderr, "kv_codec_fuzz: %s\n", problem.c_str());
    std::abort();
  }
  return 0;
}
