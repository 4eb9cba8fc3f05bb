// Implementation of mnemo::Client over the generated mnemo.v1 stub.
#include "mnemo/client.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <mutex>
#include <bit>
#include <cmath>
#include <cstring>
#include <future>
#include <thread>
#include <utility>

#include <grpc/grpc.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "client/json_filter.h"
#include "common/half.h"
#include "common/status_macros.h"
#include "mnemo/v1/mnemo.grpc.pb.h"

namespace mnemo {
namespace {

using Clock = std::chrono::system_clock;

// gRPC and Abseil share the canonical code space, so codes map 1:1.
absl::Status FromGrpc(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  int code = static_cast<int>(status.error_code());
  if (code < 0 || code > 16) code = static_cast<int>(absl::StatusCode::kUnknown);
  return absl::Status(static_cast<absl::StatusCode>(code), status.error_message());
}

v1::Metric MetricToProto(Metric m) {
  switch (m) {
    case Metric::kInnerProduct:
      return v1::METRIC_INNER_PRODUCT;
    case Metric::kL2:
      return v1::METRIC_L2;
    case Metric::kCosine:
      return v1::METRIC_COSINE;
  }
  return v1::METRIC_UNSPECIFIED;
}

Metric MetricFromProto(v1::Metric m) {
  switch (m) {
    case v1::METRIC_L2:
      return Metric::kL2;
    case v1::METRIC_COSINE:
      return Metric::kCosine;
    default:
      return Metric::kInnerProduct;
  }
}

v1::SearchMode SearchModeToProto(SearchMode mode) {
  switch (mode) {
    case SearchMode::kDense:
      return v1::SEARCH_MODE_DENSE;
    case SearchMode::kBm25:
      return v1::SEARCH_MODE_BM25;
    case SearchMode::kHybridRrf:
      return v1::SEARCH_MODE_HYBRID_RRF;
    case SearchMode::kHybridWeighted:
      return v1::SEARCH_MODE_HYBRID_WEIGHTED;
    case SearchMode::kLateInteraction:
      return v1::SEARCH_MODE_LATE_INTERACTION;
  }
  // An out-of-range value is passed on as is; the server refuses it.
  return static_cast<v1::SearchMode>(static_cast<int>(mode));
}

NamespaceInfo InfoFromProto(const v1::NamespaceInfo& p) {
  NamespaceInfo info;
  info.config.name = p.config().name();
  info.config.dim = p.config().dim();
  info.config.metric = MetricFromProto(p.config().metric());
  info.config.index_factory = p.config().index_factory();
  info.config.train_threshold = p.config().train_threshold();
  info.config.description = p.config().description();
  info.config.encoder = p.config().encoder();
  info.config.chunk_max_tokens = p.config().chunk_max_tokens();
  if (p.config().has_chunk_overlap_tokens()) {
    info.config.chunk_overlap_tokens = p.config().chunk_overlap_tokens();
  }
  if (p.config().has_late_interaction()) {
    info.config.late_interaction = p.config().late_interaction();
  }
  info.config.late_interaction_nbits = p.config().late_interaction_nbits();
  info.config.late_interaction_train_tokens = p.config().late_interaction_train_tokens();
  info.chunk_count = p.chunk_count();
  info.document_count = p.document_count();
  info.index_trained = p.index_trained();
  info.index_description = p.index_description();
  info.created_unix_ms = p.created_unix_ms();
  info.approximate_bytes = p.approximate_bytes();
  info.late_interaction_tokens = p.late_interaction_tokens();
  info.late_interaction_trained = p.late_interaction_trained();
  info.late_interaction_description = p.late_interaction_description();
  return info;
}

void DocumentToProto(const Document& d, v1::Document* out) {
  out->set_id(d.id);
  out->set_text(d.text);
  out->set_metadata_json(d.metadata_json);
}

void ChunkToProto(const Chunk& c, v1::Chunk* out) {
  out->set_id(c.id);
  out->set_document_id(c.document_id);
  out->set_text(c.text);
  out->set_metadata_json(c.metadata_json);
  out->mutable_vector()->Assign(c.vector.begin(), c.vector.end());
  // source_begin/end are set by the server only; not sent.
}

Chunk ChunkFromProto(const v1::Chunk& p) {
  Chunk c;
  c.id = p.id();
  c.document_id = p.document_id();
  c.text = p.text();
  c.metadata_json = p.metadata_json();
  c.vector.assign(p.vector().begin(), p.vector().end());
  c.source_begin = p.source_begin();
  c.source_end = p.source_end();
  return c;
}

v1::UpsertRequest MakeUpsertRequest(const std::string& ns, const std::vector<Document>& documents,
                                    const std::vector<Chunk>& chunks) {
  v1::UpsertRequest request;
  request.set_namespace_(ns);
  for (const Document& d : documents) DocumentToProto(d, request.add_documents());
  for (const Chunk& c : chunks) ChunkToProto(c, request.add_chunks());
  return request;
}

// Client side of UpsertStream over the synchronous ClientWriter. The context
// and response outlive the writer, as gRPC requires.
class UpsertWriterImpl final : public UpsertWriter {
 public:
  UpsertWriterImpl(v1::Mnemo::Stub* stub, std::string ns, Clock::time_point deadline)
      : ns_(std::move(ns)) {
    context_.set_deadline(deadline);
    writer_ = stub->UpsertStream(&context_, &response_);
  }

  ~UpsertWriterImpl() override {
    if (!finished_) {
      // Abandoned without Finish: cancel so the call does not linger. The
      // messages already acknowledged by the server stay committed.
      context_.TryCancel();
      mnemo::IgnoreError(FromGrpc(writer_->Finish()));
    }
  }

  absl::Status Write(const std::vector<Document>& documents,
                     const std::vector<Chunk>& chunks) override {
    if (finished_) return absl::FailedPreconditionError("UpsertWriter already finished");
    if (broken_) {
      return absl::FailedPreconditionError(
          "stream is broken; call Finish() for the server's status");
    }
    if (!writer_->Write(MakeUpsertRequest(ns_, documents, chunks))) {
      // The server ended the call (an error on an earlier message, or the
      // connection broke); its status is only available from Finish.
      broken_ = true;
      return absl::AbortedError("stream closed by the server; call Finish() for its status");
    }
    return absl::OkStatus();
  }

  absl::StatusOr<UpsertResult> Finish() override {
    if (finished_) return absl::FailedPreconditionError("UpsertWriter already finished");
    finished_ = true;
    writer_->WritesDone();
    RETURN_IF_ERROR(FromGrpc(writer_->Finish()));
    return UpsertResult{response_.documents_written(), response_.chunks_written()};
  }

