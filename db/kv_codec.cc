// The self-describing codec of one stored KV-cache tensor (see kv_codec.h).
#include "db/kv_codec.h"

#include "common/half.h"

#include <xxh_x86dispatch.h>
#include <zstd.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <memory>

#include "absl/strings/str_cat.h"
#include "attention/kv_quant.h"
#include "attention/kvq.h"
#include "common/hash.h"
#include "common/status_macros.h"
#include "mnemo/kv_names.h"

namespace mnemo::db {
namespace {

static_assert(std::endian::native == std::endian::little,
              "KV blocks are written in host order, little-endian");

constexpr char kMagic[4] = {'M', 'K', 'V', 'T'};
// Version 2 checksums the payload with XXH3; version 1 (read, no longer
// written) with LegacyPayloadChecksum.
constexpr uint8_t kVersion = 2;
constexpr uint8_t kVersionLegacyChecksum = 1;
constexpr uint8_t kFlagEntropy = 1;
constexpr uint8_t kFlagFp32Params = 2;

// Field offsets of the header (see kv_codec.h).
constexpr size_t kOffVersion = 4;
constexpr size_t kOffKind = 5;
constexpr size_t kOffRole = 6;
constexpr size_t kOffFlags = 7;
constexpr size_t kOffHeads = 8;
constexpr size_t kOffTokens = 12;
constexpr size_t kOffHeadDim = 16;
constexpr size_t kOffGroupSize = 20;
constexpr size_t kOffError = 24;
constexpr size_t kOffPayloadBytes = 28;
constexpr size_t kOffPayloadSum = 36;
constexpr size_t kOffHeaderSum = 44;
static_assert(kOffHeaderSum + 8 == kKvTensorHeaderBytes);

absl::Status Corrupt(absl::string_view what) {
  return absl::DataLossError(absl::StrCat("corrupt KV block: ", what));
}

template <typename T>
T Load(absl::string_view bytes, size_t offset) {
  T v;
  std::memcpy(&v, bytes.data() + offset, sizeof(T));
  return v;
}

// The header's checksum (44 bytes: byte-wise FNV-1a, common/hash.h, is fine).
uint64_t HeaderChecksum(absl::string_view bytes) { return Fnv1a(bytes, kFnv1aStoredBasis); }

// Version 1's payload checksum: four lanes of 64-bit words with xxHash64's
// round. Every round is a bijection of its lane state and of its word, and
// the final fold a bijection of each lane, so a change confined to one
// 8-byte word (every single-bit flip) always changes the result. Scalar,
// ~8 GB/s: on a GetKv served from the page cache it took about a third of
// mnemod's CPU, hence version 2.
uint64_t LegacyPayloadChecksum(absl::string_view bytes) {
  constexpr uint64_t kP1 = 0x9e3779b185ebca87ull;
  constexpr uint64_t kP2 = 0xc2b2ae3d27d4eb4full;
  const auto round = [](uint64_t acc, uint64_t word) {
    return std::rotl(acc + word * kP2, 31) * kP1;
  };
  uint64_t lane[4] = {kP1, kP2, ~kP1, ~kP2};
  const size_t n = bytes.size();
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    for (int j = 0; j < 4; ++j) lane[j] = round(lane[j], Load<uint64_t>(bytes, i + 8 * j));
  }
  char tail[32] = {};  // the last n % 32 bytes, zero padded (n is folded in below)
  if (n > i) std::memcpy(tail, bytes.data() + i, n - i);
  for (int j = 0; j < 4; ++j) {
    lane[j] = round(lane[j], Load<uint64_t>(absl::string_view(tail, 32), 8 * j));
  }
  uint64_t h = n;
  for (int j = 0; j < 4; ++j) h = round(h, lane[j]);
  return h ^ (h >> 32);
}

// The payload checksum of a block of `version`: XXH3-64 (xxHash's own
// runtime dispatch picks its AVX2 / AVX-512 kernels, tens of GB/s) from
// version 2 on.
uint64_t PayloadChecksum(absl::string_view bytes, int version) {
  if (version == kVersionLegacyChecksum) return LegacyPayloadChecksum(bytes);
  return XXH3_64bits_dispatch(bytes.data(), bytes.size());
}

template <typename T>
void Store(std::string* bytes, size_t offset, T v) {
  std::memcpy(bytes->data() + offset, &v, sizeof(T));
}

bool IsFloatKind(KvCodecKind k) {
  return k == KvCodecKind::kFp32 || k == KvCodecKind::kFp16 || k == KvCodecKind::kBf16;
}

size_t FloatKindBytes(KvCodecKind k) { return k == KvCodecKind::kFp32 ? 4 : 2; }

attention::KvQuantSpec QuantSpecOf(KvCodecKind kind, KvTensorRole role, const KvTensorShape& s,
                                   uint32_t group_size, bool fp32_params) {
  const auto params =
      fp32_params ? attention::QuantParamType::kFp32 : attention::QuantParamType::kFp16;
  if (kind == KvCodecKind::kInt8) {
    return attention::Int8RowSpec(s.heads, s.tokens, s.head_dim, params);
  }
  return role == KvTensorRole::kKeys
             ? attention::Int4KeySpec(s.heads, s.tokens, s.head_dim, group_size, params)
             : attention::Int4ValueSpec(s.heads, s.tokens, s.head_dim, group_size, params);
}

attention::KvqOptions KvqOptionsOf(const KvCodecOptions& o) {
  attention::KvqOptions k;
  k.bits = o.kvq_bits;
  k.sink_tokens = o.kvq_sink_tokens;
  k.outlier_fraction = o.kvq_outlier_fraction;
  k.rate_weight = o.kvq_rate_weight;
  return k;
}

// Raw (pre-entropy) payload size of a block whose fields are validated.
uint64_t RawPayloadBytes(const KvTensorHeader& h) {
  if (h.kind == KvCodecKind::kKvq) return h.payload_bytes;  // sized by its own sections
  if (IsFloatKind(h.kind)) return h.shape.elements() * FloatKindBytes(h.kind);
  return attention::QuantLayout(QuantSpecOf(h.kind, h.role, h.shape, h.group_size, h.fp32_params))
      .payload_bytes;
}

// Byte-plane transpose of n elements of `width` bytes: all first bytes,
// then all second bytes, ... (and back).
std::string SplitPlanes(absl::string_view in, size_t width) {
  const size_t n = in.size() / width;
  std::string out(in.size(), '\0');
  for (size_t i = 0; i < n; ++i) {
    for (size_t b = 0; b < width; ++b) out[b * n + i] = in[i * width + b];
  }
  return out;
}

std::string JoinPlanes(absl::string_view in, size_t width) {
  const size_t n = in.size() / width;
  std::string out(in.size(), '\0');
  for (size_t i = 0; i < n; ++i) {
    for (size_t b = 0; b < width; ++b) out[i * width + b] = in[b * n + i];
  }
  return out;
}

struct CctxFree {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};
struct DctxFree {
  void operator()(ZSTD_DCtx* d) const { ZSTD_freeDCtx(d); }
};

// One context per thread: creating one per call costs more than small
// blocks take to compress.
ZSTD_CCtx* ThreadCctx() {
  thread_local std::unique_ptr<ZSTD_CCtx, CctxFree> ctx(ZSTD_createCCtx());
  return ctx.get();
}

ZSTD_DCtx* ThreadDctx() {
  thread_local std::unique_ptr<ZSTD_DCtx, DctxFree> ctx(ZSTD_createDCtx());
  return ctx.get();
}

absl::StatusOr<std::string> Compress(absl::string_view raw, int level) {
  ZSTD_CCtx* cctx = ThreadCctx();
  if (cctx == nullptr) return absl::ResourceExhaustedError("zstd: cannot create a context");
  std::string out(ZSTD_compressBound(raw.size()), '\0');
  const size_t n = ZSTD_compressCCtx(cctx, out.data(), out.size(), raw.data(), raw.size(), level);
  if (ZSTD_isError(n)) {
    return absl::InternalError(absl::StrCat("zstd compression failed: ", ZSTD_getErrorName(n)));
  }
  out.resize(n);
  return out;
}

absl::StatusOr<std::string> Decompress(absl::string_view frame, uint64_t raw_bytes) {
  // Sizes first: nothing is allocated for a frame that does not declare
  // exactly the size the header implies, or that is not exactly one frame.
  const unsigned long long declared = ZSTD_getFrameContentSize(frame.data(), frame.size());
  if (declared == ZSTD_CONTENTSIZE_ERROR) return Corrupt("payload is not a zstd frame");
  if (declared == ZSTD_CONTENTSIZE_UNKNOWN) return Corrupt("zstd frame does not declare its size");
  if (declared != raw_bytes) {
    return Corrupt(
        absl::StrCat("zstd frame declares ", declared, " bytes, the header implies ", raw_bytes));
  }
  const size_t frame_size = ZSTD_findFrameCompressedSize(frame.data(), frame.size());
  if (ZSTD_isError(frame_size) || frame_size != frame.size()) {
    return Corrupt("payload is not exactly one zstd frame");
  }
  ZSTD_DCtx* dctx = ThreadDctx();
  if (dctx == nullptr) return absl::ResourceExhaustedError("zstd: cannot create a context");
  std::string raw(raw_bytes, '\0');
  const size_t n = ZSTD_decompressDCtx(dctx, raw.data(), raw.size(), frame.data(), frame.size());
  if (ZSTD_isError(n)) return Corrupt(absl::StrCat("zstd: ", ZSTD_getErrorName(n)));
  if (n != raw_bytes) return Corrupt("zstd frame is shorter than it declares");
  return raw;
}

absl::Status ValidateShape(const KvTensorShape& s) {
  if (s.heads == 0 || s.tokens == 0 || s.head_dim == 0) {
    return absl::InvalidArgumentError(absl::StrCat("KV tensor dimensions must be >= 1, got [",
                                                   s.heads, ", ", s.tokens, ", ", s.head_dim, "]"));
  }
  // heads * tokens fits in 64 bits; bound it before the third factor so
  // that elements() cannot wrap around.
  const uint64_t rows = uint64_t{s.heads} * s.tokens;
  if (rows > kMaxKvTensorElements || rows * s.head_dim > kMaxKvTensorElements) {
    return absl::InvalidArgumentError(absl::StrCat("KV tensor [", s.heads, ", ", s.tokens, ", ",
                                                   s.head_dim, "] exceeds ", kMaxKvTensorElements,
                                                   " elements"));
  }
  return absl::OkStatus();
}

// "x[i] (head h, token t, channel c)"
std::string Where(size_t i, const KvTensorShape& s) {
  const uint64_t c = i % s.head_dim, row = i / s.head_dim;
  return absl::StrCat("x[", i, "] (head ", row / s.tokens, ", token ", row % s.tokens, ", channel ",
                      c, ")");
}

double RelativeError(absl::Span<const float> x, absl::Span<const float> y) {
  double num = 0, den = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double d = static_cast<double>(x[i]) - y[i];
    num += d * d;
    den += static_cast<double>(x[i]) * x[i];
  }
  return den > 0 ? std::sqrt(num / den) : 0.0;
}

