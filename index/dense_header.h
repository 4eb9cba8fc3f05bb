// The header every dense index engine writes before its own payload: magic
// and version of the engine's format, then the dimension, metric and
// factory string the index was built with. One writer and one checked
// reader, shared by the FAISS and HNSW engines.
#ifndef MNEMO_INDEX_DENSE_HEADER_H_
#define MNEMO_INDEX_DENSE_HEADER_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "index/byte_io.h"
#include "index/dense_index.h"

namespace mnemo::index::internal {

void PutDenseHeader(std::vector<uint8_t>* out, uint32_t magic, uint32_t version,
                    const DenseIndexOptions& options);

// Reads and checks the header: DATA_LOSS "corrupt <kind>: ..." for a wrong
// magic or version or a truncated header, FAILED_PRECONDITION when the
// index was built with other options (dimension, metric, factory).
absl::Status ReadDenseHeader(ByteReader* reader, uint32_t magic, uint32_t version,
                             const DenseIndexOptions& options, absl::string_view kind);

}  // namespace mnemo::index::internal

#endif  // MNEMO_INDEX_DENSE_HEADER_H_
