// A namespace's in-memory state and the index options derived from its
// config (see namespace.h).
#include "db/namespace.h"

#include <limits>

#include "absl/strings/match.h"
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

bool KeepsDeadEntries(absl::string_view factory) {
  return absl::StrContains(factory, "HNSW") || absl::StrContains(factory, "NSG");
}

}  // namespace mnemo::db
