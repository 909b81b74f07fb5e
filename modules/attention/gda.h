// `gda`: Grouped Differential Attention (Lim et al., Motif Technologies, arXiv 2510.06949;
// docs/methods.md §2). Differential attention with an unbalanced split: n_signal signal heads and
// n_noise noise heads (G = n_signal / n_noise signal heads share one noise map, GQA-style). The
// maths and parameter layout are the DIFF core's (diff.h); this file only reads GDA's options:
// Motif's λ_init convention (lambda_init_offset = -1) and NeoX (rotate-half) RoPE by default.
// With n_signal == n_noise, lambda_init_offset = 0 and interleaved RoPE it is exactly `diff`.
#pragma once

#include "modules/attention/diff.h"

namespace attnlab {

// GDA options from model.* and the `attention:` group (see configs/attention/gda.yaml): q/k head
// dim d = d_model / model.n_heads; n_signal / n_noise explicit, or split model.n_heads by
// group_ratio G (n_noise = n_heads / (G + 1)); kv pairs = n_kv_pairs (default n_noise).
DiffOptions gda_options_from(const AttentionOptions& options);

class GdaAttentionImpl : public DiffAttentionImpl {
 public:
  explicit GdaAttentionImpl(const AttentionOptions& options)
      : DiffAttentionImpl(gda_options_from(options)) {}
};

}  // namespace attnlab
