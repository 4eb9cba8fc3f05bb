// Memory injection of a store: registration with backfill, loading, and the
// records of the write path (see injection_store.h). Recall is recall.cc.
#include "db/injection_store.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "db/bounded_iterator.h"
#include "db/injection_records.h"
#include "db/keys.h"
#include "db/records.h"
#include "db/rocks_status.h"
#include "db/store_impl.h"
#include "spdlog/spdlog.h"

namespace mnemo::db {
namespace {

// Chunks per backfill commit.
constexpr size_t kBackfillBatch = 256;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

absl::StatusOr<std::shared_ptr<const InjectionState>> MakeState(const InjectionFiles& files,
                                                                bool exact,
                                                                int64_t registered_ms) {
  ASSIGN_OR_RETURN(std::unique_ptr<encoder::InjectionModel> model,
                   encoder::InjectionModel::FromFiles(files));
  auto state = std::make_shared<InjectionState>();
  state->tag = injection::ModelTag(model->lineage().model_sha256);
  state->model = std::move(model);
  state->exact = exact;
  state->registered_unix_ms = registered_ms;
  return std::shared_ptr<const InjectionState>(std::move(state));
}

// The chunk ids (internal) that hold a record.
absl::StatusOr<absl::flat_hash_set<int64_t>> IdsWithRecords(StoreImpl* owner, uint32_t nsid) {
  absl::flat_hash_set<int64_t> ids;
  BoundedIterator it(owner->db(), owner->inject_cf(), keys::NsEnd(nsid));
  for (it->Seek(keys::NsPrefix(nsid)); it->Valid(); it->Next()) {
    auto id = keys::RowKeyId(View(it->key()));
    if (!id.has_value()) return absl::DataLossError("malformed injection record key");
    ids.insert(static_cast<int64_t>(*id));
  }
  RETURN_IF_ERROR(FromRocks(it->status(), "scanning injection records"));
  return ids;
}

// FAILED_PRECONDITION naming the first stored chunk without text: its
// memory tokens could not be computed, so a registration stores nothing.
absl::Status CheckEveryChunkHasText(StoreImpl* owner, const Namespace& ns) {
  BoundedIterator it(owner->db(), owner->chunks_cf(), keys::NsEnd(ns.nsid));
  for (it->Seek(keys::NsPrefix(ns.nsid)); it->Valid(); it->Next()) {
    Chunk chunk;
    RETURN_IF_ERROR(records::DecodeChunk(View(it->value()), &chunk));
    if (chunk.text.empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "chunk '", chunk.id, "' of namespace '", ns.config.name, "' has no text; an ",
          "injection model computes every chunk's memory tokens from its text (give the ",
          "chunk text or delete it, then register)"));
    }
  }
  return FromRocks(it->status(), "scanning chunks");
}

}  // namespace

absl::StatusOr<std::shared_ptr<const InjectionState>> UsableInjection(const Namespace& ns) {
  if (ns.injection == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("namespace '", ns.config.name,
                     "' has no injection model (RegisterInjectionModel first)"));
  }
  if (!ns.injection->status.ok()) return ns.injection->status;
  return ns.injection;
}

