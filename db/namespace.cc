// A namespace's in-memory state, the index options derived from its config
// and damaged namespaces (see namespace.h).
#include "db/namespace.h"

#include <limits>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "db/convo_records.h"
#include "db/injection_store.h"
#include "db/memory_records.h"

namespace mnemo::db {

Namespace::Namespace() {
  for (const char* field : {memrecords::kAttrUser, memrecords::kAttrAgent, memrecords::kAttrRun,
                            convorecords::kAttrRun}) {
    attrs.IndexStringField(field);
  }
}

index::DenseIndexOptions IndexOptionsFor(const NamespaceConfig& config) {
  index::DenseIndexOptions o;
  o.dim = config.dim;
  o.metric = config.metric;
  o.factory = config.index_factory;
  o.train_threshold = config.train_threshold;
  return o;
}

index::MultiVectorIndexOptions MultiVecOptionsFor(const NamespaceConfig& config) {
  index::MultiVectorIndexOptions o;
  o.dim = config.dim;
  o.nbits = config.late_interaction_nbits;
  o.train_threshold = std::numeric_limits<uint64_t>::max();
  return o;
}

NamespacePtr DamagedNamespace(const Namespace& loaded, const absl::Status& error) {
  auto ns = std::make_shared<Namespace>();
  ns->config = loaded.config;
  ns->nsid = loaded.nsid;
  ns->created_unix_ms = loaded.created_unix_ms;
  absl::MutexLock l(&ns->mu);
  ns->gone = Gone::kDamaged;
  ns->damage = absl::DataLossError(absl::StrCat(
      "namespace '", loaded.config.name, "' is damaged and cannot be served: ", error.message(),
      ". Restore the store from a backup (mnemod --restore-from) or drop the namespace "
      "(mnemo ns drop ", loaded.config.name, ") and create it again"));
  return ns;
}

bool KeepsDeadEntries(absl::string_view factory) {
  return absl::StrContains(factory, "HNSW") || absl::StrContains(factory, "NSG");
}

}  // namespace mnemo::db
