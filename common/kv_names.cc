// The KV dtype and codec name tables (mnemo/kv_names.h), the only ones.
#include "mnemo/kv_names.h"

#include "absl/strings/str_cat.h"

namespace mnemo {
namespace {

constexpr KvDtype kDtypes[] = {KvDtype::kFp32, KvDtype::kFp16, KvDtype::kBf16};
constexpr KvCodec kCodecs[] = {KvCodec::kFp32, KvCodec::kFp16, KvCodec::kBf16, KvCodec::kInt8,
                               KvCodec::kInt4, KvCodec::kKvq};

}  // namespace

absl::StatusOr<KvDtype> ParseKvDtype(absl::string_view name) {
  if (name == "float32") return KvDtype::kFp32;
  if (name == "float16") return KvDtype::kFp16;
  if (name == "bfloat16") return KvDtype::kBf16;
  for (KvDtype d : kDtypes) {
    if (name == KvDtypeName(d)) return d;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown KV dtype \"", name, "\" (expected fp32, fp16 or bf16)"));
}

absl::StatusOr<KvCodec> ParseKvCodec(absl::string_view name) {
  for (KvCodec c : kCodecs) {
    if (name == KvCodecName(c)) return c;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown KV codec \"", name, "\" (expected fp32, fp16, bf16, int8, int4 or kvq)"));
}

absl::string_view KvDtypeName(KvDtype dtype) {
  switch (dtype) {
    case KvDtype::kFp32:
      return "fp32";
    case KvDtype::kFp16:
      return "fp16";
    case KvDtype::kBf16:
      return "bf16";
  }
  return "unknown";
}

absl::string_view KvCodecName(KvCodec codec) {
  switch (codec) {
    case KvCodec::kFp32:
      return "fp32";
    case KvCodec::kFp16:
      return "fp16";
    case KvCodec::kBf16:
      return "bf16";
    case KvCodec::kInt8:
      return "int8";
    case KvCodec::kInt4:
      return "int4";
    case KvCodec::kKvq:
      return "kvq";
  }
  return "unknown";
}

size_t KvDtypeBytes(KvDtype dtype) {
  switch (dtype) {
    case KvDtype::kFp32:
      return 4;
    case KvDtype::kFp16:
    case KvDtype::kBf16:
      return 2;
  }
  return 0;
}

}  // namespace mnemo