// The fp16 / bf16 payload of x; INVALID_ARGUMENT naming the first value
// the type cannot hold. Reports the relative error of the rounding.
template <typename ToBits, typename FromBits>
absl::Status EncodeHalfWidth(absl::Span<const float> x, const KvTensorShape& shape,
                             absl::string_view type, ToBits to_bits, FromBits from_bits,
                             uint16_t exponent_mask, std::string* raw, double* error) {
  raw->resize(x.size() * 2);
  double num = 0, den = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const uint16_t b = to_bits(x[i]);
    if ((b & exponent_mask) == exponent_mask) {
      return absl::InvalidArgumentError(
          absl::StrCat(Where(i, shape), " = ", x[i], " overflows ", type));
    }
    std::memcpy(raw->data() + 2 * i, &b, 2);
    const double d = static_cast<double>(x[i]) - from_bits(b);
    num += d * d;
    den += static_cast<double>(x[i]) * x[i];
  }
  *error = den > 0 ? std::sqrt(num / den) : 0.0;
  return absl::OkStatus();
}

// A block's payload with the entropy stage undone.
struct OpenedBlock {
  KvTensorHeader header;
  std::string storage;    // the decompressed bytes when there was a zstd frame
  absl::string_view raw;  // the raw payload: into `bytes` or `storage`
  // fp kinds after zstd: byte b of element i is raw[b * n + i] (the planes
  // are read in place rather than joined into a copy).
  bool planar = false;
};