 private:
  const std::string ns_;
  grpc::ClientContext context_;
  v1::UpsertResponse response_;
  std::unique_ptr<grpc::ClientWriter<v1::UpsertRequest>> writer_;
  bool finished_ = false;
  bool broken_ = false;
};

// --- KV conversions -------------------------------------------------------

// K/V travel as little-endian elements; the copies below are plain memcpy.
static_assert(std::endian::native == std::endian::little,
              "the KV wire format is little-endian; add byte swaps for this host");

size_t KvDtypeBytes(KvDtype dtype) { return dtype == KvDtype::kFp32 ? 4 : 2; }

v1::KvDtype KvDtypeToProto(KvDtype dtype) {
  switch (dtype) {
    case KvDtype::kFp32:
      return v1::KV_DTYPE_FP32;
    case KvDtype::kFp16:
      return v1::KV_DTYPE_FP16;
    case KvDtype::kBf16:
      return v1::KV_DTYPE_BF16;
  }
  // An out-of-range value is passed on as is; the server refuses it.
  return static_cast<v1::KvDtype>(static_cast<int>(dtype));
}

absl::StatusOr<KvDtype> KvDtypeFromProto(v1::KvDtype dtype) {
  switch (dtype) {
    case v1::KV_DTYPE_UNSPECIFIED:
    case v1::KV_DTYPE_FP32:
      return KvDtype::kFp32;
    case v1::KV_DTYPE_FP16:
      return KvDtype::kFp16;
    case v1::KV_DTYPE_BF16:
      return KvDtype::kBf16;
    default:
      return absl::DataLossError(
          absl::StrCat("the server sent KV in unknown dtype ", static_cast<int>(dtype)));
  }
}

v1::KvCodec KvCodecToProto(KvCodec codec) {
  switch (codec) {
    case KvCodec::kFp32:
      return v1::KV_CODEC_FP32;
    case KvCodec::kFp16:
      return v1::KV_CODEC_FP16;
    case KvCodec::kBf16:
      return v1::KV_CODEC_BF16;
    case KvCodec::kInt8:
      return v1::KV_CODEC_INT8;
    case KvCodec::kInt4:
      return v1::KV_CODEC_INT4;
  }
  // An out-of-range value is passed on as is; the server refuses it.
  return static_cast<v1::KvCodec>(static_cast<int>(codec));
}

KvCodec KvCodecFromProto(v1::KvCodec codec) {
  switch (codec) {
    case v1::KV_CODEC_FP32:
      return KvCodec::kFp32;
    case v1::KV_CODEC_BF16:
      return KvCodec::kBf16;
    case v1::KV_CODEC_INT8:
      return KvCodec::kInt8;
    case v1::KV_CODEC_INT4:
      return KvCodec::kInt4;
    default:  // UNSPECIFIED is fp16
      return KvCodec::kFp16;
  }
}

// Floats as little-endian `dtype` elements. INVALID_ARGUMENT for a finite
// value the type cannot hold (it would arrive as infinity and be refused
// with a less helpful message); NaN and infinity pass, for the server to
// refuse.
absl::Status FloatsToWire(absl::Span<const float> x, KvDtype dtype, absl::string_view what,
                          std::string* out) {
  out->resize(x.size() * KvDtypeBytes(dtype));
  if (dtype == KvDtype::kFp32) {
    if (!x.empty()) std::memcpy(out->data(), x.data(), out->size());
    return absl::OkStatus();
  }
  if (dtype != KvDtype::kFp16 && dtype != KvDtype::kBf16) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown KV dtype ", static_cast<int>(dtype)));
  }
  const bool fp16 = dtype == KvDtype::kFp16;
  char* dst = out->data();
  for (size_t i = 0; i < x.size(); ++i) {
    const uint16_t h = fp16 ? FloatToHalf(x[i]) : FloatToBf16(x[i]);
    if (std::isfinite(x[i]) && (h & 0x7fff) == (fp16 ? 0x7c00 : 0x7f80)) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " element ", i, " = ", x[i], " is beyond the range of ",
                       KvDtypeName(dtype), "; send it as fp32"));
    }
    std::memcpy(dst + 2 * i, &h, 2);
  }
  return absl::OkStatus();
}

absl::Status WireToFloats(std::string_view bytes, KvDtype dtype, size_t elements,
                          absl::string_view what, std::vector<float>* out) {
  if (bytes.size() != elements * KvDtypeBytes(dtype)) {
    return absl::DataLossError(absl::StrCat(what, " holds ", bytes.size(), " bytes; its shape (",
                                            elements, " ", KvDtypeName(dtype),
                                            " elements) needs ", elements * KvDtypeBytes(dtype)));
  }
  out->resize(elements);
  if (dtype == KvDtype::kFp32) {
    if (elements > 0) std::memcpy(out->data(), bytes.data(), bytes.size());
    return absl::OkStatus();
  }
  const bool fp16 = dtype == KvDtype::kFp16;
  for (size_t i = 0; i < elements; ++i) {
    uint16_t h;
    std::memcpy(&h, bytes.data() + 2 * i, 2);
    (*out)[i] = fp16 ? HalfToFloat(h) : Bf16ToFloat(h);
  }
  return absl::OkStatus();
}

void FingerprintToProto(const ModelFingerprint& f, v1::ModelFingerprint* p) {
  // Negative sizes (never valid) go out as 0, which the server refuses.
  auto size = [](int n) { return static_cast<uint32_t>(std::max(n, 0)); };
  p->set_architecture(f.architecture);
  p->set_n_layers(size(f.n_layers));
  p->set_n_heads(size(f.n_heads));
  p->set_n_kv_heads(size(f.n_kv_heads));
  p->set_head_dim(size(f.head_dim));
  p->set_dim(size(f.dim));
  p->set_rope_theta(f.rope_theta);
  p->set_rope_style(f.rope_style);
  p->set_dtype(f.dtype);
  p->set_tokenizer_sha256(f.tokenizer_sha256);
}

ModelFingerprint FingerprintFromProto(const v1::ModelFingerprint& p) {
  auto size = [](uint32_t n) { return static_cast<int>(std::min<uint32_t>(n, 1u << 30)); };
  ModelFingerprint f;
  f.architecture = p.architecture();
  f.n_layers = size(p.n_layers());
  f.n_heads = size(p.n_heads());
  f.n_kv_heads = size(p.n_kv_heads());
  f.head_dim = size(p.head_dim());
  f.dim = size(p.dim());
  f.rope_theta = p.rope_theta();
  f.rope_style = p.rope_style();
  f.dtype = p.dtype();
  f.tokenizer_sha256 = p.tokenizer_sha256();
  return f;
}

