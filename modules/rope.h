// Rotary position embeddings applied at absolute positions (so KV-cached decoding and the BD3-LM
// layout, whose two halves share positions, use the same code). Two pairings exist in the wild:
// GPT-NeoX "rotate half" (Llama, Motif GDA) and GPT-J "interleaved" pairs (2j, 2j+1) (unilm DIFF).
#pragma once

#include <torch/torch.h>

namespace attnlab {

enum class RopeStyle { kRotateHalf, kInterleaved };

// x: [B, H, T, D] (D even); positions: [T] int64. Returns x rotated; computed in float32 (or the
// input's dtype when float64) and cast back. Rotate-half on float32 CPU tensors runs the fused
// kernel of modules/kernels/rope_rotate.h (angle tables evaluated in float64).
torch::Tensor apply_rope(const torch::Tensor& x, const torch::Tensor& positions, double theta,
                         RopeStyle style = RopeStyle::kRotateHalf);

}  // namespace attnlab
