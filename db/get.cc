// Point reads: Get of chunks (with or without their vectors) and documents
// by external id.
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "db/keys.h"
#include "db/records.h"
#include "db/store_impl.h"
#include "db/validation.h"

namespace mnemo::db {

absl::StatusOr<GetResult> StoreImpl::Get(absl::string_view ns_name,
                                         absl::Span<const std::string> chunk_ids,
                                         absl::Span<const std::string> document_ids,
                                         bool include_vectors) {
  ASSIGN_OR_RETURN(NamespacePtr ns, FindNamespace(ns_name));
  RETURN_IF_ERROR(ValidateIdLists("get", chunk_ids, document_ids, options_.limits));

  absl::ReaderMutexLock lock(&ns->mu);
  RETURN_IF_ERROR(ns->GoneStatus());
  const uint32_t nsid = ns->nsid;
  GetResult result;

  std::vector<std::string> map_keys;
  for (const std::string& id : chunk_ids) map_keys.push_back(keys::IdMapKey(nsid, id));
  ASSIGN_OR_RETURN(auto internal, MultiGet(idmap_, map_keys));
  std::vector<std::string> row_keys;
  std::vector<size_t> found;
  for (size_t i = 0; i < chunk_ids.size(); ++i) {
    auto id = internal[i].has_value() ? keys::ReadU64(*internal[i]) : std::nullopt;
    if (!id.has_value()) {
      result.missing_ids.push_back(chunk_ids[i]);
      continue;
    }
    row_keys.push_back(keys::RowKey(nsid, static_cast<int64_t>(*id)));
    found.push_back(i);
  }
  ASSIGN_OR_RETURN(auto rows, MultiGet(chunks_, row_keys));
  std::vector<std::optional<std::string>> dense_rows;
  if (include_vectors) {
    ASSIGN_OR_RETURN(dense_rows, MultiGet(dense_, row_keys));
  }
  for (size_t j = 0; j < found.size(); ++j) {
    if (!rows[j].has_value()) {
      return absl::DataLossError(
          absl::StrCat("chunk '", chunk_ids[found[j]], "' is mapped but has no record"));
    }
    Chunk chunk;
    RETURN_IF_ERROR(records::DecodeChunk(*rows[j], &chunk));
    if (include_vectors) {
      if (!dense_rows[j].has_value()) {
        return absl::DataLossError(
            absl::StrCat("chunk '", chunk.id, "' has no stored vector"));
      }
      RETURN_IF_ERROR(records::DecodeVector(*dense_rows[j], ns->config.dim, &chunk.vector));
    }
    result.chunks.push_back(std::move(chunk));
  }

  std::vector<std::string> doc_keys;
  for (const std::string& id : document_ids) doc_keys.push_back(keys::DocKey(nsid, id));
  ASSIGN_OR_RETURN(auto docs, MultiGet(docs_, doc_keys));
  for (size_t i = 0; i < document_ids.size(); ++i) {
    if (!docs[i].has_value()) {
      result.missing_ids.push_back(document_ids[i]);
      continue;
    }
    Document doc;
    doc.id = document_ids[i];
    RETURN_IF_ERROR(records::DecodeDocument(*docs[i], &doc));
    result.documents.push_back(std::move(doc));
  }
  return result;
}

}  // namespace mnemo::db
