// The KV-cache methods of MnemoService (service.h): proto <-> db::Kv*
// conversion and the streaming reactors of PutKv and GetKv.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <atomic>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "server/logging.h"
#include "server/service.h"
#include "server/status_mapping.h"

namespace mnemo::server {
namespace {

ModelFingerprint FingerprintFromProto(const v1::ModelFingerprint& p) {
  ModelFingerprint f;
  f.architecture = p.architecture();
  f.n_layers = static_cast<int>(std::min<uint32_t>(p.n_layers(), 1u << 30));
  f.n_heads = static_cast<int>(std::min<uint32_t>(p.n_heads(), 1u << 30));
  f.n_kv_heads = static_cast<int>(std::min<uint32_t>(p.n_kv_heads(), 1u << 30));
  f.head_dim = static_cast<int>(std::min<uint32_t>(p.head_dim(), 1u << 30));
  f.dim = static_cast<int>(std::min<uint32_t>(p.dim(), 1u << 30));
  f.rope_theta = p.rope_theta();
  f.rope_style = p.rope_style();
  f.dtype = p.dtype();
  f.tokenizer_sha256 = p.tokenizer_sha256();
  return f;
}

void FingerprintToProto(const ModelFingerprint& f, v1::ModelFingerprint* p) {
  p->set_architecture(f.architecture);
  p->set_n_layers(static_cast<uint32_t>(f.n_layers));
  p->set_n_heads(static_cast<uint32_t>(f.n_heads));
  p->set_n_kv_heads(static_cast<uint32_t>(f.n_kv_heads));
  p->set_head_dim(static_cast<uint32_t>(f.head_dim));
  p->set_dim(static_cast<uint32_t>(f.dim));
  p->set_rope_theta(f.rope_theta);
  p->set_rope_style(f.rope_style);
  p->set_dtype(f.dtype);
  p->set_tokenizer_sha256(f.tokenizer_sha256);
}

absl::StatusOr<db::KvDtype> DtypeFromProto(v1::KvDtype d) {
  switch (d) {
    case v1::KV_DTYPE_UNSPECIFIED:
    case v1::KV_DTYPE_FP32:
      return db::KvDtype::kFp32;
    case v1::KV_DTYPE_FP16:
      return db::KvDtype::kFp16;
    case v1::KV_DTYPE_BF16:
      return db::KvDtype::kBf16;
    default:
      return absl::InvalidArgumentError(absl::StrCat("unknown KV dtype ", static_cast<int>(d)));
  }
}

v1::KvDtype DtypeToProto(db::KvDtype d) {
  switch (d) {
    case db::KvDtype::kFp16:
      return v1::KV_DTYPE_FP16;
    case db::KvDtype::kBf16:
      return v1::KV_DTYPE_BF16;
    case db::KvDtype::kFp32:
      break;
  }
  return v1::KV_DTYPE_FP32;
}

absl::StatusOr<db::KvCodecKind> CodecFromProto(v1::KvCodec c) {
  switch (c) {
    case v1::KV_CODEC_UNSPECIFIED:
    case v1::KV_CODEC_FP16:
      return db::KvCodecKind::kFp16;
    case v1::KV_CODEC_FP32:
      return db::KvCodecKind::kFp32;
    case v1::KV_CODEC_BF16:
      return db::KvCodecKind::kBf16;
    case v1::KV_CODEC_INT8:
      return db::KvCodecKind::kInt8;
    case v1::KV_CODEC_INT4:
      return db::KvCodecKind::kInt4;
    default:
      return absl::InvalidArgumentError(absl::StrCat("unknown KV codec ", static_cast<int>(c)));
  }
}

v1::KvCodec CodecToProto(db::KvCodecKind c) {
  switch (c) {
    case db::KvCodecKind::kFp32:
      return v1::KV_CODEC_FP32;
    case db::KvCodecKind::kBf16:
      return v1::KV_CODEC_BF16;
    case db::KvCodecKind::kInt8:
      return v1::KV_CODEC_INT8;
    case db::KvCodecKind::kInt4:
      return v1::KV_CODEC_INT4;
    case db::KvCodecKind::kFp16:
      break;
  }
  return v1::KV_CODEC_FP16;
}

absl::StatusOr<db::KvConfig> KvConfigFromProto(const v1::KvConfig& p) {
  db::KvConfig c;
  c.model = FingerprintFromProto(p.model());
  ASSIGN_OR_RETURN(c.codec.kind, CodecFromProto(p.codec()));
  c.codec.entropy = !p.has_entropy() || p.entropy();
  if (p.int4_group_size() != 0) c.codec.group_size = p.int4_group_size();
  c.capacity_bytes = p.capacity_bytes();
  c.eviction_policy = p.eviction_policy();
  c.default_ttl_seconds = p.default_ttl_seconds();
  return c;
}

void KvStatsToProto(const db::KvStats& s, v1::KvStats* p) {
  v1::KvConfig* c = p->mutable_config();
  FingerprintToProto(s.config.model, c->mutable_model());
  c->set_codec(CodecToProto(s.config.codec.kind));
  c->set_entropy(s.config.codec.entropy);
  c->set_int4_group_size(s.config.codec.group_size);
  c->set_capacity_bytes(s.config.capacity_bytes);
  c->set_eviction_policy(s.config.eviction_policy);
  c->set_default_ttl_seconds(s.config.default_ttl_seconds);
  p->set_chunks(s.chunks);
  p->set_blocks(s.blocks);
  p->set_tokens(s.tokens);
  p->set_stored_bytes(s.stored_bytes);
  p->set_fp16_bytes(s.fp16_bytes);
  p->set_pinned_chunks(s.pinned_chunks);
  p->set_evicted_chunks(s.evicted_chunks);
  p->set_expired_chunks(s.expired_chunks);
  p->set_mean_key_error(s.mean_key_error);
  p->set_mean_value_error(s.mean_value_error);
}

std::vector<std::string> Ids(const google::protobuf::RepeatedPtrField<std::string>& ids) {
  return std::vector<std::string>(ids.begin(), ids.end());
}

// Server side of PutKv: the header opens a db::KvChunkWriter, each layer is
// encoded as it arrives, and the put commits when the client half-closes.
// Any error, or a stream that breaks, ends the call with nothing stored.
class PutKvReactor final : public grpc::ServerReadReactor<v1::PutKvRequest> {
 public:
  PutKvReactor(db::Store* store, grpc::CallbackServerContext* ctx, v1::PutKvResponse* response)
      : store_(store), ctx_(ctx), response_(response) {
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok && (cancelled_.load() || ctx_->IsCancelled())) {
      // A cancelled call (client cancel, deadline, broken connection) ends
      // the stream too; it must not commit what arrived.
      writer_.reset();
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "KV put cancelled; nothing was stored"));
      return;
    }
    absl::Status status = ok ? Consume() : Complete();
    if (!status.ok()) {
      LogRpcFailure("PutKv", status, ctx_->peer());
      writer_.reset();
      Finish(ToGrpcStatus(status));
      return;
    }
    if (!ok) {
      Finish(grpc::Status::OK);
      return;
    }
    request_.Clear();
    StartRead(&request_);
  }

  void OnCancel() override { cancelled_ = true; }
  void OnDone() override { delete this; }

 private:
  absl::Status Consume() {
    switch (request_.part_case()) {
      case v1::PutKvRequest::kHeader: {
        if (writer_ != nullptr) {
          return absl::InvalidArgumentError("a KV put carries a second header");
        }
        const v1::PutKvHeader& h = request_.header();
        db::KvPutHeader header;
        header.chunk_id = h.chunk_id();
        header.model = FingerprintFromProto(h.model());
        header.tokens.assign(h.tokens().begin(), h.tokens().end());
        header.pin = h.pin();
        header.ttl_seconds = h.ttl_seconds();
        if (h.has_keys_position()) header.keys_position = h.keys_position();
        chunk_id_ = h.chunk_id();
        ASSIGN_OR_RETURN(writer_, store_->BeginPutKv(h.namespace_(), std::move(header)));
        return absl::OkStatus();
      }
      case v1::PutKvRequest::kLayer: {
        if (writer_ == nullptr) {
          return absl::InvalidArgumentError("a KV put must start with its header");
        }
        const v1::KvLayer& l = request_.layer();
        ASSIGN_OR_RETURN(db::KvDtype dtype, DtypeFromProto(l.dtype()));
        RETURN_IF_ERROR(Annotate(db::DtypeToFloats(l.k(), dtype, &k_),
                                 absl::StrCat("layer ", l.layer(), " K")));
        RETURN_IF_ERROR(Annotate(db::DtypeToFloats(l.v(), dtype, &v_),
                                 absl::StrCat("layer ", l.layer(), " V")));
        db::KvTensorShape shape{l.n_kv_heads(), l.tokens(), l.head_dim()};
        return writer_->AddLayer(l.layer(), shape, k_, v_);
      }
      case v1::PutKvRequest::PART_NOT_SET:
        break;
    }
    return absl::InvalidArgumentError("a KV put message holds neither header nor layer");
  }

  absl::Status Complete() {
    if (writer_ == nullptr) return absl::InvalidArgumentError("a KV put sent no header");
    ASSIGN_OR_RETURN(db::KvPutResult result, writer_->Commit());
    writer_.reset();
    response_->set_stored_bytes(result.stored_bytes);
    for (float e : result.key_error) response_->add_key_error(e);
    for (float e : result.value_error) response_->add_value_error(e);
    response_->set_evicted_chunks(result.evicted_chunks);
    return absl::OkStatus();
  }

  db::Store* const store_;
  grpc::CallbackServerContext* const ctx_;
  v1::PutKvResponse* const response_;
  v1::PutKvRequest request_;
  std::unique_ptr<db::KvChunkWriter> writer_;
  std::atomic<bool> cancelled_{false};
  std::string chunk_id_;
  std::vector<float> k_, v_;
};

