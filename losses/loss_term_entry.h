// How a loss term enters the registry: loss_term_entry<FocalTerm, FocalTermOptions>() pairs the
// term's factory with its options struct. This is the parse side of the loss terms (it includes
// the config engine, config/options.h): the registry table (losses/loss_registry.cpp) and tests
// include it; the terms themselves see their typed options only.
#pragma once

#include <any>
#include <memory>

#include "config/options.h"
#include "losses/loss_term.h"

namespace attnlab {

template <class Term, class Options>
LossTermSpec loss_term_entry() {
  LossTermSpec spec;
  spec.options = config::erase_options<Options>();
  spec.make = [](const std::any& options,
                 const LossTermContext& context) -> std::unique_ptr<LossTerm> {
    return std::make_unique<Term>(std::any_cast<const Options&>(options), context);
  };
  return spec;
}

}  // namespace attnlab
