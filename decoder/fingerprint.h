// The reference decoder's model fingerprint (mnemo/model_fingerprint.h),
// filled from its config: what every KV block it exports records and what
// mnemo checks a KV put or get against.
#ifndef MNEMO_DECODER_FINGERPRINT_H_
#define MNEMO_DECODER_FINGERPRINT_H_

#include "mnemo/model_fingerprint.h"
#include "decoder/config.h"

namespace mnemo::decoder {

using ::mnemo::FingerprintDiff;
using ::mnemo::FirstDifference;
using ::mnemo::ModelFingerprint;
using ::mnemo::ParseFingerprint;

// The fingerprint of a model with this config (its dtype is the config's
// weight dtype, the dtype of the K/V the model computes).
ModelFingerprint FingerprintFromConfig(const ModelConfig& config);

}  // namespace mnemo::decoder

#endif  // MNEMO_DECODER_FINGERPRINT_H_
