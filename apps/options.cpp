// Checks for command-line values with short messages that name the rule ("must be >= 1
// (got 0)"), instead of CLI11's ranges over every representable number.
#include <cmath>
#include <filesystem>
#include <limits>
#include <string>

#include <fmt/format.h>

#include "apps/commands.h"
#include "gan/data.h"

namespace wn::app {

namespace {
// The value as a number, or NaN when it is not one (CLI11 then reports the conversion).
double number(const std::string& s) {
  try {
    size_t used = 0;
    const double v = std::stod(s, &used);
    return used == s.size() ? v : std::nan("");
  } catch (const std::exception&) {
    return std::nan("");
  }
}
}  // namespace

CLI::Validator in_range(double lo, double hi) {
  // Bounds that only guard against overflow say nothing to a user: such ranges show as ">= lo".
  const std::string desc = hi >= 1e9 ? fmt::format(">= {:g}", lo) : fmt::format("{:g} to {:g}", lo, hi);
  return CLI::Validator(
      [lo, hi](std::string& s) -> std::string {
        const double v = number(s);
        if (std::isnan(v)) return fmt::format("'{}' is not a number", s);
        if (v < lo) return fmt::format("must be >= {} (got {})", lo, s);
        if (v > hi) return fmt::format("must be <= {} (got {})", hi, s);
        return "";
      },
      desc);
}

CLI::Validator at_least(double lo) { return in_range(lo, std::numeric_limits<double>::infinity()); }

CLI::Validator above(double lo, double hi) {
  return CLI::Validator(
      [lo, hi](std::string& s) -> std::string {
        const double v = number(s);
        if (std::isnan(v)) return fmt::format("'{}' is not a number", s);
        if (!(v > lo) || std::isinf(v)) return fmt::format("must be a finite number > {} (got {})", lo, s);
        if (v > hi) return fmt::format("must be <= {} (got {})", hi, s);
        return "";
      },
      fmt::format("> {} and <= {}", lo, hi));
}

CLI::Validator non_empty() {
  return CLI::Validator([](std::string& s) -> std::string { return s.empty() ? "must not be empty" : ""; },
                        "not empty");
}

CLI::Validator output_file() {
  return CLI::Validator(
      [](std::string& s) -> std::string {
        if (s.empty()) return "must not be empty";
        const std::filesystem::path p(s);
        if (std::filesystem::is_directory(p)) return fmt::format("'{}' is a folder, not a file", s);
        // A missing folder on the way is created when the file is written (nn::write_file_atomic).
        for (std::filesystem::path d = p.parent_path(); !d.empty() && d != d.root_path(); d = d.parent_path()) {
          std::error_code ec;
          if (std::filesystem::exists(d, ec) && !std::filesystem::is_directory(d, ec))
            return fmt::format("cannot write '{}': '{}' is not a folder", s, d.string());
        }
        return "";
      },
      "FILE");
}

CLI::Validator seed_value() {
  return CLI::Validator(
      [](std::string& s) -> std::string {
        const bool digits = !s.empty() && s.size() <= 19 && s.find_first_not_of("0123456789") == std::string::npos;
        if (!digits || (s.size() == 19 && s > "9223372036854775807"))
          return fmt::format("must be a whole number from 0 to 9223372036854775807 (got '{}')", s);
        return "";
      },
      "0 to 2^63-1");
}

void check_distinct_outputs(const std::vector<std::pair<std::string, std::string>>& files, const std::string& out_dir,
                            const std::vector<std::string>& out_prefixes) {
  namespace fs = std::filesystem;
  auto key = [](const std::string& p) { return fs::weakly_canonical(fs::absolute(p)).string(); };
  for (size_t i = 0; i < files.size(); ++i) {
    if (files[i].second.empty()) continue;
    for (size_t j = 0; j < i; ++j)
      if (!files[j].second.empty() && key(files[i].second) == key(files[j].second))
        throw std::invalid_argument(fmt::format("{} and {} name the same file '{}'; give each its own",
                                                files[j].first, files[i].first, files[i].second));
    if (out_dir.empty()) continue;
    const fs::path p = fs::weakly_canonical(fs::absolute(files[i].second));
    if (p.parent_path() == fs::weakly_canonical(fs::absolute(out_dir)))
      for (const auto& prefix : out_prefixes)
        if (p.filename().string().rfind(prefix, 0) == 0)
          throw std::invalid_argument(fmt::format("{} '{}' is a file the command writes into --out {}; choose "
                                                  "another name",
                                                  files[i].first, files[i].second, out_dir));
  }
}

void check_not_input(const std::string& option, const std::string& path, const std::vector<std::string>& inputs,
                     const std::string& data_spec) {
  namespace fs = std::filesystem;
  if (path.empty()) return;
  const fs::path p = fs::weakly_canonical(fs::absolute(path));
  for (const auto& in : inputs)
    if (!in.empty() && fs::weakly_canonical(fs::absolute(in)) == p)
      throw std::invalid_argument(fmt::format("{} {} is also an input of this command; give the output its own name",
                                              option, path));
  // A run's own files, its checkpoints, and the data set's files are never outputs.
  const fs::path dir = p.parent_path();
  static const char* const run_files[] = {"config.json", "split.json", "metrics.csv", "grad_trace.csv", "eval.csv"};
  for (const char* f : run_files)
    if (p.filename() == f && fs::exists(dir / "config.json"))
      throw std::invalid_argument(fmt::format("{} {} is a file of the run {}; choose another name", option, path,
                                              dir.string()));
  if (dir.filename() == "checkpoints" && fs::exists(dir.parent_path() / "config.json"))
    throw std::invalid_argument(fmt::format("{} {} lies among the checkpoints of the run {}; choose another folder",
                                            option, path, dir.parent_path().string()));
  if (!data_spec.empty()) {
    const auto colon = data_spec.find(':');
    const std::string data_dir =
        colon != std::string::npos ? data_spec.substr(colon + 1) : data_spec == "fashion-mnist" ? gan::kFashionMnistDir : "";
    if (!data_dir.empty() && fs::weakly_canonical(fs::absolute(data_dir)) == dir && fs::exists(p))
      throw std::invalid_argument(fmt::format("{} {} is a file of the data set's folder; choose another name", option, path));
  }
}

void group_options(CLI::App* cmd, const std::vector<std::pair<std::string, std::vector<std::string>>>& groups) {
  for (const auto& [group, names] : groups)
    for (const auto& n : names)
      if (CLI::Option* o = cmd->get_option_no_throw(n)) o->group(group);
}

void add_max_pixels_option(CLI::App* cmd) {
  cmd->add_option_function<int64_t>(
         "--max-image-pixels", [](const int64_t& n) { gan::set_max_image_pixels(n); },
         "Refuse images that decode to more pixels (width x height) than this")
      ->default_val(gan::max_image_pixels())
      ->check(in_range(1, 1e12));
}

}  // namespace wn::app
