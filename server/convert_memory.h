// Conversions between the MnemoMemory wire messages (mnemo/v1/memory.proto)
// and the store's memory types (db/memory.h): the one proto <-> db boundary
// of the memory service. Malformed filter trees are INVALID_ARGUMENT naming
// the node.
#ifndef MNEMO_SERVER_CONVERT_MEMORY_H_
#define MNEMO_SERVER_CONVERT_MEMORY_H_

#include <vector>

#include "absl/status/statusor.h"
#include "db/memory.h"
#include "mnemo/v1/memory.pb.h"

namespace mnemo::server {

db::MemoryScope MemoryScopeFromProto(const v1::MemoryScope& scope);
absl::StatusOr<db::MemoryFilter> MemoryFilterFromProto(const v1::MemoryFilter& filter);
std::vector<db::MemoryInput> MemoryInputsFromProto(const v1::MemoryAddRequest& request);
db::MemoryAddOptions MemoryAddOptionsFromProto(const v1::MemoryAddRequest& request);
absl::StatusOr<db::MemorySearchOptions> MemorySearchOptionsFromProto(
    const v1::MemorySearchRequest& request);
absl::StatusOr<db::MemoryListOptions> MemoryListOptionsFromProto(
    const v1::MemoryListRequest& request);
db::MemoryUpdate MemoryUpdateFromProto(const v1::MemoryUpdateRequest& request);

void MemoryToProto(const db::Memory& memory, v1::Memory* out);
void MemoryAddResultsToProto(const std::vector<db::MemoryAddResult>& results,
                             v1::MemoryAddResponse* out);
void MemoryHitsToProto(const std::vector<db::MemoryHit>& hits, v1::MemorySearchResponse* out);
void MemoryPageToProto(const db::MemoryPage& page, v1::MemoryListResponse* out);
void MemoryEventsToProto(const std::vector<db::MemoryEvent>& events,
                         v1::MemoryHistoryResponse* out);

absl::StatusOr<db::BlockEdit> BlockEditFromProto(const v1::BlockEditRequest& request);
void MemoryBlockToProto(const db::MemoryBlock& block, v1::MemoryBlock* out);
void BlockEventsToProto(const std::vector<db::BlockEvent>& events,
                        v1::BlockHistoryResponse* out);

}  // namespace mnemo::server

#endif  // MNEMO_SERVER_CONVERT_MEMORY_H_