// A client's POSIX shared memory object, mapped for writing (GetKv's
// same-host path). Only names "/mnemo-[A-Za-z0-9_.-]{1,200}" are opened.
class SharedRegion {
 public:
  static absl::StatusOr<std::unique_ptr<SharedRegion>> Open(const std::string& name,
                                                            uint64_t needed) {
    constexpr absl::string_view kPrefix = "/mnemo-";
    bool ok = name.size() > kPrefix.size() && name.size() <= kPrefix.size() + 200 &&
              absl::string_view(name).substr(0, kPrefix.size()) == kPrefix;
    for (size_t i = kPrefix.size(); ok && i < name.size(); ++i) {
      const char c = name[i];
      ok = std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
    }
    if (!ok) {
      return absl::InvalidArgumentError(absl::StrCat(
          "shared memory name '", name, "' is not /mnemo- followed by 1..200 of [A-Za-z0-9_.-]"));
    }
    const int fd = shm_open(name.c_str(), O_RDWR, 0);
    if (fd < 0) {
      const int err = errno;
      if (err == ENOENT) {
        return absl::NotFoundError(absl::StrCat("shared memory '", name, "' does not exist"));
      }
      return absl::PermissionDeniedError(
          absl::StrCat("cannot open shared memory '", name, "': ", std::strerror(err)));
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
      close(fd);
      return absl::InternalError(absl::StrCat("fstat of shared memory '", name, "' failed"));
    }
    const auto size = static_cast<uint64_t>(st.st_size);
    if (size < needed) {
      close(fd);
      return absl::ResourceExhaustedError(absl::StrCat("shared memory '", name, "' holds ", size,
                                                       " bytes; the read needs ", needed));
    }
    // Back every page now, so a full /dev/shm is an error here and not a
    // SIGBUS while writing.
    if (needed > 0) {
      const int err = posix_fallocate(fd, 0, static_cast<off_t>(needed));
      if (err != 0) {
        close(fd);
        return absl::ResourceExhaustedError(absl::StrCat(
            "cannot back shared memory '", name, "' with ", needed, " bytes: ", std::strerror(err)));
      }
    }
    void* p = needed == 0 ? nullptr
                          : mmap(nullptr, needed, PROT_READ | PROT_WRITE,
                                 MAP_SHARED | MAP_POPULATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED) {
      return absl::InternalError(absl::StrCat("cannot map shared memory '", name, "': ",
                                              std::strerror(errno)));
    }
    return std::unique_ptr<SharedRegion>(new SharedRegion(static_cast<char*>(p), needed));
  }
  ~SharedRegion() {
    if (data_ != nullptr) munmap(data_, size_);
  }
  // Copies `bytes` to the next free offset and returns that offset.
  absl::StatusOr<uint64_t> Append(absl::string_view bytes) {
    if (bytes.size() > size_ - used_) {
      return absl::InternalError("GetKv wrote past its shared memory plan");
    }
    const uint64_t at = used_;
    std::memcpy(data_ + at, bytes.data(), bytes.size());
    used_ += bytes.size();
    return at;
  }

