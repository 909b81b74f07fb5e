// GDA option parsing; the forward is the differential-attention core (diff.cpp).
#include "modules/attention/gda.h"

#include "common/error.h"

namespace attnlab {

DiffOptions gda_options_from(const AttentionOptions& options) {
  const auto own = module_options<GdaModuleOptions>(options);
  const int64_t heads = options.n_heads;
  check_user(heads > 0 && options.d_model % heads == 0,
             "model.d_model (" + std::to_string(options.d_model) +
                 ") must be divisible by model.n_heads (" + std::to_string(heads) + ")");
  DiffOptions o;
  o.d_model = options.d_model;
  o.head_dim = options.d_model / heads;
  const bool has_signal = own.n_signal().has_value(), has_noise = own.n_noise().has_value();
  if (has_signal && has_noise) {
    o.n_signal = *own.n_signal();
    o.n_noise = *own.n_noise();
  } else if (has_signal || has_noise) {
    // One given: the other fills model.n_heads query heads.
    const int64_t given = has_signal ? *own.n_signal() : *own.n_noise();
    (has_signal ? o.n_signal : o.n_noise) = given;
    (has_signal ? o.n_noise : o.n_signal) = heads - given;
  } else {
    const int64_t ratio = own.group_ratio();
    check_user(ratio > 0 && heads % (ratio + 1) == 0,
               "attention=gda: model.n_heads (" + std::to_string(heads) +
                   ") is not divisible by group_ratio + 1 (" + std::to_string(ratio + 1) +
                   "); set attention.n_signal and attention.n_noise explicitly");
    o.n_noise = heads / (ratio + 1);
    o.n_signal = heads - o.n_noise;
  }
  check_user(o.n_signal > 0 && o.n_noise > 0 && o.n_signal % o.n_noise == 0,
             "attention.n_signal (" + std::to_string(o.n_signal) +
                 ") must be a positive multiple of attention.n_noise (" +
                 std::to_string(o.n_noise) + ")");
  o.n_kv = own.n_kv_pairs().value_or(o.n_noise);
  check_user(o.n_kv > 0 && o.n_noise % o.n_kv == 0,
             "attention.n_kv_pairs (" + std::to_string(o.n_kv) +
                 ") must divide attention.n_noise (" + std::to_string(o.n_noise) + ")");
  o.lambda_init =
      own.lambda_init().value_or(diff_lambda_init(options.layer_index, own.lambda_init_offset()));
  o.subln_eps = own.subln_eps();
  o.rope = own.rope() && options.rotary_positions;
  o.rope_style = parse_rope_style(own.rope_style(), "attention.rope_style");
  o.rope_theta = options.rope_theta;
  o.rope_scaling = options.rope_scaling;
  o.dropout = options.dropout;
  o.backend = options.backend;
  return o;
}

}  // namespace attnlab
