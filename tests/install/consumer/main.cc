// A program outside the mnemo tree using the installed SDK: connects to the
// mnemod at argv[1], creates a namespace, upserts two chunks, searches near
// one of them and checks that it is the top hit. Exits non-zero on failure.
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "mnemo/client.h"

namespace {

int Fail(const std::string& what, const absl::Status& status) {
  std::fprintf(stderr, "mnemo_consumer: %s: %s\n", what.c_str(), status.ToString().c_str());
  return 1;
}

int Fail(const std::string& what) {
  std::fprintf(stderr, "mnemo_consumer: %s\n", what.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: mnemo_consumer HOST:PORT\n");
    return 2;
  }
  mnemo::ClientOptions options;
  options.connect_timeout = std::chrono::seconds(10);
  options.default_timeout = std::chrono::seconds(20);
  auto client = mnemo::Client::Connect(argv[1], options);
  if (!client.ok()) return Fail("connect", client.status());

  mnemo::NamespaceConfig config;
  config.name = "consumer";
  config.dim = 4;
  config.metric = mnemo::Metric::kInnerProduct;
  auto created = (*client)->CreateNamespace(config);
  if (!created.ok()) return Fail("create namespace", created.status());

  std::vector<mnemo::Chunk> chunks(2);
  chunks[0].id = "north";
  chunks[0].text = "pointing north";
  chunks[0].vector = {1, 0, 0, 0};
  chunks[1].id = "east";
  chunks[1].text = "pointing east";
  chunks[1].vector = {0, 1, 0, 0};
  auto written = (*client)->Upsert(config.name, /*documents=*/{}, chunks);
  if (!written.ok()) return Fail("upsert", written.status());
  if (written->chunks_written != 2) return Fail("upsert wrote " + std::to_string(written->chunks_written) + " chunks, want 2");

  mnemo::SearchRequest request;
  request.ns = config.name;
  request.dim = 4;
  request.queries = {0.2f, 0.9f, 0, 0};
  request.k = 2;
  auto results = (*client)->Search(request);
  if (!results.ok()) return Fail("search", results.status());
  if (results->size() != 1 || (*results)[0].size() != 2) return Fail("search: want one list of 2 hits");
  const mnemo::Hit& top = (*results)[0][0];
  if (top.id != "east") return Fail("search: top hit " + top.id + ", want east");

  std::printf("mnemo_consumer: top hit %s (score %.3f)\n", top.id.c_str(), top.score);
  return 0;
}
