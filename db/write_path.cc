// The write path: Upsert (validation, chunking and embedding outside the
// lock, then staging rows and index-log entries), Delete, and the one
// commit/apply routine every write of a namespace goes through
// (CommitLocked: one synced WriteBatch, then the in-memory state).
#include <cmath>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "db/bounded_iterator.h"
#include "db/keys.h"
#include "db/kv_records.h"
#include "db/namespace_quota.h"
#include "db/records.h"
#include "db/rocks_status.h"
#include "db/store_impl.h"
#include "db/token_vectors.h"
#include "db/validation.h"
#include "encoder/chunker.h"
#include "spdlog/spdlog.h"

namespace mnemo::db {

absl::Status StoreImpl::CommitLocked(Namespace* ns, NamespaceWrite* write,
                                     absl::string_view what) {
  // Quotas first: a refused write stages and applies nothing.
  RETURN_IF_ERROR(CheckQuotaLocked(*ns, *write));
  std::shared_ptr<const index::ResidualCodec> trained_codec;
  std::vector<std::pair<int64_t, index::ResidualCodes>> reencoded;
  if (write->chunks_changed) {
    if (ns->multivec != nullptr) {
      if (write->tokens.size() != write->added.size()) write->tokens.resize(write->added.size());
      RETURN_IF_ERROR(StageMultiVecLocked(ns, &write->batch, write->removed, write->added,
                                          &write->tokens, &trained_codec, &reencoded));
    }
    // A removed chunk takes its KV and injection record along, in the
    // same commit.
    injection_store_.StageLocked(*ns, &write->batch, write->removed, write->added,
                                 write->inject_records);
    StageKvRemovalLocked(*ns, &write->batch, write->removed);
    for (int64_t id : write->removed) write->kv_erased.emplace_back(id, KvSpace::Why::kDeleted);
    write->batch.Put(meta_, keys::NsCountersKey(ns->nsid), records::EncodeCounters(write->counters));
  }
  RETURN_IF_ERROR(WriteToDb(SyncedWrite(), &write->batch, what));

  if (ns->kv != nullptr) {
    for (const auto& [id, why] : write->kv_erased) ns->kv->Erase(id, why);
    for (const auto& [id, entry] : write->kv_put) ns->kv->Put(id, entry);
    for (const auto& [id, entry] : write->kv_retention) {
      ns->kv->SetRetention(id, entry.pinned, entry.expires_ms);
    }
  }
  if (!write->chunks_changed) return absl::OkStatus();
  if (ns->bm25 != nullptr) {
    absl::Status applied = ns->bm25->ApplyCommitted(write->bm25);
    if (!applied.ok()) {
      // Cannot happen while writes hold the namespace lock; the data is
      // committed and the next update rewrites the statistics.
      spdlog::error("namespace '{}': BM25 statistics: {}", ns->config.name, applied.ToString());
    }
  }
  RETURN_IF_ERROR(ApplyChunksLocked(ns, write));
  if (ns->multivec != nullptr) {
    RETURN_IF_ERROR(ApplyMultiVecLocked(ns, write->removed, write->added,
                                        std::move(write->tokens), std::move(trained_codec),
                                        std::move(reencoded)));
  }
  return absl::OkStatus();
}

absl::Status StoreImpl::ApplyChunksLocked(Namespace* ns, NamespaceWrite* write) {
  const std::vector<int64_t>& removed = write->removed;
  const std::vector<int64_t>& added = write->added;
  ns->counters = write->counters;
  ns->document_count =
      static_cast<uint64_t>(static_cast<int64_t>(ns->document_count) + write->doc_delta);
  ns->stored_bytes =
      static_cast<uint64_t>(static_cast<int64_t>(ns->stored_bytes) + write->bytes_delta);
  for (int64_t id : removed) {
    ns->attrs.Erase(id);
    ns->external_ids.erase(id);
  }
  for (auto& [id, attrs] : write->added_attrs) {
    if (!attrs.empty()) ns->attrs.Set(id, std::move(attrs));
  }
  for (size_t i = 0; i < added.size(); ++i) {
    ns->external_ids[added[i]] = std::move(write->added_external[i]);
  }
  if (!removed.empty() && KeepsDeadEntries(ns->config.index_factory)) {
    ns->may_have_dead_entries = true;
  }

  absl::Status st;
  if (!removed.empty()) st = ns->index->Remove(removed).status();
  if (st.ok() && !added.empty()) st = ns->index->Add(added, write->vectors);
  if (!st.ok()) {
    // The data is committed; bring the index back in line with it.
    spdlog::error("namespace '{}': index update failed ({}); rebuilding from stored vectors",
                  ns->config.name, st.ToString());
    absl::Status rebuilt = RebuildIndexLocked(ns);
    if (!rebuilt.ok()) {
      return absl::InternalError(absl::StrCat(
          "write committed but the index could not be updated: ", st.message(),
          "; rebuild failed: ", rebuilt.message()));
    }
  }
  const uint64_t pending =
      ns->ops_since_snapshot.fetch_add(write->log_ops) + write->log_ops;
  if (options_.snapshot_every_ops > 0 && pending >= options_.snapshot_every_ops) {
    RequestSnapshot();
  }
  return absl::OkStatus();
}

void StoreImpl::StageKvRemovalLocked(const Namespace& ns, rocksdb::WriteBatch* batch,
                                     absl::Span<const int64_t> ids) {
  if (ns.kv == nullptr) return;
  for (int64_t id : ids) {
    std::optional<KvEntry> e = ns.kv->Find(id);
    if (!e.has_value()) continue;
    for (uint32_t l = 0; l < e->n_layers; ++l) {
      batch->Delete(kv_, kvrecords::BlockKey(ns.nsid, id, l));
      batch->Delete(kv_, kvrecords::KeyIndexKey(ns.nsid, id, l));
    }
    batch->Delete(kv_, kvrecords::ChunkKey(ns.nsid, id));
    batch->Delete(kv_, kvrecords::RecencyKey(ns.nsid, id));
  }
}

namespace {

// Validates an Upsert before anything is touched (ids, duplicates, dims,
// NaN/Inf, text and metadata; see Store::Upsert). Fills the filter
// attributes of each document and chunk and `chunk_ids` with the chunk ids
// given (views into `chunks_in`).
absl::Status ValidateUpsert(const NamespaceConfig& config, const Limits& limits,
                            absl::Span<const Document> documents,
                            absl::Span<const Chunk> chunks_in,
                            std::vector<index::Attributes>* doc_attrs_out,
                            std::vector<index::Attributes>* chunk_attrs_out,
                            absl::flat_hash_set<absl::string_view>* chunk_ids) {
  const absl::string_view ns_name = config.name;
  const uint32_t dim = config.dim;
  const bool text_ns = !config.encoder.empty();
  if (documents.size() + chunks_in.size() > limits.max_write_batch) {
    return absl::ResourceExhaustedError(
        absl::StrCat("write carries ", documents.size() + chunks_in.size(),
                     " documents and chunks; the limit is ", limits.max_write_batch));
  }
  absl::flat_hash_set<absl::string_view>& seen = *chunk_ids;
  std::vector<index::Attributes>& doc_attrs = *doc_attrs_out;
  doc_attrs.resize(documents.size());
  for (size_t d = 0; d < documents.size(); ++d) {
    const Document& doc = documents[d];
    RETURN_IF_ERROR(ValidateId(doc.id, "document", limits));
    if (!seen.insert(doc.id).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("document id '", doc.id, "' appears twice in one write"));
    }
    const std::string what = absl::StrCat("document '", doc.id, "'");
    RETURN_IF_ERROR(ValidateText(doc.text, what, limits));
    RETURN_IF_ERROR(ValidateMetadata(doc.metadata_json, what, limits, &doc_attrs[d]));
    if (text_ns && IsBlank(doc.text)) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, " has empty or whitespace-only text; an encoder namespace chunks and embeds "
                "document text"));
    }
  }
  seen.clear();
  std::vector<index::Attributes>& chunk_attrs = *chunk_attrs_out;
  chunk_attrs.resize(chunks_in.size());
  for (size_t c = 0; c < chunks_in.size(); ++c) {
    const Chunk& chunk = chunks_in[c];
    RETURN_IF_ERROR(ValidateId(chunk.id, "chunk", limits));
    if (!seen.insert(chunk.id).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("chunk id '", chunk.id, "' appears twice in one write"));
    }
    if (!chunk.document_id.empty()) {
      RETURN_IF_ERROR(ValidateId(chunk.document_id, "document", limits));
    }
    const std::string what = absl::StrCat("chunk '", chunk.id, "'");
    if (chunk.vector.empty() && !chunk.text.empty() && !text_ns) {
      return absl::FailedPreconditionError(absl::StrCat(
          what, " has text but no vector, and namespace '", ns_name,
          "' has no encoder to embed it; send vectors or create the namespace with an encoder"));
    }
    const bool to_embed = chunk.vector.empty() && !chunk.text.empty();
    if (!to_embed && chunk.vector.size() != dim) {
      return absl::InvalidArgumentError(absl::StrCat(what, " has a vector of ",
                                                     chunk.vector.size(),
                                                     " floats; the namespace dim is ", dim));
    }
    for (size_t i = 0; i < chunk.vector.size(); ++i) {
      if (!std::isfinite(chunk.vector[i])) {
        return absl::InvalidArgumentError(
            absl::StrCat(what, " has a non-finite value at index ", i));
      }
    }
    RETURN_IF_ERROR(ValidateText(chunk.text, what, limits));
    RETURN_IF_ERROR(ValidateMetadata(chunk.metadata_json, what, limits, &chunk_attrs[c]));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<WriteResult> StoreImpl::Upsert(absl::string_view ns_name,
                                              absl::Span<const Document> documents,
                                              absl::Span<const Chunk> chunks_in) {
  ASSIGN_OR_RETURN(NamespacePtr ns, FindNamespace(ns_name));
  const Limits& limits = options_.limits;
  const uint32_t dim = ns->config.dim;
  const bool text_ns = !ns->config.encoder.empty();

  // Validate everything before touching the store.
  absl::flat_hash_set<absl::string_view> seen;
  std::vector<index::Attributes> doc_attrs;
  std::vector<index::Attributes> chunk_attrs;
  RETURN_IF_ERROR(ValidateUpsert(ns->config, limits, documents, chunks_in, &doc_attrs,
                                 &chunk_attrs, &seen));

  // Text namespaces: chunk documents, embed chunks without vectors and
  // tokenize every chunk for BM25, all before taking the namespace lock.
  std::vector<Chunk> prepared;
  absl::Span<const Chunk> chunks = chunks_in;
  std::vector<std::vector<uint32_t>> chunk_terms;
  std::vector<std::optional<PendingTokens>> chunk_tokens;  // late interaction
  absl::flat_hash_set<std::string> text_docs;  // documents whose chunks are replaced
  if (text_ns && (!documents.empty() || !chunks_in.empty())) {
    ASSIGN_OR_RETURN(const text::TextEncoder* enc,
                     text::GetEncoder(options_.encoder_dir, ns->config.encoder));
    prepared.assign(chunks_in.begin(), chunks_in.end());
    for (Chunk& chunk : prepared) {
      chunk.source_begin = 0;
      chunk.source_end = 0;
    }
    encoder::ChunkerOptions chunking;
    chunking.max_tokens = static_cast<int>(ns->config.chunk_max_tokens);
    chunking.overlap_tokens = static_cast<int>(ns->config.chunk_overlap_tokens.value_or(0));
    for (size_t d = 0; d < documents.size(); ++d) {
      const Document& doc = documents[d];
      ASSIGN_OR_RETURN(std::vector<encoder::TextChunk> pieces,
                       enc->Chunk(doc.text, chunking));
      if (pieces.empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat("document '", doc.id, "' has text that yields no chunks"));
      }
      text_docs.insert(doc.id);
      for (size_t p = 0; p < pieces.size(); ++p) {
        Chunk chunk;
        chunk.id = absl::StrCat(doc.id, "#", p);
        RETURN_IF_ERROR(ValidateId(chunk.id, "generated chunk", limits));
        if (seen.contains(chunk.id)) {
          return absl::InvalidArgumentError(absl::StrCat(
              "chunk id '", chunk.id, "' is both given and generated from document '", doc.id,
              "'"));
        }
        chunk.document_id = doc.id;
        chunk.text = std::move(pieces[p].text);
        chunk.metadata_json = doc.metadata_json;
        chunk.source_begin = pieces[p].begin;
        chunk.source_end = pieces[p].end;
        prepared.push_back(std::move(chunk));
        chunk_attrs.push_back(doc_attrs[d]);
      }
    }
    if (prepared.size() + documents.size() > limits.max_write_batch) {
      return absl::ResourceExhaustedError(
          absl::StrCat("write carries ", documents.size(), " documents and ", prepared.size(),
                       " chunks after chunking; the limit is ", limits.max_write_batch));
    }
    std::vector<std::string> to_embed;
    std::vector<size_t> embed_index;
    for (size_t c = 0; c < prepared.size(); ++c) {
      if (!prepared[c].vector.empty()) continue;
      to_embed.push_back(prepared[c].text);
      embed_index.push_back(c);
    }
    // With late interaction the network runs once per chunk for both the
    // pooled embedding and the token states.
    const bool late = ns->config.late_interaction.value_or(false);
    std::vector<std::optional<std::vector<float>>> known_states;
    if (late) known_states.resize(prepared.size());
    if (!to_embed.empty()) {
      std::vector<float> embedded;
      if (late) {
        ASSIGN_OR_RETURN(auto both, enc->EncodeWithTokens(to_embed));
        embedded = std::move(both.first);
        if (both.second.size() != to_embed.size()) {
          return absl::InternalError("encoder returned token states for a different batch size");
        }
        for (size_t j = 0; j < embed_index.size(); ++j) {
          known_states[embed_index[j]] = std::move(both.second[j]);
        }
      } else {
        ASSIGN_OR_RETURN(embedded, enc->Encode(to_embed));
      }
      if (embedded.size() != to_embed.size() * dim) {
        return absl::InternalError(absl::StrCat("encoder returned ", embedded.size(),
                                                " floats for ", to_embed.size(), " texts"));
      }
      for (size_t j = 0; j < embed_index.size(); ++j) {
        prepared[embed_index[j]].vector.assign(embedded.begin() + j * dim,
                                               embedded.begin() + (j + 1) * dim);
      }
    }
    chunk_terms.resize(prepared.size());
    for (size_t c = 0; c < prepared.size(); ++c) {
      ASSIGN_OR_RETURN(std::vector<int> ids, enc->Tokenize(prepared[c].text));
      chunk_terms[c].assign(ids.begin(), ids.end());
    }
    if (ns->config.late_interaction.value_or(false)) {
      // The codec only ever goes from absent to trained, so tokens encoded
      // with the one seen here stay valid; tokens staged raw because there
      // was none are encoded under the lock should one appear meanwhile.
      std::shared_ptr<const index::ResidualCodec> codec;
      {
        absl::ReaderMutexLock l(&ns->mu);
        RETURN_IF_ERROR(ns->GoneStatus());
        if (ns->multivec != nullptr) codec = ns->multivec->codec();
      }
      ASSIGN_OR_RETURN(chunk_tokens,
                       PrepareTokens(*enc, prepared, dim, codec.get(), &known_states));
    }
    chunks = prepared;
  }
  // Injection records (xRAG vector, memory codes) of every chunk, when the
  // namespace has an injection model.
  PreparedInjection inject_prepared;
  if (text_ns) {
    ASSIGN_OR_RETURN(inject_prepared, injection_store_.Prepare(ns.get(), chunks));
  }

  absl::MutexLock lock(&ns->mu);
  RETURN_IF_ERROR(ns->GoneStatus());
  if (text_ns) {
    RETURN_IF_ERROR(injection_store_.RecheckLocked(ns.get(), chunks, &inject_prepared));
  }
  if (documents.empty() && chunks.empty()) return WriteResult();
  if (text_ns && ns->bm25 == nullptr) return absl::InternalError("namespace has no BM25 index");
  NamespaceWrite write;
  RETURN_IF_ERROR(StageUpsertLocked(ns.get(), documents, chunks, text_docs, chunk_terms,
                                    &chunk_attrs, &write));
  write.tokens = std::move(chunk_tokens);
  write.inject_records = std::move(inject_prepared.records);
  RETURN_IF_ERROR(CommitLocked(ns.get(), &write, "writing"));
  WriteResult result;
  result.documents_written = documents.size();
  result.chunks_written = chunks.size();
  return result;
}

