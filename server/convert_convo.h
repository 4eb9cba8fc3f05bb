// Conversions between the conversation-log wire messages of MnemoMemory
// (mnemo/v1/memory.proto) and the store's types (db/convo.h): the one
// proto <-> db boundary of the conversation calls.
#ifndef MNEMO_SERVER_CONVERT_CONVO_H_
#define MNEMO_SERVER_CONVERT_CONVO_H_

#include <vector>

#include "db/convo.h"
#include "mnemo/v1/memory.pb.h"

namespace mnemo::server {

std::vector<db::MessageInput> MessageInputsFromProto(const v1::AppendMessagesRequest& request);
db::MessageSelection MessageSelectionFromProto(const v1::ConvoSelection& selection);
db::MessageSearchOptions MessageSearchOptionsFromProto(const v1::SearchMessagesRequest& request);
db::MessageListOptions MessageListOptionsFromProto(const v1::ListMessagesRequest& request);

void MessageToProto(const db::Message& message, v1::ConvoMessage* out);
void MessageHitsToProto(const std::vector<db::MessageHit>& hits,
                        v1::SearchMessagesResponse* out);
void MessagePageToProto(const db::MessagePage& page, v1::ListMessagesResponse* out);

}  // namespace mnemo::server

#endif  // MNEMO_SERVER_CONVERT_CONVO_H_
