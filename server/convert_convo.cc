// Conversation-log conversions (see convert_convo.h).
#include "server/convert_convo.h"

#include <algorithm>

namespace mnemo::server {

std::vector<db::MessageInput> MessageInputsFromProto(const v1::AppendMessagesRequest& request) {
  std::vector<db::MessageInput> out;
  out.reserve(request.messages_size());
  for (const v1::ConvoMessageInput& in : request.messages()) {
    db::MessageInput m;
    m.role = in.role();
    m.content = in.content();
    if (in.has_time_ms()) m.time_ms = in.time_ms();
    m.metadata_json = in.metadata_json();
    out.push_back(std::move(m));
  }
  return out;
}

db::MessageSelection MessageSelectionFromProto(const v1::ConvoSelection& selection) {
  db::MessageSelection out;
  out.run_id = selection.run_id();
  out.role = selection.role();
  if (selection.has_since_ms()) out.since_ms = selection.since_ms();
  if (selection.has_until_ms()) out.until_ms = selection.until_ms();
  return out;
}

db::MessageSearchOptions MessageSearchOptionsFromProto(const v1::SearchMessagesRequest& request) {
  db::MessageSearchOptions out;
  out.selection = MessageSelectionFromProto(request.selection());
  out.query = request.query();
  out.top_k = request.top_k() == 0
                  ? 10
                  : static_cast<int>(std::min<uint32_t>(request.top_k(), 1u << 30));
  return out;
}

db::MessageListOptions MessageListOptionsFromProto(const v1::ListMessagesRequest& request) {
  db::MessageListOptions out;
  out.selection = MessageSelectionFromProto(request.selection());
  out.page_size = request.page_size() == 0 ? 100 : request.page_size();
  out.page_token = request.page_token();
  return out;
}

void MessageToProto(const db::Message& message, v1::ConvoMessage* out) {
  out->set_id(message.id);
  out->set_run_id(message.run_id);
  out->set_role(message.role);
  out->set_content(message.content);
  out->set_time_ms(message.time_ms);
  out->set_metadata_json(message.metadata_json);
}

void MessageHitsToProto(const std::vector<db::MessageHit>& hits,
                        v1::SearchMessagesResponse* out) {
  for (const db::MessageHit& hit : hits) {
    v1::ConvoHit* h = out->add_hits();
    MessageToProto(hit.message, h->mutable_message());
    h->set_score(hit.score);
    h->set_similarity(hit.similarity);
  }
}

void MessagePageToProto(const db::MessagePage& page, v1::ListMessagesResponse* out) {
  for (const db::Message& m : page.messages) MessageToProto(m, out->add_messages());
  out->set_next_page_token(page.next_page_token);
}

}  // namespace mnemo::server