absl::Status OpenBlock(absl::string_view bytes, OpenedBlock* b) {
  ASSIGN_OR_RETURN(b->header, PeekKvTensor(bytes));
  const absl::string_view payload = bytes.substr(kKvTensorHeaderBytes);
  if (PayloadChecksum(payload, Load<uint8_t>(bytes, kOffVersion)) !=
      Load<uint64_t>(bytes, kOffPayloadSum)) {
    return Corrupt("payload checksum mismatch");
  }
  if (!b->header.entropy) {
    b->raw = payload;
    return absl::OkStatus();
  }
  ASSIGN_OR_RETURN(b->storage, Decompress(payload, RawPayloadBytes(b->header)));
  b->raw = b->storage;
  b->planar = IsFloatKind(b->header.kind);
  return absl::OkStatus();
}

// Element i of an fp payload of n elements of `width` bytes.
template <typename T>
T Element(const OpenedBlock& b, uint64_t n, uint64_t i) {
  if (!b.planar) return Load<T>(b.raw, i * sizeof(T));
  uint8_t bytes[sizeof(T)];
  for (size_t k = 0; k < sizeof(T); ++k) bytes[k] = static_cast<uint8_t>(b.raw[k * n + i]);
  T v;
  std::memcpy(&v, bytes, sizeof(T));
  return v;
}

}  // namespace

