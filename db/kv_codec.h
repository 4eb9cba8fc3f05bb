// The self-describing codec of one stored KV-cache tensor (the K or the V of
// one chunk and layer), and the element types K/V travel in on the wire.
//
// A tensor is float32 row-major [heads, tokens, head_dim] (db/kv.h). Codecs:
//   fp32  lossless.
//   fp16  IEEE binary16, round to nearest even (values beyond 65504 are
//         refused, not turned into infinity).
//   bf16  bfloat16, round to nearest even.
//   int8  asymmetric, one (min, scale) per (head, token) row.
//   int4  asymmetric groups of group_size: keys per channel (each (head,
//         channel) over group_size consecutive tokens), values per token
//         (each (head, token) over group_size consecutive channels), KIVI's
//         split; two codes per byte.
//   kvq   non-uniform levels scaled per channel (keys) / per token
//         (values), ~1% outliers and the first sink tokens in fp16, codes
//         rANS-coded: attention/kvq.h has the math and its payload layout
//         (its own entropy stage: the zstd flag is never set on kvq).
// The int math and its payload layout are attention/kv_quant.h; its scales
// and mins are fp16 when the tensor's magnitudes allow it without loss
// (attention::ChooseQuantParamType), fp32 otherwise; the header says which.
// An optional lossless entropy stage (zstd; for the fp kinds after a
// byte-plane transpose, which groups the compressible sign/exponent bytes)
// runs on top, and is kept only when it shrinks the payload.
//
// Block format, version 2 (integers little-endian):
//   off size
//    0   4   magic "MKVT"
//    4   1   version (2; version 1 blocks, which differ only in the
//            payload checksum, are read as well)
//    5   1   codec kind (KvCodecKind)
//    6   1   role (KvTensorRole)
//    7   1   flags: bit 0 entropy stage applied, bit 1 fp32 quantization
//            parameters (int8 / int4 only); other bits 0
//    8   4   heads
//   12   4   tokens
//   16   4   head_dim
//   20   4   group_size (int4; 0 for the other kinds)
//   24   4   relative_error (float32), measured at encode time
//   28   8   payload_bytes, the bytes after the header
//   36   8   checksum of the payload: XXH3-64 (xxHash, Debian's
//            libxxhash; version 1: four lanes of xxHash64 rounds over
//            64-bit words, see kv_codec.cc)
//   44   8   FNV-1a 64 of bytes [0, 44) (common/hash.h)
//   52       payload: the codec's raw bytes, or one zstd frame of them that
//            declares their exact size
// The raw payload size follows from the header alone (kind, shape, flags,
// group_size), except for kvq, whose payload states its own section sizes; decoding checks it against the header, the zstd frame and
// kMaxKvTensorElements before it allocates anything.
//
// All functions are thread-safe.
#ifndef MNEMO_DB_KV_CODEC_H_
#define MNEMO_DB_KV_CODEC_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "mnemo/kv_names.h"

