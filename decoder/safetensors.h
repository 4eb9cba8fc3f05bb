// Reading and writing safetensors files: an 8-byte little-endian header
// length, a JSON header {name: {dtype, shape, data_offsets: [begin, end]},
// "__metadata__": {string: string}}, then the tensor bytes. Only the dtypes
// the decoder uses are accepted (F32, I32).
#ifndef MNEMO_DECODER_SAFETENSORS_H_
#define MNEMO_DECODER_SAFETENSORS_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace mnemo::decoder {

enum class DType { kF32, kI32 };

const char* DTypeName(DType dtype);

struct TensorInfo {
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // byte offsets into the data section
  uint64_t end = 0;
  int64_t NumElements() const;
};

// A whole safetensors file read into memory. Immutable after Open; safe to
// read from several threads.
class SafetensorsFile {
 public:
  // Reads and validates `path`: header length within the file, JSON header
  // an object, every entry with a known dtype, non-negative shape, offsets
  // in order inside the data section and size == elements * dtype size.
  // NOT_FOUND when the file is missing, DATA_LOSS for a truncated or
  // malformed file, INVALID_ARGUMENT for an unsupported dtype.
  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> Open(const std::string& path);
  // The same checks on bytes already in memory; `source` names them in errors.
  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> Parse(std::string bytes,
                                                                const std::string& source);

  const std::map<std::string, TensorInfo>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  bool Has(const std::string& name) const { return tensors_.count(name) > 0; }

  // The float32 data of `name`. NOT_FOUND when absent; INVALID_ARGUMENT when
  // its dtype is not F32 or, with a non-empty `shape`, its shape differs.
  absl::StatusOr<absl::Span<const float>> F32(const std::string& name,
                                              const std::vector<int64_t>& shape = {}) const;
  absl::StatusOr<absl::Span<const int32_t>> I32(const std::string& name,
                                                const std::vector<int64_t>& shape = {}) const;

 private:
  SafetensorsFile() = default;
  absl::StatusOr<const TensorInfo*> Find(const std::string& name, DType dtype,
                                         const std::vector<int64_t>& shape) const;

  std::string source_;
  std::string bytes_;       // the whole file
  uint64_t data_start_ = 0;  // 8 + header length
  std::map<std::string, TensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
};

// Collects tensors (copied) and writes them as one safetensors file,
// atomically (temporary file + rename). Names are written sorted.
class SafetensorsWriter {
 public:
  void AddF32(const std::string& name, std::vector<int64_t> shape, absl::Span<const float> data);
  void AddI32(const std::string& name, std::vector<int64_t> shape,
              absl::Span<const int32_t> data);
  void SetMetadata(const std::string& key, const std::string& value);
  // INVALID_ARGUMENT when a tensor's element count does not match its shape;
  // INTERNAL on I/O failure.
  absl::Status Write(const std::string& path) const;

 private:
  struct Entry {
    DType dtype;
    std::vector<int64_t> shape;
    std::string bytes;
  };
  std::map<std::string, Entry> entries_;
  std::map<std::string, std::string> metadata_;
};

std::string ShapeString(const std::vector<int64_t>& shape);

}  // namespace mnemo::decoder

#endif  // MNEMO_DECODER_SAFETENSORS_H_