absl::Status ValidateKvCodecOptions(const KvCodecOptions& o) {
  if (KvCodecName(o.kind) == "unknown") {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown KV codec kind ", static_cast<int>(o.kind)));
  }
  if (o.entropy && (o.zstd_level < 1 || o.zstd_level > ZSTD_maxCLevel())) {
    return absl::InvalidArgumentError(
        absl::StrCat("zstd_level must be in [1, ", ZSTD_maxCLevel(), "], got ", o.zstd_level));
  }
  if (o.kind == KvCodecKind::kInt4 && (o.group_size == 0 || o.group_size > kMaxKvGroupSize)) {
    return absl::InvalidArgumentError(
        absl::StrCat("int4 group_size must be in [1, ", kMaxKvGroupSize, "], got ", o.group_size));
  }
  if (o.kind == KvCodecKind::kKvq) {
    return attention::ValidateKvqOptions(KvqOptionsOf(o));
  }
  return absl::OkStatus();
}

absl::StatusOr<EncodedKvTensor> EncodeKvTensor(absl::Span<const float> x,
                                               const KvTensorShape& shape, KvTensorRole role,
                                               const KvCodecOptions& options) {
  RETURN_IF_ERROR(ValidateKvCodecOptions(options));
  if (role != KvTensorRole::kKeys && role != KvTensorRole::kValues) {
    return absl::InvalidArgumentError(absl::StrCat("unknown KV role ", static_cast<int>(role)));
  }
  RETURN_IF_ERROR(ValidateShape(shape));
  if (x.size() != shape.elements()) {
    return absl::InvalidArgumentError(absl::StrCat("KV tensor has ", x.size(), " values, shape [",
                                                   shape.heads, ", ", shape.tokens, ", ",
                                                   shape.head_dim, "] needs ", shape.elements()));
  }
  for (size_t i = 0; i < x.size(); ++i) {
    if (!std::isfinite(x[i])) {
      return absl::InvalidArgumentError(
          absl::StrCat(Where(i, shape), " = ", x[i], " is not finite"));
    }
  }

  KvTensorHeader h;
  h.kind = options.kind;
  h.role = role;
  h.shape = shape;
  if (options.kind == KvCodecKind::kInt8 || options.kind == KvCodecKind::kInt4) {
    h.group_size = options.kind == KvCodecKind::kInt4 ? options.group_size : 0;
    h.fp32_params = attention::ChooseQuantParamType(x) == attention::QuantParamType::kFp32;
  }
  if (const uint64_t raw_bytes = RawPayloadBytes(h); raw_bytes > kMaxKvPayloadBytes) {
    return absl::InvalidArgumentError(absl::StrCat("KV block payload would be ", raw_bytes,
                                                   " bytes, over ", kMaxKvPayloadBytes,
                                                   " (use a larger int4 group_size)"));
  }
  std::string raw;
  double error = 0;
  switch (options.kind) {
    case KvCodecKind::kFp32:
      raw.assign(reinterpret_cast<const char*>(x.data()), x.size() * sizeof(float));
      break;
    case KvCodecKind::kFp16:
      RETURN_IF_ERROR(EncodeHalfWidth(x, shape, "fp16", attention::FloatToHalfBits,
                                      attention::HalfBitsToFloat, 0x7c00, &raw, &error));
      break;
    case KvCodecKind::kBf16:
      RETURN_IF_ERROR(
          EncodeHalfWidth(x, shape, "bf16", FloatToBf16, Bf16ToFloat, 0x7f80, &raw, &error));
      break;
    case KvCodecKind::kInt8:
    case KvCodecKind::kInt4: {
      for (size_t i = 0; i < x.size(); ++i) {
        if (std::abs(x[i]) > attention::kMaxQuantMagnitude) {
          return absl::InvalidArgumentError(
              absl::StrCat(Where(i, shape), " = ", x[i], " is beyond the int codecs' range"));
        }
      }
      const attention::KvQuantSpec spec =
          QuantSpecOf(h.kind, role, shape, h.group_size, h.fp32_params);
      RETURN_IF_ERROR(attention::QuantizeKv(x, spec, &raw));
      std::vector<float> back(x.size());
      RETURN_IF_ERROR(attention::DequantizeKv(raw, spec, absl::MakeSpan(back)));
      error = RelativeError(x, back);
      break;
    }
    case KvCodecKind::kKvq: {
      const attention::KvqOptions k = KvqOptionsOf(options);
      const bool keys = role == KvTensorRole::kKeys;
      RETURN_IF_ERROR(
          attention::EncodeKvq(x, shape.heads, shape.tokens, shape.head_dim, keys, k, &raw));
      if (raw.size() > kMaxKvPayloadBytes) {
        return absl::InvalidArgumentError(absl::StrCat(
            "kvq payload would be ", raw.size(), " bytes, over ", kMaxKvPayloadBytes));
      }
      ASSIGN_OR_RETURN(const attention::KvqPlanes planes,
                       attention::ParseKvq(raw, shape.heads, shape.tokens, shape.head_dim, keys));
      std::vector<float> back(x.size());
      RETURN_IF_ERROR(attention::DequantizeKvqPlanes(planes, absl::MakeSpan(back)));
      error = RelativeError(x, back);
      break;
    }
  }

  std::string payload;
  if (options.entropy && h.kind != KvCodecKind::kKvq) {
    const bool fp = IsFloatKind(h.kind);
    ASSIGN_OR_RETURN(
        std::string packed,
        Compress(fp ? SplitPlanes(raw, FloatKindBytes(h.kind)) : raw, options.zstd_level));
    if (packed.size() < raw.size()) {
      payload = std::move(packed);
      h.entropy = true;
    }
  }
  if (!h.entropy) payload = std::move(raw);

  EncodedKvTensor out;
  out.relative_error = static_cast<float>(error);
  out.bytes.assign(kKvTensorHeaderBytes, '\0');
  std::memcpy(out.bytes.data(), kMagic, sizeof(kMagic));
  const uint8_t flags = (h.entropy ? kFlagEntropy : 0) | (h.fp32_params ? kFlagFp32Params : 0);
  Store<uint8_t>(&out.bytes, kOffVersion, kVersion);
  Store<uint8_t>(&out.bytes, kOffKind, static_cast<uint8_t>(h.kind));
  Store<uint8_t>(&out.bytes, kOffRole, static_cast<uint8_t>(role));
  Store<uint8_t>(&out.bytes, kOffFlags, flags);
  Store<uint32_t>(&out.bytes, kOffHeads, shape.heads);
  Store<uint32_t>(&out.bytes, kOffTokens, shape.tokens);
  Store<uint32_t>(&out.bytes, kOffHeadDim, shape.head_dim);
  Store<uint32_t>(&out.bytes, kOffGroupSize, h.group_size);
  Store<float>(&out.bytes, kOffError, out.relative_error);
  Store<uint64_t>(&out.bytes, kOffPayloadBytes, payload.size());
  out.bytes.append(payload);
  ResealKvTensorForTesting(&out.bytes);  // writes both checksums
  return out;
}