// Stages the rows and index-log entries of an Upsert (documents, replaced
// and stale chunks removed, new chunks added) into `*write_out`.
// `text_docs` are the documents whose chunks were cut anew, `chunk_terms`
// the BM25 terms of each chunk (encoder namespaces), `chunk_attrs` their
// filter attributes (moved out).
absl::Status StoreImpl::StageUpsertLocked(Namespace* ns, absl::Span<const Document> documents,
                                          absl::Span<const Chunk> chunks,
                                          const absl::flat_hash_set<std::string>& text_docs,
                                          const std::vector<std::vector<uint32_t>>& chunk_terms,
                                          std::vector<index::Attributes>* chunk_attrs,
                                          NamespaceWrite* write_out) {
  const uint32_t dim = ns->config.dim;
  const bool text_ns = !ns->config.encoder.empty();
  const uint32_t nsid = ns->nsid;
  NamespaceWrite& write = *write_out;
  // A write may stage several changes (a memory write stages its chunks
  // after removals); the counters start from the namespace's once.
  if (!write.chunks_changed) write.counters = ns->counters;
  write.chunks_changed = true;
  rocksdb::WriteBatch& batch = write.batch;
  records::NamespaceCounters& counters = write.counters;
  Bm25Update& bm25_update = write.bm25;
  auto log = [&](char op, int64_t id) { write.Log(ilog_, nsid, op, id); };

  int64_t& new_docs = write.doc_delta;
  // Quota bytes (db/quota.h): rows added minus rows replaced or removed.
  int64_t& bytes = write.bytes_delta;
  const auto chunk_bytes = [dim](size_t record_bytes) {
    return static_cast<int64_t>(quota::ChunkBytes(record_bytes, dim));
  };
  {
    std::vector<std::string> doc_keys;
    for (const Document& doc : documents) doc_keys.push_back(keys::DocKey(nsid, doc.id));
    ASSIGN_OR_RETURN(auto existing, MultiGet(docs_, doc_keys));
    for (size_t i = 0; i < documents.size(); ++i) {
      if (!existing[i].has_value()) {
        ++new_docs;
      } else {
        bytes -= static_cast<int64_t>(existing[i]->size());
      }
      std::string record = records::EncodeDocument(documents[i].text, documents[i].metadata_json);
      bytes += static_cast<int64_t>(record.size());
      batch.Put(docs_, doc_keys[i], std::move(record));
    }
  }

  std::vector<int64_t>& removed = write.removed;
  std::vector<int64_t>& added = write.added;
  std::vector<float>& vectors = write.vectors;
  std::vector<std::pair<int64_t, index::Attributes>>& added_attrs = write.added_attrs;
  std::vector<std::string>& added_external = write.added_external;
  {
    // Chunks of re-chunked documents that the new chunking does not
    // replace by id: removed whole.
    absl::flat_hash_set<absl::string_view> new_ids;
    for (const Chunk& chunk : chunks) new_ids.insert(chunk.id);
    std::vector<std::pair<std::string, std::string>> stale;  // (document id, chunk id)
    for (const Document& doc : documents) {
      if (!text_docs.contains(doc.id)) continue;
      const std::string prefix = keys::MembershipPrefix(nsid, doc.id);
      const std::string end = keys::PrefixEnd(prefix);
      BoundedIterator it(db_.get(), docs_, end);
      for (it->Seek(prefix); it->Valid(); it->Next()) {
        std::string chunk_id = it->key().ToString().substr(prefix.size());
        if (!new_ids.contains(chunk_id)) stale.emplace_back(doc.id, std::move(chunk_id));
      }
      RETURN_IF_ERROR(FromRocks(it->status(), "scanning document chunks"));
    }
    std::vector<std::string> stale_map_keys;
    for (const auto& [doc_id, chunk_id] : stale) {
      stale_map_keys.push_back(keys::IdMapKey(nsid, chunk_id));
    }
    ASSIGN_OR_RETURN(auto stale_internal, MultiGet(idmap_, stale_map_keys));
    std::vector<std::string> stale_row_keys;
    for (const auto& internal : stale_internal) {
      if (!internal.has_value()) continue;
      auto old_id = keys::ReadU64(*internal);
      if (!old_id.has_value()) return absl::DataLossError("malformed id map entry");
      stale_row_keys.push_back(keys::RowKey(nsid, static_cast<int64_t>(*old_id)));
    }
    ASSIGN_OR_RETURN(auto stale_rows, MultiGet(chunks_, stale_row_keys));
    size_t stale_row = 0;
    for (size_t i = 0; i < stale.size(); ++i) {
      batch.Delete(docs_, keys::MembershipKey(nsid, stale[i].first, stale[i].second));
      if (!stale_internal[i].has_value()) continue;
      auto old_id = keys::ReadU64(*stale_internal[i]);
      const auto id = static_cast<int64_t>(*old_id);
      const std::string row_key = keys::RowKey(nsid, id);
      const auto& old_row = stale_rows[stale_row++];
      if (old_row.has_value()) bytes -= chunk_bytes(old_row->size());
      batch.Delete(idmap_, stale_map_keys[i]);
      batch.Delete(chunks_, row_key);
      batch.Delete(dense_, row_key);
      RETURN_IF_ERROR(ns->bm25->RemoveToBatch(&batch, id, &bm25_update));
      removed.push_back(id);
      log(keys::kLogRemove, id);
    }

    std::vector<std::string> map_keys;
    for (const Chunk& chunk : chunks) map_keys.push_back(keys::IdMapKey(nsid, chunk.id));
    ASSIGN_OR_RETURN(auto existing, MultiGet(idmap_, map_keys));
    // Old records of replaced chunks, to drop their membership keys.
    std::vector<std::string> old_row_keys;
    std::vector<size_t> old_index;
    std::vector<int64_t> replaced;
    for (size_t c = 0; c < chunks.size(); ++c) {
      if (!existing[c].has_value()) continue;
      auto old_id = keys::ReadU64(*existing[c]);
      if (!old_id.has_value()) return absl::DataLossError("malformed id map entry");
      old_row_keys.push_back(keys::RowKey(nsid, static_cast<int64_t>(*old_id)));
      old_index.push_back(c);
      replaced.push_back(static_cast<int64_t>(*old_id));
    }
    ASSIGN_OR_RETURN(auto old_rows, MultiGet(chunks_, old_row_keys));
    for (size_t j = 0; j < old_index.size(); ++j) {
      const Chunk& chunk = chunks[old_index[j]];
      batch.Delete(chunks_, old_row_keys[j]);
      batch.Delete(dense_, old_row_keys[j]);
      if (old_rows[j].has_value()) {
        bytes -= chunk_bytes(old_rows[j]->size());
        Chunk old;
        RETURN_IF_ERROR(records::DecodeChunk(*old_rows[j], &old));
        if (!old.document_id.empty()) {
          batch.Delete(docs_, keys::MembershipKey(nsid, old.document_id, chunk.id));
        }
      }
      if (ns->bm25 != nullptr) {
        RETURN_IF_ERROR(ns->bm25->RemoveToBatch(&batch, replaced[j], &bm25_update));
      }
      removed.push_back(replaced[j]);
      log(keys::kLogRemove, replaced[j]);
    }
    vectors.reserve(chunks.size() * dim);
    for (size_t c = 0; c < chunks.size(); ++c) {
      const Chunk& chunk = chunks[c];
      const auto id = static_cast<int64_t>(counters.next_internal_id++);
      std::string id_value;
      keys::AppendU64(&id_value, static_cast<uint64_t>(id));
      const std::string row_key = keys::RowKey(nsid, id);
      batch.Put(idmap_, map_keys[c], id_value);
      std::string record = records::EncodeChunk(chunk.id, chunk.document_id, chunk.text,
                                                chunk.metadata_json, chunk.source_begin,
                                                chunk.source_end);
      bytes += chunk_bytes(record.size());
      batch.Put(chunks_, row_key, std::move(record));
      batch.Put(dense_, row_key, records::EncodeVector(chunk.vector));
      if (!chunk.document_id.empty()) {
        batch.Put(docs_, keys::MembershipKey(nsid, chunk.document_id, chunk.id), "");
      }
      if (text_ns) {
        RETURN_IF_ERROR(ns->bm25->AddToBatch(&batch, id, chunk_terms[c], &bm25_update));
      }
      log(keys::kLogAdd, id);
      added.push_back(id);
      vectors.insert(vectors.end(), chunk.vector.begin(), chunk.vector.end());
      added_attrs.emplace_back(id, std::move((*chunk_attrs)[c]));
      added_external.push_back(chunk.id);
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> StoreImpl::StageChunkDeletesLocked(Namespace* ns,
                                                           absl::Span<const std::string> victims,
                                                           NamespaceWrite* write_out) {
  const uint32_t nsid = ns->nsid;
  NamespaceWrite& write = *write_out;
  if (!write.chunks_changed) write.counters = ns->counters;
  write.chunks_changed = true;
  rocksdb::WriteBatch& batch = write.batch;
  std::vector<std::string> map_keys;
  for (const std::string& id : victims) map_keys.push_back(keys::IdMapKey(nsid, id));
  ASSIGN_OR_RETURN(auto internal, MultiGet(idmap_, map_keys));
  std::vector<int64_t> removed;
  std::vector<std::string> row_keys;
  std::vector<size_t> victim_index;
  for (size_t i = 0; i < victims.size(); ++i) {
    if (!internal[i].has_value()) continue;
    auto id = keys::ReadU64(*internal[i]);
    if (!id.has_value()) return absl::DataLossError("malformed id map entry");
    removed.push_back(static_cast<int64_t>(*id));
    row_keys.push_back(keys::RowKey(nsid, static_cast<int64_t>(*id)));
    victim_index.push_back(i);
  }
  ASSIGN_OR_RETURN(auto rows, MultiGet(chunks_, row_keys));
  for (size_t j = 0; j < removed.size(); ++j) {
    const std::string& chunk_id = victims[victim_index[j]];
    batch.Delete(idmap_, map_keys[victim_index[j]]);
    batch.Delete(chunks_, row_keys[j]);
    batch.Delete(dense_, row_keys[j]);
    if (ns->bm25 != nullptr) {
      RETURN_IF_ERROR(ns->bm25->RemoveToBatch(&batch, removed[j], &write.bm25));
    }
    if (rows[j].has_value()) {
      write.bytes_delta -=
          static_cast<int64_t>(quota::ChunkBytes(rows[j]->size(), ns->config.dim));
      Chunk old;
      RETURN_IF_ERROR(records::DecodeChunk(*rows[j], &old));
      if (!old.document_id.empty()) {
        batch.Delete(docs_, keys::MembershipKey(nsid, old.document_id, chunk_id));
      }
    }
    write.Log(ilog_, nsid, keys::kLogRemove, removed[j]);
  }
  write.removed.insert(write.removed.end(), removed.begin(), removed.end());
  return removed.size();
}

absl::StatusOr<DeleteResult> StoreImpl::Delete(absl::string_view ns_name,
                                               absl::Span<const std::string> chunk_ids,
                                               absl::Span<const std::string> document_ids) {
  ASSIGN_OR_RETURN(NamespacePtr ns, FindNamespace(ns_name));
  RETURN_IF_ERROR(ValidateIdLists("delete", chunk_ids, document_ids, options_.limits));

  absl::MutexLock lock(&ns->mu);
  RETURN_IF_ERROR(ns->GoneStatus());
  const uint32_t nsid = ns->nsid;
  NamespaceWrite write;
  write.chunks_changed = true;
  write.counters = ns->counters;
  rocksdb::WriteBatch& batch = write.batch;
  DeleteResult result;

  // Every chunk to delete: named ones plus members of named documents.
  std::vector<std::string> victims;
  absl::flat_hash_set<std::string> victim_set;
  for (const std::string& id : chunk_ids) {
    if (victim_set.insert(id).second) victims.push_back(id);
  }
  absl::flat_hash_set<absl::string_view> docs_seen;
  for (const std::string& doc_id : document_ids) {
    if (!docs_seen.insert(doc_id).second) continue;
    ASSIGN_OR_RETURN(auto existing, GetOne(docs_, keys::DocKey(nsid, doc_id)));
    if (existing.has_value()) {
      write.bytes_delta -= static_cast<int64_t>(existing->size());
      batch.Delete(docs_, keys::DocKey(nsid, doc_id));
      ++result.documents_deleted;
      --write.doc_delta;
    }
    const std::string prefix = keys::MembershipPrefix(nsid, doc_id);
    const std::string end = keys::PrefixEnd(prefix);
    BoundedIterator it(db_.get(), docs_, end);
    for (it->Seek(prefix); it->Valid(); it->Next()) {
      std::string chunk_id = it->key().ToString().substr(prefix.size());
      if (victim_set.insert(chunk_id).second) victims.push_back(std::move(chunk_id));
    }
    RETURN_IF_ERROR(FromRocks(it->status(), "scanning document chunks"));
  }

  ASSIGN_OR_RETURN(result.chunks_deleted, StageChunkDeletesLocked(ns.get(), victims, &write));
  if (batch.Count() == 0) return result;
  RETURN_IF_ERROR(CommitLocked(ns.get(), &write, "deleting"));
  return result;
}

}  // namespace mnemo::db
