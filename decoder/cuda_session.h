// Internal: the GPU decoding session (cuda_session.cc when CUDA is compiled
// in, cuda_session_stub.cc otherwise). Use NewDecodeSession(.., kCuda).
#ifndef MNEMO_DECODER_CUDA_SESSION_H_
#define MNEMO_DECODER_CUDA_SESSION_H_

#include <memory>

#include "absl/status/statusor.h"
#include "decoder/session.h"

namespace mnemo::decoder::internal {

absl::StatusOr<std::unique_ptr<DecodeSession>> NewCudaSession(const Model& model, int capacity);

}  // namespace mnemo::decoder::internal

#endif  // MNEMO_DECODER_CUDA_SESSION_H_
