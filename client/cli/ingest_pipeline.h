// The pipelined write path of `mnemo ingest`, for callers that tune it
// (bench/bench_ingest.cc, tests). `Ingest` in commands.h is this with the
// default IngestPipelineOptions.
#ifndef MNEMO_CLIENT_CLI_INGEST_PIPELINE_H_
#define MNEMO_CLIENT_CLI_INGEST_PIPELINE_H_

#include "absl/status/status.h"
#include "client/cli/commands.h"

namespace mnemo::cli {

struct IngestPipelineOptions {
  // Batches written concurrently, each on its own UpsertStream call, so
  // that mnemod chunks and embeds one batch while it commits another and
  // while the next is read and checked. 1 = one batch at a time (write,
  // wait for the commit, read on). Memory grows by one batch
  // (--batch-bytes) per step. Default 3.
  int in_flight = 3;
};

// `mnemo ingest` (see Ingest in commands.h) with `pipeline` applied.
//
// Ordering guarantees, whatever in_flight is:
// - a document id is never in two batches in flight at once: a batch that
//   holds an id still being written waits for that write, so the stored
//   sha256 it compares with is the committed one and the last version read
//   wins;
// - batches are accounted for in the order they were read: the progress bar
//   counts a file done once its batch and every earlier batch committed;
// - on the first failed batch nothing more is sent, the batches already in
//   flight are waited for, and the error names the failed batch's documents
//   and how many documents were stored (re-running resumes from there).
absl::Status IngestPipelined(Client& client, const GlobalOptions& g, const IngestOptions& o,
                             const Output& out, const IngestPipelineOptions& pipeline);

}  // namespace mnemo::cli

#endif  // MNEMO_CLIENT_CLI_INGEST_PIPELINE_H_
