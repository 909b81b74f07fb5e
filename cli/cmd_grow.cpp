// `attnlab grow run_dir=<run dir | checkpoint> attention.n_signal=<new> out=<file.pt>
//  [noise_std=0] [seed=0]`: group-differentiated growth of a GDA/DIFF model's weights
// (modules/attention/gda_grow.h). Writes a torch.load-able weights dict; train the grown model
// with init_from=<out> attention=gda attention.n_signal=<new> attention.n_noise=<unchanged>. In a
// hybrid stack only the differential layers grow; the others are copied.
#include <iostream>

#include "cli/command.h"
#include "cli/command_options.h"
#include "io/weights_io.h"
#include "modules/attention/gda_grow.h"
#include "trainer/weight_sources.h"

namespace attnlab {

namespace {

// `attnlab grow`'s keys: the source (a run directory or a checkpoint file, exactly one), the new
// signal-head count and the output file are required.
struct GrowCommandOptions {
  TORCH_ARG(std::optional<std::string>, run_dir) = std::nullopt;
  TORCH_ARG(std::optional<std::string>, checkpoint) = std::nullopt;
  TORCH_ARG(std::optional<int64_t>, n_signal) = std::nullopt;
  TORCH_ARG(std::optional<std::string>, out) = std::nullopt;
  TORCH_ARG(double, noise_std) = 0.0;
  TORCH_ARG(int64_t, seed) = 0;

 public:
  template <class V>
  void visit(V& v) {
    v("run_dir", run_dir(), "the run whose best (else latest) checkpoint grows");
    v("checkpoint", checkpoint(), "a checkpoint or weights file to grow (instead of run_dir)");
    v("attention.n_signal", n_signal(), "the new number of signal heads (required)",
      config::greater_than(0));
    v("out", out(), "the weights file to write (required)");
    v("noise_std", noise_std(), "std of the noise added to the new heads' weights",
      config::at_least(0.0), config::finite());
    v("seed", seed(), "seed of that noise");
  }
};

}  // namespace

int run_grow_command(const CommandArgs& args) {
  const auto options = bind_command_options<GrowCommandOptions>("grow", args.overrides);
  check_user(options.run_dir().has_value() != options.checkpoint().has_value(),
             "attnlab grow: give exactly one of run_dir=... or checkpoint=...");
  const std::string source = options.run_dir() ? *options.run_dir() : *options.checkpoint();
  check_user(options.n_signal().has_value(),
             "attnlab grow: missing required option attention.n_signal=...");
  GdaGrowOptions grow;
  grow.n_signal = *options.n_signal();
  grow.noise_std = options.noise_std();
  torch::manual_seed(options.seed());
  const std::string& out = required_option("grow", "out", options.out());
  GdaGrowReport report;
  StateDict grown = grow_gda_state(read_weights(source), grow, &report);
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
