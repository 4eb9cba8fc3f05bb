#include "decoder/safetensors.h"

#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"

namespace mnemo::decoder {
namespace {

// Headers larger than this are refused as garbage (the format's own limit
// is 100 MB; ours are a few KB).
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

size_t DTypeSize(DType) { return 4; }

absl::StatusOr<DType> ParseDType(const std::string& s) {
  if (s == "F32") return DType::kF32;
  if (s == "I32") return DType::kI32;
  return absl::InvalidArgumentError(absl::StrCat("unsupported dtype \"", s, "\""));
}

}  // namespace

const char* DTypeName(DType dtype) { return dtype == DType::kF32 ? "F32" : "I32"; }

std::string ShapeString(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

int64_t TensorInfo::NumElements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat("read error on ", path));
  return Parse(std::move(ss).str(), path);
}

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Parse(
    std::string bytes, const std::string& source) {
  auto loss = [&](const std::string& why) {
    return absl::DataLossError(absl::StrCat(source, ": not a valid safetensors file: ", why));
  };
  if (bytes.size() < 8) return loss(absl::StrCat("only ", bytes.size(), " bytes"));
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) {
    header_len = (header_len << 8) | static_cast<unsigned char>(bytes[i]);
  }
  if (header_len > kMaxHeaderBytes || header_len > bytes.size() - 8) {
    return loss(absl::StrCat("header length ", header_len, " exceeds the file (", bytes.size(),
                             " bytes)"));
  }
  nlohmann::json header = nlohmann::json::parse(bytes.begin() + 8,
                                                bytes.begin() + 8 + header_len, nullptr,
                                                /*allow_exceptions=*/false);
  if (header.is_discarded() || !header.is_object()) return loss("header is not a JSON object");

  std::unique_ptr<SafetensorsFile> file(new SafetensorsFile());
  file->source_ = source;
  file->data_start_ = 8 + header_len;
  const uint64_t data_size = bytes.size() - file->data_start_;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const nlohmann::json& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object()) return loss("__metadata__ is not an object");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string()) return loss("__metadata__ values must be strings");
        file->metadata_[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") ||
        !v.contains("data_offsets") || !v["dtype"].is_string() || !v["shape"].is_array() ||
        !v["data_offsets"].is_array() || v["data_offsets"].size() != 2) {
      return loss(absl::StrCat("entry \"", name, "\" lacks dtype, shape or data_offsets"));
    }
    TensorInfo info;
    absl::StatusOr<DType> dtype = ParseDType(v["dtype"].get<std::string>());
    if (!dtype.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ": tensor \"", name, "\": ", dtype.status().message()));
    }
    info.dtype = *dtype;
    for (const auto& d : v["shape"]) {
      if (!d.is_number_integer() || d.get<int64_t>() < 0) {
        return loss(absl::StrCat("tensor \"", name, "\" has a bad shape"));
      }
      info.shape.push_back(d.get<int64_t>());
    }
    for (const auto& o : v["data_offsets"]) {
      if (!o.is_number_unsigned()) {
        return loss(absl::StrCat("tensor \"", name, "\" has bad data_offsets"));
      }
    }
    info.begin = v["data_offsets"][0].get<uint64_t>();
    info.end = v["data_offsets"][1].get<uint64_t>();
    if (info.begin > info.end || info.end > data_size) {
      return loss(absl::StrCat("tensor \"", name, "\" data [", info.begin, ", ", info.end,
                               ") lies outside the data section of ", data_size,
                               " bytes (truncated file?)"));
    }
    // Shapes are small; the product cannot overflow for a file that fits.
    if (info.end - info.begin != static_cast<uint64_t>(info.NumElements()) * DTypeSize(info.dtype)) {
      return loss(absl::StrCat("tensor \"", name, "\" has ", info.end - info.begin,
                               " bytes for shape ", ShapeString(info.shape)));
    }
    if (info.begin % 4 != 0) {
      return loss(absl::StrCat("tensor \"", name, "\" is not 4-byte aligned"));
    }
    file->tensors_[name] = std::move(info);
  }
  // Drop the header so the data section starts at the (16-byte aligned)
  // start of the buffer whatever the header length.
  bytes.erase(0, file->data_start_);
  file->data_start_ = 0;
  file->bytes_ = std::move(bytes);
  return file;
}