KvStats KvStatsFromProto(const v1::KvStats& p) {
  KvStats s;
  s.config.model = FingerprintFromProto(p.config().model());
  s.config.codec = KvCodecFromProto(p.config().codec());
  if (p.config().has_entropy()) s.config.entropy = p.config().entropy();
  s.config.int4_group_size = p.config().int4_group_size();
  s.config.capacity_bytes = p.config().capacity_bytes();
  s.config.eviction_policy = p.config().eviction_policy();
  s.config.default_ttl_seconds = p.config().default_ttl_seconds();
  s.chunks = p.chunks();
  s.blocks = p.blocks();
  s.tokens = p.tokens();
  s.stored_bytes = p.stored_bytes();
  s.fp16_bytes = p.fp16_bytes();
  s.pinned_chunks = p.pinned_chunks();
  s.evicted_chunks = p.evicted_chunks();
  s.expired_chunks = p.expired_chunks();
  s.mean_key_error = p.mean_key_error();
  s.mean_value_error = p.mean_value_error();
  return s;
}

// A POSIX shared memory object this client created for GetKv, mapped
// read-only; mnemod writes into it. Removed (unlinked) when destroyed.
class ShmRegion {
 public:
  static absl::StatusOr<std::unique_ptr<ShmRegion>> Create(uint64_t bytes) {
    static std::atomic<uint64_t> counter{0};
    const std::string name =
        absl::StrCat("/mnemo-", getpid(), "-", counter.fetch_add(1), "-",
                     std::chrono::steady_clock::now().time_since_epoch().count() % 1000000);
    const int fd = shm_open(name.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
    if (fd < 0) {
      return absl::UnavailableError(absl::StrCat("cannot create shared memory ", name, ": ",
                                                 std::strerror(errno)));
    }
    const uint64_t size = std::max<uint64_t>(bytes, 1);
    if (ftruncate(fd, static_cast<off_t>(size)) != 0) {
      const int err = errno;
      close(fd);
      shm_unlink(name.c_str());
      return absl::ResourceExhaustedError(absl::StrCat("cannot size shared memory ", name, " to ",
                                                       size, " bytes: ", std::strerror(err)));
    }
    void* p = mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (p == MAP_FAILED) {
      shm_unlink(name.c_str());
      return absl::InternalError(absl::StrCat("cannot map shared memory ", name));
    }
    return std::unique_ptr<ShmRegion>(new ShmRegion(name, static_cast<const char*>(p), size));
  }
  ~ShmRegion() {
    munmap(const_cast<char*>(data_), size_);
    shm_unlink(name_.c_str());
  }
  const std::string& name() const { return name_; }
  uint64_t size() const { return size_; }
  const char* data() const { return data_; }

 private:
  ShmRegion(std::string name, const char* data, uint64_t size)
      : name_(std::move(name)), data_(data), size_(size) {}
  const std::string name_;
  const char* const data_;
  const uint64_t size_;
};

// Regions kept for reuse between reads (a fresh region costs a page fault
// per page on the server's first write). Thread-safe.
class ShmPool {
 public:
  // A region of at least `bytes`, taken out of the pool or new.
  absl::StatusOr<std::unique_ptr<ShmRegion>> Take(uint64_t bytes) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto it = free_.begin(); it != free_.end(); ++it) {
        if ((*it)->size() >= bytes) {
          std::unique_ptr<ShmRegion> r = std::move(*it);
          free_.erase(it);
          return r;
        }
      }
    }
    return ShmRegion::Create(bytes);
  }
  void Give(std::unique_ptr<ShmRegion> region) {
    std::lock_guard<std::mutex> lock(mu_);
    free_.push_back(std::move(region));
    if (free_.size() > 2) free_.erase(free_.begin());  // keep the newest two
  }

 private:
  std::mutex mu_;
  std::vector<std::unique_ptr<ShmRegion>> free_;
};

// Converts one streamed block. DATA_LOSS when its bytes do not match its
// shape. With `shm`, K and V are read from the region at the block's
// offset; with `raw`, they are left as views in the wire dtype.
absl::Status KvBlockFromProto(const v1::GetKvResponse& p, KvBlock* block,
                              const ShmRegion* shm = nullptr, bool raw = false) {
  const v1::KvLayer& l = p.block();
  block->chunk_index = p.chunk_index();
  block->chunk_id = p.chunk_id();
  block->layer = l.layer();
  block->shape = KvShape{l.n_kv_heads(), l.tokens(), l.head_dim()};
  ASSIGN_OR_RETURN(block->dtype, KvDtypeFromProto(l.dtype()));
  const std::string where = absl::StrCat("KV block of chunk '", p.chunk_id(), "' layer ",
                                         l.layer());
  std::string_view k = l.k(), v = l.v();
  if (shm != nullptr) {
    const uint64_t bytes = block->shape.elements() * KvDtypeBytes(block->dtype);
    if (p.shm_offset() > shm->size() || 2 * bytes > shm->size() - p.shm_offset()) {
      return absl::DataLossError(absl::StrCat(where, " lies outside the shared memory region"));
    }
    k = std::string_view(shm->data() + p.shm_offset(), bytes);
    v = std::string_view(shm->data() + p.shm_offset() + bytes, bytes);
  }
  block->k_raw = {};
  block->v_raw = {};
  if (raw) {
    const uint64_t bytes = block->shape.elements() * KvDtypeBytes(block->dtype);
    if (k.size() != bytes || v.size() != bytes) {
      return absl::DataLossError(absl::StrCat(where, " holds ", k.size(), " + ", v.size(),
                                              " bytes; its shape needs ", bytes, " each"));
    }
    block->k.clear();
    block->v.clear();
    block->k_raw = k;
    block->v_raw = v;
  } else {
    RETURN_IF_ERROR(WireToFloats(k, block->dtype, block->shape.elements(),
                                 absl::StrCat(where, " K"), &block->k));
    RETURN_IF_ERROR(WireToFloats(v, block->dtype, block->shape.elements(),
                                 absl::StrCat(where, " V"), &block->v));
  }
  block->key_error = p.key_error();
  block->value_error = p.value_error();
  block->tokens.assign(p.tokens().begin(), p.tokens().end());
  block->position = p.position();
  return absl::OkStatus();
}