absl::StatusOr<KvTensorHeader> PeekKvTensor(absl::string_view bytes) {
  if (bytes.size() < kKvTensorHeaderBytes) {
    return Corrupt(absl::StrCat("truncated header (", bytes.size(), " bytes, need ",
                                kKvTensorHeaderBytes, ")"));
  }
  if (std::memcmp(bytes.data(), kMagic, sizeof(kMagic)) != 0) return Corrupt("bad magic");
  if (const int v = Load<uint8_t>(bytes, kOffVersion); v != kVersion && v != kVersionLegacyChecksum) {
    return Corrupt(absl::StrCat("unsupported version ", v));
  }
  if (HeaderChecksum(bytes.substr(0, kOffHeaderSum)) != Load<uint64_t>(bytes, kOffHeaderSum)) {
    return Corrupt("header checksum mismatch");
  }
  KvTensorHeader h;
  const int kind = Load<uint8_t>(bytes, kOffKind);
  if (kind > static_cast<uint8_t>(KvCodecKind::kKvq)) {
    return Corrupt(absl::StrCat("unknown codec kind ", kind));
  }
  h.kind = static_cast<KvCodecKind>(kind);
  const int role = Load<uint8_t>(bytes, kOffRole);
  if (role > static_cast<uint8_t>(KvTensorRole::kValues)) {
    return Corrupt(absl::StrCat("unknown role ", role));
  }
  h.role = static_cast<KvTensorRole>(role);
  const int flags = Load<uint8_t>(bytes, kOffFlags);
  if ((flags & ~(kFlagEntropy | kFlagFp32Params)) != 0 ||
      ((IsFloatKind(h.kind) || h.kind == KvCodecKind::kKvq) && (flags & kFlagFp32Params) != 0) ||
      (h.kind == KvCodecKind::kKvq && (flags & kFlagEntropy) != 0)) {
    return Corrupt(absl::StrCat("bad flags ", flags, " for ", KvCodecName(h.kind)));
  }
  h.entropy = (flags & kFlagEntropy) != 0;
  h.fp32_params = (flags & kFlagFp32Params) != 0;
  h.shape.heads = Load<uint32_t>(bytes, kOffHeads);
  h.shape.tokens = Load<uint32_t>(bytes, kOffTokens);
  h.shape.head_dim = Load<uint32_t>(bytes, kOffHeadDim);
  if (!ValidateShape(h.shape).ok()) {
    return Corrupt(absl::StrCat("bad shape [", h.shape.heads, ", ", h.shape.tokens, ", ",
                                h.shape.head_dim, "]"));
  }
  h.group_size = Load<uint32_t>(bytes, kOffGroupSize);
  const bool grouped = h.kind == KvCodecKind::kInt4;
  if (grouped ? (h.group_size == 0 || h.group_size > kMaxKvGroupSize) : h.group_size != 0) {
    return Corrupt(absl::StrCat("bad group size ", h.group_size, " for ", KvCodecName(h.kind)));
  }
  h.relative_error = Load<float>(bytes, kOffError);
  if (!std::isfinite(h.relative_error) || h.relative_error < 0) {
    return Corrupt(absl::StrCat("bad relative error ", h.relative_error));
  }
  h.payload_bytes = Load<uint64_t>(bytes, kOffPayloadBytes);
  if (h.payload_bytes != bytes.size() - kKvTensorHeaderBytes) {
    return Corrupt(absl::StrCat("header says ", h.payload_bytes, " payload bytes, the block has ",
                                bytes.size() - kKvTensorHeaderBytes));
  }
  const uint64_t raw_bytes = RawPayloadBytes(h);
  if (raw_bytes > kMaxKvPayloadBytes) {
    return Corrupt(
        absl::StrCat("raw payload of ", raw_bytes, " bytes exceeds ", kMaxKvPayloadBytes));
  }
  // The encoder keeps the entropy stage only when it shrinks the payload.
  if (h.entropy ? h.payload_bytes >= raw_bytes : h.payload_bytes != raw_bytes) {
    return Corrupt(absl::StrCat(h.payload_bytes, " payload bytes for ", raw_bytes, " raw bytes",
                                h.entropy ? " compressed" : ""));
  }
  return h;
}