 private:
  SharedRegion(char* data, uint64_t size) : data_(data), size_(size) {}
  char* const data_;
  const uint64_t size_;
  uint64_t used_ = 0;
};

// Server side of GetKv: one block per message, each read from the store
// just before it is written, so the first layer leaves as soon as it is
// read.
class GetKvReactor final : public grpc::ServerWriteReactor<v1::GetKvResponse> {
 public:
  GetKvReactor(db::Store* store, grpc::CallbackServerContext* ctx, const v1::GetKvRequest& request,
               bool shared_memory)
      : ctx_(ctx), shared_memory_(shared_memory) {
    absl::Status status = Open(store, request);
    if (!status.ok()) {
      End(status);
      return;
    }
    WriteNext();
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "GetKv stream broken"));
      return;
    }
    WriteNext();
  }

  void OnDone() override { delete this; }

 private:
  absl::Status Open(db::Store* store, const v1::GetKvRequest& request) {
    ASSIGN_OR_RETURN(dtype_, DtypeFromProto(request.dtype()));
    db::KvReadOptions options;
    options.chunk_ids = Ids(request.chunk_ids());
    options.model = FingerprintFromProto(request.model());
    options.layer_begin = request.layer_begin();
    options.layer_end = request.layer_end();
    options.positions.assign(request.positions().begin(), request.positions().end());
    options.as_bytes = dtype_;
    ASSIGN_OR_RETURN(reader_, store->ReadKv(request.namespace_(), options));
    if (!request.shm_name().empty() && !shared_memory_) {
      return absl::FailedPreconditionError(
          "this mnemod serves GetKv without shared memory (--kv-shared-memory false)");
    }
    if (!request.shm_name().empty()) {
      ASSIGN_OR_RETURN(shm_, SharedRegion::Open(request.shm_name(),
                                                reader_->total_values() * db::KvDtypeBytes(dtype_)));
    }
    return absl::OkStatus();
  }

  void WriteNext() {
    absl::StatusOr<bool> more = reader_->Next(&block_);
    if (!more.ok()) {
      End(more.status());
      return;
    }
    if (!*more) {
      End(absl::OkStatus());
      return;
    }
    response_.Clear();
    response_.set_chunk_index(static_cast<uint32_t>(block_.chunk_index));
    response_.set_chunk_id(block_.chunk_id);
    v1::KvLayer* layer = response_.mutable_block();
    layer->set_layer(block_.layer);
    layer->set_dtype(DtypeToProto(dtype_));
    layer->set_n_kv_heads(block_.shape.heads);
    layer->set_tokens(block_.shape.tokens);
    layer->set_head_dim(block_.shape.head_dim);
    if (shm_ != nullptr) {
      absl::StatusOr<uint64_t> at = shm_->Append(block_.k_bytes);
      const absl::Status written = at.ok() ? shm_->Append(block_.v_bytes).status() : at.status();
      if (!written.ok()) {
        End(written);
        return;
      }
      response_.set_shm_offset(*at);
    } else {
      layer->set_k(block_.k_bytes.data(), block_.k_bytes.size());
      layer->set_v(block_.v_bytes.data(), block_.v_bytes.size());
    }
    response_.set_key_error(block_.key_error);
    response_.set_value_error(block_.value_error);
    for (int32_t t : block_.tokens) response_.add_tokens(t);
    response_.set_position(block_.position);
    StartWrite(&response_);
  }

  void End(const absl::Status& status) {
    if (!status.ok()) {
      LogRpcFailure("GetKv", status, ctx_->peer());
    }
    reader_.reset();
    shm_.reset();
    Finish(ToGrpcStatus(status));
  }

  grpc::CallbackServerContext* const ctx_;
  const bool shared_memory_;
  db::KvDtype dtype_ = db::KvDtype::kFp32;
  std::unique_ptr<db::KvReader> reader_;
  std::unique_ptr<SharedRegion> shm_;
  db::KvBlock block_;
  v1::GetKvResponse response_;
};

}  // namespace

