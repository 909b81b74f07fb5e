// The user's own labelled data for task=classification (`data=labelled_files`, i.e.
// data.dataset=files): CSV (.csv), TSV (.tsv) or JSON Lines (.jsonl) files with a text and a
// label per row, named by data.text_key and data.label_key (default `text` and `label`).
//   * CSV/TSV: RFC 4180 (a header row naming the columns; fields may be quoted, with "" for a
//     quote and line breaks inside quotes); a UTF-8 byte-order mark is skipped.
//   * JSON Lines: one object per non-blank line; the label may be a string or an integer.
// Label names are mapped to class ids in a stable order that does not depend on the files' row
// order: numerically when every label is an integer, else by byte order. Each example is named
// "<file name>:<row>" (the split hashes these names), so the stratified split is fixed across
// runs and seeds. data.val / data.test files, when given, are those splits as they are.
// A missing column, an empty label, a malformed row or a label only seen outside data.train is a
// UserError naming the file and row.
#pragma once

#include "data/corpora/labelled_dataset.h"

namespace attnlab {

LabelledDataset load_labelled_files(const LabelledDatasetOptions& options);

}  // namespace attnlab