v1::GetKvRequest MakeGetKvRequest(const std::string& ns, const KvGetRequest& r) {
  v1::GetKvRequest request;
  request.set_namespace_(ns);
  for (const std::string& id : r.chunk_ids) request.add_chunk_ids(id);
  FingerprintToProto(r.model, request.mutable_model());
  request.set_layer_begin(r.layer_begin);
  request.set_layer_end(r.layer_end);
  request.set_dtype(KvDtypeToProto(r.dtype));
  request.mutable_positions()->Assign(r.positions.begin(), r.positions.end());
  return request;
}

// Client side of PutKv over the synchronous ClientWriter: the header goes
// out when the writer is made, one message per layer after it.
class KvWriterImpl final : public KvWriter {
 public:
  KvWriterImpl(v1::Mnemo::Stub* stub, const std::string& ns, const KvPutHeader& header,
               Clock::time_point deadline)
      : n_kv_heads_(static_cast<uint32_t>(std::max(header.model.n_kv_heads, 0))),
        tokens_(static_cast<uint32_t>(header.tokens.size())),
        head_dim_(static_cast<uint32_t>(std::max(header.model.head_dim, 0))) {
    context_.set_deadline(deadline);
    writer_ = stub->PutKv(&context_, &response_);
    v1::PutKvRequest request;
    v1::PutKvHeader* h = request.mutable_header();
    h->set_namespace_(ns);
    h->set_chunk_id(header.chunk_id);
    FingerprintToProto(header.model, h->mutable_model());
    h->mutable_tokens()->Assign(header.tokens.begin(), header.tokens.end());
    h->set_pin(header.pin);
    h->set_ttl_seconds(header.ttl_seconds);
    if (header.keys_position.has_value()) h->set_keys_position(*header.keys_position);
    // A refused header ends the call; the next Write reports it.
    if (!writer_->Write(request)) broken_ = true;
  }

  ~KvWriterImpl() override {
    if (!finished_) {
      // Abandoned: cancel, so the server sees a broken stream and stores
      // nothing.
      context_.TryCancel();
      mnemo::IgnoreError(FromGrpc(writer_->Finish()));
    }
  }

  absl::Status WriteLayer(uint32_t layer, absl::Span<const float> k, absl::Span<const float> v,
                          KvDtype dtype) override {
    return WriteLayer(layer, KvShape{n_kv_heads_, tokens_, head_dim_}, k, v, dtype);
  }

  absl::Status WriteLayer(uint32_t layer, const KvShape& shape, absl::Span<const float> k,
                          absl::Span<const float> v, KvDtype dtype) override {
    if (finished_) return absl::FailedPreconditionError("KvWriter already finished");
    if (broken_) {
      return absl::AbortedError("the KV put stream was closed by the server; Finish() has its "
                                "status");
    }
    v1::PutKvRequest request;
    v1::KvLayer* l = request.mutable_layer();
    l->set_layer(layer);
    l->set_dtype(KvDtypeToProto(dtype));
    l->set_n_kv_heads(shape.n_kv_heads);
    l->set_tokens(shape.tokens);
    l->set_head_dim(shape.head_dim);
    RETURN_IF_ERROR(FloatsToWire(k, dtype, absl::StrCat("layer ", layer, " K"), l->mutable_k()));
    RETURN_IF_ERROR(FloatsToWire(v, dtype, absl::StrCat("layer ", layer, " V"), l->mutable_v()));
    if (!writer_->Write(request)) {
      broken_ = true;
      return absl::AbortedError("the KV put stream was closed by the server; Finish() has its "
                                "status");
    }
    return absl::OkStatus();
  }

  absl::StatusOr<KvPutResult> Finish() override {
    if (finished_) return absl::FailedPreconditionError("KvWriter already finished");
    finished_ = true;
    if (!cancelled_) writer_->WritesDone();
    RETURN_IF_ERROR(FromGrpc(writer_->Finish()));
    if (cancelled_) return absl::CancelledError("the KV put was cancelled");
    KvPutResult result;
    result.stored_bytes = response_.stored_bytes();
    result.key_error.assign(response_.key_error().begin(), response_.key_error().end());
    result.value_error.assign(response_.value_error().begin(), response_.value_error().end());
    result.evicted_chunks = response_.evicted_chunks();
    return result;
  }

  void Cancel() override {
    if (finished_) return;
    cancelled_ = true;
    context_.TryCancel();
  }

 private:
  const uint32_t n_kv_heads_, tokens_, head_dim_;
  grpc::ClientContext context_;
  v1::PutKvResponse response_;
  std::unique_ptr<grpc::ClientWriter<v1::PutKvRequest>> writer_;
  bool finished_ = false;
  bool broken_ = false;
  bool cancelled_ = false;
};

// Client side of GetKv over the synchronous ClientReader; with a shared
// memory region (given back to `pool` when done), blocks are read from it.
class KvReaderImpl final : public KvReader {
 public:
  KvReaderImpl(v1::Mnemo::Stub* stub, v1::GetKvRequest request, Clock::time_point deadline,
               bool raw, std::unique_ptr<ShmRegion> shm = nullptr, ShmPool* pool = nullptr)
      : raw_(raw), shm_(std::move(shm)), pool_(pool) {
    context_.set_deadline(deadline);
    if (shm_ != nullptr) request.set_shm_name(shm_->name());
    reader_ = stub->GetKv(&context_, request);
  }

  ~KvReaderImpl() override {
    if (!finished_) {
      context_.TryCancel();
      mnemo::IgnoreError(FromGrpc(reader_->Finish()));
    }
    if (shm_ != nullptr && pool_ != nullptr) pool_->Give(std::move(shm_));
  }

  absl::StatusOr<bool> Next(KvBlock* block) override {
    if (finished_) {
      if (!final_status_.ok()) return final_status_;
      return false;
    }
    if (reader_->Read(&response_)) {
      absl::Status converted = KvBlockFromProto(response_, block, shm_.get(), raw_);
      if (converted.ok()) return true;
      context_.TryCancel();
      mnemo::IgnoreError(FromGrpc(reader_->Finish()));
      finished_ = true;
      final_status_ = converted;
      return converted;
    }
    finished_ = true;
    final_status_ = FromGrpc(reader_->Finish());
    if (!final_status_.ok()) return final_status_;
    return false;
  }

