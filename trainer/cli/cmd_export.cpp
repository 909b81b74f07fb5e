// `attnlab export run_dir=<run dir | checkpoint file> [checkpoint=best|latest|<path>]
// [out=<file.pt>]`: writes the model's
// state_dict as a plain {name: tensor} dict that Python reads with torch.load(out) and feeds to
// model.load_state_dict. Default out: <run_dir>/model.pt (next to the checkpoint for a file).
// The checkpoint is chosen as `eval` and `sample` choose it (default best: best.ckpt, else latest).
#include <filesystem>
#include <iostream>

#include "trainer/checkpoint.h"
#include "trainer/cli/command.h"
#include "trainer/cli/command_options.h"
#include "trainer/run_setup.h"
#include "trainer/weights_io.h"

namespace attnlab {

int run_export_command(const CommandArgs& args) {
  CommandOptions options("export", args.overrides, {"run_dir", "out", "checkpoint"});
  const std::string source = options.get("run_dir");
  const std::string checkpoint = choose_checkpoint(source, options.get_or("checkpoint", "best"));
  namespace fs = std::filesystem;
  fs::path default_out = fs::is_directory(source) ? fs::path(source) / "model.pt"
                                                  : fs::path(source).parent_path() / "model.pt";
  std::string out = options.get_or("out", default_out.string());
  TensorMap weights = read_checkpoint_model_state(checkpoint);
  save_weights_file(out, weights);
  std::cout << "exported " << weights.size() << " tensors from " << checkpoint << " to " << out
            << "\n";
  return 0;
}

}  // namespace attnlab
