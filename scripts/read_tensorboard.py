#!/usr/bin/env python3
"""Read the TensorBoard event files of one run directory back with the real tensorboard package.

Usage: read_tensorboard.py <log_dir>

Prints one JSON object (the tests compare it with what the C++ TensorBoardWriter wrote):
  {"scalars": {tag: [[step, value], ...]}, "texts": {tag: [[step, text], ...]},
   "hparams": {name: value}, "metric_tags": [tag, ...], "hparams_status": "STATUS_SUCCESS" | null}
Values are what TensorBoard's dashboards show (read with plugin_event_accumulator, the loader
behind them): scalars are float32, and the events a restart purged are gone (the first SessionLog
START of a run is its start; each later one drops the events at steps >= its step).
hparams come from `_hparams_/session_start_info`, metric_tags from `_hparams_/experiment`,
hparams_status from `_hparams_/session_end_info` (decoded with
tensorboard.plugins.hparams.plugin_data_pb2 by the plugin's own parsers).
Exit codes: 0 ok, 2 usage or not a directory, 3 tensorboard not installed, 4 no event file.
"""
import json
import os
import sys


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    log_dir = sys.argv[1]
    if not os.path.isdir(log_dir):
        print(f"read_tensorboard.py: '{log_dir}' is not a directory", file=sys.stderr)
        return 2
    try:
        from tensorboard.backend.event_processing import plugin_event_accumulator as pea
        from tensorboard.plugins.hparams import api_pb2
        from tensorboard.plugins.hparams import metadata as hparams_metadata
        from tensorboard.util import tensor_util
    except ImportError as e:
        print(f"read_tensorboard.py: tensorboard is not installed ({e}); "
              "pip install -r scripts/requirements.txt", file=sys.stderr)
        return 3
    if not any("tfevents" in name for name in os.listdir(log_dir)):
        print(f"read_tensorboard.py: no events.out.tfevents.* file in '{log_dir}'", file=sys.stderr)
        return 4

    # The accumulator behind TensorBoard's dashboards: every value becomes a tensor (simple_value
    # scalars are migrated to the "scalars" plugin), and a SessionLog START purges the tensors of
    # every tag at steps >= its step. size_guidance 0 keeps every event (the default samples).
    acc = pea.EventAccumulator(log_dir, size_guidance={pea.TENSORS: 0})
    acc.Reload()

    def plugin_tags(plugin_name):  # {tag: SummaryMetadata.plugin_data.content}, {} when none
        try:
            return acc.PluginTagToContent(plugin_name)
        except KeyError:
            return {}

    scalars = {tag: [[e.step, tensor_util.make_ndarray(e.tensor_proto).item()]
                     for e in acc.Tensors(tag)]
               for tag in plugin_tags("scalars")}
    texts = {tag: [[e.step, e.tensor_proto.string_val[0].decode("utf-8")]
                   for e in acc.Tensors(tag)]
             for tag in plugin_tags("text")}

    hparams, metric_tags, status = {}, [], None
    content = plugin_tags(hparams_metadata.PLUGIN_NAME)
    if hparams_metadata.SESSION_START_INFO_TAG in content:
        start = hparams_metadata.parse_session_start_info_plugin_data(
            content[hparams_metadata.SESSION_START_INFO_TAG])
        for name, value in start.hparams.items():
            kind = value.WhichOneof("kind")
            hparams[name] = getattr(value, kind) if kind else None
    if hparams_metadata.EXPERIMENT_TAG in content:
        experiment = hparams_metadata.parse_experiment_plugin_data(
            content[hparams_metadata.EXPERIMENT_TAG])
        metric_tags = [info.name.tag for info in experiment.metric_infos]
    if hparams_metadata.SESSION_END_INFO_TAG in content:
        end = hparams_metadata.parse_session_end_info_plugin_data(
            content[hparams_metadata.SESSION_END_INFO_TAG])
        status = api_pb2.Status.Name(end.status)

    print(json.dumps({"scalars": scalars, "texts": texts, "hparams": hparams,
                      "metric_tags": metric_tags, "hparams_status": status}, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