 private:
  const bool raw_;
  std::unique_ptr<ShmRegion> shm_;
  ShmPool* const pool_;
  grpc::ClientContext context_;
  v1::GetKvResponse response_;
  std::unique_ptr<grpc::ClientReader<v1::GetKvResponse>> reader_;
  bool finished_ = false;
  absl::Status final_status_;
};

class ClientImpl final : public Client {
 public:
  ClientImpl(std::shared_ptr<grpc::Channel> channel, const ClientOptions& options)
      : channel_(std::move(channel)),
        stub_(v1::Mnemo::NewStub(channel_)),
        generic_stub_(channel_),
        options_(options) {}

  absl::StatusOr<NamespaceInfo> CreateNamespace(const NamespaceConfig& config,
                                                const CallOptions& call) override {
    v1::CreateNamespaceRequest request;
    v1::NamespaceConfig* c = request.mutable_config();
    c->set_name(config.name);
    c->set_dim(config.dim);
    c->set_metric(MetricToProto(config.metric));
    c->set_index_factory(config.index_factory);
    c->set_train_threshold(config.train_threshold);
    c->set_description(config.description);
    c->set_encoder(config.encoder);
    c->set_chunk_max_tokens(config.chunk_max_tokens);
    if (config.chunk_overlap_tokens.has_value()) {
      c->set_chunk_overlap_tokens(*config.chunk_overlap_tokens);
    }
    if (config.late_interaction.has_value()) c->set_late_interaction(*config.late_interaction);
    c->set_late_interaction_nbits(config.late_interaction_nbits);
    c->set_late_interaction_train_tokens(config.late_interaction_train_tokens);
    v1::CreateNamespaceResponse response;
    RETURN_IF_ERROR(Call(call, [&](grpc::ClientContext* ctx) {
      return stub_->CreateNamespace(ctx, request, &response);
    }));
    return InfoFromProto(response.info());
  }

  absl::StatusOr<NamespaceInfo> GetNamespace(const std::string& name,
                                             const CallOptions& call) override {
    v1::GetNamespaceRequest request;
    request.set_name(name);
    v1::GetNamespaceResponse response;
    RETURN_IF_ERROR(Call(call, [&](grpc::ClientContext* ctx) {
      return stub_->GetNamespace(ctx, request, &response);
    }));
    return InfoFromProto(response.info());
  }

  absl::StatusOr<std::vector<NamespaceInfo>> ListNamespaces(const CallOptions& call) override {
    v1::ListNamespacesRequest request;
    v1::ListNamespacesResponse response;
    RETURN_IF_ERROR(Call(call, [&](grpc::ClientContext* ctx) {
      return stub_->ListNamespaces(ctx, request, &response);
    }));
    std::vector<NamespaceInfo> out;
    for (const v1::NamespaceInfo& info : response.namespaces()) out.push_back(InfoFromProto(info));
    return out;
  }

  absl::Status DropNamespace(const std::string& name, const CallOptions& call) override {
    v1::DropNamespaceRequest request;
    request.set_name(name);
    v1::DropNamespaceResponse response;
    return Call(call, [&](grpc::ClientContext* ctx) {
      return stub_->DropNamespace(ctx, request, &response);
    });
  }

  absl::StatusOr<UpsertResult> Upsert(const std::string& ns,
                                      const std::vector<Document>& documents,
                                      const std::vector<Chunk>& chunks,
                                      const CallOptions& call) override {
    const v1::UpsertRequest request = MakeUpsertRequest(ns, documents, chunks);
    v1::UpsertResponse response;
    RETURN_IF_ERROR(Call(call, [&](grpc::ClientContext* ctx) {
      response.Clear();
      return stub_->Upsert(ctx, request, &response);
    }));
    return UpsertResult{response.documents_written(), response.chunks_written()};
  }

  absl::StatusOr<std::unique_ptr<UpsertWriter>> UpsertStream(const std::string& ns,
                                                             const CallOptions& call) override {
    // Streams are not retried: a broken stream has committed a prefix the
    // caller must account for.
    return std::unique_ptr<UpsertWriter>(
        new UpsertWriterImpl(stub_.get(), ns, Deadline(call)));
  }

  absl::StatusOr<GetResult> Get(const std::string& ns, const std::vector<std::string>& chunk_ids,
                                const std::vector<std::string>& document_ids,
                                bool include_vectors, const CallOptions& call) override {
    v1::GetRequest request;
    request.set_namespace_(ns);
    for (const std::string& id : chunk_ids) request.add_chunk_ids(id);
    for (const std::string& id : document_ids) request.add_document_ids(id);
    request.set_include_vectors(include_vectors);
    v1::GetResponse response;
    RETURN_IF_ERROR(Call(call, [&](grpc::ClientContext* ctx) {
      response.Clear();
      return stub_->Get(ctx, request, &response);
    }));
    GetResult out;
    for (const v1::Chunk& c : response.chunks()) out.chunks.push_back(ChunkFromProto(c));
    for (const v1::Document& d : response.documents()) {
      out.documents.push_back(Document{d.id(), d.text(), d.metadata_json()});
    }
    out.missing_ids.assign(response.missing_ids().begin(), response.missing_ids().end());
    return out;
  }

  absl::StatusOr<DeleteResult> Delete(const std::string& ns,
                                      const std::vector<std::string>& chunk_ids,
                                      const std::vector<std::string>& document_ids,
                                      const CallOptions& call) override {
    v1::DeleteRequest request;
    request.set_namespace_(ns);
    for (const std::string& id : chunk_ids) request.add_chunk_ids(id);
    for (const std::string& id : document_ids) request.add_document_ids(id);
    v1::DeleteResponse response;
    RETURN_IF_ERROR(Call(call, [&](grpc::ClientContext* ctx) {
      return stub_->Delete(ctx, request, &response);
    }));
    return DeleteResult{response.chunks_deleted(), response.documents_deleted()};
  }

