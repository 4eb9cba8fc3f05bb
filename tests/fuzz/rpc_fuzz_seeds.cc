// Base state and seed requests of the RPC request fuzzer (see
// rpc_fuzz_seeds.h).
#include "tests/fuzz/rpc_fuzz_seeds.h"

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "mnemo/v1/auth.pb.h"
#include "mnemo/v1/inject.pb.h"
#include "mnemo/v1/memory.pb.h"
#include "mnemo/v1/mnemo.pb.h"

namespace mnemo::fuzz {
namespace {

constexpr uint32_t kDim = 4;
constexpr uint32_t kLayers = 2;
constexpr uint32_t kKvHeads = 1;
constexpr uint32_t kHeadDim = 4;
const std::vector<int32_t> kTokens = {5, 6, 7};

RpcRequest One(const char* method, const google::protobuf::Message& m) {
  return {method, {m.SerializeAsString()}};
}

void SetVector(std::initializer_list<float> v, v1::Chunk* c) {
  for (float x : v) c->add_vector(x);
}

v1::ModelFingerprint Model() {
  v1::ModelFingerprint m;
  m.set_architecture("llama");
  m.set_n_layers(kLayers);
  m.set_n_heads(2);
  m.set_n_kv_heads(kKvHeads);
  m.set_head_dim(kHeadDim);
  m.set_dim(2 * kHeadDim);
  m.set_rope_theta(10000);
  m.set_rope_style("half");
  m.set_dtype("float32");
  m.set_tokenizer_sha256("fuzz");
  return m;
}

v1::CreateNamespaceRequest CreateNamespace(const char* name, v1::Metric metric,
                                           const char* factory) {
  v1::CreateNamespaceRequest r;
  r.mutable_config()->set_name(name);
  r.mutable_config()->set_dim(kDim);
  r.mutable_config()->set_metric(metric);
  r.mutable_config()->set_index_factory(factory);
  return r;
}

v1::UpsertRequest UpsertFz() {
  v1::UpsertRequest r;
  r.set_namespace_("fz");
  v1::Document* d = r.add_documents();
  d->set_id("d1");
  d->set_text("the quick brown fox");
  d->set_metadata_json(R"({"kind":"doc"})");
  const char* texts[] = {"the quick", "brown fox", "jumps over"};
  for (int i = 0; i < 3; ++i) {
    v1::Chunk* c = r.add_chunks();
    c->set_id("c" + std::to_string(i + 1));
    c->set_document_id("d1");
    c->set_text(texts[i]);
    c->set_metadata_json(R"({"lang":"en","n":)" + std::to_string(i) + "}");
    SetVector({1.0f * i, 1, -1, 0.5f}, c);
  }
  return r;
}

v1::UpsertRequest UpsertFzh() {
  v1::UpsertRequest r;
  r.set_namespace_("fzh");
  for (int i = 0; i < 4; ++i) {
    v1::Chunk* c = r.add_chunks();
    c->set_id("h" + std::to_string(i + 1));
    SetVector({1, 0.25f * i, 0, -0.5f}, c);
  }
  return r;
}

v1::RegisterKvModelRequest RegisterKv(const char* ns) {
  v1::RegisterKvModelRequest r;
  r.set_namespace_(ns);
  *r.mutable_config()->mutable_model() = Model();
  r.mutable_config()->set_codec(v1::KV_CODEC_INT8);
  r.mutable_config()->set_key_index_keys_per_cluster(2);
  return r;
}

// PutKv of chunk `chunk` of "fz": the header and both layers, fp32.
std::vector<std::string> PutKvMessages(const char* chunk) {
  std::vector<std::string> messages;
  v1::PutKvRequest header;
  header.mutable_header()->set_namespace_("fz");
  header.mutable_header()->set_chunk_id(chunk);
  *header.mutable_header()->mutable_model() = Model();
  for (int32_t t : kTokens) header.mutable_header()->add_tokens(t);
  messages.push_back(header.SerializeAsString());
  const size_t n = kKvHeads * kTokens.size() * kHeadDim;
  for (uint32_t layer = 0; layer < kLayers; ++layer) {
    std::vector<float> k(n), v(n);
    for (size_t i = 0; i < n; ++i) {
      k[i] = 0.1f * static_cast<float>(i) - 0.3f * layer;
      v[i] = 1.0f - 0.05f * static_cast<float>(i);
    }
    v1::PutKvRequest r;
    v1::KvLayer* l = r.mutable_layer();
    l->set_layer(layer);
    l->set_dtype(v1::KV_DTYPE_FP32);
    l->set_n_kv_heads(kKvHeads);
    l->set_tokens(static_cast<uint32_t>(kTokens.size()));
    l->set_head_dim(kHeadDim);
    l->set_k(reinterpret_cast<const char*>(k.data()), n * sizeof(float));
    l->set_v(reinterpret_cast<const char*>(v.data()), n * sizeof(float));
    messages.push_back(r.SerializeAsString());
  }
  return messages;
}

v1::MemoryScope Scope() {
  v1::MemoryScope s;
  s.set_user_id("u1");
  return s;
}

}  // namespace

std::vector<RpcRequest> BaseStateRequests() {
  return {One("Mnemo/CreateNamespace", CreateNamespace("fz", v1::METRIC_L2, "Flat")),
          One("Mnemo/CreateNamespace", CreateNamespace("fzh", v1::METRIC_COSINE, "HNSW8")),
          One("Mnemo/Upsert", UpsertFz()),
          One("Mnemo/Upsert", UpsertFzh()),
          One("MnemoKv/RegisterKvModel", RegisterKv("fz")),
          {"MnemoKv/PutKv", PutKvMessages("c1")}};
}

std::vector<RpcSeed> RpcSeeds() {
  using grpc::StatusCode;
  std::vector<RpcSeed> seeds;
  auto add = [&](std::string name, RpcRequest request, StatusCode expected) {
    seeds.push_back({"seed-" + name, std::move(request), expected});
  };

  // --- Mnemo.
  {
    v1::CreateNamespaceRequest r = CreateNamespace("fz2", v1::METRIC_INNER_PRODUCT, "HNSW8,ef=16");
    add("CreateNamespace", One("Mnemo/CreateNamespace", r), StatusCode::OK);
    r = CreateNamespace("fz3", v1::METRIC_L2, "IVF2,Flat");
    r.mutable_config()->set_train_threshold(4);
    add("CreateNamespace-ivf", One("Mnemo/CreateNamespace", r), StatusCode::OK);
  }
  {
    v1::GetNamespaceRequest r;
    r.set_name("fz");
    add("GetNamespace", One("Mnemo/GetNamespace", r), StatusCode::OK);
  }
  add("ListNamespaces", One("Mnemo/ListNamespaces", v1::ListNamespacesRequest()), StatusCode::OK);
  {
    v1::DropNamespaceRequest r;
    r.set_name("fzh");
    add("DropNamespace", One("Mnemo/DropNamespace", r), StatusCode::OK);
  }
  {
    v1::UpsertRequest r;
    r.set_namespace_("fz");
    v1::Chunk* c = r.add_chunks();
    c->set_id("c9");
    c->set_text("over the lazy dog");
    c->set_metadata_json(R"({"lang":"de","n":9,"tags":["a","b"]})");
    SetVector({0.5f, -2, 3, 1e-3f}, c);
    add("Upsert", One("Mnemo/Upsert", r), StatusCode::OK);
    add("UpsertStream", {"Mnemo/UpsertStream", {r.SerializeAsString(), UpsertFz().SerializeAsString()}},
        StatusCode::OK);
  }
  {
    v1::GetRequest r;
    r.set_namespace_("fz");
    r.add_chunk_ids("c1");
    r.add_chunk_ids("nope");
    r.add_document_ids("d1");
    r.set_include_vectors(true);
    add("Get", One("Mnemo/Get", r), StatusCode::OK);
  }
  {
    v1::DeleteRequest r;
    r.set_namespace_("fz");
    r.add_chunk_ids("c3");
    add("Delete", One("Mnemo/Delete", r), StatusCode::OK);
    r.clear_chunk_ids();
    r.add_document_ids("d1");
    add("Delete-document", One("Mnemo/Delete", r), StatusCode::OK);
  }
  {
    v1::SearchRequest r;
    r.set_namespace_("fz");
    r.mutable_vectors()->set_dim(kDim);
    for (float x : {1.0f, 1.0f, -1.0f, 0.5f, 0.0f, 0.0f, 0.0f, 1.0f}) r.mutable_vectors()->add_data(x);
    r.set_k(2);
    r.set_include_payload(true);
    r.set_include_vectors(true);
    v1::FieldCondition* eq = r.mutable_filter()->add_all_of();
    eq->set_field("lang");
    eq->mutable_eq()->set_string_value("en");
    v1::FieldCondition* range = r.mutable_filter()->add_all_of();
    range->set_field("n");
    range->mutable_range()->set_gte(0);
    range->mutable_range()->set_lt(2);
    add("Search", One("Mnemo/Search", r), StatusCode::OK);
    r.set_namespace_("fzh");
    r.clear_filter();
    r.mutable_params()->set_hnsw_ef_search(8);
    add("Search-hnsw", One("Mnemo/Search", r), StatusCode::OK);
    v1::SearchRequest t;
    t.set_namespace_("fz");
    t.mutable_texts()->add_texts("quick fox");
    t.set_k(3);
    t.set_mode(v1::SEARCH_MODE_HYBRID_RRF);
    t.set_highlight(true);
    add("Search-text", One("Mnemo/Search", t), StatusCode::FAILED_PRECONDITION);
  }
  add("Stats", One("Mnemo/Stats", v1::StatsRequest()), StatusCode::OK);
  {
    v1::CheckpointRequest r;
    r.set_target_dir("checkpoint");
    add("Checkpoint", One("Mnemo/Checkpoint", r), StatusCode::OK);
  }
  {
    v1::CompactRequest r;
    r.set_namespace_("fz");
    add("Compact", One("Mnemo/Compact", r), StatusCode::OK);
  }
  {
    v1::CreateBackupRequest c;
    c.set_backup_dir("backups");
    add("CreateBackup", One("Mnemo/CreateBackup", c), StatusCode::OK);
    v1::ListBackupsRequest l;
    l.set_backup_dir("backups");
    add("ListBackups", One("Mnemo/ListBackups", l), StatusCode::OK);
    v1::VerifyBackupRequest v;
    v.set_backup_dir("backups");
    add("VerifyBackup", One("Mnemo/VerifyBackup", v), StatusCode::OK);
  }
  {
    v1::SetNamespaceQuotaRequest q;
    q.set_name("fz");
    q.mutable_quota()->set_max_chunks(1000);
    q.mutable_quota()->set_max_bytes(1 << 20);
    add("SetNamespaceQuota", One("Mnemo/SetNamespaceQuota", q), StatusCode::OK);
  }

  // --- MnemoKv.
  add("RegisterKvModel", One("MnemoKv/RegisterKvModel", RegisterKv("fzh")), StatusCode::OK);
  add("PutKv", {"MnemoKv/PutKv", PutKvMessages("c2")}, StatusCode::OK);
  {
    v1::GetKvRequest r;
    r.set_namespace_("fz");
    r.add_chunk_ids("c1");
    *r.mutable_model() = Model();
    r.set_dtype(v1::KV_DTYPE_FP16);
    add("GetKv", One("MnemoKv/GetKv", r), StatusCode::OK);
    r.add_positions(3);
    r.set_layer_begin(1);
    add("GetKv-positions", One("MnemoKv/GetKv", r), StatusCode::OK);
  }
  {
    v1::ExistsKvRequest r;
    r.set_namespace_("fz");
    r.add_chunk_ids("c1");
    r.add_chunk_ids("c2");
    *r.mutable_model() = Model();
    add("ExistsKv", One("MnemoKv/ExistsKv", r), StatusCode::OK);
  }
  {
    v1::DeleteKvRequest r;
    r.set_namespace_("fz");
    r.add_chunk_ids("c1");
    add("DeleteKv", One("MnemoKv/DeleteKv", r), StatusCode::OK);
  }
  {
    v1::LookupKvPrefixRequest r;
    r.set_namespace_("fz");
    *r.mutable_model() = Model();
    for (int32_t t : kTokens) r.add_tokens(t);
    r.add_tokens(9);
    add("LookupKvPrefix", One("MnemoKv/LookupKvPrefix", r), StatusCode::OK);
  }
  {
    v1::SetKvRetentionRequest r;
    r.set_namespace_("fz");
    r.add_chunk_ids("c1");
    r.set_pin(true);
    r.set_ttl_seconds(60);
    add("SetKvRetention", One("MnemoKv/SetKvRetention", r), StatusCode::OK);
  }
  {
    v1::GetKvStatsRequest r;
    r.set_namespace_("fz");
    add("GetKvStats", One("MnemoKv/GetKvStats", r), StatusCode::OK);
  }
  {
    v1::AttendRequest open;
    open.mutable_open()->set_namespace_("fz");
    *open.mutable_open()->mutable_model() = Model();
    v1::AttendChunk* c = open.mutable_open()->add_chunks();
    c->set_chunk_id("c1");
    c->set_start(0);
    const uint32_t n_heads = 2;
    std::vector<float> q(n_heads * kHeadDim);
    for (size_t i = 0; i < q.size(); ++i) q[i] = 0.25f * static_cast<float>(i) - 0.5f;
    v1::AttendRequest step;
    step.mutable_step()->set_layer(1);
    step.mutable_step()->set_position(static_cast<int64_t>(kTokens.size()));
    step.mutable_step()->set_n_queries(1);
    step.mutable_step()->set_queries(reinterpret_cast<const char*>(q.data()),
                                     q.size() * sizeof(float));
    add("Attend", {"MnemoKv/Attend", {open.SerializeAsString(), step.SerializeAsString()}},
        StatusCode::OK);
    step.mutable_step()->set_mode(v1::ATTEND_MODE_TOP_K);
    step.mutable_step()->set_exact_fraction(0.5);
    step.mutable_step()->set_estimated_fraction(0.25);
    add("Attend-topk", {"MnemoKv/Attend", {open.SerializeAsString(), step.SerializeAsString()}},
        StatusCode::OK);
  }
  add("KvArenaInfo", One("MnemoKv/KvArenaInfo", v1::KvArenaInfoRequest()), StatusCode::OK);
  {
    v1::KvArenaReleaseRequest r;
    r.set_arena_session("0123456789abcdef");
    r.add_lease_ids(1);
    add("KvArenaRelease", One("MnemoKv/KvArenaRelease", r), StatusCode::FAILED_PRECONDITION);
  }

  // --- MnemoInject: "fz" has no encoder.
  {
    v1::RegisterInjectionModelRequest r;
    r.set_namespace_("fz");
    (*r.mutable_files())["config.json"] = R"({"name":"fuzz","memory_tokens":2})";
    (*r.mutable_files())["inject.safetensors"] = std::string("\x08\0\0\0\0\0\0\0{}      ", 16);
    add("RegisterInjectionModel", One("MnemoInject/RegisterInjectionModel", r),
        StatusCode::FAILED_PRECONDITION);
  }
  {
    v1::GetInjectionModelRequest r;
    r.set_namespace_("fz");
    add("GetInjectionModel", One("MnemoInject/GetInjectionModel", r),
        StatusCode::FAILED_PRECONDITION);
  }
  {
    v1::RecallRequest r;
    r.set_namespace_("fz");
    for (float x : {1.0f, 0.0f, 0.0f, 0.0f}) r.mutable_vector()->add_values(x);
    r.set_k(2);
    add("Recall", One("MnemoInject/Recall", r), StatusCode::FAILED_PRECONDITION);
  }

  // --- MnemoMemory: "fz" has no encoder.
  {
    v1::MemoryAddRequest r;
    r.set_namespace_("fz");
    *r.mutable_scope() = Scope();
    r.add_memories()->set_text("likes tea");
    r.mutable_memories(0)->set_metadata_json(R"({"topic":"food"})");
    add("MemoryAdd", One("MnemoMemory/MemoryAdd", r), StatusCode::FAILED_PRECONDITION);
  }
  {
    v1::MemorySearchRequest r;
    r.set_namespace_("fz");
    *r.mutable_scope() = Scope();
    r.set_query("tea");
    v1::MemoryFilterList* all = r.mutable_filter()->mutable_all_of();
    v1::MemoryCondition* c = all->add_filters()->mutable_condition();
    c->set_field("topic");
    c->set_op(v1::MEMORY_FILTER_OP_IN);
    c->add_values()->set_string_value("food");
    v1::MemoryCondition* n = all->add_filters()->mutable_negation()->mutable_condition();
    n->set_field("created_at");
    n->set_op(v1::MEMORY_FILTER_OP_LT);
    n->add_values()->set_number_value(5);
    add("MemorySearch", One("MnemoMemory/MemorySearch", r), StatusCode::FAILED_PRECONDITION);
    v1::MemoryListRequest l;
    l.set_namespace_("fz");
    *l.mutable_filter() = r.filter();
    l.set_page_size(2);
    add("MemoryList", One("MnemoMemory/MemoryList", l), StatusCode::FAILED_PRECONDITION);
  }
  {
    v1::MemoryGetRequest r;
    r.set_namespace_("fz");
    r.set_id("mem_0000000000000001");
    add("MemoryGet", One("MnemoMemory/MemoryGet", r), StatusCode::FAILED_PRECONDITION);
    v1::MemoryHistoryRequest h;
    h.set_namespace_("fz");
    h.set_id("mem_0000000000000001");
    add("MemoryHistory", One("MnemoMemory/MemoryHistory", h), StatusCode::FAILED_PRECONDITION);
    v1::MemoryDeleteRequest d;
    d.set_namespace_("fz");
    d.set_id("mem_0000000000000001");
    add("MemoryDelete", One("MnemoMemory/MemoryDelete", d), StatusCode::FAILED_PRECONDITION);
    v1::MemoryUpdateRequest u;
    u.set_namespace_("fz");
    u.set_id("mem_0000000000000001");
    u.set_text("likes coffee");
    u.set_invalid_at_ms(0);
    add("MemoryUpdate", One("MnemoMemory/MemoryUpdate", u), StatusCode::FAILED_PRECONDITION);
  }
  {
    v1::MemoryDeleteAllRequest r;
    r.set_namespace_("fz");
    *r.mutable_scope() = Scope();
    add("MemoryDeleteAll", One("MnemoMemory/MemoryDeleteAll", r),
        StatusCode::FAILED_PRECONDITION);
    v1::MemoryResetRequest reset;
    reset.set_namespace_("fz");
    add("MemoryReset", One("MnemoMemory/MemoryReset", reset), StatusCode::FAILED_PRECONDITION);
  }
  {
    v1::BlockEditRequest e;
    e.set_namespace_("fz");
    e.set_agent_id("a1");
    e.set_label("persona");
    e.set_kind(v1::BLOCK_EDIT_KIND_SET);
    e.set_text("helpful");
    e.set_limit_bytes(64);
    add("BlockEdit", One("MnemoMemory/BlockEdit", e), StatusCode::FAILED_PRECONDITION);
    v1::BlockGetRequest g;
    g.set_namespace_("fz");
    g.set_agent_id("a1");
    g.set_label("persona");
    add("BlockGet", One("MnemoMemory/BlockGet", g), StatusCode::FAILED_PRECONDITION);
    v1::BlockHistoryRequest h;
    h.set_namespace_("fz");
    h.set_agent_id("a1");
    h.set_label("persona");
    add("BlockHistory", One("MnemoMemory/BlockHistory", h), StatusCode::FAILED_PRECONDITION);
  }
  {
    v1::AppendMessagesRequest a;
    a.set_namespace_("fz");
    a.set_run_id("r1");
    v1::ConvoMessageInput* m = a.add_messages();
    m->set_role("user");
    m->set_content("where is the tea");
    m->set_time_ms(1000);
    m->set_metadata_json(R"({"lang":"en"})");
    add("AppendMessages", One("MnemoMemory/AppendMessages", a), StatusCode::FAILED_PRECONDITION);
    v1::SearchMessagesRequest q;
    q.set_namespace_("fz");
    q.mutable_selection()->set_run_id("r1");
    q.mutable_selection()->set_role("user");
    q.set_query("tea");
    q.set_top_k(3);
    add("SearchMessages", One("MnemoMemory/SearchMessages", q), StatusCode::FAILED_PRECONDITION);
    v1::ListMessagesRequest l;
    l.set_namespace_("fz");
    l.mutable_selection()->set_run_id("r1");
    l.set_page_size(2);
    add("ListMessages", One("MnemoMemory/ListMessages", l), StatusCode::FAILED_PRECONDITION);
    v1::DeleteRunRequest d;
    d.set_namespace_("fz");
    d.set_run_id("r1");
    add("DeleteRun", One("MnemoMemory/DeleteRun", d), StatusCode::FAILED_PRECONDITION);
  }

  // --- MnemoAuth: authentication is on, the calls are the global admin's.
  {
    v1::CreateKeyRequest r;
    r.set_namespace_("fz");
    r.set_role(v1::ROLE_WRITE);
    r.set_name("fuzz writer");
    r.set_rate_limit_rps(5);
    r.set_rate_limit_burst(2);
    add("CreateKey", One("MnemoAuth/CreateKey", r), StatusCode::OK);
    v1::CreateKeyRequest every;
    every.set_namespace_("*");
    every.set_role(v1::ROLE_ADMIN);
    add("CreateKey-every", One("MnemoAuth/CreateKey", every), StatusCode::OK);
    v1::CreateKeyRequest no_role;
    no_role.set_namespace_("fz");
    add("CreateKey-norole", One("MnemoAuth/CreateKey", no_role), StatusCode::INVALID_ARGUMENT);
  }
  {
    v1::ListKeysRequest r;
    r.set_namespace_("fz");
    add("ListKeys", One("MnemoAuth/ListKeys", r), StatusCode::OK);
    add("ListKeys-all", One("MnemoAuth/ListKeys", v1::ListKeysRequest()), StatusCode::OK);
  }
  {
    // Key ids are random: no key has this one.
    v1::RevokeKeyRequest r;
    r.set_id("00000000000000ff");
    add("RevokeKey", One("MnemoAuth/RevokeKey", r), StatusCode::NOT_FOUND);
  }
  return seeds;
}

}  // namespace mnemo::fuzz