absl::Status DecodeKvPayload(absl::string_view bytes, KvTensorHeader* header,
                             std::string* payload) {
  OpenedBlock b;
  RETURN_IF_ERROR(OpenBlock(bytes, &b));
  if (b.planar) {
    *payload = JoinPlanes(b.raw, FloatKindBytes(b.header.kind));
  } else if (!b.storage.empty()) {
    *payload = std::move(b.storage);
  } else {
    payload->assign(b.raw.data(), b.raw.size());
  }
  if (header != nullptr) *header = b.header;
  return absl::OkStatus();
}

absl::StatusOr<absl::string_view> ViewKvPayload(absl::string_view bytes, KvTensorHeader* header,
                                                std::string* scratch) {
  OpenedBlock b;
  RETURN_IF_ERROR(OpenBlock(bytes, &b));
  if (header != nullptr) *header = b.header;
  if (b.planar) {
    *scratch = JoinPlanes(b.raw, FloatKindBytes(b.header.kind));
    return absl::string_view(*scratch);
  }
  if (!b.storage.empty()) {
    *scratch = std::move(b.storage);
    return absl::string_view(*scratch);
  }
  return b.raw;  // a view into `bytes`: no copy
}

absl::Status DecodeKvTensor(absl::string_view bytes, std::vector<float>* out,
                            KvTensorHeader* header) {
  out->clear();
  OpenedBlock b;
  RETURN_IF_ERROR(OpenBlock(bytes, &b));
  const KvTensorHeader& h = b.header;
  if (h.kind == KvCodecKind::kKvq) {
    // Parse (sizes, counts, positions, rANS) before allocating the output.
    absl::StatusOr<attention::KvqPlanes> planes =
        attention::ParseKvq(b.raw, h.shape.heads, h.shape.tokens, h.shape.head_dim,
                            h.role == KvTensorRole::kKeys);
    if (!planes.ok()) return Corrupt(planes.status().message());
    out->resize(h.shape.elements());
    if (absl::Status s = attention::DequantizeKvqPlanes(*planes, absl::MakeSpan(*out)); !s.ok()) {
      out->clear();
      return Corrupt(s.message());
    }
    if (header != nullptr) *header = h;
    return absl::OkStatus();
  }
  const uint64_t n = h.shape.elements();
  out->resize(n);
  float* y = out->data();
  absl::Status status;
  switch (h.kind) {
    case KvCodecKind::kFp32:
      for (uint64_t i = 0; i < n; ++i) {
        y[i] = Element<float>(b, n, i);
        if (!std::isfinite(y[i])) {
          status = Corrupt(absl::StrCat("value ", i, " is not finite"));
          break;
        }
      }
      break;
    case KvCodecKind::kFp16:
    case KvCodecKind::kBf16: {
      const bool fp16 = h.kind == KvCodecKind::kFp16;
      const uint16_t exponent_mask = fp16 ? 0x7c00 : 0x7f80;
      for (uint64_t i = 0; i < n; ++i) {
        const auto e = Element<uint16_t>(b, n, i);
        if ((e & exponent_mask) == exponent_mask) {
          status = Corrupt(absl::StrCat("value ", i, " is not finite"));
          break;
        }
        y[i] = fp16 ? attention::HalfBitsToFloat(e) : Bf16ToFloat(e);
      }
      break;
    }
    case KvCodecKind::kKvq:  // decoded above
      break;
    case KvCodecKind::kInt8:
    case KvCodecKind::kInt4:
      status = attention::DequantizeKv(
          b.raw, QuantSpecOf(h.kind, h.role, h.shape, h.group_size, h.fp32_params),
          absl::MakeSpan(*out));
      if (!status.ok()) status = Corrupt(status.message());
      break;
  }
  if (!status.ok()) {
    out->clear();
    return status;
  }
  if (header != nullptr) *header = h;
  return absl::OkStatus();
}

