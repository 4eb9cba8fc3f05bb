// Encodings of the values mnemo stores in RocksDB and of index snapshot
// files.
//
// Documents and chunks use a small binary form: a format byte (1) followed by
// length-prefixed fields (LEB128 varint length, then the bytes). Decoding
// checks every length against the value size and returns DATA_LOSS on any
// mismatch, so a torn or foreign value never crashes a reader.
//
//   DocumentRecord: 0x01 text metadata_json
//   ChunkRecord:    0x01 chunk_id document_id text metadata_json
//                   0x02 chunk_id document_id text metadata_json
//                        varint source_begin varint source_end
//                   (format 2 is written only for chunks with a source
//                   range; both are read)
//
// Namespace configs are JSON (readable with ldb, easy to extend); counters
// and vectors are fixed-width binary.
//
//   MultiVecRecord (token vectors of one chunk, all integers little-endian):
//     0x01 u32 ntokens  ntokens * dim fp16 (IEEE binary16)   staged, raw
//     0x02 u32 ntokens  ntokens * u32 centroid id
//                       ntokens * code_size residual bytes  encoded
//   (index/residual_codec.h defines centroid ids and residual codes.)
#ifndef MNEMO_DB_RECORDS_H_
#define MNEMO_DB_RECORDS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "db/store.h"

namespace mnemo::db::records {

std::string EncodeDocument(absl::string_view text, absl::string_view metadata_json);
// Fills text and metadata_json of `doc` (the id lives in the key).
absl::Status DecodeDocument(absl::string_view value, Document* doc);

std::string EncodeChunk(absl::string_view chunk_id, absl::string_view document_id,
                        absl::string_view text, absl::string_view metadata_json,
                        uint64_t source_begin = 0, uint64_t source_end = 0);
// Fills id, document_id, text, metadata_json and the source range of
// `chunk` (0, 0 for format 1).
absl::Status DecodeChunk(absl::string_view value, Chunk* chunk);

// Persistent description of a namespace: its config plus the numeric id
// and creation time, stored as JSON under meta "ns/<name>".
struct StoredNamespace {
  NamespaceConfig config;
  uint32_t nsid = 0;
  int64_t created_unix_ms = 0;
};
std::string EncodeNamespace(const StoredNamespace& ns);
absl::StatusOr<StoredNamespace> DecodeNamespace(absl::string_view value);

// Per-namespace counters updated in the same WriteBatch as every write.
struct NamespaceCounters {
  uint64_t next_internal_id = 1;  // next internal chunk id to allocate
  uint64_t next_log_seq = 1;      // sequence of the next index-log entry
};
std::string EncodeCounters(const NamespaceCounters& c);
absl::StatusOr<NamespaceCounters> DecodeCounters(absl::string_view value);

// Raw float32, little-endian (the host order on every supported target).
std::string EncodeVector(absl::Span<const float> v);
// Appends the floats of `value` to `out`; DATA_LOSS when the size is not
// dim * 4.
absl::Status DecodeVector(absl::string_view value, uint32_t dim, std::vector<float>* out);

// IEEE binary16 conversions (common/half.h: round to nearest even; overflow
// to infinity).
uint16_t FloatToHalf(float f);
float HalfToFloat(uint16_t h);

// One chunk's token vectors as stored in the multivec CF.
struct MultiVecRecord {
  uint32_t ntokens = 0;
  bool encoded = false;
  std::vector<float> raw;            // staged: ntokens * dim (fp16 widened)
  std::vector<uint32_t> centroids;   // encoded: ntokens
  std::vector<uint8_t> residuals;    // encoded: ntokens * code_size
};
// `tokens` holds n * dim floats, stored as fp16.
std::string EncodeMultiVecRaw(absl::Span<const float> tokens, uint32_t dim);
std::string EncodeMultiVecCoded(absl::Span<const uint32_t> centroids,
                                absl::Span<const uint8_t> residuals);
// DATA_LOSS on a bad format byte, size or token count (>= 1 required).
// `code_size` is only used for encoded records (pass 0 when no codec is
// known: an encoded record is then DATA_LOSS).
absl::Status DecodeMultiVec(absl::string_view value, uint32_t dim, size_t code_size,
                            MultiVecRecord* out);

// Index snapshot file: "MNEMOIDX" magic, u32 format (1), u32 nsid, u64 last
// applied index-log seq, u64 payload size, payload (DenseIndex::Serialize),
// u64 FNV-1a checksum of everything before it. All integers little-endian.
struct SnapshotFile {
  uint32_t nsid = 0;
  uint64_t log_seq = 0;
  std::vector<uint8_t> payload;
};
std::string EncodeSnapshot(uint32_t nsid, uint64_t log_seq,
                           absl::Span<const uint8_t> payload);
// DATA_LOSS on a bad magic, size or checksum.
absl::StatusOr<SnapshotFile> DecodeSnapshot(absl::string_view bytes);

}  // namespace mnemo::db::records

#endif  // MNEMO_DB_RECORDS_H_