absl::StatusOr<std::vector<std::optional<std::string>>> InjectionStore::Compute(
    const InjectionState& state, absl::Span<const Chunk> chunks) const {
  const encoder::InjectionModel& model = *state.model;
  const size_t edim = static_cast<size_t>(model.config().encoder_dim);
  const size_t m = static_cast<size_t>(model.config().memory_tokens);
  const size_t mem = model.memory_size();
  std::vector<std::optional<std::string>> records(chunks.size());
  if (chunks.empty()) return records;
  std::vector<float> embeddings;
  std::vector<std::string> texts;
  embeddings.reserve(chunks.size() * edim);
  texts.reserve(chunks.size());
  for (const Chunk& chunk : chunks) {
    if (chunk.vector.size() != edim) {
      return absl::InternalError(absl::StrCat("chunk '", chunk.id, "' has a vector of ",
                                              chunk.vector.size(), " floats, the injection ",
                                              "model's encoder dim is ", edim));
    }
    if (chunk.text.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "chunk '", chunk.id, "' has no text; its namespace has an injection model, which ",
          "computes every chunk's memory tokens from its text"));
    }
    double norm = 0;
    for (float v : chunk.vector) norm += static_cast<double>(v) * v;
    const float inv = norm > 0 ? static_cast<float>(1.0 / std::sqrt(norm)) : 0.0f;
    for (float v : chunk.vector) embeddings.push_back(v * inv);
    texts.push_back(chunk.text);
  }
  ASSIGN_OR_RETURN(std::vector<float> xrag, model.Project(embeddings));
  absl::StatusOr<std::vector<float>> memory = model.Compress(texts);
  if (!memory.ok()) {
    // Name the chunk: compress one by one to find it.
    for (const Chunk& chunk : chunks) {
      absl::Status one = model.Compress({chunk.text}).status();
      if (!one.ok()) {
        return absl::Status(one.code(), absl::StrCat("chunk '", chunk.id, "': memory tokens: ",
                                                     one.message()));
      }
    }
    return memory.status();
  }
  const size_t ddim = static_cast<size_t>(model.config().decoder_dim);
  if (xrag.size() != chunks.size() * ddim || memory->size() != chunks.size() * mem) {
    return absl::InternalError("injection model returned outputs of the wrong size");
  }
  ASSIGN_OR_RETURN(std::vector<uint8_t> codes, model.pq().EncodeChecked(*memory));
  const size_t code_bytes = m * model.pq().code_size();
  for (size_t c = 0; c < chunks.size(); ++c) {
    absl::Span<const float> exact;
    if (state.exact) exact = absl::MakeConstSpan(memory->data() + c * mem, mem);
    records[c] = injection::EncodeChunk(
        state.tag, static_cast<uint32_t>(m), absl::MakeConstSpan(xrag.data() + c * ddim, ddim),
        absl::MakeConstSpan(codes.data() + c * code_bytes, code_bytes), exact);
  }
  return records;
}

absl::StatusOr<PreparedInjection> InjectionStore::Prepare(Namespace* ns,
                                                          absl::Span<const Chunk> chunks) {
  PreparedInjection prepared;
  {
    absl::ReaderMutexLock l(&ns->mu);
    RETURN_IF_ERROR(ns->GoneStatus());
    if (ns->injection == nullptr) return prepared;
    ASSIGN_OR_RETURN(prepared.state, UsableInjection(*ns));
  }
  ASSIGN_OR_RETURN(prepared.records, Compute(*prepared.state, chunks));
  return prepared;
}

absl::Status InjectionStore::RecheckLocked(Namespace* ns, absl::Span<const Chunk> chunks,
                                           PreparedInjection* prepared) {
  if (ns->injection == prepared->state) return absl::OkStatus();
  prepared->records.clear();
  prepared->state = nullptr;
  if (ns->injection == nullptr) return absl::OkStatus();
  ASSIGN_OR_RETURN(prepared->state, UsableInjection(*ns));
  ASSIGN_OR_RETURN(prepared->records, Compute(*prepared->state, chunks));
  return absl::OkStatus();
}

void InjectionStore::StageLocked(const Namespace& ns, rocksdb::WriteBatch* batch,
                                 absl::Span<const int64_t> removed,
                                 absl::Span<const int64_t> added,
                                 const std::vector<std::optional<std::string>>& records) {
  if (ns.injection == nullptr) return;
  for (int64_t id : removed) batch->Delete(owner_->inject_cf(), keys::RowKey(ns.nsid, id));
  for (size_t i = 0; i < added.size() && i < records.size(); ++i) {
    if (records[i].has_value()) {
      batch->Put(owner_->inject_cf(), keys::RowKey(ns.nsid, added[i]), *records[i]);
    }
  }
}