namespace mnemo::db {

// The codec kinds and wire element types are the shared ones of
// mnemo/kv_names.h (names, parsing and element sizes live there too).
using KvCodecKind = ::mnemo::KvCodec;
using KvDtype = ::mnemo::KvDtype;
using ::mnemo::KvCodecName;
using ::mnemo::KvDtypeBytes;
using ::mnemo::KvDtypeName;
using ::mnemo::ParseKvCodec;
using ::mnemo::ParseKvDtype;

// Which tensor of the pair a block holds; selects the int4 grouping.
enum class KvTensorRole : uint8_t { kKeys = 0, kValues = 1 };

struct KvTensorShape {
  uint32_t heads = 0;     // KV heads
  uint32_t tokens = 0;    // tokens of the chunk
  uint32_t head_dim = 0;  // channels per head
  // Exact for shapes within kMaxKvTensorElements (which every function here
  // checks first); wraps around for absurd ones.
  uint64_t elements() const { return uint64_t{heads} * tokens * head_dim; }
  friend bool operator==(const KvTensorShape&, const KvTensorShape&) = default;
};

// Largest tensor a block may hold: 1 GiB of float32.
inline constexpr uint64_t kMaxKvTensorElements = uint64_t{1} << 28;
// Largest raw payload (before the entropy stage) a block may hold: int4
// with tiny groups costs up to 8.5 bytes per element.
inline constexpr uint64_t kMaxKvPayloadBytes = uint64_t{1} << 30;
// Largest int4 group size.
inline constexpr uint32_t kMaxKvGroupSize = 1u << 16;
// Size of the fixed block header.
inline constexpr size_t kKvTensorHeaderBytes = 52;

struct KvCodecOptions {
  // Element format of the payload. fp16 (default) is lossless for KV
  // computed in fp16; int8 / int4 / kvq store ~1.9x / ~3.2x / ~4.1x less
  // with a measured error (kvq's is about twice int4's).
  KvCodecKind kind = KvCodecKind::kFp16;
  // zstd on top of the payload (default on): lossless; on Gaussian data
  // ~15% smaller for fp16, ~30% for bf16, ~5% for int8 / int4 codes; costs
  // encode time. Skipped per block when it would not shrink it, and always
  // for kvq (rANS-coded already).
  bool entropy = true;
  // zstd level when entropy is on, 1..ZSTD_maxCLevel() (default 3: fast;
  // higher levels buy little on float data).
  int zstd_level = 3;
  // int4 only: elements per quantization group, 1..kMaxKvGroupSize
  // (default 32, KIVI's). Smaller groups: lower error, more parameter
  // overhead (4 bytes per group). Ignored by the other kinds.
  uint32_t group_size = 32;
  // kvq only (attention/kvq.h): code width (1..8), leading tokens kept in
  // fp16, share of the other elements kept in fp16 as outliers, weight of
  // the code length against the error when choosing levels and codes
  // (attention::KvqOptions).
  int kvq_bits = 3;
  uint32_t kvq_sink_tokens = 1;
  double kvq_outlier_fraction = 0.01;
  double kvq_rate_weight = 0.005;
};

// INVALID_ARGUMENT for an unknown kind, or a zstd_level / group_size out of
// range where it is used.
absl::Status ValidateKvCodecOptions(const KvCodecOptions& options);

struct EncodedKvTensor {
  std::string bytes;  // the block (header + payload)
  // ||x - decode(bytes)||_F / ||x||_F; 0 when x is all zero. Also in the
  // header.
  float relative_error = 0;
};

// Encodes x (shape.elements() floats, [heads, tokens, head_dim]).
// INVALID_ARGUMENT for invalid options, a zero dimension, a tensor beyond
// kMaxKvTensorElements (or a payload beyond kMaxKvPayloadBytes), a size
// mismatch, or a value that is NaN / infinite
// or that the codec cannot represent (fp16 beyond 65504, bf16 beyond its
// range, int8 / int4 beyond attention::kMaxQuantMagnitude), naming the
// first bad index.
absl::StatusOr<EncodedKvTensor> EncodeKvTensor(absl::Span<const float> x,
                                               const KvTensorShape& shape, KvTensorRole role,
                                               const KvCodecOptions& options);

// What a block's header says.
struct KvTensorHeader {
  KvCodecKind kind = KvCodecKind::kFp32;
  KvTensorRole role = KvTensorRole::kKeys;
  KvTensorShape shape;
  bool entropy = false;        // payload is a zstd frame
  uint32_t group_size = 0;     // int4 group size; 0 for the other kinds
  bool fp32_params = false;    // int8 / int4: scales and mins are fp32 (else fp16)
  float relative_error = 0;    // measured at encode time
  uint64_t payload_bytes = 0;  // stored payload, after the header
};

// Reads and validates the header (magic, version, header checksum, known
// enums and flags, shape within bounds, payload size equal to the bytes
// after the header and consistent with the kind). Does not read the
// payload. DATA_LOSS ("corrupt KV block: ...") for anything malformed.
absl::StatusOr<KvTensorHeader> PeekKvTensor(absl::string_view bytes);

// Decodes a block into *out (shape.elements() floats), and its header into
// *header when given. DATA_LOSS ("corrupt KV block: ...") for any malformed
// input: bad header, payload checksum, zstd frame, padding, or parameters
// or values that the encoder never writes (NaN, infinity). Never reads out
// of bounds; allocates only *out and, for a zstd payload, its raw bytes
// (both bounded by kMaxKvTensorElements / kMaxKvPayloadBytes, and sized
// only after the header and the frame agree on them). On error *out is
// empty.
absl::Status DecodeKvTensor(absl::string_view bytes, std::vector<float>* out,
                            KvTensorHeader* header = nullptr);

// Validates a block like DecodeKvTensor and hands back its raw payload with
// the entropy stage undone, for a consumer that decodes elsewhere (int8 /
// int4: the attention/kv_quant.h layout, which kernels/kv_dequant.h
// decodes on a GPU; kvq: the attention/kvq.h payload, which
// attention::ParseKvq turns into the planes kernels/kvq_dequant.h decodes;
// fp kinds: little-endian elements). The payload's
// elements are not checked (DecodeKvTensor does that).
absl::Status DecodeKvPayload(absl::string_view bytes, KvTensorHeader* header, std::string* payload);

// DecodeKvPayload without a copy where it can: the payload as a view into
// `bytes` when the block has no entropy stage, else into *scratch (which
// then holds it). Valid while `bytes` and *scratch are.
absl::StatusOr<absl::string_view> ViewKvPayload(absl::string_view bytes, KvTensorHeader* header,
                                                std::string* scratch);

// Testing seam: recomputes both checksums of a block in place (no-op when it
// is shorter than the header), so tests and the fuzzer can reach the checks
// behind them with crafted fields.
void ResealKvTensorForTesting(std::string* bytes);

// bfloat16 bits <-> float (common/half.h). FloatToBf16 rounds to nearest
// even (overflow to infinity, NaN stays a quiet NaN); Bf16ToFloat is exact.
uint16_t FloatToBf16(float f);
float Bf16ToFloat(uint16_t b);

// x as little-endian elements of `dtype` (fp16 / bf16 round to nearest
// even; a value beyond the type's range becomes infinity: validate first
// where that matters).
std::string FloatsToDtype(absl::Span<const float> x, KvDtype dtype);
// Replaces *out with the elements of `bytes`. INVALID_ARGUMENT when the
// byte count is not a multiple of KvDtypeBytes(dtype) or dtype is unknown.
// Non-finite elements are passed through (callers validate).
absl::Status DtypeToFloats(absl::string_view bytes, KvDtype dtype, std::vector<float>* out);

}  // namespace mnemo::db

#endif  // MNEMO_DB_KV_CODEC_H_
