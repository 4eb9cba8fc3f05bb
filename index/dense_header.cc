#include "index/dense_header.h"

#include <string>

#include "absl/strings/str_cat.h"

namespace mnemo::index::internal {

void PutDenseHeader(std::vector<uint8_t>* out, uint32_t magic, uint32_t version,
                    const DenseIndexOptions& options) {
  Put(out, magic);
  Put(out, version);
  Put(out, options.dim);
  Put(out, static_cast<uint32_t>(options.metric));
  Put(out, static_cast<uint32_t>(options.factory.size()));
  PutBytes(out, options.factory.data(), options.factory.size());
}

absl::Status ReadDenseHeader(ByteReader* reader, uint32_t magic, uint32_t version,
                             const DenseIndexOptions& options, absl::string_view kind) {
  auto data_loss = [kind](absl::string_view why) {
    return absl::DataLossError(absl::StrCat("corrupt ", kind, ": ", why));
  };
  uint32_t got_magic = 0, got_version = 0, dim = 0, metric = 0, factory_len = 0;
  if (!reader->Get(&got_magic) || got_magic != magic) return data_loss("bad magic");
  if (!reader->Get(&got_version) || got_version != version) {
    return data_loss("unsupported version");
  }
  if (!reader->Get(&dim) || !reader->Get(&metric) || !reader->Get(&factory_len) ||
      factory_len > reader->remaining()) {
    return data_loss("truncated header");
  }
  std::string factory(factory_len, '\0');
  reader->GetBytes(factory.data(), factory_len);
  if (dim != options.dim || metric != static_cast<uint32_t>(options.metric) ||
      factory != options.factory) {
    return absl::FailedPreconditionError(absl::StrCat(
        "serialized index is ", factory, " dim ", dim, " metric ", metric, "; options ask for ",
        options.factory, " dim ", options.dim, " metric ",
        static_cast<uint32_t>(options.metric)));
  }
  return absl::OkStatus();
}

}  // namespace mnemo::index::internal