void ResealKvTensorForTesting(std::string* bytes) {
  if (bytes->size() < kKvTensorHeaderBytes) return;
  const absl::string_view view(*bytes);
  Store<uint64_t>(bytes, kOffPayloadSum, PayloadChecksum(view.substr(kKvTensorHeaderBytes),
                                                        Load<uint8_t>(view, kOffVersion)));
  Store<uint64_t>(bytes, kOffHeaderSum, HeaderChecksum(view.substr(0, kOffHeaderSum)));
}

uint16_t FloatToBf16(float f) { return ::mnemo::FloatToBf16(f); }

float Bf16ToFloat(uint16_t b) { return ::mnemo::Bf16ToFloat(b); }

std::string FloatsToDtype(absl::Span<const float> x, KvDtype dtype) {
  std::string out;
  switch (dtype) {
    case KvDtype::kFp32:
      out.assign(reinterpret_cast<const char*>(x.data()), x.size() * sizeof(float));
      break;
    case KvDtype::kFp16:
    case KvDtype::kBf16:
      out.resize(x.size() * 2);
      for (size_t i = 0; i < x.size(); ++i) {
        const uint16_t b =
            dtype == KvDtype::kFp16 ? attention::FloatToHalfBits(x[i]) : FloatToBf16(x[i]);
        std::memcpy(out.data() + 2 * i, &b, 2);
      }
      break;
  }
  return out;
}

absl::Status DtypeToFloats(absl::string_view bytes, KvDtype dtype, std::vector<float>* out) {
  const size_t width = KvDtypeBytes(dtype);
  if (width == 0) {
    return absl::InvalidArgumentError(absl::StrCat("unknown KV dtype ", static_cast<int>(dtype)));
  }
  if (bytes.size() % width != 0) {
    return absl::InvalidArgumentError(absl::StrCat(bytes.size(), " bytes is not a whole number of ",
                                                   KvDtypeName(dtype), " elements"));
  }
  const size_t n = bytes.size() / width;
  out->resize(n);
  if (dtype == KvDtype::kFp32) {
    if (n > 0) std::memcpy(out->data(), bytes.data(), bytes.size());
    return absl::OkStatus();
  }
  for (size_t i = 0; i < n; ++i) {
    const auto b = Load<uint16_t>(bytes, 2 * i);
    (*out)[i] = dtype == KvDtype::kFp16 ? attention::HalfBitsToFloat(b) : Bf16ToFloat(b);
  }
  return absl::OkStatus();
}

}  // namespace mnemo::db