grpc::ServerUnaryReactor* MnemoService::RegisterKvModel(
    grpc::CallbackServerContext* ctx, const v1::RegisterKvModelRequest* request,
    v1::RegisterKvModelResponse* response) {
  absl::Status status = [&]() -> absl::Status {
    ASSIGN_OR_RETURN(db::KvConfig config, KvConfigFromProto(request->config()));
    ASSIGN_OR_RETURN(db::KvStats stats, store_->RegisterKvModel(request->namespace_(), config));
    KvStatsToProto(stats, response->mutable_stats());
    LogEvent(spdlog::level::info, "KV model registered",
             {{"namespace", request->namespace_()}, {"model", config.model.Canonical()},
              {"codec", std::string(db::KvCodecName(config.codec.kind))}});
    return absl::OkStatus();
  }();
  return FinishUnary(ctx, "RegisterKvModel", status);
}

grpc::ServerReadReactor<v1::PutKvRequest>* MnemoService::PutKv(grpc::CallbackServerContext* ctx,
                                                               v1::PutKvResponse* response) {
  return new PutKvReactor(store_, ctx, response);
}

grpc::ServerWriteReactor<v1::GetKvResponse>* MnemoService::GetKv(
    grpc::CallbackServerContext* ctx, const v1::GetKvRequest* request) {
  return new GetKvReactor(store_, ctx, *request, kv_shared_memory_);
}

