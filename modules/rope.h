// Rotary position embeddings applied at absolute positions (so KV-cached decoding and the BD3-LM
// layout, whose two halves share positions, use the same code). Two pairings exist in the wild:
// GPT-NeoX "rotate half" (Llama, Motif GDA) and GPT-J "interleaved" pairs (2j, 2j+1) (unilm DIFF).
#pragma once

#include <torch/torch.h>

#include <string>

namespace attnlab {

enum class RopeStyle { kRotateHalf, kInterleaved };

// Context-extension scaling of the RoPE frequencies, as Hugging Face's rope_type:
//   none    inv_freq_j = theta^(-2j/D)
//   linear  inv_freq_j / factor (position interpolation)
//   llama3  Llama 3.1's: wavelengths longer than original / low_freq_factor are divided by
//           factor, shorter than original / high_freq_factor kept, those between interpolated.
struct RopeScaling {
  std::string type = "none";
  double factor = 1.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  double original_max_positions = 8192.0;
};

// The inverse frequencies [D/2] (float64) of head size `dim`.
torch::Tensor rope_inverse_frequencies(int64_t dim, double theta, const RopeScaling& scaling = {});

// x: [B, H, T, D] (D even); positions: [T] int64. Returns x rotated; computed in float32 (or the
// input's dtype when float64) and cast back. Rotate-half on float32 CPU tensors runs the fused
// kernel of modules/kernels/rope_rotate.h (angle tables evaluated in float64).
torch::Tensor apply_rope(const torch::Tensor& x, const torch::Tensor& positions, double theta,
                         RopeStyle style = RopeStyle::kRotateHalf, const RopeScaling& scaling = {});

}  // namespace attnlab
