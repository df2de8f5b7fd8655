#include "apps/inspect_table.h"

#include <algorithm>
#include <cmath>
#include <functional>

#include <fmt/format.h>

namespace wn::app {

const std::vector<InspectColumn> kInspectColumns = {
    {"layer", ""},
    {"type", ""},
    {"act mean", "act_mean"},
    {"act std", "act_std"},
    {"|dL/dv|", "grad_norm:weight"},
    {"|dL/dw|", "grad_norm_effective:weight"},
    {"upd/weight", "update_ratio:weight"},
    {"|grad b|", "grad_norm:bias"},
    {"cos(w,dw)", "cos_grad_effective:weight"},
    {"cos(v,dv)", "cos_grad:weight"},
    {"WN max|cos|", "wn_max_abs_cos"},
    {"BN mean", "bn_mean_share"},
    {"BN xhat", "bn_xhat_share"},
};

namespace {
constexpr size_t kLayerWidth = 22, kNumWidth = 10;

// The widths of the name and type columns: the longest of each (at least kLayerWidth / the header).
std::pair<size_t, size_t> name_widths(const std::vector<gan::StepLayer>& layers) {
  size_t name = kLayerWidth, type = 4;
  for (const gan::StepLayer& l : layers) name = std::max(name, l.layer.size()), type = std::max(type, l.type.size());
  return {name, type};
}

// TPReLU's shift is its bias.
double bias_grad(const gan::Inspection& ins, const std::string& step, const std::string& layer) {
  const double b = ins.value(step, layer, "grad_norm:bias");
  return std::isfinite(b) ? b : ins.value(step, layer, "grad_norm:shift");
}

std::string row(const std::vector<std::string>& cells, std::pair<size_t, size_t> widths) {
  std::string out = fmt::format("  {:<{}} {:<{}}", cells[0], widths.first, cells[1], widths.second);
  for (size_t i = 2; i < cells.size(); ++i) out += fmt::format(" {:>{}}", cells[i], kNumWidth);
  return out + "\n";
}
}  // namespace

std::string inspect_cell(double v, const char* quantity) {
  if (!std::isfinite(v)) return "-";
  const std::string q = quantity;
  if (q == "wn_max_abs_cos" || q.rfind("cos_grad", 0) == 0) return fmt::format("{:.1e}", v);
  if (q.rfind("bn_", 0) == 0) return fmt::format("{:.2f}", v);
  return fmt::format("{:.3g}", v);
}

std::string format_inspection(const gan::Inspection& ins) {
  std::string out = fmt::format("\n{}: D step losses: real {:.4f}, fake {:.4f}; G step loss {:.4f}\n", ins.variant,
                                ins.losses.d_real, ins.losses.d_fake, ins.losses.g);
  const std::pair<size_t, size_t> widths = name_widths(ins.layers);
  for (const char* step : {"D", "G"}) {
    out += fmt::format("\n  {}\n", gan::step_description(step, ins.protocol));
    std::vector<std::string> headers;
    for (const InspectColumn& c : kInspectColumns) headers.push_back(c.header);
    out += row(headers, widths);
    for (const gan::StepLayer& l : ins.layers) {
      if (l.step != step) continue;
      std::vector<std::string> cells{l.layer, l.type};
      for (size_t i = 2; i < kInspectColumns.size(); ++i) {
        const char* q = kInspectColumns[i].quantity;
        const double v = std::string(q) == "grad_norm:bias" ? bias_grad(ins, step, l.layer) : ins.value(step, l.layer, q);
        cells.push_back(inspect_cell(v, q));
      }
      out += row(cells, widths);
    }
  }
  for (const std::string& n : ins.notes) out += fmt::format("  note: {}\n", n);
  return out;
}

std::string format_compare(const std::vector<gan::Inspection>& all) {
  auto block = [&](const std::string& title, const std::function<std::string(const gan::Inspection&, const gan::StepLayer&)>& cell) {
    const size_t width = name_widths(all[0].layers).first;
    std::string out = "\n" + title + "\n" + fmt::format("  {:<{}}", "layer", width);
    for (const gan::Inspection& a : all) out += fmt::format(" {:>22}", a.variant);
    out += "\n";
    for (const gan::StepLayer& l : all[0].layers) {
      if (l.layer.find(".conv") == std::string::npos && l.layer.find(".linear") == std::string::npos) continue;
      out += fmt::format("  {:<{}}", l.layer, width);
      for (const gan::Inspection& a : all) out += fmt::format(" {:>22}", cell(a, l));
      out += "\n";
    }
    return out;
  };
  return block("side by side: |dL/dv| of each weight layer in its own step (and, after /, the std of that level's "
               "activation)",
               [](const gan::Inspection& a, const gan::StepLayer& l) {
                 const std::string level = l.layer.substr(0, l.layer.rfind('.'));
                 return inspect_cell(a.value(l.step, l.layer, "grad_norm:weight"), "") + " / " +
                        inspect_cell(a.value(l.step, level + ".act", "act_std"), "");
               }) +
         block("side by side: cos(weight, dL/dweight) over the whole tensor (plain layers: the baseline; WN: v) and, "
               "after /, WN's largest |cos(v_u, dL/dv_u)| over units",
               [](const gan::Inspection& a, const gan::StepLayer& l) {
                 const char* q = "cos_grad:weight";
                 return inspect_cell(a.value(l.step, l.layer, q), q) + " / " +
                        inspect_cell(a.value(l.step, l.layer, "wn_max_abs_cos"), "wn_max_abs_cos");
               });
}

std::string inspect_legend() {
  return "\nColumns (each network's layers as its own step saw them; the line above each table says which batch, "
         "forward and backward):\n"
         "  act mean, act std  the layer's output: per-channel mean and standard deviation, averaged over channels\n"
         "  |dL/dv|            gradient norm of the layer's `weight` parameter: v in WN layers, W in plain layers,\n"
         "                     gamma in BN, the slope in (T)PReLU\n"
         "  |dL/dw|            gradient norm of the effective weight w = scale * v / ||v|| of WN layers (per output\n"
         "                     unit, eps included); in plain Linear / Conv layers dL/dW, the same number as |dL/dv|\n"
         "  upd/weight         ||weight after - weight before|| / ||weight before|| of this step's RMSProp update\n"
         "  |grad b|           gradient norm of the bias (the shift in TPReLU)\n"
         "  cos(w,dw)          cos(w, dL/dw) over the whole tensor, w the effective weight (plain layers: W): the\n"
         "                     baseline, what a plain layer with this weight would see\n"
         "  cos(v,dv)          cos(weight, dL/dweight) over the whole tensor: in plain layers the same baseline; ~0\n"
         "                     in WN layers and in a conv followed by BN (both invariant to the weight's scale)\n"
         "  WN max|cos|        the largest |cos(v_u, dL/dv_u)| over a WN layer's output units (~0: dL/dv is\n"
         "                     orthogonal to v; a note says where eps makes it larger)\n"
         "  BN mean, BN xhat   the shares of the incoming gradient's norm that batch norm's backward removes by\n"
         "                     its mean and its xhat projection, as the backward reports them\n"
         "  -                  not part of the layer, no gradient reached it, or a norm is 0 (cos 0/0)\n"
         "--json / --csv hold every quantity of every layer (the names of gan/grad_trace.h).\n";
}

}  // namespace wn::app
