// MemoryEngine as a whole (see memory_engine.h): its clock, opening the
// namespace of a memory call and embedding memory texts.
#include "db/memory_engine.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/status_macros.h"
#include "db/store_impl.h"
#include "db/text.h"

namespace mnemo::db {

MemoryEngine::MemoryEngine(StoreImpl* owner)
    : owner_(owner), now_ms_([] { return absl::ToUnixMillis(absl::Now()); }) {}

MemoryEngine::~MemoryEngine() { StopExpiry(); }

void MemoryEngine::SetClockForTesting(std::function<int64_t()> now_ms) {
  now_ms_ = std::move(now_ms);
}

int64_t MemoryEngine::NowMs() const { return now_ms_(); }

absl::StatusOr<NamespacePtr> MemoryEngine::OpenNamespace(absl::string_view name, bool create) {
  absl::StatusOr<NamespacePtr> ns = owner_->FindNamespace(name);
  if (!ns.ok() && absl::IsNotFound(ns.status()) && create) {
    NamespaceConfig config;
    config.name = std::string(name);
    config.encoder = kEncoderUseLite;
    config.metric_unset = true;
    config.late_interaction = false;
    config.description = "agent memories";
    absl::StatusOr<NamespaceInfo> created = owner_->CreateNamespace(config);
    if (!created.ok() && !absl::IsAlreadyExists(created.status())) return created.status();
    ns = owner_->FindNamespace(name);
  }
  if (!ns.ok()) return ns.status();
  const NamespaceConfig& config = (*ns)->config;
  if (config.encoder.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "namespace '", name,
        "' has no encoder; memories live in an encoder namespace (create it with --encoder "
        "use-lite, or let the first memory add create it)"));
  }
  if (config.late_interaction.value_or(false)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "namespace '", name,
        "' keeps token vectors (late interaction); memories live in an encoder namespace "
        "without them (create it with late interaction off, or let the first memory add "
        "create it)"));
  }
  return ns;
}

absl::StatusOr<std::vector<MemoryEngine::Embedded>> MemoryEngine::Embed(
    const Namespace& ns, const std::vector<std::string>& texts) {
  std::vector<Embedded> out(texts.size());
  if (texts.empty()) return out;
  ASSIGN_OR_RETURN(const text::TextEncoder* enc,
                   text::GetEncoder(owner_->options().encoder_dir, ns.config.encoder));
  const size_t dim = ns.config.dim;
  ASSIGN_OR_RETURN(std::vector<float> vectors, enc->Encode(texts));
  if (vectors.size() != texts.size() * dim) {
    return absl::InternalError(absl::StrCat("encoder returned ", vectors.size(), " floats for ",
                                            texts.size(), " texts"));
  }
  for (size_t i = 0; i < texts.size(); ++i) {
    out[i].vector.assign(vectors.begin() + i * dim, vectors.begin() + (i + 1) * dim);
    ASSIGN_OR_RETURN(std::vector<int> ids, enc->Tokenize(texts[i]));
    out[i].terms.assign(ids.begin(), ids.end());
  }
  return out;
}

}  // namespace mnemo::db