absl::Status InjectionStore::LoadLocked(Namespace* ns) {
  ASSIGN_OR_RETURN(auto value,
                   owner_->GetOne(owner_->meta_cf(), injection::ModelKey(ns->nsid)));
  if (!value.has_value()) return absl::OkStatus();
  absl::StatusOr<std::shared_ptr<const InjectionState>> state;
  absl::StatusOr<injection::ModelRecord> record = injection::DecodeModel(*value);
  if (record.ok()) {
    state = MakeState(record->files, record->exact, record->registered_unix_ms);
  } else {
    state = record.status();
  }
  if (state.ok()) {
    ns->injection = *std::move(state);
    spdlog::info("namespace '{}': injection model '{}'", ns->config.name,
                 ns->injection->model->config().name);
    return absl::OkStatus();
  }
  auto broken = std::make_shared<InjectionState>();
  broken->status = absl::Status(
      state.status().code(),
      absl::StrCat("namespace '", ns->config.name, "': the stored injection model cannot be ",
                   "loaded (register it again): ", state.status().message()));
  spdlog::error("{}", broken->status.ToString());
  ns->injection = std::move(broken);
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> InjectionStore::BackfillLocked(Namespace* ns,
                                                        const InjectionState& state) {
  ASSIGN_OR_RETURN(absl::flat_hash_set<int64_t> have, IdsWithRecords(owner_, ns->nsid));
  std::vector<int64_t> missing;
  for (const auto& [id, external] : ns->external_ids) {
    if (!have.contains(id)) missing.push_back(id);
  }
  std::sort(missing.begin(), missing.end());
  const uint32_t dim = ns->config.dim;
  uint64_t done = 0;
  for (size_t begin = 0; begin < missing.size(); begin += kBackfillBatch) {
    const size_t end = std::min(missing.size(), begin + kBackfillBatch);
    std::vector<std::string> row_keys;
    for (size_t i = begin; i < end; ++i) row_keys.push_back(keys::RowKey(ns->nsid, missing[i]));
    ASSIGN_OR_RETURN(auto rows, owner_->MultiGet(owner_->chunks_cf(), row_keys));
    ASSIGN_OR_RETURN(auto dense, owner_->MultiGet(owner_->dense_cf(), row_keys));
    std::vector<Chunk> chunks(row_keys.size());
    for (size_t j = 0; j < row_keys.size(); ++j) {
      if (!rows[j].has_value() || !dense[j].has_value()) {
        return absl::DataLossError(absl::StrCat("chunk row ", missing[begin + j], " of namespace '",
                                                ns->config.name, "' is missing"));
      }
      RETURN_IF_ERROR(records::DecodeChunk(*rows[j], &chunks[j]));
      RETURN_IF_ERROR(records::DecodeVector(*dense[j], dim, &chunks[j].vector));
    }
    ASSIGN_OR_RETURN(auto recs, Compute(state, chunks));
    rocksdb::WriteBatch batch;
    for (size_t j = 0; j < row_keys.size(); ++j) {
      batch.Put(owner_->inject_cf(), row_keys[j], *recs[j]);
    }
    RETURN_IF_ERROR(
        owner_->WriteToDb(owner_->SyncedWrite(), &batch, "writing injection records"));
    done += row_keys.size();
  }
  return done;
}

absl::StatusOr<InjectionInfo> InjectionStore::Register(absl::string_view ns_name,
                                                       const InjectionFiles& files, bool exact) {
  ASSIGN_OR_RETURN(NamespacePtr ns, owner_->FindNamespace(ns_name));
  if (ns->config.encoder.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "namespace '", ns_name, "' has no encoder; an injection model needs an encoder ",
        "namespace (its chunks' embeddings and text)"));
  }
  // The model is checked whole before anything is stored.
  ASSIGN_OR_RETURN(std::shared_ptr<const InjectionState> state, MakeState(files, exact, NowMs()));
  const encoder::InjectionModel& model = *state->model;
  if (model.lineage().encoder != ns->config.encoder) {
    return absl::FailedPreconditionError(absl::StrCat(
        "encoder: namespace '", ns_name, "' uses encoder '", ns->config.encoder,
        "', the injection model was trained for '", model.lineage().encoder, "'"));
  }
  if (static_cast<uint32_t>(model.config().encoder_dim) != ns->config.dim) {
    return absl::FailedPreconditionError(absl::StrCat(
        "encoder_dim: namespace '", ns_name, "' has dim ", ns->config.dim,
        ", the injection model expects ", model.config().encoder_dim));
  }

  absl::MutexLock lock(&ns->mu);
  RETURN_IF_ERROR(ns->GoneStatus());
  std::shared_ptr<const InjectionState> current = ns->injection;
  if (current != nullptr && current->status.ok()) {
    const std::string field = encoder::DiffLineage(current->model->lineage(), model.lineage());
    if (!field.empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "namespace '", ns_name, "' already has injection model '",
          current->model->config().name, "'; the given model differs in ", field));
    }
    if (current->exact != exact) {
      return absl::FailedPreconditionError(absl::StrCat(
          "namespace '", ns_name, "' already has this injection model with exact = ",
          current->exact ? "true" : "false", "; the registration asks for exact = ",
          exact ? "true" : "false"));
    }
    state = current;  // idempotent: keep it, finish any backfill left
  } else {
    RETURN_IF_ERROR(CheckEveryChunkHasText(owner_, *ns));
    injection::ModelRecord record;
    record.files = files;
    record.exact = exact;
    record.registered_unix_ms = state->registered_unix_ms;
    rocksdb::WriteBatch batch;
    batch.Put(owner_->meta_cf(), injection::ModelKey(ns->nsid), injection::EncodeModel(record));
    // Records of a model that failed to load are of no use.
    if (current != nullptr) {
      batch.DeleteRange(owner_->inject_cf(), keys::NsPrefix(ns->nsid), keys::NsEnd(ns->nsid));
    }
    RETURN_IF_ERROR(
        owner_->WriteToDb(owner_->SyncedWrite(), &batch, "registering the injection model"));
    ns->injection = state;
    spdlog::info("namespace '{}': registered injection model '{}' ({})", ns->config.name,
                 model.config().name, model.lineage().model_sha256);
  }
  ASSIGN_OR_RETURN(uint64_t backfilled, BackfillLocked(ns.get(), *state));
  ASSIGN_OR_RETURN(InjectionInfo info, InfoLocked(*ns, *state));
  info.backfilled_chunks = backfilled;
  return info;
}

