// `attnlab grow run_dir=<run dir | checkpoint> attention.n_signal=<new> out=<file.pt>
//  [noise_std=0] [seed=0]`: group-differentiated growth of a GDA/DIFF model's weights
// (modules/attention/gda_grow.h). Writes a torch.load-able weights dict; train the grown model
// with init_from=<out> attention=gda attention.n_signal=<new> attention.n_noise=<unchanged>. In a
// hybrid stack only the differential layers grow; the others are copied.
#include <iostream>

#include "cli/command.h"
#include "cli/command_options.h"
#include "modules/attention/gda_grow.h"
#include "trainer/weight_sources.h"
#include "trainer/weights_io.h"

namespace attnlab {

namespace {

int64_t parse_int(const std::string& key, const std::string& text) {
  try {
    size_t used = 0;
    const int64_t value = std::stoll(text, &used);
    if (used == text.size()) return value;
  } catch (const std::exception&) {
  }
  throw UserError("attnlab grow: " + key + "=" + text + " is not an integer");
}

}  // namespace

int run_grow_command(const CommandArgs& args) {
  CommandOptions options(
      "grow", args.overrides,
      {"run_dir", "checkpoint", "attention.n_signal", "out", "noise_std", "seed"});
  check_user(options.has("run_dir") != options.has("checkpoint"),
             "attnlab grow: give exactly one of run_dir=... or checkpoint=...");
  const std::string source =
      options.has("run_dir") ? options.get("run_dir") : options.get("checkpoint");
  GdaGrowOptions grow;
  grow.n_signal = parse_int("attention.n_signal", options.get("attention.n_signal"));
  try {
    grow.noise_std = std::stod(options.get_or("noise_std", "0"));
  } catch (const std::exception&) {
    throw UserError("attnlab grow: noise_std=" + options.get("noise_std") + " is not a number");
  }
  torch::manual_seed(parse_int("seed", options.get_or("seed", "0")));
  const std::string out = options.get("out");
  GdaGrowReport report;
  TensorMap grown = grow_gda_state(read_weights(source), grow, &report);
  save_weights_file(out, grown);
  std::cout << "grew " << report.layers << " layer(s) from " << report.old_signal << " to "
            << grow.n_signal << " signal heads (n_noise " << report.n_noise << ", kv pairs "
            << report.n_kv << "); wrote " << out << "\ncontinue with: init_from=" << out
            << " attention=gda attention.n_signal=" << grow.n_signal
            << " attention.n_noise=" << report.n_noise << " attention.n_kv_pairs=" << report.n_kv
            << " (keep the other attention.* keys of the source run, and its "
               "model.attention_per_layer when it is a hybrid stack)\n";
  return 0;
}

}  // namespace attnlab