  absl::StatusOr<std::vector<std::vector<Hit>>> Search(const SearchRequest& req,
                                                       const CallOptions& call) override {
    v1::SearchRequest request;
    request.set_namespace_(req.ns);
    request.set_dim(req.dim);
    request.mutable_queries()->Assign(req.queries.begin(), req.queries.end());
    request.set_k(req.k);
    ASSIGN_OR_RETURN(*request.mutable_filter(),
                     client_internal::JsonFilterToProto(req.filter_json));
    request.set_include_payload(req.include_payload);
    request.set_include_vectors(req.include_vectors);
    request.mutable_params()->set_hnsw_ef_search(req.hnsw_ef_search);
    request.mutable_params()->set_ivf_nprobe(req.ivf_nprobe);
    request.mutable_params()->set_refine_factor(req.refine_factor);
    request.mutable_params()->set_late_nprobe(req.late_nprobe);
    request.mutable_params()->set_late_max_candidates(req.late_max_candidates);
    for (const std::string& text : req.text_queries) request.add_text_queries(text);
    request.set_mode(SearchModeToProto(req.mode));
    request.set_dense_weight(req.dense_weight);
    request.set_bm25_weight(req.bm25_weight);
    request.set_rrf_k(req.rrf_k);
    request.set_highlight(req.highlight);
    v1::SearchResponse response;
    RETURN_IF_ERROR(Call(call, [&](grpc::ClientContext* ctx) {
      response.Clear();
      return stub_->Search(ctx, request, &response);
    }));
    std::vector<std::vector<Hit>> out;
    out.reserve(response.results_size());
    for (const v1::QueryResult& result : response.results()) {
      std::vector<Hit>& hits = out.emplace_back();
      hits.reserve(result.hits_size());
      for (const v1::Hit& h : result.hits()) {
        Hit hit;
        hit.id = h.id();
        hit.score = h.score();
        if (h.has_chunk()) hit.chunk = ChunkFromProto(h.chunk());
        hit.snippet = h.snippet();
        hits.push_back(std::move(hit));
      }
    }
    return out;
  }

  absl::StatusOr<StatsResult> Stats(const std::string& ns, const CallOptions& call) override {
    v1::StatsRequest request;
    request.set_namespace_(ns);
    v1::StatsResponse response;
    RETURN_IF_ERROR(Call(call, [&](grpc::ClientContext* ctx) {
      response.Clear();
      return stub_->Stats(ctx, request, &response);
    }));
    StatsResult out;
    for (const v1::NamespaceInfo& info : response.namespaces()) {
      out.namespaces.push_back(InfoFromProto(info));
    }
    out.total_approximate_bytes = response.total_approximate_bytes();
    out.data_dir = response.data_dir();
    out.version = response.version();
    return out;
  }

  absl::StatusOr<uint64_t> Checkpoint(const std::string& target_dir,
                                      const CallOptions& call) override {
    v1::CheckpointRequest request;
    request.set_target_dir(target_dir);
    v1::CheckpointResponse response;
    RETURN_IF_ERROR(Call(call, [&](grpc::ClientContext* ctx) {
      return stub_->Checkpoint(ctx, request, &response);
    }));
    return response.last_sequence();
  }

  absl::Status Compact(const std::string& ns, const CallOptions& call) override {
    v1::CompactRequest request;
    request.set_namespace_(ns);
    v1::CompactResponse response;
    return Call(call, [&](grpc::ClientContext* ctx) {
      return stub_->Compact(ctx, request, &response);
    });
  }