grpc::ServerUnaryReactor* MnemoService::ExistsKv(grpc::CallbackServerContext* ctx,
                                                 const v1::ExistsKvRequest* request,
                                                 v1::ExistsKvResponse* response) {
  absl::Status status = [&]() -> absl::Status {
    ASSIGN_OR_RETURN(std::vector<uint32_t> tokens,
                     store_->ExistsKv(request->namespace_(), Ids(request->chunk_ids()),
                                      FingerprintFromProto(request->model())));
    for (uint32_t t : tokens) {
      response->add_exists(t > 0);
      response->add_tokens(t);
    }
    return absl::OkStatus();
  }();
  return FinishUnary(ctx, "ExistsKv", status);
}

grpc::ServerUnaryReactor* MnemoService::DeleteKv(grpc::CallbackServerContext* ctx,
                                                 const v1::DeleteKvRequest* request,
                                                 v1::DeleteKvResponse* response) {
  absl::Status status = [&]() -> absl::Status {
    ASSIGN_OR_RETURN(uint64_t deleted,
                     store_->DeleteKv(request->namespace_(), Ids(request->chunk_ids())));
    response->set_deleted(deleted);
    return absl::OkStatus();
  }();
  return FinishUnary(ctx, "DeleteKv", status);
}

grpc::ServerUnaryReactor* MnemoService::LookupPrefix(grpc::CallbackServerContext* ctx,
                                                     const v1::LookupPrefixRequest* request,
                                                     v1::LookupPrefixResponse* response) {
  absl::Status status = [&]() -> absl::Status {
    std::vector<int32_t> tokens(request->tokens().begin(), request->tokens().end());
    ASSIGN_OR_RETURN(db::KvPrefixMatch match,
                     store_->LookupPrefix(request->namespace_(),
                                          FingerprintFromProto(request->model()), tokens));
    for (std::string& id : match.chunk_ids) response->add_chunk_ids(std::move(id));
    for (uint32_t t : match.chunk_tokens) response->add_chunk_tokens(t);
    response->set_matched_tokens(match.matched_tokens);
    return absl::OkStatus();
  }();
  return FinishUnary(ctx, "LookupPrefix", status);
}

grpc::ServerUnaryReactor* MnemoService::SetKvRetention(grpc::CallbackServerContext* ctx,
                                                       const v1::SetKvRetentionRequest* request,
                                                       v1::SetKvRetentionResponse* response) {
  absl::Status status = [&]() -> absl::Status {
    std::optional<bool> pin;
    std::optional<int64_t> ttl;
    if (request->has_pin()) pin = request->pin();
    if (request->has_ttl_seconds()) ttl = request->ttl_seconds();
    ASSIGN_OR_RETURN(uint64_t updated, store_->SetKvRetention(request->namespace_(),
                                                              Ids(request->chunk_ids()), pin, ttl));
    response->set_updated(updated);
    return absl::OkStatus();
  }();
  return FinishUnary(ctx, "SetKvRetention", status);
}

grpc::ServerUnaryReactor* MnemoService::GetKvStats(grpc::CallbackServerContext* ctx,
                                                   const v1::KvStatsRequest* request,
                                                   v1::KvStatsResponse* response) {
  absl::Status status = [&]() -> absl::Status {
    ASSIGN_OR_RETURN(db::KvStats stats, store_->GetKvStats(request->namespace_()));
    KvStatsToProto(stats, response->mutable_stats());
    return absl::OkStatus();
  }();
  return FinishUnary(ctx, "GetKvStats", status);
}

}  // namespace mnemo::server
