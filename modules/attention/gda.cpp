// GDA option parsing; the forward is the differential-attention core (diff.cpp).
#include "modules/attention/gda.h"

#include "common/config_access.h"

namespace attnlab {

DiffOptions gda_options_from(const AttentionOptions& options) {
  const YAML::Node& p = options.params;
  const int64_t heads = options.n_heads;
  check_user(heads > 0 && options.d_model % heads == 0,
             "model.d_model (" + std::to_string(options.d_model) +
                 ") must be divisible by model.n_heads (" + std::to_string(heads) + ")");
  DiffOptions o;
  o.d_model = options.d_model;
  o.head_dim = options.d_model / heads;
  const bool has_signal = cfg::has(p, "n_signal"), has_noise = cfg::has(p, "n_noise");
  if (has_signal && has_noise) {
    o.n_signal = cfg::get<int64_t>(p, "n_signal");
    o.n_noise = cfg::get<int64_t>(p, "n_noise");
  } else if (has_signal || has_noise) {
    // One given: the other fills model.n_heads query heads.
    const int64_t given = cfg::get<int64_t>(p, has_signal ? "n_signal" : "n_noise");
    (has_signal ? o.n_signal : o.n_noise) = given;
    (has_signal ? o.n_noise : o.n_signal) = heads - given;
  } else {
    const int64_t ratio = cfg::get_or<int64_t>(p, "group_ratio", 3);
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
  o.n_kv = cfg::get_or<int64_t>(p, "n_kv_pairs", o.n_noise);
  check_user(o.n_kv > 0 && o.n_noise % o.n_kv == 0,
             "attention.n_kv_pairs (" + std::to_string(o.n_kv) +
                 ") must divide attention.n_noise (" + std::to_string(o.n_noise) + ")");
  const double offset = cfg::get_or<double>(p, "lambda_init_offset", -1.0);
  o.lambda_init =
      cfg::get_or<double>(p, "lambda_init", diff_lambda_init(options.layer_index, offset));
  o.subln_eps = cfg::get_or<double>(p, "subln_eps", 1e-5);
  o.rope = cfg::get_or<bool>(p, "rope", true);
  o.rope_style = parse_rope_style(cfg::get_or<std::string>(p, "rope_style", "rotate_half"),
                                  "attention.rope_style");
  o.rope_theta = options.rope_theta;
  o.rope_scaling = options.rope_scaling;
  o.dropout = options.dropout;
  return o;
}

}  // namespace attnlab