  // grpc.health.v1.Health/Check through the generic stub: Debian ships no
  // generated code for health.proto. The request (service "") encodes to
  // zero bytes; a SERVING response is field 1 = varint 1, i.e. 08 01.
  absl::Status HealthCheck(const CallOptions& call) override {
    return Call(call, [&](grpc::ClientContext* ctx) -> grpc::Status {
      grpc::ByteBuffer request;
      grpc::Slice empty("");
      request = grpc::ByteBuffer(&empty, 1);
      grpc::ByteBuffer response;
      std::promise<grpc::Status> done;
      generic_stub_.UnaryCall(ctx, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request,
                              &response, [&done](grpc::Status s) { done.set_value(std::move(s)); });
      grpc::Status status = done.get_future().get();
      if (!status.ok()) return status;
      std::vector<grpc::Slice> slices;
      if (!response.Dump(&slices).ok()) {
        return grpc::Status(grpc::StatusCode::INTERNAL, "unreadable health response");
      }
      std::string bytes;
      for (const grpc::Slice& s : slices) {
        bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
      }
      if (bytes == std::string("\x08\x01", 2)) return grpc::Status::OK;
      // Not SERVING (UNKNOWN = 0 encodes as no bytes, NOT_SERVING = 08 02).
      const int serving_status = bytes.size() == 2 ? static_cast<unsigned char>(bytes[1]) : 0;
      return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                          absl::StrCat("server health status is ", serving_status,
                                       " (1 = SERVING)"));
    });
  }

  absl::StatusOr<KvStats> RegisterKvModel(const std::string& ns, const KvConfig& config,
                                          const CallOptions& call) override {
    v1::RegisterKvModelRequest request;
    request.set_namespace_(ns);
    v1::KvConfig* c = request.mutable_config();
    FingerprintToProto(config.model, c->mutable_model());
    c->set_codec(KvCodecToProto(config.codec));
    if (config.entropy.has_value()) c->set_entropy(*config.entropy);
    c->set_int4_group_size(config.int4_group_size);
    c->set_capacity_bytes(config.capacity_bytes);
    c->set_eviction_policy(config.eviction_policy);
    c->set_default_ttl_seconds(config.default_ttl_seconds);
    v1::RegisterKvModelResponse response;
    RETURN_IF_ERROR(Call(call, [&](grpc::ClientContext* ctx) {
      return stub_->RegisterKvModel(ctx, request, &response);
    }));
    return KvStatsFromProto(response.stats());
  }

  absl::StatusOr<std::unique_ptr<KvWriter>> OpenKvWriter(const std::string& ns,
                                                         const KvPutHeader& header,
                                                         const CallOptions& call) override {
    return std::unique_ptr<KvWriter>(new KvWriterImpl(stub_.get(), ns, header, Deadline(call)));
  }

  absl::StatusOr<KvPutResult> PutKv(const std::string& ns, const KvPut& put,
                                    const CallOptions& call) override {
    if (put.k.size() != put.v.size()) {
      return absl::InvalidArgumentError(absl::StrCat("KV put of chunk '", put.chunk_id,
                                                     "' has K for ", put.k.size(),
                                                     " layers and V for ", put.v.size()));
    }
    ASSIGN_OR_RETURN(std::unique_ptr<KvWriter> writer, OpenKvWriter(ns, put, call));
    for (size_t l = 0; l < put.k.size(); ++l) {
      absl::Status status = writer->WriteLayer(static_cast<uint32_t>(l), put.k[l], put.v[l],
                                               put.dtype);
      if (absl::IsAborted(status)) break;  // the server's reason comes from Finish
      if (!status.ok()) return status;     // refused here; the writer cancels the put
    }
    return writer->Finish();
  }

  absl::StatusOr<std::unique_ptr<KvReader>> OpenKvReader(const std::string& ns,
                                                         const KvGetRequest& request,
                                                         const CallOptions& call) override {
    std::unique_ptr<ShmRegion> shm;
    if (request.shared_memory) {
      ASSIGN_OR_RETURN(shm, TakeRegionFor(ns, request, call));
    }
    return std::unique_ptr<KvReader>(new KvReaderImpl(stub_.get(), MakeGetKvRequest(ns, request),
                                                      Deadline(call), request.raw,
                                                      std::move(shm), &shm_pool_));
  }

  // A region big enough for every block of `request` (sized from the
  // chunks' token counts).
  absl::StatusOr<std::unique_ptr<ShmRegion>> TakeRegionFor(const std::string& ns,
                                                           const KvGetRequest& request,
                                                           const CallOptions& call) {
    ASSIGN_OR_RETURN(std::vector<uint32_t> tokens,
                     ExistsKv(ns, request.chunk_ids, request.model, call));
    uint64_t total_tokens = 0;
    for (uint32_t t : tokens) total_tokens += t;
    const uint32_t end = request.layer_end == 0 ? static_cast<uint32_t>(request.model.n_layers)
                                                : request.layer_end;
    const uint64_t layers = end > request.layer_begin ? end - request.layer_begin : 0;
    const uint64_t bytes = 2 * total_tokens * static_cast<uint64_t>(request.model.n_kv_heads) *
                           static_cast<uint64_t>(request.model.head_dim) * layers *
                           KvDtypeBytes(request.dtype);
    return shm_pool_.Take(bytes);
  }

  absl::StatusOr<std::vector<KvBlock>> GetKv(const std::string& ns, const KvGetRequest& r,
                                             const CallOptions& call) override {
    if (r.shared_memory) {
      KvGetRequest floats = r;
      floats.raw = false;
      ASSIGN_OR_RETURN(std::unique_ptr<KvReader> reader, OpenKvReader(ns, floats, call));
      std::vector<KvBlock> blocks;
      while (true) {
        KvBlock block;
        ASSIGN_OR_RETURN(bool more, reader->Next(&block));
        if (!more) break;
        blocks.push_back(std::move(block));
      }
      return blocks;
    }
    const v1::GetKvRequest request = MakeGetKvRequest(ns, r);
    std::vector<KvBlock> blocks;
    absl::Status converted;
    RETURN_IF_ERROR(Call(call, [&](grpc::ClientContext* ctx) -> grpc::Status {
      blocks.clear();
      std::unique_ptr<grpc::ClientReader<v1::GetKvResponse>> reader = stub_->GetKv(ctx, request);
      v1::GetKvResponse response;
      while (reader->Read(&response)) {
        converted = KvBlockFromProto(response, &blocks.emplace_back());
        if (!converted.ok()) {
          ctx->TryCancel();
          mnemo::IgnoreError(FromGrpc(reader->Finish()));
          return grpc::Status(grpc::StatusCode::DATA_LOSS, std::string(converted.message()));
        }
      }
      return reader->Finish();
    }));
    return blocks;
  }

  absl::StatusOr<std::vector<uint32_t>> ExistsKv(const std::string& ns,
                                                 const std::vector<std::string>& chunk_ids,
                                                 const ModelFingerprint& model,
                                                 const CallOptions& call) override {
    v1::ExistsKvRequest request;
    request.set_namespace_(ns);
    for (const std::string& id : chunk_ids) request.add_chunk_ids(id);
    FingerprintToProto(model, request.mutable_model());
    v1::ExistsKvResponse response;
    RETURN_IF_ERROR(Call(call, [&](grpc::ClientContext* ctx) {
      response.Clear();
      return stub_->ExistsKv(ctx, request, &response);
    }));
    if (static_cast<size_t>(response.tokens_size()) != chunk_ids.size()) {
      return absl::DataLossError(absl::StrCat("ExistsKv answered for ", response.tokens_size(),
                                              " of ", chunk_ids.size(), " ids"));
    }
    return std::vector<uint32_t>(response.tokens().begin(), response.tokens().end());
  }

  absl::StatusOr<uint64_t> DeleteKv(const std::string& ns,
                                    const std::vector<std::string>& chunk_ids,
                                    const CallOptions& call) override {
    v1::DeleteKvRequest request;
    request.set_namespace_(ns);
    for (const std::string& id : chunk_ids) request.add_chunk_ids(id);
    v1::DeleteKvResponse response;
    RETURN_IF_ERROR(Call(call, [&](grpc::ClientContext* ctx) {
      return stub_->DeleteKv(ctx, request, &response);
    }));
    return response.deleted();
  }

  absl::StatusOr<KvPrefixMatch> LookupPrefix(const std::string& ns, const ModelFingerprint& model,
                                             const std::vector<int32_t>& tokens,
                                             const CallOptions& call) override {
    v1::LookupPrefixRequest request;
    request.set_namespace_(ns);
    FingerprintToProto(model, request.mutable_model());
    request.mutable_tokens()->Assign(tokens.begin(), tokens.end());
    v1::LookupPrefixResponse response;
    RETURN_IF_ERROR(Call(call, [&](grpc::ClientContext* ctx) {
      response.Clear();
      return stub_->LookupPrefix(ctx, request, &response);
    }));
    KvPrefixMatch match;
    match.chunk_ids.assign(response.chunk_ids().begin(), response.chunk_ids().end());
    match.chunk_tokens.assign(response.chunk_tokens().begin(), response.chunk_tokens().end());
    match.matched_tokens = response.matched_tokens();
    return match;
  }

  absl::StatusOr<uint64_t> SetKvRetention(const std::string& ns,
                                          const std::vector<std::string>& chunk_ids,
                                          std::optional<bool> pin,
                                          std::optional<int64_t> ttl_seconds,
                                          const CallOptions& call) override {
    v1::SetKvRetentionRequest request;
    request.set_namespace_(ns);
    for (const std::string& id : chunk_ids) request.add_chunk_ids(id);
    if (pin.has_value()) request.set_pin(*pin);
    if (ttl_seconds.has_value()) request.set_ttl_seconds(*ttl_seconds);
    v1::SetKvRetentionResponse response;
    RETURN_IF_ERROR(Call(call, [&](grpc::ClientContext* ctx) {
      return stub_->SetKvRetention(ctx, request, &response);
    }));
    return response.updated();
  }

  absl::StatusOr<KvStats> GetKvStats(const std::string& ns, const CallOptions& call) override {
    v1::KvStatsRequest request;
    request.set_namespace_(ns);
    v1::KvStatsResponse response;
    RETURN_IF_ERROR(Call(call, [&](grpc::ClientContext* ctx) {
      return stub_->GetKvStats(ctx, request, &response);
    }));
    return KvStatsFromProto(response.stats());
  }

 private:
  Clock::time_point Deadline(const CallOptions& call) const {
    return Clock::now() + call.timeout.value_or(options_.default_timeout);
  }

  // Runs `attempt` (one RPC on a fresh context) until it succeeds, fails
  // with a code other than UNAVAILABLE, runs out of attempts, or the next
  // backoff would cross the call's deadline. All attempts share one deadline.
  template <typename Attempt>
  absl::Status Call(const CallOptions& call, Attempt attempt) {
    const Clock::time_point deadline = Deadline(call);
    std::chrono::milliseconds backoff = options_.initial_backoff;
    const int attempts = std::max(1, options_.max_attempts);
    for (int i = 1;; ++i) {
      grpc::ClientContext ctx;
      ctx.set_deadline(deadline);
      grpc::Status status = attempt(&ctx);
      if (status.error_code() != grpc::StatusCode::UNAVAILABLE || i >= attempts ||
          Clock::now() + backoff >= deadline) {
        return FromGrpc(status);
      }
      std::this_thread::sleep_for(backoff);
      backoff *= 2;
    }
  }

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Mnemo::Stub> stub_;
  grpc::GenericStub generic_stub_;
  const ClientOptions options_;
  ShmPool shm_pool_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Client>> Client::Connect(const std::string& target,
                                                        const ClientOptions& options) {
  if (target.empty()) return absl::InvalidArgumentError("empty target");
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(options.max_message_bytes);
  args.SetMaxSendMessageSize(options.max_message_bytes);
  // mnemod usually runs on the same host; an http_proxy in the environment
  // must not capture loopback traffic.
  args.SetInt(GRPC_ARG_ENABLE_HTTP_PROXY, 0);
  std::shared_ptr<grpc::Channel> channel =
      grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
  if (channel == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("cannot create a channel to ", target));
  }
  if (options.connect_timeout.count() > 0 &&
      !channel->WaitForConnected(Clock::now() + options.connect_timeout)) {
    return absl::UnavailableError(absl::StrCat("cannot connect to ", target, " within ",
                                               options.connect_timeout.count(), " ms"));
  }
  return std::unique_ptr<Client>(new ClientImpl(std::move(channel), options));
}

