// Keys and values of memory injection (db/injection.h) in RocksDB.
//
//   meta   "ij/" nsid (u32 BE)          -> InjectionModelRecord: the model's
//                                          files, `exact`, registration time
//   inject nsid internal_id (u64 BE)    -> InjectionChunkRecord of one chunk
//          (the chunks / dense CF key, keys::RowKey)
//
// All integers little-endian (db/le_bytes.h):
//   InjectionModelRecord: 0x01 u8 exact i64 registered_unix_ms u32 nfiles
//                         nfiles * (u32 name_len name u64 size bytes)
//   InjectionChunkRecord: 0x01 u8 flags (bit 0: exact) 16-byte model tag
//                         u32 decoder_dim u32 memory_tokens u32 code_size
//                         decoder_dim fp32            xRAG vector
//                         memory_tokens * code_size   PQ codes, one per row
//                         memory_tokens * decoder_dim fp32 (exact only)
// The model tag is the first 16 hex digits of the model's weights sha256:
// a record written by another model is told apart without decoding it.
// Decoders return DATA_LOSS on any size or format mismatch.
#ifndef MNEMO_DB_INJECTION_RECORDS_H_
#define MNEMO_DB_INJECTION_RECORDS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "db/injection.h"

namespace mnemo::db::injection {

inline constexpr char kInjectCf[] = "inject";
inline constexpr char kModelPrefix[] = "ij/";
inline constexpr size_t kTagSize = 16;

std::string ModelKey(uint32_t nsid);

struct ModelRecord {
  InjectionFiles files;
  bool exact = false;
  int64_t registered_unix_ms = 0;
};
std::string EncodeModel(const ModelRecord& record);
absl::StatusOr<ModelRecord> DecodeModel(absl::string_view value);

// The tag records of a model with this weights hash carry.
std::string ModelTag(absl::string_view model_sha256);

struct ChunkRecord {
  std::string tag;
  uint32_t decoder_dim = 0;
  uint32_t memory_tokens = 0;
  uint32_t code_size = 0;
  std::vector<float> xrag;     // decoder_dim
  std::vector<uint8_t> codes;  // memory_tokens * code_size
  std::vector<float> exact;    // memory_tokens * decoder_dim, or empty
};
// `exact` may be empty (not kept).
std::string EncodeChunk(absl::string_view tag, uint32_t memory_tokens,
                        absl::Span<const float> xrag, absl::Span<const uint8_t> codes,
                        absl::Span<const float> exact);
absl::StatusOr<ChunkRecord> DecodeChunk(absl::string_view value);

}  // namespace mnemo::db::injection

#endif  // MNEMO_DB_INJECTION_RECORDS_H_
