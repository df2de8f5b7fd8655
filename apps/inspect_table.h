// The text of `wngan inspect`: one table per step (each network's layers as its own step
// saw them), the side-by-side comparison of variants, and the legend of the columns.
#pragma once
#include <string>
#include <vector>

#include "gan/inspect.h"

namespace wn::app {

// The column headers of inspect's tables, in order, and the quantity each shows.
struct InspectColumn {
  const char* header;
  const char* quantity;  // a gan/grad_trace.h quantity, "" for the layer's name and type
};
extern const std::vector<InspectColumn> kInspectColumns;
// One variant: its losses, notes, and the D step's and G step's tables, each labelled.
std::string format_inspection(const gan::Inspection& ins);
// Several variants: the gradient norm of each weight layer side by side.
std::string format_compare(const std::vector<gan::Inspection>& all);
// What every column means.
std::string inspect_legend();
// A number as the tables show it ("-" when it is not finite).
std::string inspect_cell(double v, const char* quantity);

}  // namespace wn::app