absl::StatusOr<KvDtype> ParseKvDtype(const std::string& name) {
  if (name == "fp32" || name == "float32") return KvDtype::kFp32;
  if (name == "fp16" || name == "float16") return KvDtype::kFp16;
  if (name == "bf16" || name == "bfloat16") return KvDtype::kBf16;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown KV dtype \"", name, "\" (expected fp32, fp16 or bf16)"));
}

absl::StatusOr<KvCodec> ParseKvCodec(const std::string& name) {
  if (name == "fp32") return KvCodec::kFp32;
  if (name == "fp16") return KvCodec::kFp16;
  if (name == "bf16") return KvCodec::kBf16;
  if (name == "int8") return KvCodec::kInt8;
  if (name == "int4") return KvCodec::kInt4;
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown KV codec \"", name, "\" (expected fp32, fp16, bf16, int8 or int4)"));
}

const char* KvDtypeName(KvDtype dtype) {
  switch (dtype) {
    case KvDtype::kFp32:
      return "fp32";
    case KvDtype::kFp16:
      return "fp16";
    case KvDtype::kBf16:
      return "bf16";
  }
  return "unknown";
}

const char* KvCodecName(KvCodec codec) {
  switch (codec) {
    case KvCodec::kFp32:
      return "fp32";
    case KvCodec::kFp16:
      return "fp16";
    case KvCodec::kBf16:
      return "bf16";
    case KvCodec::kInt8:
      return "int8";
    case KvCodec::kInt4:
      return "int4";
  }
  return "unknown";
}

// Defaults for implementations that predate the KV calls (test fakes).
namespace {
absl::Status KvUnimplemented(absl::string_view method) {
  return absl::UnimplementedError(absl::StrCat("this Client does not implement ", method));
}
}  // namespace

absl::StatusOr<KvStats> Client::RegisterKvModel(const std::string&, const KvConfig&,
                                                const CallOptions&) {
  return KvUnimplemented("RegisterKvModel");
}
absl::StatusOr<std::unique_ptr<KvWriter>> Client::OpenKvWriter(const std::string&,
                                                               const KvPutHeader&,
                                                               const CallOptions&) {
  return KvUnimplemented("OpenKvWriter");
}
absl::StatusOr<KvPutResult> Client::PutKv(const std::string&, const KvPut&, const CallOptions&) {
  return KvUnimplemented("PutKv");
}
absl::StatusOr<std::unique_ptr<KvReader>> Client::OpenKvReader(const std::string&,
                                                               const KvGetRequest&,
                                                               const CallOptions&) {
  return KvUnimplemented("OpenKvReader");
}
absl::StatusOr<std::vector<KvBlock>> Client::GetKv(const std::string&, const KvGetRequest&,
                                                   const CallOptions&) {
  return KvUnimplemented("GetKv");
}
absl::StatusOr<std::vector<uint32_t>> Client::ExistsKv(const std::string&,
                                                       const std::vector<std::string>&,
                                                       const ModelFingerprint&,
                                                       const CallOptions&) {
  return KvUnimplemented("ExistsKv");
}
absl::StatusOr<uint64_t> Client::DeleteKv(const std::string&, const std::vector<std::string>&,
                                          const CallOptions&) {
  return KvUnimplemented("DeleteKv");
}
absl::StatusOr<KvPrefixMatch> Client::LookupPrefix(const std::string&, const ModelFingerprint&,
                                                   const std::vector<int32_t>&,
                                                   const CallOptions&) {
  return KvUnimplemented("LookupPrefix");
}
absl::StatusOr<uint64_t> Client::SetKvRetention(const std::string&,
                                                const std::vector<std::string>&,
                                                std::optional<bool>, std::optional<int64_t>,
                                                const CallOptions&) {
  return KvUnimplemented("SetKvRetention");
}
absl::StatusOr<KvStats> Client::GetKvStats(const std::string&, const CallOptions&) {
  return KvUnimplemented("GetKvStats");
}

}  // namespace mnemo