absl::StatusOr<InjectionInfo> InjectionStore::Info(absl::string_view ns_name) {
  ASSIGN_OR_RETURN(NamespacePtr ns, owner_->FindNamespace(ns_name));
  absl::ReaderMutexLock lock(&ns->mu);
  RETURN_IF_ERROR(ns->GoneStatus());
  ASSIGN_OR_RETURN(std::shared_ptr<const InjectionState> state, UsableInjection(*ns));
  return InfoLocked(*ns, *state);
}

absl::StatusOr<InjectionInfo> InjectionStore::InfoLocked(const Namespace& ns,
                                                         const InjectionState& state) {
  const encoder::InjectionModel& model = *state.model;
  const encoder::InjectionConfig& c = model.config();
  InjectionInfo info;
  info.name = c.name;
  info.lineage = model.lineage();
  info.encoder_dim = static_cast<uint32_t>(c.encoder_dim);
  info.decoder_dim = static_cast<uint32_t>(c.decoder_dim);
  info.memory_tokens = static_cast<uint32_t>(c.memory_tokens);
  info.pq_m = static_cast<uint32_t>(c.pq_m);
  info.pq_nbits = static_cast<uint32_t>(c.pq_nbits);
  info.exact = state.exact;
  ASSIGN_OR_RETURN(auto ids, IdsWithRecords(owner_, ns.nsid));
  info.chunks = ids.size();
  info.xrag_bytes_per_chunk = static_cast<uint64_t>(c.decoder_dim) * sizeof(float);
  info.memory_code_bytes_per_chunk =
      static_cast<uint64_t>(c.memory_tokens) * model.pq().code_size();
  info.memory_exact_bytes_per_chunk =
      state.exact ? static_cast<uint64_t>(model.memory_size()) * sizeof(float) : 0;
  info.registered_unix_ms = state.registered_unix_ms;
  return info;
}

}  // namespace mnemo::db
