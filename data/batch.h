// One training/eval batch as the samplers produce it and the objectives, losses and trainers
// consume it. It lives in data/ (the lowest layer that makes batches), so the samplers need
// nothing from modules/.
#pragma once

#include <torch/torch.h>

namespace attnlab {

// One training/eval batch. input/target: [B, T] int64. Optional masks are [B, T] bool.
struct Batch {
  torch::Tensor input;
  torch::Tensor target;
  torch::Tensor loss_mask;    // true = position contributes to the loss (undefined: all)
  torch::Tensor key_padding;  // true = real token (undefined: no padding)
  torch::Tensor labels;       // [B] int64 for classification tasks
};

}  // namespace attnlab