absl::StatusOr<const TensorInfo*> SafetensorsFile::Find(const std::string& name, DType dtype,
                                                        const std::vector<int64_t>& shape) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) {
    return absl::NotFoundError(absl::StrCat(source_, ": no tensor \"", name, "\""));
  }
  if (it->second.dtype != dtype) {
    return absl::InvalidArgumentError(absl::StrCat(source_, ": tensor \"", name, "\" is ",
                                                   DTypeName(it->second.dtype), ", expected ",
                                                   DTypeName(dtype)));
  }
  if (!shape.empty() && it->second.shape != shape) {
    return absl::InvalidArgumentError(absl::StrCat(source_, ": tensor \"", name, "\" has shape ",
                                                   ShapeString(it->second.shape), ", expected ",
                                                   ShapeString(shape)));
  }
  return &it->second;
}

absl::StatusOr<absl::Span<const float>> SafetensorsFile::F32(
    const std::string& name, const std::vector<int64_t>& shape) const {
  absl::StatusOr<const TensorInfo*> info = Find(name, DType::kF32, shape);
  if (!info.ok()) return info.status();
  const char* p = bytes_.data() + data_start_ + (*info)->begin;
  if (reinterpret_cast<uintptr_t>(p) % alignof(float) != 0) {
    return absl::InternalError("misaligned tensor data");
  }
  return absl::Span<const float>(reinterpret_cast<const float*>(p), (*info)->NumElements());
}

absl::StatusOr<absl::Span<const int32_t>> SafetensorsFile::I32(
    const std::string& name, const std::vector<int64_t>& shape) const {
  absl::StatusOr<const TensorInfo*> info = Find(name, DType::kI32, shape);
  if (!info.ok()) return info.status();
  const char* p = bytes_.data() + data_start_ + (*info)->begin;
  if (reinterpret_cast<uintptr_t>(p) % alignof(int32_t) != 0) {
    return absl::InternalError("misaligned tensor data");
  }
  return absl::Span<const int32_t>(reinterpret_cast<const int32_t*>(p), (*info)->NumElements());
}

void SafetensorsWriter::AddF32(const std::string& name, std::vector<int64_t> shape,
                               absl::Span<const float> data) {
  entries_[name] = Entry{DType::kF32, std::move(shape),
                         std::string(reinterpret_cast<const char*>(data.data()),
                                     data.size() * sizeof(float))};
}

void SafetensorsWriter::AddI32(const std::string& name, std::vector<int64_t> shape,
                               absl::Span<const int32_t> data) {
  entries_[name] = Entry{DType::kI32, std::move(shape),
                         std::string(reinterpret_cast<const char*>(data.data()),
                                     data.size() * sizeof(int32_t))};
}

void SafetensorsWriter::SetMetadata(const std::string& key, const std::string& value) {
  metadata_[key] = value;
}

absl::Status SafetensorsWriter::Write(const std::string& path) const {
  nlohmann::json header = nlohmann::json::object();
  uint64_t offset = 0;
  for (const auto& [name, e] : entries_) {
    int64_t n = 1;
    for (int64_t d : e.shape) n *= d;
    if (static_cast<uint64_t>(n) * 4 != e.bytes.size()) {
      return absl::InvalidArgumentError(absl::StrCat("tensor \"", name, "\": ", e.bytes.size() / 4,
                                                     " elements for shape ",
                                                     ShapeString(e.shape)));
    }
    header[name] = {{"dtype", DTypeName(e.dtype)},
                    {"shape", e.shape},
                    {"data_offsets", {offset, offset + e.bytes.size()}}};
    offset += e.bytes.size();
  }
  if (!metadata_.empty()) header["__metadata__"] = metadata_;
  std::string h = header.dump();
  h.append((8 - h.size() % 8) % 8, ' ');
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return absl::InternalError(absl::StrCat("cannot create ", tmp));
    char len[8];
    uint64_t hl = h.size();
    for (int i = 0; i < 8; ++i) len[i] = static_cast<char>((hl >> (8 * i)) & 0xff);
    out.write(len, 8);
    out.write(h.data(), static_cast<std::streamsize>(h.size()));
    for (const auto& [name, e] : entries_) {
      out.write(e.bytes.data(), static_cast<std::streamsize>(e.bytes.size()));
    }
    out.flush();
    if (!out) return absl::InternalError(absl::StrCat("write error on ", tmp));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("cannot rename ", tmp, " to ", path, ": ",
                                            std::strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace mnemo::decoder
